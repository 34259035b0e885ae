"""`snakemake --report` where users stand: a campaign with 2 of its 8 seasons done.

Same harness as test_composite_workflow.py (the real composite and figure rules, pre-made frozen
catalogues and job results instead of the remote part). The campaign lives in its own folder with
workflow-relative paths, as a user's does; the report must build, hold what exists (the two
season maps and the live status), show the tile's colour ranges and the data-source note, and
contain no absolute local path.
"""

from __future__ import annotations

import shutil
import zipfile

import numpy as np
import pytest
import yaml
from c2rcc_testdata import VALID, product_name, write_product
from test_composite_workflow import ROOT, SNAKEFILE, _snakemake, write_remote_jobs

from seasonal_c2rcc.config import load_campaign
from seasonal_c2rcc.grid import subtile_raster_grid

NOTE = "synthetic data from the WEkEO emulator"
FIXED = {"conc_chl": [0.1, 30], "conc_tsm": [0.5, 50], "kd489": [0.05, 2], "rrs_rgb": [0, 0.02]}


def _done_season(root, campaign, season, month):
    results = {}
    for st in campaign.subtiles:
        grid = subtile_raster_grid(st, 60)
        yy, xx = np.mgrid[0 : grid.height, 0 : grid.width]
        base = 0.5 + 10 * (xx + yy) / (grid.width + grid.height)
        for i, day in enumerate([f"2019{month}05", f"2019{month}15"]):
            name = product_name(day, orbit=37 if i % 2 else 80)
            results[(st.id, name)] = write_product(
                root / f"results/jobs/30UUA/2019/{season}/{st.id}_{name}.nc",
                base * (1 + 0.1 * i),
                np.full(base.shape, VALID, np.uint32),
                grid=grid,
            )
    write_remote_jobs(root, campaign, season, results)


@pytest.mark.slow
def test_report__partial_campaign_2_of_8_seasons(tmp_path):
    (tmp_path / "config/subtiles").mkdir(parents=True)
    (tmp_path / "graphs").mkdir()
    shutil.copy(ROOT / "config/subtiles/demo_30UUA.json", tmp_path / "config/subtiles/")
    shutil.copy(ROOT / "graphs/s2_c2rcc.xml", tmp_path / "graphs/")
    cfg = {
        "subtiles": "config/subtiles/demo_30UUA.json",
        "subtiles_crs": "EPSG:32630",
        "years": [2019, 2020],  # 2 years x 4 seasons (schema default) = 8 seasons
        "resolution": 60,
        "masking": {"min_valid_obs": 2},
        "packing": "per-subtile",
        # every range fixed: a season's maps are drawn as soon as that season is done
        "figures": {"ranges": FIXED, "basemap": None, "data_source_note": NOTE},
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    (tmp_path / "Snakefile").write_text(SNAKEFILE)
    import os

    cwd = os.getcwd()
    os.chdir(tmp_path)  # the grid path is relative to the campaign folder
    try:
        campaign = load_campaign(cfg)
    finally:
        os.chdir(cwd)
    _done_season(tmp_path, campaign, "spring", "04")
    _done_season(tmp_path, campaign, "summer", "07")
    maps = [
        "results/figures/30UUA/2019/spring_map.png",
        "results/figures/30UUA/2019/summer_map.png",
    ]
    r = _snakemake(tmp_path, *maps)
    assert r.returncode == 0, r.stderr[-4000:]
    # the live status needs no other job: run it once the two seasons are done
    r = _snakemake(tmp_path, "campaign_status")
    assert r.returncode == 0, r.stderr[-4000:]
    status = yaml.safe_load((tmp_path / "results/status/campaign_status.json").read_text())
    assert status["counts"]["done"] == 4 and status["counts"]["pending"] == 12  # 2 sub-tiles

    r = _snakemake(tmp_path, "--report", "report.zip")
    assert r.returncode == 0, r.stderr[-4000:]
    assert "marked for report but does not exist" not in r.stderr
    with zipfile.ZipFile(tmp_path / "report.zip") as z:
        names = z.namelist()
        pngs = sorted(n.rsplit("/", 1)[-1] for n in names if n.endswith(".png"))
        assert pngs == ["campaign_status.png", "spring_map.png", "summer_map.png"]
        texts = {n: z.read(n).decode("utf-8", "replace") for n in names if not n.endswith(".png")}
    html = "\n".join(texts.values())
    # the methods text and every figure caption name the synthetic data
    assert html.count(NOTE) >= 3
    # the season-map caption holds the tile's colour ranges as a table
    assert "configured (figures.ranges)" in html and "mg m-3" in html
    assert "Problems with" not in html  # docutils' message for a table it could not read
    # no absolute local path anywhere in the report
    for where, text in texts.items():
        for path in (str(tmp_path), str(ROOT)):
            assert path not in text, f"{path} in {where}"
