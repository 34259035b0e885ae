"""Local processing of a planned job (backends ``native`` and ``gpt``), one product at a time.

The products were downloaded by their own Snakemake jobs (rule ``download_product``, on the head
node); this runs where Snakemake puts the processing job (a compute node under the SLURM profile)
and leaves the same per-product NetCDF4-BEAM files as the EOCanvas path (:mod:`.base`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..verify import verify_c2rcc_netcdf
from .base import LOCAL_BACKENDS, JobSpec


def check_local_config(config: Mapping[str, Any], graph_text: str) -> None:
    """Config errors of a local backend, raised when the workflow starts (before any download):
    packing, the graph's ``c2rcc.msi`` parameters and nets (native), the ``gpt`` executable."""
    backend = config["backend"]
    if backend not in LOCAL_BACKENDS:
        return
    if config["packing"] == "multi-input":
        raise ConfigError(
            f"config key 'packing': multi-input packs several products into one EOCanvas job; "
            f"backend {backend} processes one product at a time: use packing per-product"
        )
    if backend == "native":
        from .native import check_native_config

        check_native_config(config, graph_text)
    else:
        from .gpt import check_gpt

        check_gpt(config["gpt"]["path"])


def run_local_job(
    spec: JobSpec,
    product_files: Mapping[str, str | os.PathLike[str]],
    config: Mapping[str, Any],
    *,
    out_dir: Path,
    log_dir: Path,
    threads: int | None = None,
    report: Callable[[str], None] = lambda msg: None,
) -> dict[str, str]:
    """Process every product of ``spec`` with the configured local backend; returns the
    manifest's ``{product key: result path}``."""
    backend = config["backend"]
    missing = [k for k in spec.product_keys if k not in product_files]
    if missing:
        raise ConfigError(f"job {spec.key}: no downloaded file for {', '.join(missing)}")
    if backend == "native":
        from .native import run_native_job

        section = dict(config["native"])
        if threads:  # what Snakemake granted the job (it caps native.threads at --cores)
            section["threads"] = threads
        return run_native_job(
            spec, product_files, {**config, "native": section}, out_dir=out_dir, report=report
        )
    if backend == "gpt":
        return _run_gpt_job(spec, product_files, config, out_dir=out_dir, log_dir=log_dir,
                            threads=threads, report=report)  # fmt: skip
    raise ConfigError(f"backend {backend!r} does not process locally")


def _run_gpt_job(
    spec: JobSpec,
    product_files: Mapping[str, str | os.PathLike[str]],
    config: Mapping[str, Any],
    *,
    out_dir: Path,
    log_dir: Path,
    threads: int | None,
    report: Callable[[str], None],
) -> dict[str, str]:
    from ..errors import OutputError
    from .gpt import run_gpt

    if len(spec.products) != 1:
        raise ConfigError(f"job {spec.key}: gpt runs one product per job, got {len(spec.products)}")
    section = config["gpt"]
    key = spec.product_keys[0]
    dest = Path(out_dir) / spec.key / f"{key}.nc"
    if dest.exists():
        try:
            verify_c2rcc_netcdf(dest)
            report(f"job {spec.key}: {dest} already made and verified")
            return {key: str(dest)}
        except OutputError as exc:
            report(f"job {spec.key}: {dest} fails verification ({exc}); making it again")
    report(f"job {spec.key}: gpt on {key}")
    run_gpt(
        spec.graph,
        Path(product_files[key]),
        dest,
        gpt=section["path"],
        threads=section.get("threads") or threads,
        tile_cache=section.get("tile_cache"),
        max_heap=section.get("max_heap"),
        timeout=section.get("timeout"),
        log_path=Path(log_dir) / f"{spec.key}.gpt.log",
    )
    return {key: str(dest)}
