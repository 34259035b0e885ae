"""``seasonal-c2rcc remote-jobs``: list the remote jobs no record owns, adopt one, dismiss one."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import yaml

from seasonal_c2rcc import cli
from seasonal_c2rcc.emulator import FaultConfig

REPO = Path(__file__).resolve().parents[2]


def snap_process(url: str) -> object:
    """The project's graph over a 10 km box of 30UUA, on one ordered product."""
    from eocanvas.api import Config, ConfigOption, Input
    from eocanvas.processes import SnapProcess
    from eocanvas.snap.graph import Graph
    from pyproj import Transformer

    from seasonal_c2rcc.graph import fill_graph

    tr = Transformer.from_crs(32630, 4326, always_xy=True)
    ring = [tr.transform(x, y) for x, y in
            ((300000, 5540000), (310000, 5540000), (310000, 5550000), (300000, 5550000),
             (300000, 5540000))]  # fmt: skip
    wkt = "POLYGON ((" + ", ".join(f"{a:.8f} {b:.8f}" for a, b in ring) + "))"
    graph = fill_graph((REPO / "graphs" / "s2_c2rcc.xml").read_text(), wkt, 60)
    return SnapProcess(
        snap_graph=Graph.from_text(graph.encode()),
        eo_input=[Input(key="img1", url=url)],
        eo_config=[Config(key="img1", options=ConfigOption(uncompress=False, sub_path=""))],
    )


def test_remote_jobs_lists_adopts_and_dismisses(
    emulator_factory, hda_client_factory, eocanvas_api_factory, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    emu = emulator_factory(faults=FaultConfig(accept_delay=0.05, job_duration=30.0))
    monkeypatch.setenv("HDA_USER", "tester")
    monkeypatch.setenv("HDA_PASSWORD", "secret")
    results = tmp_path / "results"
    jobs_dir = results / "state" / "jobs"
    jobs_dir.mkdir(parents=True)
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump({
        "subtiles": "config/subtiles/30UUA_utm.json", "subtiles_crs": "EPSG:32630",
        "years": [2020],
        "wekeo": {"hda_url": emu.hda_url, "eocanvas_url": emu.eocanvas_url,
                  "eocanvas_token_url": emu.token_url},
    }))  # fmt: skip
    query = {"dataset_id": "EO:ESA:DAT:SENTINEL-2", "processingLevel": "S2MSI1C",
             "tileId": "30UUA", "startdate": "2020-06-01T00:00:00.000Z",
             "enddate": "2020-06-30T23:59:59.999Z"}  # fmt: skip
    url = hda_client_factory(emu).search(query)[0].get_download_urls()[0]
    api = eocanvas_api_factory(emu)
    process = snap_process(url)
    # K's submission lost its reply; O owns its job; one more job came from elsewhere earlier
    stray = api.exec_process(process).job_id
    time.sleep(1.1)
    intent = time.time() - 0.5
    owned = api.exec_process(process).job_id
    lost = api.exec_process(process).job_id
    (jobs_dir / "O.json").write_text(json.dumps({
        "key": "O", "state": "submitted", "remote_job_id": owned,
        "attempts": [{"remote_job_id": owned}], "products": ["P"],
    }))  # fmt: skip
    (jobs_dir / "K.json").write_text(json.dumps({
        "key": "K", "state": "submitting", "remote_job_id": None, "attempts": [],
        "intent_at": intent, "products": ["P"],
    }))  # fmt: skip
    argv = ["remote-jobs", "--configfile", str(cfg), "--results", str(results)]

    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "2 remote job(s) no job record owns" in out
    assert owned not in out
    (lost_line,) = [ln for ln in out.splitlines() if lost in ln]
    assert "fits the lost submission of K" in lost_line

    assert cli.main([*argv, "--dismiss", owned]) == 2  # a record's job is never dismissed
    assert cli.main([*argv, "--dismiss", stray]) == 0
    assert emu.accounting()["counters"]["jobs_dismissed"] == 1
    assert api.get_job(stray).status == "dismissed"

    assert cli.main([*argv, "--adopt", "K", lost]) == 0
    rec = json.loads((jobs_dir / "K.json").read_text())
    assert rec["state"] == "submitted" and rec["remote_job_id"] == lost
    capsys.readouterr()
    assert cli.main(argv) == 0
    assert lost not in capsys.readouterr().out
