"""The bill: exact from frozen catalogues, estimated before searching, completion under the quota."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from seasonal_c2rcc.bill import (
    GPT_RUN_S,
    NATIVE_PX_PER_CPU_S,
    READ_WHOLE_PRODUCT_CPU_S,
    bill_from_config,
    completion_time,
    compute_bill,
    estimated_scenes,
    render_bill,
    submission_times,
)
from seasonal_c2rcc.config import load_campaign, load_config_file
from seasonal_c2rcc.errors import ConfigError
from seasonal_c2rcc.packing import plan_jobs, staged_bytes
from seasonal_c2rcc.quota import QuotaLimits

REPO = Path(__file__).resolve().parents[2]
HOUR, MONTH = 3600.0, 30 * 86400.0
T0 = 1_780_000_000.0


@pytest.fixture(scope="module")
def campaign():
    return load_campaign(load_config_file(REPO / "config" / "config.yaml"), REPO)


@pytest.mark.parametrize("n", [1, 10, 11, 99, 100, 101, 250, 1760])
@pytest.mark.parametrize("limits", [QuotaLimits(), QuotaLimits(3, 7), QuotaLimits(10, None)])
def test_closed_form_completion_matches_a_greedy_schedule(n, limits):
    t = submission_times(n, limits)
    assert completion_time(n, 0, limits, 0.0) == pytest.approx(t[-1])
    # and the greedy schedule itself never exceeds a window
    from seasonal_c2rcc.quota import max_in_window

    assert max_in_window(t, limits.hour_window - 1e-9) <= limits.eocanvas_per_hour


def test_notebook_design_takes_eighteen_months_per_product_one(campaign):
    bill = compute_bill(campaign.config, list(campaign.subtiles), None, start=T0)
    ps, pp = bill.modes["per-subtile"], bill.modes["per-product"]
    assert not bill.exact and bill.catalogues_estimated == 32
    assert bill.searches == 32
    # ~5 scenes x 32 seasons; two S2A-only winters are estimated at 4
    assert 150 <= bill.products <= 160
    assert ps.jobs == 11 * bill.products
    assert pp.jobs == bill.products  # the 11 squares fit one 20 m job per product
    assert ps.bytes_staged == 11 * pp.bytes_staged
    assert ps.completion_s / MONTH == pytest.approx(17, abs=0.5)
    # 100 jobs in the first month window, the rest at 10 per hour in the second one
    assert pp.completion_s == pytest.approx(
        MONTH + ((bill.products - 101) // 10) * HOUR + 480, abs=1
    )
    text = render_bill(bill)
    assert "ESTIMATE (32 of 32" in text and "Assumptions of the estimate" in text
    assert "per-product (configured)" in text


def _freeze(cdir: Path, tile: str, year: int, season: str, cat: dict) -> None:
    p = cdir / tile / str(year) / f"{season}.json"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(cat))


def _cat(year: int, season: str, ids: list[str], n: int) -> dict:
    prods = {f"S2A_MSIL1C_{year}0601T11211{i}_N0500_R037_T30UUA_{season}": {"size": 600_000_000 + i}
             for i in range(n)}  # fmt: skip
    keys = list(prods)
    return {"schema": 1, "tile": "30UUA", "year": year, "season": season, "products": prods,
            "subtiles": {sid: keys[: 1 + int(sid) % n] for sid in ids}}  # fmt: skip


def test_frozen_catalogues_make_the_bill_exact(tmp_path, campaign):
    cfg = dict(campaign.config, years=[2020])
    subs = list(campaign.subtiles)
    ids = [s.id for s in subs]
    cats = {s.name: _cat(2020, s.name, ids, 3 + i) for i, s in enumerate(campaign.seasons)}
    for season, cat in cats.items():
        _freeze(tmp_path, "30UUA", 2020, season, cat)
    bill = compute_bill(cfg, subs, tmp_path, start=T0)
    assert bill.exact and bill.catalogues_exact == 4
    for mode, mb in bill.modes.items():
        plans = [plan_jobs(c, subs, mode=mode, resolution=20) for c in cats.values()]
        assert mb.jobs == sum(len(p) for p in plans)
        assert mb.bytes_staged == sum(staged_bytes(p, c) for p, c in zip(plans, cats.values(),
                                                                          strict=True))
    assert bill.hda_orders == 3 + 4 + 5 + 6
    text = render_bill(bill, "markdown")
    assert "EXACT" in text and "Assumptions" not in text
    assert "| per-subtile | " in text
    # One season missing -> the bill says it is partly an estimate.
    (tmp_path / "30UUA" / "2020" / "winter.json").unlink()
    partial = compute_bill(cfg, subs, tmp_path, start=T0)
    assert "ESTIMATE (1 of 4" in render_bill(partial)


def test_quota_settings_change_the_completion(campaign):
    cfg = dict(campaign.config, quota={"eocanvas_per_hour": 10, "eocanvas_per_month": 1000,
                                       "hda_orders_per_hour": 100, "time_scale": 1})
    bill = compute_bill(cfg, list(campaign.subtiles), None, start=T0)
    pp = bill.modes["per-product"]
    assert pp.completion_s == pytest.approx(((pp.jobs - 1) // 10) * HOUR + 480)


def test_revisit_estimate():
    # Summer 2016: S2A only, 92 days -> 9.2 passes x 1.5 orbits x 37 % clear
    assert estimated_scenes(date(2016, 6, 1), date(2016, 8, 31), 20) == pytest.approx(
        9.2 * 1.5 * 0.2**0.625
    )
    assert estimated_scenes(date(2020, 6, 1), date(2020, 8, 31), 100) == pytest.approx(27.6)
    assert estimated_scenes(date(2014, 6, 1), date(2014, 8, 31), 100) == 0


def test_bill_from_config_is_one_call():
    bill = bill_from_config(load_config_file(REPO / "config" / "config.yaml"), REPO, None)
    assert set(bill.modes) == {"per-subtile", "per-product", "multi-input"}
    assert bill.configured_mode == "per-product"


# -- local backends (native, gpt) ----------------------------------------------------------------


def test_local_backends_download_each_distinct_product_once(tmp_path, campaign):
    cfg = dict(campaign.config, years=[2020])
    subs = list(campaign.subtiles)
    ids = [s.id for s in subs]
    cats = {s.name: _cat(2020, s.name, ids, 3 + i) for i, s in enumerate(campaign.seasons)}
    # a product the search found but no sub-tile selected is never downloaded
    cats["summer"]["products"]["S2B_MSIL1C_20200615T112119_N0500_R037_T30UUA_unused"] = {
        "size": 999_000_000
    }
    for season, cat in cats.items():
        _freeze(tmp_path, "30UUA", 2020, season, cat)
    bill = compute_bill(cfg, subs, tmp_path, start=T0, base_dir=REPO)
    selected = {
        p: c["products"][p]["size"]
        for c in cats.values()
        for ps in c["subtiles"].values()
        for p in ps
    }
    assert len(selected) == 3 + 4 + 5 + 6  # many sub-tiles share a product: counted once
    for backend in ("native", "gpt"):
        lb = bill.local[backend]
        assert lb.downloads == len(selected) == bill.hda_orders
        assert lb.bytes_downloaded == sum(selected.values())
        # HDA allows 100 orders an hour
        assert lb.ordering_s / 3600 == pytest.approx(len(selected) / 100)
        # one processing run per product and planned job of the configured packing
        plans = [plan_jobs(c, subs, mode="per-product", resolution=20) for c in cats.values()]
        assert lb.runs == sum(len(j.products) for p in plans for j in p)
    text = render_bill(bill)
    assert "Local backends" in text and "ordering at 100/hour" in text
    native_row = next(ln for ln in text.splitlines() if ln.startswith("native"))
    assert f" {len(selected)} " in native_row


def test_ordering_time_follows_the_hda_order_limit(campaign):
    quota = dict(campaign.config["quota"], hda_orders_per_hour=50)
    slow = compute_bill(dict(campaign.config, quota=quota), list(campaign.subtiles), None,
                        start=T0, base_dir=REPO)  # fmt: skip
    fast = compute_bill(campaign.config, list(campaign.subtiles), None, start=T0, base_dir=REPO)
    assert slow.local["native"].downloads == fast.local["native"].downloads == fast.products
    assert fast.local["native"].ordering_s / 3600 == pytest.approx(fast.products / 100)
    assert slow.local["gpt"].ordering_s == pytest.approx(2 * fast.local["gpt"].ordering_s)
    # the EOCanvas bill of the same campaign is unchanged by the local section
    assert fast.modes["per-product"].jobs == fast.products


def test_cpu_estimates_follow_the_measured_rates_and_the_settings(campaign):
    subs = list(campaign.subtiles)
    std = compute_bill(campaign.config, subs, None, start=T0, net_set="C2RCC-Nets")
    cx = compute_bill(campaign.config, subs, None, start=T0, net_set="C2X-COMPLEX-Nets")
    n = std.local["native"]
    # C2RCC time is pixels / rate; reading is the same whatever the nets
    assert n.cpu_s - n.read_cpu_s == pytest.approx(n.pixels / NATIVE_PX_PER_CPU_S["C2RCC-Nets"])
    assert cx.local["native"].read_cpu_s == pytest.approx(n.read_cpu_s)
    assert cx.local["native"].cpu_s > n.cpu_s
    # a per-product job reads a window of the product: less than a whole product each
    assert 0 < n.read_cpu_s < n.runs * READ_WHOLE_PRODUCT_CPU_S
    # gpt: a fixed time per run on gpt.threads cores
    g2 = std.local["gpt"]
    assert g2.cpu_s == pytest.approx(g2.runs * GPT_RUN_S * campaign.config["gpt"]["threads"])
    four = dict(campaign.config, gpt=dict(campaign.config["gpt"], threads=4))
    g4 = compute_bill(four, subs, None, start=T0, net_set="C2RCC-Nets").local["gpt"]
    assert g4.cpu_s == pytest.approx(g2.cpu_s * 4 / campaign.config["gpt"]["threads"])


def test_the_configured_graph_sets_the_native_rate_and_the_backend_is_marked():
    cfg = load_config_file(REPO / "config" / "config.yaml")
    bill = bill_from_config(dict(cfg, backend="native"), REPO, None)
    assert bill.net_set == "C2X-COMPLEX-Nets"  # graphs/s2_c2rcc.xml, the first user's choice
    text = render_bill(bill, "markdown")
    assert "| native (configured) |" in text and "| gpt |" in text
    assert "110 k px per CPU-second (C2X-COMPLEX-Nets" in text
    campaign = load_campaign(cfg, REPO)
    with pytest.raises(ConfigError, match="netSet 'C3-Nets'"):
        compute_bill(campaign.config, list(campaign.subtiles), None, net_set="C3-Nets")


def test_local_runs_follow_the_packing_a_local_job_can_use(campaign):
    subs = list(campaign.subtiles)
    per_subtile = compute_bill(dict(campaign.config, packing="per-subtile"), subs, None, start=T0)
    multi = compute_bill(dict(campaign.config, packing="multi-input"), subs, None, start=T0)
    # per-subtile: one run per product and sub-tile, as its EOCanvas jobs
    assert per_subtile.local["native"].runs == per_subtile.modes["per-subtile"].jobs
    # multi-input packs products into one EOCanvas job; locally each product is its own run
    assert multi.local["gpt"].runs == multi.modes["per-product"].jobs == multi.products
