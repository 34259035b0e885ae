"""Rule download_product in real Snakemake runs: one job per product, a shared cache between
campaigns spends nothing twice, and the hda_downloads limit cannot silently disappear."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from typing import Any

import pytest

# the workflow harness of tests/pipeline (tests/ is not a package)
_spec = importlib.util.spec_from_file_location(
    "pipeline_harness", Path(__file__).resolve().parents[1] / "pipeline" / "harness.py"
)
assert _spec is not None and _spec.loader is not None
harness = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(harness)
run, write_config = harness.run, harness.write_config

pytestmark = pytest.mark.slow


def native_config(work: Path, emu: Any, cache: Path, nets: Path) -> Path:
    return write_config(
        work, emu.url, backend="native", product_cache=str(cache), native={"nets": str(nets)}
    )


CATALOGUES = ("results/catalog/30UUA/2019/summer.json", "results/catalog/30UUA/2019/winter.json")


def downloads(work: Path, cfg: Path) -> Any:
    """Search the catalogue, then run every download it calls for (nothing else)."""
    r = run(work, cfg, *CATALOGUES, "--cores", "2")
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
    return run(work, cfg, "--until", "download_product", "--cores", "2")


def used_products(work: Path) -> tuple[int, set[str]]:
    uses, unique = 0, set()
    for f in (work / "results/catalog").glob("*/*/*.json"):
        for keys in json.loads(f.read_text())["subtiles"].values():
            uses += len(keys)
            unique.update(keys)
    return uses, unique


def test_one_download_per_product_and_a_shared_cache_spends_nothing_twice(
    emulator: Any, nets_dir: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "shared-cache"  # outside both working directories
    first, second = tmp_path / "campaign1", tmp_path / "campaign2"
    cfg1 = native_config(first, emulator, cache, nets_dir)

    r = downloads(first, cfg1)
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
    uses, unique = used_products(first)
    assert uses > len(unique)  # several sub-tiles share products, yet:
    log = r.stdout + r.stderr
    assert len(re.findall(r"^\S*localrule download_product:$", log, re.M)) == len(unique)
    assert sorted(p.name for p in cache.glob("*.zip")) == sorted(f"{k}.zip" for k in unique)
    assert emulator.accounting()["counters"]["orders_placed"] == len(unique)
    for key in unique:
        assert "downloaded and verified" in (first / f"logs/download/{key}.log").read_text()

    # A second campaign on the same grid and cache: its own catalogue, no order, no download.
    cfg2 = native_config(second, emulator, cache, nets_dir)
    r = downloads(second, cfg2)
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
    assert used_products(second)[1] == unique
    assert not re.search(r"^\S*localrule download_product:$", r.stdout + r.stderr, re.M)
    assert emulator.accounting()["counters"]["orders_placed"] == len(unique)

    # Both campaigns are known users of the cache.
    from seasonal_c2rcc.download import ProductCache, list_cache

    entries = list_cache(ProductCache(cache))
    assert {e.key for e in entries} == unique
    assert all(set(e.used_by) == {str(first), str(second)} for e in entries)


def test_without_a_download_limit_the_workflow_refuses_to_start(
    emulator: Any, nets_dir: Path, tmp_path: Path
) -> None:
    cfg = native_config(tmp_path, emulator, tmp_path / "cache", nets_dir)
    r = run(tmp_path, cfg, "-n", "--resources", "eocanvas_jobs=1")
    assert r.returncode != 0
    assert "hda_downloads has no limit" in r.stdout + r.stderr
