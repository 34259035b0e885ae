"""Campaign status: for every sub-tile, year and season, is it done, no-data, failed or pending?

Read-only and cheap, so it can run at any time, on a partial campaign, next to a running
Snakemake. Sources, in order of authority:

1. the composite ``results/composites/{tile}/{year}/{season}/{subtile}.nc``: ``done``, or
   ``no-data`` when its ``composite_status`` attribute says so;
2. the frozen catalogue ``results/catalog/{tile}/{year}/{season}.json``: a sub-tile with no
   selected product is ``no-data`` (its composite will be an explicit no-data file);
3. the backend's job records ``results/state/jobs/{key}.json``: a job serving the sub-tile in state
   ``failed`` or ``gave_up`` makes it ``failed`` (the error is in ``detail``);
4. otherwise ``pending`` (catalogue not searched yet, jobs queued or running, clips missing).
"""

from __future__ import annotations

import json
import logging
import os
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

log = logging.getLogger(__name__)

__all__ = [
    "STATES",
    "UnitStatus",
    "campaign_status",
    "state_fingerprint",
    "summary_counts",
    "write_status_table",
]


#: The states, in display order.
STATES: tuple[str, ...] = ("done", "no-data", "failed", "pending")
FAILED_JOB_STATES = frozenset({"failed", "gave_up"})

COMPOSITE = "composites/{tile}/{year}/{season}/{subtile}.nc"
CATALOGUE = "catalog/{tile}/{year}/{season}.json"
PRODUCT = "c2rcc/{tile}/{year}/{season}/{subtile}/{product}.nc"
JOBS_DIR = "state/jobs"


@dataclass(frozen=True)
class UnitStatus:
    """Status of one sub-tile, year and season."""

    tile: str
    subtile: str
    year: int
    season: str
    state: str
    detail: str
    n_products: int | None  # selected in the catalogue (None: not searched yet)
    n_clipped: int  # per-product sub-tile files present


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        log.warning("%s: unreadable (%s); ignored", path, exc)
        return None


def _composite_state(path: Path) -> tuple[str, str]:
    import netCDF4

    try:
        with netCDF4.Dataset(path, "r") as ds:
            status = (
                ds.getncattr("composite_status") if "composite_status" in ds.ncattrs() else "ok"
            )
            n = ds.getncattr("n_acquisitions") if "n_acquisitions" in ds.ncattrs() else "?"
            reason = ds.getncattr("no_data_reason") if "no_data_reason" in ds.ncattrs() else ""
    except OSError as exc:
        return "failed", f"composite unreadable: {exc}"
    if status == "no_data":
        return "no-data", f"composite without data: {reason}"
    return "done", f"composite of {n} acquisitions"


def _job_index(results: Path) -> dict[tuple[str, int, str], list[dict[str, Any]]]:
    index: dict[tuple[str, int, str], list[dict[str, Any]]] = defaultdict(list)
    jobs_dir = results / JOBS_DIR
    if not jobs_dir.is_dir():
        return index
    for f in sorted(jobs_dir.glob("*.json")):
        rec = _read_json(f)
        if not isinstance(rec, dict) or not {"tile", "year", "season"} <= set(rec):
            continue
        try:
            index[(str(rec["tile"]), int(rec["year"]), str(rec["season"]))].append(rec)
        except (TypeError, ValueError):
            continue
    return index


def campaign_status(
    units: Iterable[tuple[str, int, str, str]], results_dir: str | os.PathLike[str] = "results"
) -> pd.DataFrame:
    """Status table of ``units`` = (tile, year, season, subtile), one row each (see module doc).

    Columns: tile, subtile, year, season, state, detail, n_products, n_clipped.
    """
    results = Path(results_dir)
    jobs = _job_index(results)
    catalogues: dict[Path, Any] = {}
    rows = []
    for tile, year, season, subtile in units:
        year = int(year)
        fmt = {"tile": tile, "year": year, "season": season, "subtile": subtile}
        cat_path = results / CATALOGUE.format(**fmt)
        if cat_path not in catalogues:
            catalogues[cat_path] = _read_json(cat_path) if cat_path.exists() else None
        cat = catalogues[cat_path]
        selected = None
        if isinstance(cat, dict) and isinstance(cat.get("subtiles"), dict):
            selected = list(cat["subtiles"].get(subtile, []))
        n_clipped = sum(
            (results / PRODUCT.format(**fmt, product=p)).exists() for p in (selected or [])
        )
        comp = results / COMPOSITE.format(**fmt)
        if comp.exists():
            state, detail = _composite_state(comp)
        elif selected is not None and not selected:
            state, detail = "no-data", "no usable scene in the catalogue"
        else:
            mine = [
                j
                for j in jobs.get((tile, year, season), [])
                if subtile in (j.get("subtiles") or [])
            ]
            failed = [j for j in mine if j.get("state") in FAILED_JOB_STATES]
            if failed:
                state = "failed"
                detail = "; ".join(
                    f"job {j.get('key')} {j.get('state')}: {str(j.get('error') or 'no message')[:200]}"
                    + (f" (log {j['log']})" if j.get("log") else "")
                    for j in failed
                )
            elif selected is None:
                state, detail = "pending", "catalogue not searched yet"
            else:
                counts: dict[str, int] = defaultdict(int)
                for j in mine:
                    counts[str(j.get("state"))] += 1
                jobs_txt = (
                    ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "none started"
                )
                state = "pending"
                detail = f"{n_clipped}/{len(selected)} products clipped; jobs: {jobs_txt}"
        rows.append(
            UnitStatus(
                tile=tile,
                subtile=subtile,
                year=year,
                season=season,
                state=state,
                detail=detail,
                n_products=None if selected is None else len(selected),
                n_clipped=n_clipped,
            )
        )
    df = pd.DataFrame([asdict(r) for r in rows], columns=list(UnitStatus.__dataclass_fields__))
    df["n_products"] = df["n_products"].astype("Int64")
    return df


def summary_counts(df: pd.DataFrame) -> dict[str, int]:
    """Number of units per state, every state present (0 if none)."""
    counts = df["state"].value_counts().to_dict() if len(df) else {}
    return {s: int(counts.get(s, 0)) for s in STATES}


def write_status_table(
    df: pd.DataFrame,
    csv_path: str | os.PathLike[str],
    json_path: str | os.PathLike[str] | None = None,
) -> None:
    """Write the table as CSV and, optionally, JSON ``{"counts": {...}, "units": [...]}``, atomically."""
    targets: list[tuple[Path, str]] = [(Path(csv_path), df.to_csv(index=False))]
    if json_path is not None:
        doc = {"counts": summary_counts(df), "units": json.loads(df.to_json(orient="records"))}
        targets.append((Path(json_path), json.dumps(doc, indent=1)))
    for path, text in targets:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".part")
        tmp.write_text(text)
        os.replace(tmp, path)


def state_fingerprint(results_dir: str | os.PathLike[str] = "results") -> str:
    """A short hash of the names, sizes and mtimes of every file the status is computed from.

    Used as a rule parameter so that Snakemake re-runs the status rule exactly when the campaign
    state changed (params are a default re-run trigger).
    """
    import hashlib

    results = Path(results_dir)
    h = hashlib.sha256()
    for sub, pattern in (
        ("composites", "*/*/*/*.nc"),
        ("catalog", "*/*/*.json"),
        (JOBS_DIR, "*.json"),
        ("c2rcc", "*/*/*/*/*.nc"),
    ):
        base = results / sub
        if not base.is_dir():
            continue
        for f in sorted(base.glob(pattern)):
            try:
                st = f.stat()
            except OSError:
                continue
            h.update(f"{f.relative_to(results)}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]
