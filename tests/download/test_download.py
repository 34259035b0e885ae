"""The L1C product cache: real downloads through the official hda client against the emulator.

What a user checks: one verified zip lands under the final name; asking again spends nothing (the
emulator's accounting shows no second order and no second download); a broken or corrupt transfer
leaves nothing under the final name and says what failed; two processes asking at once make one
order; ``seasonal-c2rcc cache list`` / ``cache prune`` show and delete what they say.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from seasonal_c2rcc.cli import main as cli_main
from seasonal_c2rcc.config import validate_schema
from seasonal_c2rcc.download import (
    CacheEntry,
    DownloadSettings,
    ProductCache,
    download_product,
    find_catalogue_product,
    progress_line,
    prune_plan,
    verify_product_zip,
    with_product,
    zip_problems,
)
from seasonal_c2rcc.emulator.catalogue import products_for_tile
from seasonal_c2rcc.errors import ConfigError, DownloadError, ProductError

TILE = "30UUA"
FAST = DownloadSettings(sleep=lambda s: time.sleep(min(s, 0.05)), progress_every=0.0)


def emulator_product(index: int = 0) -> dict[str, Any]:
    """A catalogue product dict (as in results/catalog/...json) of the emulator's archive."""
    found = products_for_tile(
        TILE, datetime(2020, 6, 1, tzinfo=UTC), datetime(2020, 7, 1, tzinfo=UTC)
    )
    p = found[index]
    return {"key": p.id.removesuffix(".SAFE"), "id": p.id, "location": p.location, "size": p.size}


def make_config(emu: Any, tmp_path: Path) -> dict[str, Any]:
    return validate_schema(
        {
            "subtiles": "unused.json",
            "product_cache": str(tmp_path / "cache"),
            "wekeo": {"hda_url": emu.hda_url, "eocanvas_url": emu.eocanvas_url},
            "quota": {"ledger": str(tmp_path / "quota.sqlite")},
        }
    )


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Emulator credentials only (never the user's), run from a campaign folder."""
    monkeypatch.setenv("HDA_USER", "tester")
    monkeypatch.setenv("HDA_PASSWORD", "secret")
    monkeypatch.setenv("HDA_RC", str(tmp_path / "no-hdarc"))
    work = tmp_path / "campaign"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


def product_downloads(emu: Any) -> list[dict[str, Any]]:
    return [d for d in emu.accounting()["downloads"] if d["kind"] == "product"]


def leftovers(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.glob(".*.zip*"))


# --- the download itself ------------------------------------------------------------------------


def test_download_lands_one_verified_zip_and_a_second_call_spends_nothing(
    emulator: Any, env: Path, tmp_path: Path
) -> None:
    config = make_config(emulator, tmp_path)
    product = emulator_product()
    lines: list[str] = []

    path = download_product(product, config, report=lines.append, settings=FAST)

    assert path == tmp_path / "cache" / f"{product['key']}.zip"
    with zipfile.ZipFile(path) as zf:
        assert f"{product['id']}/MTD_MSIL1C.xml" in zf.namelist()
        assert zf.testzip() is None
    acc = emulator.accounting()
    assert acc["counters"]["orders_placed"] == 1
    (sent,) = product_downloads(emulator)
    assert sent["bytes_sent"] == sent["content_length"] == path.stat().st_size
    assert leftovers(path.parent) == []
    assert any("downloaded and verified" in line and "MB/s" in line for line in lines), lines
    polls = acc["counters"]["order_polls"]

    again = download_product(product, config, report=lines.append, settings=FAST)

    assert again == path
    acc = emulator.accounting()
    assert acc["counters"]["orders_placed"] == 1  # no second order
    assert acc["counters"]["order_polls"] == polls
    assert len(product_downloads(emulator)) == 1
    assert "in the cache" in lines[-1]


def test_the_order_goes_through_the_shared_quota_ledger(
    emulator: Any, env: Path, tmp_path: Path
) -> None:
    from seasonal_c2rcc.quota import QuotaLedger

    config = make_config(emulator, tmp_path)
    product = emulator_product(1)
    download_product(product, config, settings=FAST)
    with QuotaLedger(tmp_path / "quota.sqlite") as ledger:
        assert [k for k, _ in ledger.events("hda_order")] == [product["key"]]


def test_truncated_download_leaves_nothing_under_the_final_name(
    emulator: Any, env: Path, tmp_path: Path
) -> None:
    config = make_config(emulator, tmp_path)
    product = emulator_product()
    final = tmp_path / "cache" / f"{product['key']}.zip"
    emulator.set_faults(truncate_download_rate=1.0)

    with pytest.raises(DownloadError) as err:
        download_product(product, config, settings=FAST)

    msg = str(err.value)
    assert product["id"] in msg and "failed 2 times" in msg and "re-running" in msg
    assert not final.exists()
    assert leftovers(final.parent) == []
    sent = product_downloads(emulator)
    assert len(sent) == 2 and all(d["truncated"] for d in sent)  # fetched once more, no more
    assert emulator.accounting()["counters"]["orders_placed"] == 1

    # The service recovers: the next run re-uses the recorded order (no second one).
    emulator.set_faults(truncate_download_rate=0.0)
    assert download_product(product, config, settings=FAST) == final
    assert emulator.accounting()["counters"]["orders_placed"] == 1
    verify_product_zip(final, product["key"])


def test_corrupt_zip_is_fetched_once_more_then_fails_clearly(
    emulator: Any, env: Path, tmp_path: Path
) -> None:
    config = make_config(emulator, tmp_path)
    product = emulator_product()
    final = tmp_path / "cache" / f"{product['key']}.zip"
    emulator.set_faults(corrupt_download_rate=1.0)

    with pytest.raises(DownloadError, match="corrupt|not a readable zip") as err:
        download_product(product, config, settings=FAST)

    assert product["id"] in str(err.value)
    assert not final.exists() and leftovers(final.parent) == []
    sent = product_downloads(emulator)
    assert len(sent) == 2 and all(not d["truncated"] for d in sent)  # whole, but corrupt
    assert emulator.accounting()["counters"]["orders_placed"] == 1


def test_one_corrupt_transfer_then_a_good_one_lands_the_product(
    emulator: Any, env: Path, tmp_path: Path
) -> None:
    config = make_config(emulator, tmp_path)
    product = emulator_product()
    # Corrupt exactly the first transfer: the fault is switched off when the download reports
    # that attempt's failure.
    emulator.set_faults(corrupt_download_rate=1.0)

    def report(line: str) -> None:
        if "fetching it once more" in line:
            emulator.set_faults(corrupt_download_rate=0.0)

    path = download_product(product, config, report=report, settings=FAST)

    verify_product_zip(path, product["key"])
    assert len(product_downloads(emulator)) == 2
    assert emulator.accounting()["counters"]["orders_placed"] == 1


def test_a_product_the_reader_rejects_is_downloaded_again_once(
    emulator: Any, env: Path, tmp_path: Path
) -> None:
    config = make_config(emulator, tmp_path)
    product = emulator_product()
    calls: list[Path] = []

    def reader_fails_once(path: Path) -> str:
        calls.append(path)
        if len(calls) == 1:
            raise ProductError("B04 JP2 cannot be decoded", product=product["key"], part="B04")
        return "read"

    assert with_product(product, config, reader_fails_once, settings=FAST) == "read"
    assert len(calls) == 2 and calls[1].exists()
    assert len(product_downloads(emulator)) == 2

    def reader_always_fails(path: Path) -> str:
        raise ProductError("MTD_TL.xml is missing", product=product["key"], part="MTD_TL.xml")

    with pytest.raises(DownloadError, match="even after downloading it again") as err:
        with_product(product, config, reader_always_fails, settings=FAST)
    assert "MTD_TL.xml is missing" in str(err.value)
    assert not (tmp_path / "cache" / f"{product['key']}.zip").exists()
    # one download for the (cached) first use, then exactly one more before giving up
    assert len(product_downloads(emulator)) == 3


def test_a_damaged_cached_zip_is_replaced(emulator: Any, env: Path, tmp_path: Path) -> None:
    config = make_config(emulator, tmp_path)
    product = emulator_product()
    final = tmp_path / "cache" / f"{product['key']}.zip"
    final.parent.mkdir(parents=True)
    final.write_bytes(b"PK\x03\x04 not really a zip")

    path = download_product(product, config, settings=FAST)

    verify_product_zip(path, product["key"])
    assert emulator.accounting()["counters"]["orders_placed"] == 1


_WORKER = """
import json, sys
from seasonal_c2rcc.download import download_product
config = json.loads(open(sys.argv[1]).read())
product = json.loads(sys.argv[2])
print(download_product(product, config))
"""


def test_two_processes_downloading_one_product_make_one_order(
    emulator_factory: Any, env: Path, tmp_path: Path
) -> None:
    from seasonal_c2rcc.emulator import FaultConfig

    # Slow readiness keeps the first process inside its lock while the second arrives.
    emu = emulator_factory(faults=FaultConfig(order_ready_polls=2))
    config = make_config(emu, tmp_path)
    cfg_file = tmp_path / "config.json"
    cfg_file.write_text(json.dumps(config))
    product = emulator_product(2)
    cmd = [sys.executable, "-c", _WORKER, str(cfg_file), json.dumps(product)]
    procs = [
        subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=120) for p in procs]

    assert [p.returncode for p in procs] == [0, 0], outs
    paths = {out.strip().splitlines()[-1] for out, _ in outs}
    assert paths == {str(tmp_path / "cache" / f"{product['key']}.zip")}
    assert emu.accounting()["counters"]["orders_placed"] == 1
    assert len(product_downloads(emu)) == 1


def test_a_catalogue_entry_without_location_fails_before_any_order(
    emulator: Any, env: Path, tmp_path: Path
) -> None:
    config = make_config(emulator, tmp_path)
    product = emulator_product()
    del product["location"]
    with pytest.raises(ConfigError, match="no location"):
        download_product(product, config, settings=FAST)
    assert emulator.accounting()["counters"]["orders_placed"] == 0


# --- the catalogue lookup of rule download_product ----------------------------------------------


def write_catalogue(catalog: Path, year: int, season: str, products: list[dict[str, Any]]) -> Path:
    path = catalog / TILE / str(year) / f"{season}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    entries = {p["key"]: {k: v for k, v in p.items() if k != "key"} for p in products}
    doc = {
        "schema": 1, "tile": TILE, "year": year, "season": season, "products": entries,
        "subtiles": {"a": [p["key"] for p in products]},
    }  # fmt: skip
    path.write_text(json.dumps(doc))
    return path


def test_find_catalogue_product(tmp_path: Path) -> None:
    product = emulator_product()
    write_catalogue(tmp_path / "catalog", 2020, "summer", [product])
    assert find_catalogue_product(product["key"], tmp_path / "catalog") == product
    other = emulator_product(1)
    with pytest.raises(ConfigError, match="in none of the 1 catalogue selection"):
        find_catalogue_product(other["key"], tmp_path / "catalog")


# --- list and prune -------------------------------------------------------------------------------


def test_cache_list_and_prune(
    emulator: Any, env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = make_config(emulator, tmp_path)
    used, unused = emulator_product(0), emulator_product(1)
    write_catalogue(env / "results" / "catalog", 2020, "summer", [used])
    for p in (used, unused):
        download_product(p, config, settings=FAST)
    cache = tmp_path / "cache"
    # an old, unused product and a leftover of a killed download
    old = time.time() - 40 * 86400
    os.utime(cache / f"{unused['key']}.zip", (old, old))
    (cache / f".{unused['key']}.zip.99999.tmp.zip.part").write_bytes(b"x" * 10)

    assert cli_main(["cache", "list", "--cache", str(cache)]) == 0
    out = capsys.readouterr().out
    assert "2 product(s)" in out
    line_used = next(ln for ln in out.splitlines() if ln.startswith(used["key"]))
    line_unused = next(ln for ln in out.splitlines() if ln.startswith(unused["key"]))
    assert str(env) in line_used  # the campaign whose frozen catalogue uses it
    assert "(no known campaign)" in line_unused and " 40.0 " in line_unused
    assert "1 leftover temporary file" in out

    assert cli_main(["cache", "prune", "--cache", str(cache), "--unused", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"would delete {cache / (unused['key'] + '.zip')}" in out
    assert used["key"] + ".zip" not in out
    assert (cache / f"{unused['key']}.zip").exists()  # dry run: nothing deleted

    assert cli_main(["cache", "prune", "--cache", str(cache), "--older-than", "50"]) == 0
    assert (cache / f"{unused['key']}.zip").exists()  # 40 days is not older than 50
    out = capsys.readouterr().out
    assert "delete leftover" in out and "deleted 1 file(s)" in out  # leftovers always go
    assert leftovers(cache) == []

    assert (
        cli_main(["cache", "prune", "--cache", str(cache), "--unused", "--older-than", "30"]) == 0
    )
    out = capsys.readouterr().out
    assert not (cache / f"{unused['key']}.zip").exists()
    assert (cache / f"{used['key']}.zip").exists()
    assert f"delete {cache / (unused['key'] + '.zip')}" in out and "deleted 1 file(s)" in out, out

    assert cli_main(["cache", "prune", "--cache", str(cache)]) == 2  # says what to give
    assert "--older-than" in capsys.readouterr().err


# --- pure decisions -----------------------------------------------------------------------------


def test_zip_problems() -> None:
    key = "S2B_MSIL1C_20200609T112152_N0209_R110_T30UUA_20200609T133453"
    good = [f"{key}.SAFE/MTD_MSIL1C.xml", f"{key}.SAFE/GRANULE/x/MTD_TL.xml"]
    assert zip_problems(good, key) == []
    assert zip_problems([], key) == ["the zip is empty"]
    assert zip_problems([f"{key}.SAFE/GRANULE/x/MTD_TL.xml"], key) == [
        f"{key}.SAFE/MTD_MSIL1C.xml is missing"
    ]
    assert "single top folder" in zip_problems([*good, "other.SAFE/MTD_MSIL1C.xml"], key)[0]


def test_prune_plan_and_progress_line() -> None:
    now = 100 * 86400.0
    e = [
        CacheEntry("old_used", Path("a"), 1, now - 40 * 86400, ("/c",)),
        CacheEntry("old_unused", Path("b"), 1, now - 40 * 86400, ()),
        CacheEntry("new_unused", Path("c"), 1, now - 1 * 86400, ()),
    ]
    keys = lambda es: [x.key for x in es]  # noqa: E731
    assert keys(prune_plan(e, now=now, older_than_days=30, unused=False)) == [
        "old_used",
        "old_unused",
    ]
    assert keys(prune_plan(e, now=now, older_than_days=None, unused=True)) == [
        "old_unused",
        "new_unused",
    ]
    assert keys(prune_plan(e, now=now, older_than_days=30, unused=True)) == ["old_unused"]
    with pytest.raises(ConfigError, match="--older-than"):
        prune_plan(e, now=now, older_than_days=None, unused=False)
    assert (
        progress_line("P", 120_000_000, 600_000_000, 3.0)
        == "P: 120.0 of 600.0 MB (20 %), 40.0 MB/s"
    )


def test_product_cache_names(tmp_path: Path) -> None:
    from seasonal_c2rcc.paths import cached_product

    cache = ProductCache.from_config({"product_cache": str(tmp_path)})
    assert str(cache.zip_path("K")) == cached_product({"product_cache": str(tmp_path)}, "K")
    assert cache.products() == []


def test_an_order_post_is_sent_once_even_when_it_fails(
    emulator: Any, env: Path, tmp_path: Path, hda_client_factory: Any
) -> None:
    # (hda_client_factory caps hda's own sleeps between attempts)
    from seasonal_c2rcc.errors import TransientBackendError

    config = make_config(emulator, tmp_path)
    emulator.set_faults(http_5xx_rate=1.0)
    with pytest.raises(TransientBackendError, match="order of"):
        download_product(emulator_product(), config, settings=FAST)
    posts = [
        f for f in emulator.accounting()["faults_injected"]
        if f["path"].endswith("/dataaccess/download")
    ]  # fmt: skip
    assert len(posts) == 1  # a 5xx to an order POST is not retried behind the ledger's back
    assert not (tmp_path / "cache" / f"{emulator_product()['key']}.zip").exists()


def test_a_killed_download_is_resumed_on_its_recorded_order_and_its_leftovers_removed(
    emulator: Any, env: Path, tmp_path: Path
) -> None:
    config = make_config(emulator, tmp_path)
    product = emulator_product()
    cache = ProductCache.from_config(config)
    # What a SIGKILL during the transfer leaves: the order record and a partial temporary.
    download_product(product, config, settings=FAST)
    cache.zip_path(product["key"]).unlink()
    partial = cache.root / f".{product['key']}.zip.4242.tmp.zip.part"
    partial.write_bytes(b"PK\x03\x04 half a product")
    orders = emulator.accounting()["counters"]["orders_placed"]

    path = download_product(product, config, settings=FAST)

    verify_product_zip(path, product["key"])
    assert not partial.exists() and leftovers(cache.root) == []
    assert emulator.accounting()["counters"]["orders_placed"] == orders  # the order is re-used


def test_a_recorded_order_the_broker_no_longer_knows_is_placed_again(
    emulator: Any, env: Path, tmp_path: Path
) -> None:
    config = make_config(emulator, tmp_path)
    product = emulator_product()
    cache = ProductCache.from_config(config)
    record = cache.order_path(product["key"])
    record.parent.mkdir(parents=True)
    record.write_text(json.dumps({"download_id": "0" * 24, "ordered_at": "2020-01-01T00:00:00Z"}))
    lines: list[str] = []

    download_product(product, config, report=lines.append, settings=FAST)

    assert any("no longer valid" in line for line in lines), lines
    assert emulator.accounting()["counters"]["orders_placed"] == 1
    assert json.loads(record.read_text())["download_id"] != "0" * 24


def test_not_enough_disk_space_fails_before_the_order(
    emulator: Any, env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    from seasonal_c2rcc.download import space_problem

    config = make_config(emulator, tmp_path)
    product = emulator_product()  # the catalogue says 600-800 MB
    full = shutil.disk_usage(tmp_path)._replace(free=200_000_000)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: full)
    with pytest.raises(DownloadError, match="not enough disk space") as err:
        download_product(product, config, settings=FAST)
    assert "cache prune" in str(err.value) and product["key"] in str(err.value)
    assert emulator.accounting()["counters"]["orders_placed"] == 0
    assert space_problem("K", "ND", 0) is None  # unknown size: never refused
    assert space_problem("K", 10, 2_000_000_000) is None
