"""One test per fault mode: what the unmodified clients see."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import requests

from seasonal_c2rcc.emulator import FaultConfig

from .helpers import c2rcc_graph, lonlat_wkt, query, snap_process, utm_box, utm_wkt

BOX = utm_box(10_000, 80_000, 10_000)


def fast(**kw: Any) -> FaultConfig:
    """Fast job timing plus the given fault settings."""
    base = {"accept_delay": 0.05, "job_duration": 0.2}
    base.update(kw)
    return FaultConfig(**base)


def order_url(hda: Any, i: int = 0) -> str:
    """Search June 2020 and order result ``i``; returns its download URL."""
    return hda.search(query())[i].get_download_urls()[0]


def wait_final(api: Any, job_id: str, timeout: float = 15.0) -> str:
    """Poll until the job leaves accepted/running or the timeout passes; returns the status."""
    deadline = time.time() + timeout
    status = api.get_job(job_id).status
    while status in ("accepted", "running") and time.time() < deadline:
        time.sleep(0.05)
        status = api.get_job(job_id).status
    return status


def test_job_failure_rate(emulator_factory, hda_client_factory, eocanvas_api_factory) -> None:
    from eocanvas.exceptions import JobFailed

    emu = emulator_factory(faults=fast(job_failure_rate=1.0))
    api = eocanvas_api_factory(emu)
    proc = snap_process(c2rcc_graph(lonlat_wkt(BOX)), {"img1": order_url(hda_client_factory(emu))})
    with pytest.raises(JobFailed):
        proc.run()
    job_id = emu.accounting()["submissions"][0]["job_id"]
    logs = [e.message for e in api.get_job_logs(job_id)]
    assert any("[ERROR]" in m for m in logs)
    assert logs[-1].endswith("Job failed")
    with pytest.raises(requests.HTTPError) as err:
        api.get_job_results(job_id)
    assert err.value.response.status_code == 404


def test_job_duration(emulator_factory, hda_client_factory, eocanvas_api_factory) -> None:
    emu = emulator_factory(faults=fast(accept_delay=0.3, job_duration=2.0))
    api = eocanvas_api_factory(emu)
    url = order_url(hda_client_factory(emu))
    t0 = time.time()
    job = api.exec_process(snap_process(c2rcc_graph(lonlat_wkt(BOX)), {"img1": url}))
    assert job.status == "accepted"
    time.sleep(max(0.0, t0 + 0.6 - time.time()))
    mid = api.get_job(job.job_id)
    assert mid.status == "running" and mid.started is not None and mid.finished is None
    assert wait_final(api, job.job_id) == "successful"
    assert time.time() - t0 >= 2.3
    # changing the setting at run time affects new jobs only
    emu.set_faults(job_duration=0.0, accept_delay=0.0)
    job2 = api.exec_process(snap_process(c2rcc_graph(lonlat_wkt(BOX)), {"img1": url}))
    assert api.get_job(job2.job_id).status == "successful"


def test_http_5xx_rate(emulator_factory, hda_client_factory, eocanvas_api_factory) -> None:
    emu = emulator_factory(faults=fast(http_5xx_rate=1.0))
    hda = hda_client_factory(emu, retry_max=3)
    with pytest.raises(requests.HTTPError) as err:
        hda.search(query())
    assert err.value.response.status_code in (500, 502, 503, 504)
    assert err.value.response.json()["message"]
    # hda retried (3 attempts) while eocanvas over http does not retry at all
    n = len(emu.accounting()["faults_injected"])
    assert n == 3
    api = eocanvas_api_factory(emu)
    with pytest.raises(requests.HTTPError):
        api.get_jobs()
    assert len(emu.accounting()["faults_injected"]) == n + 1
    # at 50 % the retrying hda client gets through
    emu.set_faults(http_5xx_rate=0.5)
    assert len(hda_client_factory(emu, retry_max=20).search(query())) > 0


def test_http_5xx_is_reproducible_with_seed(emulator_factory) -> None:
    def codes(seed: int) -> list[int]:
        emu = emulator_factory(faults=fast(http_5xx_rate=0.5), seed=seed)
        tok = requests.post(f"{emu.url}/identity/gettoken",
                            json={"username": "u", "password": "p"}, timeout=10).json()
        h = {"Authorization": f"Bearer {tok['access_token']}"}
        return [requests.get(f"{emu.eocanvas_url}/processes", headers=h, timeout=10).status_code
                for _ in range(16)]

    a, b, c = codes(7), codes(7), codes(8)
    assert a == b and 200 in a and any(x >= 500 for x in a)
    assert a != c


def test_hda_order_quota(emulator_factory, hda_client_factory) -> None:
    from hda.api import QuotaReachedError

    # time_scale 1800: the rolling "hour" lasts two seconds
    emu = emulator_factory(faults=fast(hda_orders_per_hour=2, time_scale=1800))
    hda = hda_client_factory(emu)
    r = hda.search(query())
    t0 = time.time()
    r[0].get_download_urls()
    r[1].get_download_urls()
    r[0].get_download_urls()  # the same product again within the window is free
    with pytest.raises(QuotaReachedError) as err:
        r[2].get_download_urls()
    assert "0 requests remaining out of 2" in str(err.value)
    # raw reply: 429 with X-Quota-* headers, reset in epoch milliseconds, JSON body
    h = {"Authorization": f"Bearer {hda.token}"}
    f = r.results[2]
    resp = requests.post(f"{emu.hda_url}api/v1/dataaccess/download", headers=h, timeout=10,
                         json={"dataset_id": r.dataset, "product_id": f["id"],
                               "location": f["properties"]["location"]})
    assert resp.status_code == 429 and "Quota exceeded" in resp.json()["message"]
    assert resp.headers["X-Quota-Limit"] == "2" and resp.headers["X-Quota-Remaining"] == "0"
    reset_ms = int(resp.headers["X-Quota-Reset"])
    assert t0 * 1000 < reset_ms <= (time.time() + 2.0) * 1000
    time.sleep(max(0.0, reset_ms / 1000 - time.time()) + 0.05)
    assert r[2].get_download_urls()
    acc = emu.accounting()
    assert len(acc["quota_denials"]) == 2 and len(acc["orders"]) == 4


def test_eocanvas_hour_and_month_quota(emulator_factory, hda_client_factory,
                                       eocanvas_api_factory) -> None:
    from eocanvas.exceptions import QuotaExceededError

    emu = emulator_factory(faults=fast(eocanvas_jobs_per_hour=2, eocanvas_jobs_per_month=3,
                                       time_scale=3600))
    api = eocanvas_api_factory(emu)
    proc = snap_process(c2rcc_graph(lonlat_wkt(BOX)), {"img1": order_url(hda_client_factory(emu))})
    api.exec_process(proc)
    api.exec_process(proc)
    with pytest.raises(QuotaExceededError, match="2 jobs per hour"):
        api.exec_process(proc)
    time.sleep(1.05)  # the hour (1 s at time_scale 3600) rolls over
    api.exec_process(proc)
    time.sleep(1.05)
    body = proc.prepare_inputs()
    tok = api.auth.token.access_token
    resp = requests.post(f"{emu.eocanvas_url}/processes/snap-function/execution", json=body,
                         headers={"Authorization": f"Bearer {tok}"}, timeout=10)
    assert resp.status_code == 429 and "3 jobs per month" in resp.json()["message"]
    assert resp.headers["X-Quota-Limit"] == "3" and resp.headers["X-Quota-Remaining"] == "0"
    assert int(resp.headers["X-Quota-Reset"]) > time.time() * 1000 + 600_000  # ~720 s month
    acc = emu.accounting()
    assert acc["counters"]["jobs_created"] == 3
    assert [d["window"] for d in acc["quota_denials"]] == ["hour", "month"]
    assert acc["quota_usage"]["tester"]["eocanvas_jobs_month"] == 3


def test_quota_off(emulator_factory, hda_client_factory) -> None:
    emu = emulator_factory(faults=fast(hda_orders_per_hour=1, quota_enabled=False))
    hda = hda_client_factory(emu)
    r = hda.search(query())
    assert len(r[0:3].get_download_urls()) == 3


def test_dropped_connections(emulator_factory, hda_client_factory, eocanvas_api_factory) -> None:
    emu = emulator_factory(faults=fast(drop_connection_rate=1.0))
    api = eocanvas_api_factory(emu)
    with pytest.raises(requests.ConnectionError):
        api.get_jobs()
    hda = hda_client_factory(emu, retry_max=2)
    # hda retries connection errors, then its wrapper returns None: AttributeError (§1.6)
    with pytest.raises(AttributeError):
        hda.search(query())
    kinds = {f["kind"] for f in emu.accounting()["faults_injected"]}
    assert kinds == {"drop_connection"}


def test_truncated_downloads(emulator_factory, hda_client_factory, eocanvas_api_factory,
                             tmp_path: Path) -> None:
    emu = emulator_factory(faults=fast())
    hda = hda_client_factory(emu)
    api = eocanvas_api_factory(emu)
    url = order_url(hda)
    job = api.exec_process(snap_process(c2rcc_graph(lonlat_wkt(BOX)), {"img1": url}))
    assert wait_final(api, job.job_id) == "successful"
    (res,) = api.get_job_results(job.job_id)
    emu.set_faults(truncate_download_rate=1.0)
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        res.download(str(tmp_path))
    download_id = url.rsplit("/", 1)[1]
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        hda.stream(download_id, 0, str(tmp_path))
    downloads = emu.accounting()["downloads"]
    assert [d["kind"] for d in downloads] == ["result", "product"]
    for d in downloads:
        assert d["truncated"] and d["bytes_sent"] < d["content_length"]
    # a raw reader sees fewer bytes than Content-Length
    emu.set_faults(truncate_download_rate=0.0)
    full = requests.get(res.href, headers={"Authorization": f"Bearer {api.auth.token}"},
                        timeout=10)
    assert len(full.content) == int(full.headers["Content-Length"])


def test_token_expiry_refresh(emulator_factory, hda_client_factory, eocanvas_api_factory) -> None:
    emu = emulator_factory(faults=fast(token_expires_in=1))
    hda = hda_client_factory(emu)
    api = eocanvas_api_factory(emu)
    hda.search(query())
    api.get_jobs()
    time.sleep(2.1)  # both clients now consider their token expired and use refreshtoken
    hda.search(query())
    api.get_jobs()
    acc = emu.accounting()
    assert len(acc["tokens"]) == 2
    assert [r["status"] for r in acc["refreshes"]] == [200, 200]
    assert not acc["auth_failures"]


def test_token_revoked_before_expires_in(emulator_factory, hda_client_factory,
                                         eocanvas_api_factory) -> None:
    # the server stops honouring tokens after 1 s although it advertised expires_in=3600
    emu = emulator_factory(faults=fast(token_lifetime=1.0))
    hda = hda_client_factory(emu)
    hda.search(query())
    time.sleep(1.1)
    with pytest.raises(requests.HTTPError) as err:
        hda.search(query())
    assert err.value.response.status_code == 403
    assert err.value.response.json()["message"] == "Token expired"
    emu.set_faults(token_lifetime=None)
    assert len(hda.search(query())) > 0  # hda dropped its token on 403 and logged in again
    api = eocanvas_api_factory(emu)
    emu.set_faults(token_lifetime=1.0)
    api.auth.token.invalidate()
    api.get_jobs()
    time.sleep(1.1)
    with pytest.raises(requests.HTTPError):
        api.get_jobs()  # eocanvas keeps its token until its own clock says expired
    reasons = [f["reason"] for f in emu.accounting()["auth_failures"]]
    assert reasons == ["expired", "expired"]


def test_stuck_job(emulator_factory, hda_client_factory, eocanvas_api_factory) -> None:
    emu = emulator_factory(faults=fast(stuck_job_rate=1.0, job_duration=0.2))
    api = eocanvas_api_factory(emu)
    proc = snap_process(c2rcc_graph(lonlat_wkt(BOX)), {"img1": order_url(hda_client_factory(emu))})
    job = api.exec_process(proc)
    time.sleep(0.8)
    assert api.get_job(job.job_id).status == "running"
    assert wait_final(api, job.job_id, timeout=0.5) == "running"
    logs = [e.message for e in api.get_job_logs(job.job_id)]
    assert not any("Job finished" in m or "Job failed" in m for m in logs)
    with pytest.raises(requests.HTTPError):
        api.get_job_results(job.job_id)


def test_submission_5xx_after_create(emulator_factory, hda_client_factory,
                                     eocanvas_api_factory) -> None:
    emu = emulator_factory(faults=fast(submit_5xx_after_create_rate=1.0))
    api = eocanvas_api_factory(emu)
    proc = snap_process(c2rcc_graph(lonlat_wkt(BOX)), {"img1": order_url(hda_client_factory(emu))})
    with pytest.raises(requests.HTTPError) as err:
        api.exec_process(proc)
    assert err.value.response.status_code == 504
    # ... but the job exists and runs: a client must reconcile before resubmitting
    (job,) = api.get_jobs()
    (sub,) = emu.accounting()["submissions"]
    assert sub["accepted"] and sub["status"] == 504 and sub["job_id"] == job.job_id
    assert wait_final(api, job.job_id) == "successful"


def resample_after_c2rcc(graph: str, _wkt: str) -> str:
    """Rewire Read -> Subset -> c2rcc.msi -> Resample -> Write."""
    return (graph.replace('<sources><sourceProduct refid="Resample"/></sources>',
                          '<sources><sourceProduct refid="@S"/></sources>')
            .replace('<sources><sourceProduct refid="Subset"/></sources>',
                     '<sources><sourceProduct refid="c2rcc"/></sources>')
            .replace('<sources><sourceProduct refid="c2rcc"/></sources>\n    <parameters>'
                     '<file>', '<sources><sourceProduct refid="Resample"/></sources>\n'
                     '    <parameters><file>')
            .replace("@S", "Subset"))


@pytest.mark.parametrize(
    ("graph_change", "log_text"),
    [
        (lambda g, w: g.replace(w, "$polygon"), "Value for 'geoRegion' is invalid: '$polygon'"),
        (lambda g, w: g.replace(w, utm_wkt(BOX)), "No intersection with source product boundary"),
        (lambda g, w: g.replace("<netSet>", "<outputRtosa>true</outputRtosa><netSet>"),
         "Unknown element 'outputRtosa'"),
        (lambda g, w: g.replace('refid="Resample"', 'refid="Subset"'),
         "contains rasters of different sizes"),
        (resample_after_c2rcc, "contains rasters of different sizes"),
    ],
    ids=["unresolved-placeholder", "utm-georegion", "unknown-c2rcc-parameter", "no-resample",
         "resample-after-c2rcc"],
)
def test_graph_errors_fail_the_job_like_gpt(emulator_factory, hda_client_factory,
                                            eocanvas_api_factory, graph_change: Any,
                                            log_text: str) -> None:
    emu = emulator_factory(faults=fast())
    api = eocanvas_api_factory(emu)
    wkt = lonlat_wkt(BOX)
    graph = graph_change(c2rcc_graph(wkt), wkt)
    job = api.exec_process(snap_process(graph, {"img1": order_url(hda_client_factory(emu))}))
    assert job.status == "accepted"  # accepted by the API, failed by gpt
    assert wait_final(api, job.job_id) == "failed"
    messages = [e.message for e in api.get_job_logs(job.job_id)]
    assert any(log_text in m for m in messages), messages
    assert any("SNAP exit code: 1" in m for m in messages)


def test_job_faults_are_reproducible_with_seed() -> None:
    import base64
    import json
    from datetime import UTC, datetime

    from seasonal_c2rcc.emulator import catalogue as cat
    from seasonal_c2rcc.emulator.faults import Dice
    from seasonal_c2rcc.emulator.jobs import new_job, validate_execution

    did = "0123456789abcdef01234567"
    url = f"http://h/hda-broker/api/v1/dataaccess/download/{did}"
    body = {"inputs": {"snap_graph": base64.b64encode(c2rcc_graph(lonlat_wkt(BOX)).encode())
                       .decode(), "eo_input": json.dumps([{"img1": url}])}}
    sub = validate_execution("snap-function", body, {did})
    p = cat.products_for_tile("30UUA", datetime(2020, 6, 1, tzinfo=UTC),
                              datetime(2020, 6, 30, tzinfo=UTC))[0]
    faults = fast(job_failure_rate=0.5, stuck_job_rate=0.3)

    def outcomes(seed: int) -> list[tuple[str, str, bool]]:
        dice = Dice(seed)
        jobs = [new_job(sub, seq, seed, "u", 0.0, faults, dice, {"img1": p}, {"img1": url},
                        10**6) for seq in range(1, 21)]
        return [(j["job_id"], j["outcome"], j["stuck"]) for j in jobs]

    a, b, c = outcomes(5), outcomes(5), outcomes(6)
    assert a == b
    assert {o for _i, o, _s in a} == {"successful", "failed"} and any(s for *_x, s in a)
    assert [o for _i, o, _s in a] != [o for _i, o, _s in c]
