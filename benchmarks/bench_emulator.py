"""Benchmark the WEkEO emulator: search and job polling under 50 concurrent clients.

Starts the emulator as a child process (``python -m seasonal_c2rcc.emulator``, loopback, port 0)
and drives it from this process with ``--clients`` threads, each sending ``--requests``
requests. Every scenario runs in the same emulator and the same run as a baseline: ``GET
/static/ping``, a tiny static reply with no auth and no database access (the "static file").
Reports requests/s, p50 and p99 latency per scenario and the ratios to the baseline.

    .venv/bin/python benchmarks/bench_emulator.py [--clients 50] [--requests 20] [--rounds 3]
        [--json out.json]
"""

from __future__ import annotations

import argparse
import base64
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

QUERY = {"dataset_id": "EO:ESA:DAT:SENTINEL-2", "processingLevel": "S2MSI1C", "tileId": "30UUA",
         "startdate": "2020-06-01T00:00:00.000Z", "enddate": "2020-06-30T23:59:59.999Z",
         "startIndex": 0, "itemsPerPage": 100}


# Read -> Subset -> Resample -> c2rcc.msi -> Write over a ~10 km box of 30UUA (lon/lat WKT).
GRAPH = """<graph id="bench"><version>1.0</version>
<node id="Read"><operator>Read</operator><parameters><file>$img1</file></parameters></node>
<node id="Subset"><operator>Subset</operator><sources><sourceProduct refid="Read"/></sources>
<parameters><geoRegion>POLYGON ((-5.64 49.75, -5.50 49.75, -5.50 49.84, -5.64 49.84,
-5.64 49.75))</geoRegion></parameters></node>
<node id="Resample"><operator>Resample</operator><sources><sourceProduct refid="Subset"/>
</sources><parameters><targetResolution>60</targetResolution></parameters></node>
<node id="c2rcc"><operator>c2rcc.msi</operator><sources><sourceProduct refid="Resample"/>
</sources><parameters><outputAsRrs>true</outputAsRrs></parameters></node>
<node id="Write"><operator>Write</operator><sources><sourceProduct refid="c2rcc"/></sources>
<parameters><file>$output</file><formatName>NetCDF4-BEAM</formatName></parameters></node>
</graph>"""


def start_emulator(state: Path) -> tuple[subprocess.Popen[str], str]:
    """Start the emulator CLI and return (process, root URL)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "seasonal_c2rcc.emulator", "--host", "127.0.0.1", "--port", "0",
         "--state-dir", str(state), "--job-duration", "3600", "--accept-delay", "0"],
        stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line.startswith("listening on "):
        proc.kill()
        raise SystemExit(f"emulator did not start: {line!r}")
    return proc, line.removeprefix("listening on ")


def setup(url: str) -> tuple[dict[str, str], str]:
    """Token, one order and one (long-running) job to poll; returns (headers, job URL)."""
    tok = requests.post(f"{url}/hda-broker/gettoken", json={"username": "bench",
                                                             "password": "bench"}, timeout=10)
    h = {"Authorization": f"Bearer {tok.json()['access_token']}"}
    api = f"{url}/hda-broker/api/v1"
    feat = requests.post(f"{api}/dataaccess/search", json=QUERY, headers=h,
                         timeout=30).json()["features"][0]
    did = requests.post(f"{api}/dataaccess/download", headers=h, timeout=10, json={
        "dataset_id": QUERY["dataset_id"], "product_id": feat["id"],
        "location": feat["properties"]["location"]}).json()["download_id"]
    body = {"inputs": {"snap_graph": base64.b64encode(GRAPH.encode()).decode(),
                       "eo_input": json.dumps([{"img1": f"{api}/dataaccess/download/{did}"}])},
            "outputs": {}, "response": "raw"}
    job = requests.post(f"{url}/serverless/processes/snap-function/execution", json=body,
                        headers=h, timeout=10)
    job.raise_for_status()
    return h, f"{url}/serverless/jobs/{job.json()['jobID']}"


def run_scenario(name: str, call: Callable[[requests.Session], requests.Response],
                 clients: int, per_client: int) -> tuple[list[float], list[str], float]:
    """``clients`` threads x ``per_client`` calls: (latencies of successes, errors, wall s)."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(clients + 1)

    def worker() -> None:
        session = requests.Session()
        mine: list[float] = []
        barrier.wait()
        for _ in range(per_client):
            t0 = time.perf_counter()
            try:
                r = call(session)
                ok = r.status_code == 200
                if not ok:
                    errors.append(f"HTTP {r.status_code}")
            except requests.RequestException as exc:
                ok = False
                errors.append(type(exc).__name__)
            if ok:
                mine.append(time.perf_counter() - t0)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    return latencies, errors, time.perf_counter() - t0


def summarise(name: str, runs: list[tuple[list[float], list[str], float]]) -> dict[str, Any]:
    """Pool the rounds of one scenario: throughput over total wall time, latency percentiles."""
    latencies = sorted(x for lat, _e, _w in runs for x in lat)
    errors = sum(len(e) for _l, e, _w in runs)
    wall = sum(w for _l, _e, w in runs)
    n = len(latencies)
    return {
        "scenario": name,
        "requests": n + errors,
        "ok": n,
        "errors": errors,
        "wall_s": wall,
        "rps": n / wall if wall else 0.0,
        "p50_ms": 1000 * statistics.median(latencies) if n else float("nan"),
        "p99_ms": 1000 * latencies[min(n - 1, int(0.99 * n))] if n else float("nan"),
    }


def main(argv: list[str] | None = None) -> int:
    """Run all scenarios and print the table; optional JSON output."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--requests", type=int, default=20, help="requests per client")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds per scenario")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        proc, url = start_emulator(Path(tmp) / "state")
        try:
            h, job_url = setup(url)
            scenarios: list[tuple[str, Callable[[requests.Session], requests.Response]]] = [
                ("baseline GET /static/ping",
                 lambda s: s.get(f"{url}/static/ping", timeout=30)),
                ("search POST dataaccess/search (1 month, 1 tile)",
                 lambda s: s.post(f"{url}/hda-broker/api/v1/dataaccess/search", json=QUERY,
                                  headers=h, timeout=30)),
                ("job poll GET /serverless/jobs/{id}",
                 lambda s: s.get(job_url, headers=h, timeout=30)),
            ]
            # warm-up (imports, caches), not measured
            for _name, call in scenarios:
                call(requests.Session())
            # Interleave the scenarios over several rounds so that drift on a shared machine
            # (other processes, warm-up) affects the baseline and the others alike.
            runs: dict[str, list[tuple[list[float], list[str], float]]] = {
                n: [] for n, _c in scenarios}
            for _round in range(args.rounds):
                for n, c in scenarios:
                    runs[n].append(run_scenario(n, c, args.clients, args.requests))
            results = [summarise(n, runs[n]) for n, _c in scenarios]
        finally:
            proc.terminate()
            proc.wait(timeout=15)
    base = results[0]
    print(f"WEkEO emulator benchmark: {args.clients} concurrent clients x {args.requests} "
          f"requests each x {args.rounds} interleaved rounds, loopback")
    print(f"{'scenario':50s} {'ok':>6s} {'err':>4s} {'req/s':>8s} {'p50 ms':>8s} {'p99 ms':>8s} "
          f"{'rps/base':>9s} {'p99/base':>9s}")
    for r in results:
        r["rps_ratio"] = r["rps"] / base["rps"] if base["rps"] else float("nan")
        r["p99_ratio"] = r["p99_ms"] / base["p99_ms"] if base["p99_ms"] else float("nan")
        print(f"{r['scenario']:50s} {r['ok']:6d} {r['errors']:4d} {r['rps']:8.1f} "
              f"{r['p50_ms']:8.1f} {r['p99_ms']:8.1f} {r['rps_ratio']:9.2f} {r['p99_ratio']:9.2f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0 if all(r["errors"] == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
