"""The L1C product cache: each selected product is ordered and downloaded once, verified, and kept.

A product (a catalogue product dict with ``key``/``id`` and ``location``) lands as
``<product_cache>/<key>.zip`` (:func:`seasonal_c2rcc.paths.cached_product`) and nowhere else:

1. Under an exclusive lock on the product (``.locks/<key>.lock``, ``fcntl.flock``): two Snakemake
   jobs, two workflows sharing the cache or two threads never download one product at once; the
   second waits and then finds the file.
2. A cached zip is a hit: no order, no request at all.
3. Otherwise one HDA order (``POST dataaccess/download``) through the shared quota ledger
   (service ``hda_order``, the ledger EOCanvas jobs use: 100 orders an hour per account). Its
   download id is kept in ``.orders/<key>.json`` so a run killed during a long download re-uses the
   order instead of placing another; a stale id (the server forgot it) is ordered again.
4. The readiness of the order is probed (HEAD, 202 -> 200) with back-off and a deadline.
5. The body is streamed by the official ``hda`` client's session to a temporary name in the cache
   folder, its size checked against ``Content-Length``, flushed to disk, opened as a zip and checked
   (one ``<key>.SAFE/`` folder, its ``MTD_MSIL1C.xml``, every member's CRC), and only then renamed to
   the final name. A crash at any point leaves no file under the final name; stale temporaries are
   removed by the next download of that product (and by ``seasonal-c2rcc cache prune``).
6. A transfer that breaks, comes up short or is corrupt is fetched once more (a GET, the order is
   not repeated) before :class:`DownloadError` says what failed.

A product that later proves corrupt to the reader goes through :func:`with_product`, which deletes
it, downloads it once more and tries again before giving up. Pure decisions (names, checks of zip
listings, prune plans, progress lines) are separate from the I/O so they are testable alone.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import shutil
import time
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from . import errors
from .atomic import atomic_path, read_json, write_json_atomic
from .errors import ConfigError, DownloadError, ProductError
from .paths import CATALOGUE_DIR, product_cache_dir

log = logging.getLogger("seasonal_c2rcc.download")

T = TypeVar("T")

#: How many times one call fetches the body of an order (the first try and one more) before failing.
FETCH_ATTEMPTS = 2
#: Give up waiting for an order to become ready after this long (s).
ORDER_READY_TIMEOUT_S = 1800.0
#: Longest sleep between two readiness probes of an order (s).
ORDER_POLL_MAX_S = 30.0
#: A progress line at most this often (s) during a transfer.
PROGRESS_EVERY_S = 10.0

_LOCKS = ".locks"
_ORDERS = ".orders"
_REGISTRY = ".campaigns.json"
_MB = 1e6

#: What shows that a cached product is damaged: the reader's :class:`ProductError`, a failed check
#: of ours, or an unreadable zip.
_CORRUPT: tuple[type[BaseException], ...] = (ProductError, DownloadError, zipfile.BadZipFile)


def _redownload_may_fix(exc: BaseException) -> bool:
    return bool(getattr(exc, "redownload_may_fix", True))


# --- names and pure decisions ---------------------------------------------------------------


def product_key(product: Mapping[str, Any]) -> str:
    """The product's cache key: its id without ``.SAFE`` (what ``{product}`` wildcards hold)."""
    key = product.get("key") or str(product.get("id", "")).removesuffix(".SAFE")
    if not key:
        raise ConfigError(f"catalogue product without an id: {dict(product)!r}")
    return str(key)


def check_product(product: Mapping[str, Any]) -> tuple[str, str, str]:
    """``(key, id, location)`` of a catalogue product dict, or :class:`ConfigError` naming what is
    missing (checked before any order)."""
    key = product_key(product)
    missing = [k for k in ("id", "location") if not product.get(k)]
    if missing:
        raise ConfigError(
            f"product {key}: the catalogue entry has no {' or '.join(missing)}; refresh the "
            "catalogue (`snakemake --forcerun catalogue --config refresh_catalogue=true`)"
        )
    return key, str(product["id"]), str(product["location"])


def zip_problems(names: Iterable[str], key: str) -> list[str]:
    """What is wrong with a product zip's member list (empty: the layout is right).

    A Sentinel-2 L1C zip holds one folder ``<key>.SAFE/`` with ``MTD_MSIL1C.xml`` at its top.
    """
    names = list(names)
    if not names:
        return ["the zip is empty"]
    safe = f"{key}.SAFE"
    roots = sorted({n.split("/", 1)[0] for n in names})
    problems = []
    if roots != [safe]:
        shown = ", ".join(roots[:3]) + (" ..." if len(roots) > 3 else "")
        problems.append(f"expected the single top folder {safe}/, found {shown}")
    if f"{safe}/MTD_MSIL1C.xml" not in names:
        problems.append(f"{safe}/MTD_MSIL1C.xml is missing")
    return problems


def _mb(n: int) -> str:
    """Bytes as MB, with enough digits for small files (test products are under 1 MB)."""
    return f"{n / _MB:.1f}" if n >= 10 * _MB else f"{n / _MB:.3g}"


#: Room kept free beyond the product itself (the temporary and the final name never coexist,
#: but other jobs write too).
SPACE_MARGIN_BYTES = 1_000_000_000
_SPACE_HINT = (
    "free space (`seasonal-c2rcc cache prune --unused --dry-run` shows what can go) or point "
    "product_cache at a larger file system, then re-run"
)


def space_problem(key: str, size: Any, free: int) -> str | None:
    """Why ``free`` bytes cannot hold product ``key`` of catalogue ``size`` (bytes; "ND" or
    missing: unknown, never a refusal) plus :data:`SPACE_MARGIN_BYTES`; None when it fits."""
    try:
        need = int(size)
    except (TypeError, ValueError):
        return None
    if free >= need + SPACE_MARGIN_BYTES:
        return None
    return (
        f"product {key}: not enough disk space to download it ({need / 1e9:.2f} GB plus a "
        f"{SPACE_MARGIN_BYTES / 1e9:.0f} GB margin needed, {free / 1e9:.2f} GB free)"
    )


def progress_line(key: str, got: int, total: int | None, seconds: float) -> str:
    """``<key>: 120.0 of 667.0 MB (18 %), 40.1 MB/s`` (``total`` unknown: no share)."""
    rate = got / _MB / seconds if seconds > 0 else 0.0
    if total:
        return (
            f"{key}: {got / _MB:.1f} of {total / _MB:.1f} MB ({100 * got / total:.0f} %), "
            f"{rate:.1f} MB/s"
        )
    return f"{key}: {got / _MB:.1f} MB, {rate:.1f} MB/s"


def catalogue_product_keys(doc: Mapping[str, Any]) -> set[str]:
    """The product keys a frozen selection document uses (those chosen for some sub-tile)."""
    return {k for keys in doc.get("subtiles", {}).values() for k in keys}


def key_tile(key: str) -> str:
    """The MGRS tile a product key names (``..._T30UUA_...`` -> ``30UUA``)."""
    from .catalogue import PRODUCT_RE

    m = PRODUCT_RE.match(key)
    if not m:
        raise ConfigError(f"{key!r} is not a Sentinel-2 L1C product id")
    return m["tile"]


# --- the cache folder -----------------------------------------------------------------------


@dataclass(frozen=True)
class ProductCache:
    """The product cache folder and the names of everything in it."""

    root: Path

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> ProductCache:
        """The cache of the validated config (key ``product_cache``)."""
        return cls(Path(product_cache_dir(config)))

    def zip_path(self, key: str) -> Path:
        """Where the verified product lives (:func:`seasonal_c2rcc.paths.cached_product`)."""
        return self.root / f"{key}.zip"

    def order_path(self, key: str) -> Path:
        """The durable record of the product's HDA order (download id, time)."""
        return self.root / _ORDERS / f"{key}.json"

    def lock_path(self, key: str) -> Path:
        """The product's lock file (never deleted: deleting a lock file others wait on breaks it)."""
        return self.root / _LOCKS / f"{key}.lock"

    def temporaries(self, key: str) -> list[Path]:
        """Temporary files of ``key``'s downloads (``atomic_path`` names, plus ``.part``)."""
        return sorted(self.root.glob(f".{key}.zip.*"))

    def products(self) -> list[Path]:
        """Every cached product zip."""
        return sorted(p for p in self.root.glob("*.zip") if not p.name.startswith("."))

    @contextmanager
    def locked(
        self, key: str, *, wait: bool = True, report: Callable[[str], None] | None = None
    ) -> Iterator[bool]:
        """Hold the product's exclusive lock. With ``wait=False`` yields False at once when another
        process holds it (nothing is done then), else True."""
        path = self.lock_path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if not wait:
                    yield False
                    return
                if report:
                    report(f"{key}: another process is downloading or pruning it; waiting")
                fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield True
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)


# --- checks ---------------------------------------------------------------------------------


def verify_product_zip(path: Path, key: str) -> int:
    """Check a product zip: readable central directory, the SAFE layout, every member's CRC.

    Returns the number of members; raises :class:`DownloadError` naming the product, the file and
    the first bad part.
    """
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
            problems = zip_problems(names, key)
            if problems:
                raise DownloadError(
                    f"product {key}: {path} is not its L1C zip: {'; '.join(problems)}"
                )
            bad = zf.testzip()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, OSError, EOFError) as exc:
        raise DownloadError(f"product {key}: {path} is not a readable zip ({exc})") from exc
    if bad is not None:
        raise DownloadError(f"product {key}: {path} is corrupt (CRC check fails in {bad})")
    return len(names)


def _quick_check(path: Path, key: str) -> str | None:
    """Cheap check of a cache hit (the central directory only); the problem, or None."""
    try:
        with zipfile.ZipFile(path) as zf:
            problems = zip_problems(zf.namelist(), key)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        return f"unreadable zip ({exc})"
    return "; ".join(problems) or None


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    try:
        _fsync(path)
    except OSError:  # some file systems cannot fsync a folder; the rename is still atomic
        pass


# --- downloading ----------------------------------------------------------------------------


@dataclass
class DownloadSettings:
    """Waits and clocks of a download (injectable for tests)."""

    order_ready_timeout: float = ORDER_READY_TIMEOUT_S
    order_poll_max: float = ORDER_POLL_MAX_S
    progress_every: float = PROGRESS_EVERY_S
    attempts: int = FETCH_ATTEMPTS
    clock: Callable[[], float] = field(default=time.time)
    sleep: Callable[[float], None] = field(default=time.sleep)


def fetch_product(
    product: Mapping[str, Any],
    *,
    cache: ProductCache,
    hda: Any,
    ledger: Any,
    dataset_id: str,
    settings: DownloadSettings | None = None,
    report: Callable[[str], None] | None = None,
    hda_orders: Any = None,
) -> Path:
    """Bring one product into ``cache`` (or find it there) and return its verified zip.

    ``hda`` is an ``hda.Client`` (:func:`seasonal_c2rcc.wekeo.hda_client`) for the readiness probes
    and the download, ``hda_orders`` the client that places the order (default ``hda``; in
    production :func:`seasonal_c2rcc.wekeo.hda_order_client`, which sends the POST once: a retried
    POST would bypass the ledger), ``ledger`` the shared
    :class:`~seasonal_c2rcc.quota.QuotaLedger`. Raises :class:`DownloadError` (transfer failed or
    corrupt twice; nothing is left under the final name), :class:`~seasonal_c2rcc.errors.QuotaError`
    / :class:`~seasonal_c2rcc.errors.TransientBackendError` from the order, and
    :class:`ConfigError` for a catalogue entry without id or location.
    """
    key, pid, location = check_product(product)
    s = settings or DownloadSettings()
    say = report or log.info
    final = cache.zip_path(key)
    cache.root.mkdir(parents=True, exist_ok=True)
    with cache.locked(key, report=say):
        if final.exists():
            problem = _quick_check(final, key)
            if problem is None:
                say(f"{key}: in the cache ({final}), nothing to download")
                return final
            say(f"{key}: cached zip is damaged ({problem}); removing it and downloading again")
            final.unlink()
        for stale in cache.temporaries(key):
            # we hold the product's lock: these are left by a killed download
            stale.unlink(missing_ok=True)
        problem = space_problem(key, product.get("size"), shutil.disk_usage(cache.root).free)
        if problem:
            raise DownloadError(f"{problem} in {cache.root}; {_SPACE_HINT}")
        return _download_locked(
            key, pid, location, cache=cache, hda=hda, ledger=ledger, dataset_id=dataset_id,
            settings=s, say=say, hda_orders=hda if hda_orders is None else hda_orders,
        )  # fmt: skip


def _download_locked(
    key: str,
    pid: str,
    location: str,
    *,
    cache: ProductCache,
    hda: Any,
    ledger: Any,
    dataset_id: str,
    settings: DownloadSettings,
    say: Callable[[str], None],
    hda_orders: Any,
) -> Path:
    from . import wekeo

    final = cache.zip_path(key)
    download_id = _ready_order(
        key, pid, location, cache=cache, hda=hda, ledger=ledger, dataset_id=dataset_id,
        settings=settings, say=say, hda_orders=hda_orders,
    )  # fmt: skip
    failures: list[str] = []
    for attempt in range(1, settings.attempts + 1):
        started = settings.clock()
        last = [started]

        def progress(
            got: int, total: int | None, started: float = started, last: list[float] = last
        ) -> None:
            now = settings.clock()
            if now - last[0] >= settings.progress_every:
                last[0] = now
                say(progress_line(key, got, total, now - started))

        try:
            with atomic_path(final) as tmp:
                wekeo.stream_to_file(
                    lambda: wekeo.open_download(hda, download_id), tmp, progress=progress
                )
                size = tmp.stat().st_size
                _fsync(tmp)
                members = verify_product_zip(tmp, key)
            _fsync_dir(cache.root)
        except (DownloadError, errors.TransientBackendError) as exc:
            failures.append(f"attempt {attempt}: {exc}")
            if attempt < settings.attempts:
                say(f"{key}: download attempt {attempt} failed ({exc}); fetching it once more")
            continue
        seconds = max(settings.clock() - started, 1e-9)
        say(
            f"{key}: downloaded and verified {_mb(size)} MB in {seconds:.1f} s "
            f"({size / _MB / seconds:.1f} MB/s, {members} files) -> {final}"
        )
        return final
    raise DownloadError(
        f"product {pid}: download failed {len(failures)} times ({'; '.join(failures)}). Nothing "
        f"was kept under {final}; the order {download_id} is recorded in "
        f"{cache.order_path(key)}, so re-running the same command downloads again without a new "
        "order."
    )


def _ready_order(
    key: str,
    pid: str,
    location: str,
    *,
    cache: ProductCache,
    hda: Any,
    ledger: Any,
    dataset_id: str,
    settings: DownloadSettings,
    say: Callable[[str], None],
    hda_orders: Any,
) -> str:
    """The download id of a ready order for ``key``: the recorded one if the server still knows
    it, else a new order through the ledger."""
    from . import wekeo
    from .quota import quota_reset_of

    record_path = cache.order_path(key)
    record = _read_order(record_path)
    if record is not None:
        try:
            _await_ready(hda, key, record["download_id"], settings, say)
            say(f"{key}: re-using order {record['download_id']} (ordered {record['ordered_at']})")
            return str(record["download_id"])
        except errors.CatalogueError as exc:
            # The broker no longer knows the id (expired): order again.
            say(f"{key}: recorded order {record['download_id']} is no longer valid ({exc})")
            record_path.unlink(missing_ok=True)

    def on_wait(seconds: float, message: str) -> None:
        say(f"{key}: {message}")

    download_id = ledger.paced_call(
        "hda_order",
        key,
        lambda: wekeo.order(hda_orders, dataset_id, pid, location),
        quota_reset=quota_reset_of,
        on_wait=on_wait,
    )
    write_json_atomic(
        record_path,
        {
            "product": pid,
            "download_id": download_id,
            "ordered_at": datetime.fromtimestamp(settings.clock(), UTC).strftime(
                "%Y-%m-%dT%H:%M:%SZ"
            ),
        },
    )
    say(f"{key}: ordered (download id {download_id})")
    _await_ready(hda, key, download_id, settings, say)
    return str(download_id)


def _read_order(path: Path) -> dict[str, Any] | None:
    try:
        rec = read_json(path)
    except (OSError, ValueError):
        return None
    return rec if isinstance(rec, dict) and rec.get("download_id") else None


def _await_ready(
    hda: Any, key: str, download_id: str, s: DownloadSettings, say: Callable[[str], None]
) -> None:
    from . import wekeo

    deadline = s.clock() + s.order_ready_timeout
    delay = 1.0
    while not wekeo.order_ready(hda, download_id):
        if s.clock() > deadline:
            raise errors.TransientBackendError(
                f"{key}: HDA order {download_id} not ready after {s.order_ready_timeout:.0f} s; "
                "re-run later (the order is kept and re-used)"
            )
        s.sleep(delay)
        delay = min(delay * 1.5, s.order_poll_max)


def evict_product(cache: ProductCache, key: str) -> bool:
    """Delete a cached product (under its lock); True if there was one."""
    with cache.locked(key):
        path = cache.zip_path(key)
        existed = path.exists()
        path.unlink(missing_ok=True)
        return existed


# --- from the validated config ----------------------------------------------------------------


def download_product(
    product: Mapping[str, Any],
    config: Mapping[str, Any],
    *,
    report: Callable[[str], None] | None = None,
    settings: DownloadSettings | None = None,
) -> Path:
    """Download ``product`` into the configured cache once (or find it there); its zip path.

    Builds the ``hda`` client (credentials from ``~/.hdarc`` or the environment) and the quota
    ledger from the validated ``config``, and records the campaign in the cache's registry so
    ``seasonal-c2rcc cache list`` can say which campaigns use which products. What it raises:
    :func:`fetch_product`.
    """
    from . import wekeo
    from .quota import QuotaLedger, QuotaLimits, ledger_path

    cache = ProductCache.from_config(config)
    key = check_product(product)[0]
    register_campaign(cache, Path(CATALOGUE_DIR))
    final = cache.zip_path(key)
    if final.exists() and _quick_check(final, key) is None:
        # A hit needs no credentials, no client and no ledger.
        (report or log.info)(f"{key}: in the cache ({final}), nothing to download")
        return final
    limits = QuotaLimits.from_config(config["quota"])
    w = config["wekeo"]
    endpoints = wekeo.Endpoints.from_config(w)
    creds = wekeo.load_credentials()
    client = wekeo.hda_client(
        endpoints, creds, timeout=w["http_timeout"], retries=w["http_retries"]
    )
    with QuotaLedger(ledger_path(config["quota"]), limits) as ledger:
        return fetch_product(
            product, cache=cache, hda=client, ledger=ledger, dataset_id=w["dataset_id"],
            settings=settings, report=report,
            hda_orders=wekeo.hda_order_client(endpoints, creds, timeout=w["http_timeout"]),
        )  # fmt: skip


def redownload_product(
    product: Mapping[str, Any],
    config: Mapping[str, Any],
    *,
    reason: str,
    report: Callable[[str], None] | None = None,
    settings: DownloadSettings | None = None,
) -> Path:
    """Delete a cached product that proved corrupt (``reason``) and download it once more."""
    cache = ProductCache.from_config(config)
    key = product_key(product)
    (report or log.info)(f"{key}: {reason}; deleting the cached zip and downloading it again")
    evict_product(cache, key)
    return download_product(product, config, report=report, settings=settings)


def with_product(
    product: Mapping[str, Any],
    config: Mapping[str, Any],
    use: Callable[[Path], T],
    *,
    report: Callable[[str], None] | None = None,
    settings: DownloadSettings | None = None,
) -> T:
    """``use(zip_path)`` on the cached product; if it proves corrupt (the reader's
    ``ProductError``, a :class:`DownloadError` or a bad zip), delete it, download it once more and
    call ``use`` again. A second failure raises :class:`DownloadError` naming the product and both
    errors (the bad copy is deleted, so the next run starts from a fresh download)."""
    path = download_product(product, config, report=report, settings=settings)
    try:
        return use(path)
    except _CORRUPT as first:
        if not _redownload_may_fix(first):
            raise
        path = redownload_product(
            product, config, reason=f"unreadable ({first})", report=report, settings=settings
        )
        try:
            return use(path)
        except _CORRUPT as second:
            evict_product(ProductCache.from_config(config), product_key(product))
            raise DownloadError(
                f"product {product_key(product)} is unreadable even after downloading it again: "
                f"first {first}; then {second}. The copy was deleted; if the archive's product "
                "itself is damaged, exclude it from the selection (see docs/local-processing.md)."
            ) from second


# --- catalogue lookup (rule download_product) ---------------------------------------------------


def find_catalogue_product(key: str, catalog_dir: str | Path = CATALOGUE_DIR) -> dict[str, Any]:
    """The catalogue entry (``{"key", "id", "location", ...}``) of product ``key``, from the frozen
    selections of its tile under ``catalog_dir`` (the id names the tile; a handful of files)."""
    tile = key_tile(key)
    found = sorted(Path(catalog_dir, tile).glob("*/*.json"))
    for path in found:
        try:
            doc = read_json(path)
        except (OSError, ValueError):
            continue
        entry = doc.get("products", {}).get(key) if isinstance(doc, dict) else None
        if entry:
            return {"key": key, **entry}
    raise ConfigError(
        f"product {key} is in none of the {len(found)} catalogue selection(s) of tile {tile} under "
        f"{catalog_dir}; it cannot be ordered without its catalogue entry (run the workflow, which "
        "searches the catalogue first)"
    )


# --- campaigns registry, list and prune ---------------------------------------------------------


def register_campaign(cache: ProductCache, catalog_dir: str | Path) -> None:
    """Remember that the campaign whose selections live in ``catalog_dir`` uses this cache (a
    read when it is already known; else one atomic rewrite under the registry's lock)."""
    entry = str(Path(catalog_dir).resolve())
    if entry in registered_campaigns(cache):
        return
    with cache.locked(_REGISTRY):
        known = registered_campaigns(cache)
        if entry in known:
            return
        write_json_atomic(cache.root / _REGISTRY, {"catalog_dirs": sorted({*known, entry})})


def registered_campaigns(cache: ProductCache) -> list[str]:
    """Catalogue folders of the campaigns that downloaded into this cache."""
    try:
        doc = read_json(cache.root / _REGISTRY)
    except (OSError, ValueError):
        return []
    return list(doc.get("catalog_dirs", [])) if isinstance(doc, dict) else []


def campaign_usage(catalog_dirs: Iterable[str | Path]) -> dict[str, set[str]]:
    """Product key -> the campaign folders whose frozen selections use it (folders that are
    gone are skipped). A campaign is named by its working directory (the parent of ``results``)."""
    used: dict[str, set[str]] = {}
    for d in dict.fromkeys(str(Path(c).resolve()) for c in catalog_dirs):
        catalog = Path(d)
        campaign = str(catalog.parent.parent) if catalog.parent.name == "results" else d
        for path in catalog.glob("*/*/*.json"):
            try:
                doc = read_json(path)
            except (OSError, ValueError):
                continue
            if isinstance(doc, dict):
                for key in catalogue_product_keys(doc):
                    used.setdefault(key, set()).add(campaign)
    return used


@dataclass(frozen=True)
class CacheEntry:
    """One cached product."""

    key: str
    path: Path
    size: int
    downloaded_at: float  # the zip's mtime: when its download finished
    used_by: tuple[str, ...]

    def age_days(self, now: float) -> float:
        """Days since the download finished."""
        return (now - self.downloaded_at) / 86400.0


def list_cache(cache: ProductCache, catalog_dirs: Iterable[str | Path] = ()) -> list[CacheEntry]:
    """Every cached product with its size, download time and the campaigns using it (registered
    campaigns plus ``catalog_dirs``)."""
    usage = campaign_usage([*registered_campaigns(cache), *catalog_dirs])
    out = []
    for p in cache.products():
        key = p.name.removesuffix(".zip")
        try:
            st = p.stat()
        except FileNotFoundError:  # pruned meanwhile
            continue
        out.append(CacheEntry(key, p, st.st_size, st.st_mtime, tuple(sorted(usage.get(key, ())))))
    return out


def prune_plan(
    entries: Iterable[CacheEntry],
    *,
    now: float,
    older_than_days: float | None,
    unused: bool,
) -> list[CacheEntry]:
    """The entries to delete: older than ``older_than_days`` and/or (``unused``) used by no known
    campaign; both criteria given means both must hold. At least one is required."""
    if older_than_days is None and not unused:
        raise ConfigError("cache prune: say what to delete (--older-than DAYS and/or --unused)")
    if older_than_days is not None and older_than_days < 0:
        raise ConfigError(f"cache prune: --older-than must be >= 0 days, got {older_than_days}")
    chosen = []
    for e in entries:
        if older_than_days is not None and e.age_days(now) <= older_than_days:
            continue
        if unused and e.used_by:
            continue
        chosen.append(e)
    return chosen


def stale_files(cache: ProductCache) -> list[Path]:
    """Leftovers of killed downloads (temporaries whose product is not locked now)."""
    out = []
    pattern = re.compile(r"^\.(?P<key>.+)\.zip\.\d+\.tmp\.zip(\.part)?$")
    for p in sorted(cache.root.glob(".*.zip.*")):
        m = pattern.match(p.name)
        if m:
            out.append(p)
    return out


def prune_cache(
    cache: ProductCache,
    plan: Iterable[CacheEntry],
    *,
    dry_run: bool,
    report: Callable[[str], None] = print,
) -> tuple[int, int]:
    """Delete the planned products (each under its lock; one being downloaded is skipped) and
    leftovers of killed downloads. Returns ``(files deleted, bytes freed)`` (or would, dry run)."""
    n = freed = 0
    for e in plan:
        with cache.locked(e.key, wait=False) as got:
            if not got:
                report(f"skip {e.key}: in use by a download right now")
                continue
            report(f"{'would delete' if dry_run else 'delete'} {e.path} ({e.size / _MB:.1f} MB)")
            if not dry_run:
                e.path.unlink(missing_ok=True)
                cache.order_path(e.key).unlink(missing_ok=True)
            n += 1
            freed += e.size
    for p in stale_files(cache):
        key = p.name[1:].split(".zip.", 1)[0]
        with cache.locked(key, wait=False) as got:
            if not got or not p.exists():
                continue
            size = p.stat().st_size
            report(f"{'would delete' if dry_run else 'delete'} leftover {p} ({size / _MB:.1f} MB)")
            if not dry_run:
                p.unlink(missing_ok=True)
            n += 1
            freed += size
    return n, freed


def render_cache_list(entries: list[CacheEntry], cache: ProductCache, now: float) -> str:
    """The ``seasonal-c2rcc cache list`` table."""
    lines = [f"product cache {cache.root}: {len(entries)} product(s), "
             f"{sum(e.size for e in entries) / 1e9:.2f} GB"]  # fmt: skip
    if entries:
        width = max(len(e.key) for e in entries)
        lines.append(f"{'product':<{width}}  {'MB':>9}  {'age (d)':>7}  used by")
        for e in sorted(entries, key=lambda e: e.key):
            used = ", ".join(e.used_by) if e.used_by else "(no known campaign)"
            lines.append(f"{e.key:<{width}}  {e.size / _MB:>9.1f}  {e.age_days(now):>7.1f}  {used}")
    leftovers = stale_files(cache)
    if leftovers:
        lines.append(
            f"{len(leftovers)} leftover temporary file(s) of interrupted downloads "
            "(`seasonal-c2rcc cache prune` removes them)"
        )
    return "\n".join(lines)


def cache_from_config_files(config_files: Iterable[str | Path]) -> ProductCache:
    """The cache a campaign's config files name (``product_cache``, else the schema default)."""
    from .config import load_config_file, load_schema

    value = load_schema()["properties"]["product_cache"]["default"]
    for path in config_files:
        if Path(path).is_file():
            value = load_config_file(path).get("product_cache", value)
    return ProductCache.from_config({"product_cache": value})


__all__ = [
    "CacheEntry",
    "DownloadSettings",
    "ProductCache",
    "check_product",
    "download_product",
    "evict_product",
    "fetch_product",
    "find_catalogue_product",
    "list_cache",
    "prune_cache",
    "prune_plan",
    "redownload_product",
    "verify_product_zip",
    "with_product",
    "zip_problems",
]
