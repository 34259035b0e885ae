"""429s: the reset time is read from the service's reply, for EOCanvas and for HDA."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

import pytest

from seasonal_c2rcc import wekeo
from seasonal_c2rcc.emulator import FaultConfig
from seasonal_c2rcc.errors import QuotaError


def test_reset_from_headers() -> None:
    assert wekeo._reset(SimpleNamespace(headers={"X-Quota-Reset": "1800000009500"})) == 1800000009.5
    now = time.time()
    after = wekeo._reset(SimpleNamespace(headers={"Retry-After": "9"}))
    assert after is not None and now + 9 <= after <= time.time() + 9
    dated = wekeo._reset(SimpleNamespace(headers={"Retry-After": "Wed, 21 Oct 2026 07:28:00 GMT"}))
    assert dated == datetime.fromisoformat("2026-10-21T07:28:00+00:00").timestamp()
    assert wekeo._reset(SimpleNamespace(headers={})) is None


def test_hda_quota_reset_parses_the_clients_own_message() -> None:
    from hda.utils import build_quota_hit_message

    reply = SimpleNamespace(headers={"X-Quota-Limit": "100", "X-Quota-Remaining": "0",
                                     "X-Quota-Reset": "1800000009123"})  # fmt: skip
    assert wekeo.hda_quota_reset(build_quota_hit_message(reply)) == pytest.approx(1800000009.123)
    assert wekeo.hda_quota_reset("Max quota reached. Please wait.") is None


def test_hda_order_429_carries_the_services_reset(emulator_factory, hda_client_factory) -> None:
    emu = emulator_factory(faults=FaultConfig(hda_orders_per_hour=1, time_scale=360.0))
    client = hda_client_factory(emu)
    query = {"dataset_id": "EO:ESA:DAT:SENTINEL-2", "processingLevel": "S2MSI1C",
             "tileId": "30UUA", "startdate": "2020-06-01T00:00:00.000Z",
             "enddate": "2020-06-30T23:59:59.999Z"}  # fmt: skip
    a, b = wekeo.search(client, query)[:2]
    wekeo.order(client, "EO:ESA:DAT:SENTINEL-2", a["id"], a["properties"]["location"])
    with pytest.raises(QuotaError) as err:
        wekeo.order(client, "EO:ESA:DAT:SENTINEL-2", b["id"], b["properties"]["location"])
    (denial,) = emu.accounting()["quota_denials"]
    assert err.value.resume_at == pytest.approx(denial["reset"], abs=0.001)


def test_eocanvas_429_carries_the_services_reset(emulator_factory, hda_client_factory) -> None:
    """The eocanvas client raises QuotaExceededError with the message only; the reply's
    X-Quota-Reset still reaches the QuotaError."""
    from eocanvas.api import Config, ConfigOption, Input
    from eocanvas.processes import SnapProcess
    from eocanvas.snap.graph import Graph

    from seasonal_c2rcc.graph import fill_graph

    emu = emulator_factory(faults=FaultConfig(eocanvas_jobs_per_hour=1, time_scale=360.0))
    creds = wekeo.Credentials("tester", "secret")
    endpoints = wekeo.Endpoints(emu.hda_url, emu.eocanvas_url, emu.token_url)
    canvas = wekeo.EOCanvas(endpoints, creds, timeout=20)
    client = hda_client_factory(emu)
    query = {"dataset_id": "EO:ESA:DAT:SENTINEL-2", "processingLevel": "S2MSI1C",
             "tileId": "30UUA", "startdate": "2020-06-01T00:00:00.000Z",
             "enddate": "2020-06-30T23:59:59.999Z"}  # fmt: skip
    p = wekeo.search(client, query)[0]
    did = wekeo.order(client, "EO:ESA:DAT:SENTINEL-2", p["id"], p["properties"]["location"])
    graph = fill_graph(
        (Path(__file__).resolve().parents[2] / "graphs" / "s2_c2rcc.xml").read_text(),
        "POLYGON ((-5.8 49.9, -5.7 49.9, -5.7 50.0, -5.8 50.0, -5.8 49.9))",
        60,
    )
    process = SnapProcess(
        snap_graph=Graph.from_text(graph.encode()),
        eo_input=[Input(key="img1", url=wekeo.download_url(client, did))],
        eo_config=[Config(key="img1", options=ConfigOption(uncompress=False, sub_path=""))],
    )
    canvas.submit(process)
    with pytest.raises(QuotaError) as err:
        canvas.submit(process)
    (denial,) = [d for d in emu.accounting()["quota_denials"] if d["service"] == "eocanvas"]
    assert err.value.resume_at == pytest.approx(denial["reset"], abs=0.001)
