"""Process-level behaviour: restart persistence, the CLI, concurrency, admin endpoints."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from seasonal_c2rcc.emulator import FaultConfig

from .helpers import c2rcc_graph, lonlat_wkt, query, snap_process, utm_box

BOX = utm_box(10_000, 80_000, 10_000)


def test_state_survives_restart(emulator_factory, hda_client_factory, eocanvas_api_factory,
                                tmp_path: Path) -> None:
    state = tmp_path / "state"
    faults = FaultConfig(accept_delay=0.05, job_duration=0.8, eocanvas_jobs_per_hour=2)
    emu = emulator_factory(state_dir=state, faults=faults)
    hda = hda_client_factory(emu)
    api = eocanvas_api_factory(emu)
    url = hda.search(query())[0].get_download_urls()[0]
    proc = snap_process(c2rcc_graph(lonlat_wkt(BOX)), {"img1": url})
    job = api.exec_process(proc)
    before = emu.accounting()
    emu.stop()  # while the job is still running

    emu2 = emulator_factory(state_dir=state, faults=faults, port=0)
    api2 = eocanvas_api_factory(emu2)
    deadline = time.time() + 10
    while api2.get_job(job.job_id).status != "successful" and time.time() < deadline:
        time.sleep(0.05)
    assert api2.get_job(job.job_id).status == "successful"
    (res,) = api2.get_job_results(job.job_id)
    res.download(str(tmp_path / "dl"))  # outputs are produced lazily after the restart
    assert (tmp_path / "dl" / res.title.rsplit("/", 1)[1]).stat().st_size > 10_000
    # the order issued before the restart is still valid and ready
    did = url.rsplit("/", 1)[1]
    h = {"Authorization": f"Bearer {api2.auth.token}"}
    head = requests.head(f"{emu2.hda_url}api/v1/dataaccess/download/{did}", headers=h, timeout=10)
    assert head.status_code == 200 and int(head.headers["Content-Length"]) > 0
    # the quota ledger persisted: 1 job used, 1 left in this hour
    proc2 = snap_process(c2rcc_graph(lonlat_wkt(BOX)), {"img1": url.replace(emu.url, emu2.url)})
    api2.exec_process(proc2)
    r = requests.post(f"{emu2.eocanvas_url}/processes/snap-function/execution",
                      json=proc2.prepare_inputs(), headers=h, timeout=10)
    assert r.status_code == 429
    after = emu2.accounting()
    for key in ("tokens", "searches", "orders", "submissions"):
        assert after[key][: len(before[key])] == before[key]
    assert after["counters"]["jobs_created"] == 2
    # a token issued before the restart is still honoured
    old = {"Authorization": f"Bearer {api.auth.token}"}
    assert requests.get(f"{emu2.eocanvas_url}/jobs", headers=old, timeout=10).status_code == 200


def _start_cli(tmp_path: Path, *args: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "seasonal_c2rcc.emulator", "--host", "127.0.0.1", "--port", "0",
         "--state-dir", str(tmp_path / "cli-state"), *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    return proc, line


def test_cli_prints_one_line_and_stops_cleanly(tmp_path: Path) -> None:
    for sig in (signal.SIGTERM, signal.SIGINT):
        proc, line = _start_cli(tmp_path, "--job-duration", "0.3", "--time-scale", "720",
                                "--http-5xx-rate", "0", "--seed", "3", "--quota-enabled", "true")
        try:
            m = re.fullmatch(r"listening on (http://127\.0\.0\.1:(\d+))", line)
            assert m, line
            faults = requests.get(f"{m[1]}/admin/faults", timeout=10).json()
            assert faults["job_duration"] == 0.3 and faults["time_scale"] == 720.0
            tok = requests.post(f"{m[1]}/hda-broker/gettoken",
                                json={"username": "u", "password": "p"}, timeout=10)
            assert tok.status_code == 200
        finally:
            proc.send_signal(sig)
            out, err = proc.communicate(timeout=15)
        assert proc.returncode == 0, err
        assert out == ""  # nothing after the single "listening on" line


def test_cli_rejects_bad_settings(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "seasonal_c2rcc.emulator", "--state-dir", str(tmp_path),
         "--job-failure-rate", "3"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "job_failure_rate" in proc.stderr


def test_a_stalled_request_does_not_block_others(emulator) -> None:
    # a client that sends headers announcing a body and then stalls occupies one handler thread
    stalled = socket.create_connection(("127.0.0.1", emulator.port))
    try:
        stalled.sendall(b"POST /identity/gettoken HTTP/1.1\r\nHost: x\r\n"
                        b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
        time.sleep(0.1)
        t0 = time.time()
        r = requests.post(f"{emulator.url}/identity/gettoken",
                          json={"username": "u", "password": "p"}, timeout=5)
        # the stalled connection would hold a single-threaded server forever
        assert r.status_code == 200 and time.time() - t0 < 3.0
    finally:
        stalled.close()


def test_no_quota_headers_on_success_and_admin_endpoints(emulator, hda_client) -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # hda warns when a 2xx carries X-Quota-* headers
        r = hda_client.search(query())
        r[0].get_download_urls()
    assert requests.get(f"{emulator.url}/admin/health", timeout=5).json()["ok"] is True
    assert requests.get(f"{emulator.url}/static/ping", timeout=5).content == b"pong\n"
    new = emulator.set_faults(job_failure_rate=0.25)
    assert new.job_failure_rate == 0.25 and emulator.faults.job_failure_rate == 0.25
    acc = emulator.accounting()
    assert acc["fault_changes"][0]["changes"] == {"job_failure_rate": 0.25}
    assert acc["counters"]["orders_placed"] == 1


def test_port_in_use(tmp_path: Path, emulator) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "seasonal_c2rcc.emulator", "--port", str(emulator.port),
         "--state-dir", str(tmp_path / "busy")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "listening" not in proc.stdout
    assert "cannot listen" in proc.stderr
