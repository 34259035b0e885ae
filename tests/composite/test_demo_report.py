"""The demo folder after the demo: a campaign of its own whose config still works (no dead
emulator port, no local directory) and whose report can be rebuilt."""

from __future__ import annotations

import yaml

from seasonal_c2rcc import cli
from seasonal_c2rcc.config import load_campaign


def test_demo_campaign__relative_paths_no_port_and_the_data_note(tmp_path, monkeypatch):
    demo_cfg, cfg = cli._demo_campaign(tmp_path)
    text = demo_cfg.read_text()
    saved = yaml.safe_load(text)
    assert saved == cfg
    assert "wekeo" not in saved  # the emulator's port dies with it: never kept
    assert saved["figures"]["data_source_note"] == "synthetic data from the WEkEO emulator"
    assert str(cli.ROOT) not in text and str(tmp_path) not in text
    assert not saved["subtiles"].startswith("/") and "graph" not in saved  # schema default
    monkeypatch.chdir(tmp_path)  # the grid and graph were copied in: the config loads from here
    campaign = load_campaign(saved)
    assert len(campaign.subtiles) == 2
    # a second run leaves the copies as they are
    mtime = (tmp_path / saved["subtiles"]).stat().st_mtime_ns
    cli._demo_campaign(tmp_path)
    assert (tmp_path / saved["subtiles"]).stat().st_mtime_ns == mtime


def test_demo_report__without_results_says_what_to_run(tmp_path, capsys):
    rc = cli.main(["demo", "--directory", str(tmp_path / "nothing"), "--report"])
    assert rc == 1
    err = capsys.readouterr().err
    assert "no demo results" in err and "run `seasonal-c2rcc demo` first" in err
