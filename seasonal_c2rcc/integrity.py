"""Local state is verified before it is trusted.

Snakemake reruns a job only when an output is missing or older than its inputs: a truncated
result, composite or table under its final name passes for done, and every later run trips over
it. :func:`repair_results` runs once at the start of each workflow run, before the DAG is built,
and puts damaged local state where Snakemake will remake it:

* a job manifest (``results/jobs/.../{job}.json``) whose result files are missing, changed size
  since the manifest recorded them, or are truncated HDF5, is set aside (``.damaged``) and the
  damaged files are removed: ``remote_job`` runs again and downloads the files again from its
  finished remote job (its durable record holds the remote job id: no new job, no quota);
* a truncated per-product sub-tile file removes its folder (the composite cuts it out again), a
  truncated composite or climatology is removed (rebuilt), a truncated Parquet table is removed;
* a ``results/catalog`` selection that does not parse is restored from its frozen copy under
  ``results/state/catalog`` (written by the same search).

The checks are cheap (a stat and a few bytes per file: the HDF5 superblock's end-of-file address,
Parquet's footer magic), so a campaign of thousands of files is checked in seconds. A file
corrupted in place without a change of size is caught where it is read: the composite job checks
each job file against the SHA-256 its manifest recorded (:func:`check_manifest_files`).

A job record that does not parse is never guessed at (it is what prevents paying twice):
:func:`read_job_record` raises :class:`StateError` naming the file and the fix.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .atomic import atomic_path, read_json
from .errors import OutputError, StateError
from .paths import (
    CATALOGUE_DIR,
    CLIMATOLOGY_NC,
    COMPOSITE_NC,
    FROZEN_CATALOGUE,
    JOB_MANIFEST,
    RESULTS,
    SUBTILE_PRODUCTS,
    TIMESERIES_PARQUET,
)

__all__ = [
    "check_manifest_files",
    "file_damage",
    "hdf5_damage",
    "manifest_entries",
    "manifests_to_refetch",
    "parquet_damage",
    "read_job_record",
    "repair_results",
    "set_aside_manifest",
    "sha256_file",
]

_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_PARQUET_MAGIC = b"PAR1"


# ----------------------------------------------------------------------------------------------
# Cheap file checks
# ----------------------------------------------------------------------------------------------


def hdf5_damage(path: str | os.PathLike[str]) -> str | None:
    """Why an HDF5 (NetCDF4) file is damaged, or None: missing, empty, no HDF5 signature, or
    shorter than the end-of-file address its superblock records (a truncated copy).

    Reads the superblock only (versions 0-3, signature at 0 or a 512-byte multiple)."""
    p = Path(path)
    try:
        size = p.stat().st_size
        with open(p, "rb") as f:
            offset = 0
            while True:
                f.seek(offset)
                head = f.read(64)
                if head[:8] == _HDF5_SIGNATURE:
                    break
                offset = 512 if offset == 0 else offset * 2
                if offset >= size:
                    return "no HDF5 signature (not a NetCDF4 file, or overwritten)"
    except FileNotFoundError:
        return "missing"
    except OSError as exc:
        return f"unreadable ({exc})"
    if len(head) < 16:
        return "truncated inside the HDF5 superblock"
    version = head[8]
    if version in (0, 1):
        n_off, base_at = head[13], 24 if version == 0 else 28
    elif version in (2, 3):
        n_off, base_at = head[9], 12
    else:
        return None  # a future superblock: nothing to say
    eof_at = base_at + 2 * n_off
    if n_off not in (2, 4, 8) or len(head) < eof_at + n_off:
        return "truncated inside the HDF5 superblock"
    base = int.from_bytes(head[base_at : base_at + n_off], "little")
    eof = int.from_bytes(head[eof_at : eof_at + n_off], "little")
    if eof == 2 ** (8 * n_off) - 1:
        return None  # undefined address: nothing recorded to compare with
    if base + eof > size:
        return f"truncated: {size} bytes, its HDF5 superblock records {base + eof}"
    return None


def parquet_damage(path: str | os.PathLike[str]) -> str | None:
    """Why a Parquet file is damaged, or None (magic at both ends, footer inside the file)."""
    p = Path(path)
    try:
        size = p.stat().st_size
        with open(p, "rb") as f:
            head = f.read(4)
            f.seek(max(0, size - 8))
            tail = f.read(8)
    except FileNotFoundError:
        return "missing"
    except OSError as exc:
        return f"unreadable ({exc})"
    if size < 12 or head != _PARQUET_MAGIC or tail[4:] != _PARQUET_MAGIC:
        return "truncated or not Parquet (no PAR1 footer)"
    if int.from_bytes(tail[:4], "little") + 12 > size:
        return "truncated: its footer is longer than the file"
    return None


def file_damage(path: str | os.PathLike[str]) -> str | None:
    """:func:`hdf5_damage` for ``.nc``, :func:`parquet_damage` for ``.parquet``; else only
    missing or empty."""
    p = Path(path)
    if p.suffix == ".nc":
        return hdf5_damage(p)
    if p.suffix == ".parquet":
        return parquet_damage(p)
    try:
        return None if p.stat().st_size > 0 else "empty"
    except FileNotFoundError:
        return "missing"


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file, read in 1 MiB pieces."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(2**20):
            h.update(chunk)
    return h.hexdigest()


# ----------------------------------------------------------------------------------------------
# Job manifests and records
# ----------------------------------------------------------------------------------------------


def manifest_entries(files: dict[str, str]) -> dict[str, dict[str, Any]]:
    """``{product: {"size": bytes, "sha256": hex}}`` of a job's result files, for its manifest."""
    return {
        product: {"size": Path(f).stat().st_size, "sha256": sha256_file(f)}
        for product, f in files.items()
    }


def _manifest_damage(manifest: dict[str, Any], workdir: Path) -> dict[str, str]:
    """``{file: why}`` of the result files of a manifest that fail the cheap checks (relative
    paths are relative to ``workdir``, the folder holding ``results``)."""
    checks = manifest.get("checks") or {}
    bad: dict[str, str] = {}
    for product, name in (manifest.get("files") or {}).items():
        f = workdir / name
        why = file_damage(f)
        if why is None and product in checks:
            size = os.stat(f).st_size
            if size != checks[product]["size"]:
                why = f"{size} bytes, its manifest recorded {checks[product]['size']}"
        if why is not None:
            bad[str(f)] = why
    return bad


def set_aside_manifest(manifest_path: str | os.PathLike[str], files: list[str]) -> Path:
    """Remove damaged result ``files`` and rename the manifest to ``<name>.damaged``: the
    processing job runs again and fetches its results again (a finished remote job's results
    are downloaded again, no new job)."""
    for f in files:
        Path(f).unlink(missing_ok=True)
    p = Path(manifest_path)
    aside = p.with_name(p.name + ".damaged")
    os.replace(p, aside)
    return aside


def manifests_to_refetch(results: str | os.PathLike[str] = RESULTS) -> list[str]:
    """Manifests set aside as damaged and not made again yet (``results/jobs/.../{job}.json``).

    The default target lists them: Snakemake does not remake a missing intermediate file while
    everything downstream of it is up to date, and the remote job's results should be fetched
    again while the service still keeps them."""
    out = []
    for aside in _walk(_under(Path(results), JOB_MANIFEST, 3), "*/*/*/*.json.damaged"):
        manifest = aside.with_name(aside.name[: -len(".damaged")])
        if not manifest.exists():
            out.append(str(Path(RESULTS) / manifest.relative_to(results)))
    return out


def check_manifest_files(manifest_path: str | os.PathLike[str], products: list[str]) -> None:
    """Before a job's result files are used: each of ``products``' files has the size and
    SHA-256 its manifest recorded (manifests written before these were recorded: the cheap
    checks only). A damaged file is removed and the manifest set aside, then
    :class:`OutputError` says to run again (the results are downloaded again, no new job)."""
    manifest = read_json(manifest_path)
    checks = manifest.get("checks") or {}
    for product in products:
        f = manifest["files"][product]
        why = file_damage(f)
        if why is None and product in checks:
            if os.stat(f).st_size != checks[product]["size"]:
                why = "its size differs from the one its manifest recorded"
            elif sha256_file(f) != checks[product]["sha256"]:
                why = "its SHA-256 differs from the one its manifest recorded"
        if why is not None:
            aside = set_aside_manifest(manifest_path, [f])
            raise OutputError(
                f"job result {f} is damaged ({why}): removed, and its manifest set aside as "
                f"{aside}. Run the same snakemake command again: the job's results are "
                "downloaded again from its finished remote job (no new job, no quota)"
            )


def read_job_record(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A durable job record (``results/state/jobs/<key>.json``); :class:`StateError` naming the
    file and the fix when it does not parse."""
    p = Path(path)
    try:
        rec = json.loads(p.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        why = f"not valid JSON ({exc})"
    else:
        if isinstance(rec, dict) and "key" in rec and "state" in rec:
            return rec
        why = "not a job record (no key or state)"
    raise StateError(
        f"job record {p} is corrupt: {why}. It holds the remote job id that prevents paying "
        f"twice, so it is not guessed at. Restore it from a backup of {p.parent}, or move it "
        f"away (mv {p} {p}.corrupt) and run again: the job is then submitted again (one more "
        "paid job); `seasonal-c2rcc remote-jobs` lists the remote job the record held (its id "
        "is also in the job's log under logs/eocanvas/)"
    )


# ----------------------------------------------------------------------------------------------
# The start-of-run repair
# ----------------------------------------------------------------------------------------------


def _walk(root: Path, pattern: str) -> Iterator[Path]:
    """``root.glob(pattern)`` without hidden names: the temporary files and folders of a writer
    (seasonal_c2rcc.atomic: ``.<name>.<pid>.tmp...``) may be half-written by a running job."""
    if root.is_dir():
        for p in sorted(root.glob(pattern)):
            if not any(part.startswith(".") for part in p.relative_to(root).parts):
                yield p


def _under(results: Path, template: str, levels: int) -> Path:
    """The folder ``levels`` above a path template of :mod:`seasonal_c2rcc.paths`, moved from
    ``results/`` to ``results`` (e.g. ``results/composites`` from COMPOSITE_NC, 3 levels)."""
    return results / Path(template).parents[levels].relative_to(RESULTS)


def _restore_catalogue(cat: Path, results: Path) -> str | None:
    tile, year = cat.parent.parent.name, cat.parent.name
    frozen = results / Path(
        FROZEN_CATALOGUE.format(tile=tile, year=year, season=cat.stem)
    ).relative_to(RESULTS)
    try:
        if frozen.is_file() and frozen.stat().st_size == cat.stat().st_size:
            return None  # the copy the run wrote: not re-parsed on every start
        json.loads(cat.read_text())
        return None  # differs from its frozen copy but parses: a hand edit is the user's
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        why = f"does not parse ({exc})"
    try:
        json.loads(frozen.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        aside = cat.with_name(cat.name + ".damaged")
        os.replace(cat, aside)
        return (
            f"{cat} {why} and has no readable frozen copy ({frozen}): set aside as {aside}; "
            "the season is searched again"
        )
    with atomic_path(cat) as tmp:
        shutil.copyfile(frozen, tmp)
    return f"{cat} {why}: restored from its frozen copy {frozen}"


def repair_results(
    results: str | os.PathLike[str] = RESULTS, report: Callable[[str], None] = lambda m: None
) -> list[str]:
    """Check the local state under ``results`` and put damaged pieces where the workflow remakes
    them (see the module docstring). Returns one line per repair (also passed to ``report``)."""
    root = Path(results)
    done: list[str] = []

    def note(line: str) -> None:
        done.append(line)
        report(line)

    for cat in _walk(root / Path(CATALOGUE_DIR).relative_to(RESULTS), "*/*/*.json"):
        line = _restore_catalogue(cat, root)
        if line:
            note(line)

    for manifest_path in _walk(_under(root, JOB_MANIFEST, 3), "*/*/*/*.json"):
        try:
            manifest = read_json(manifest_path)
            bad = _manifest_damage(manifest, root.parent)
        except (OSError, ValueError, AttributeError, TypeError) as exc:
            manifest, bad = {}, {str(manifest_path): f"manifest unreadable ({exc})"}
        if bad:
            files = [f for f in bad if f != str(manifest_path)]
            aside = set_aside_manifest(manifest_path, files)
            details = "; ".join(f"{f}: {why}" for f, why in bad.items())
            note(
                f"job {manifest_path.stem}: {details}; manifest set aside as {aside.name}, the "
                "results are fetched again from the finished job (no new job)"
            )

    for folder in _walk(_under(root, SUBTILE_PRODUCTS, 3), "*/*/*/*"):
        if not folder.is_dir():
            continue
        bad = {f: why for f in sorted(folder.glob("*.nc")) if (why := file_damage(f))}
        if bad:
            shutil.rmtree(folder)
            f, why = next(iter(bad.items()))
            note(f"{f}: {why}; the folder {folder} is cut out again by its composite")

    for pattern_root, pattern in (
        (_under(root, COMPOSITE_NC, 3), "*/*/*/*.nc"),
        (_under(root, CLIMATOLOGY_NC, 2), "*/*/*.nc"),
        (_under(root, TIMESERIES_PARQUET, 0), "*.parquet"),
    ):
        for f in _walk(pattern_root, pattern):
            why = file_damage(f)
            if why:
                f.unlink()
                note(f"{f}: {why}; removed, it is made again")
    return done
