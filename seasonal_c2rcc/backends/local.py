"""Local processing of a planned job (backends ``native`` and ``gpt``), one product at a time.

The products were downloaded by their own Snakemake jobs (rule ``download_product``, on the head
node); this runs where Snakemake puts the processing job (a compute node under the SLURM profile)
and leaves the same per-product NetCDF4-BEAM files as the EOCanvas path (:mod:`.base`).

A product that proves damaged when read (a truncated zip, a corrupt JP2) is deleted from the
cache and downloaded once more before the job gives up (:func:`seasonal_c2rcc.download.with_product`);
that one recovery download happens inside the processing job, so on a cluster whose compute nodes
have no network it fails with the message to re-run (the download rule then fetches it).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..errors import ConfigError, OutputError
from ..verify import verify_c2rcc_netcdf
from .base import LOCAL_BACKENDS, JobSpec

#: (product key, cached zip, destination) -> the verified result file.
Processor = Callable[[str, Path, Path], Path]


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


def local_job_threads(config: Mapping[str, Any]) -> int:
    """Cores one processing job reserves (the rule's ``threads``)."""
    if config["backend"] == "gpt":
        return int(config["gpt"]["threads"] or 1)
    return int(config["native"]["threads"])


def local_job_mem_mb(config: Mapping[str, Any]) -> int:
    """Memory one processing job declares to Snakemake and SLURM (the rule's ``mem_mb``)."""
    if config["backend"] == "gpt":
        from .gpt import GptSettings

        # without a heap setting gpt.vmoptions decides: declare the native default
        declared = GptSettings.from_config(config["gpt"]).job_mem_mb
        if declared is not None:
            return declared
    return int(config["native"]["mem_mb"])


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
    manifest's ``{product key: result path}``.

    ``product_files`` are the cached zips the download jobs left. A result already in the job
    folder that verifies is kept (a re-run after a crash redoes only what is missing).
    """
    missing = [k for k in spec.product_keys if k not in product_files]
    if missing:
        raise ConfigError(f"job {spec.key}: no downloaded file for {', '.join(missing)}")
    process = _processor(spec, config, log_dir=log_dir, threads=threads, report=report)
    job_dir = Path(out_dir) / spec.key
    outputs: dict[str, str] = {}
    for product in spec.products:
        key = str(product["key"])
        dest = job_dir / f"{key}.nc"
        if dest.exists():
            try:
                verify_c2rcc_netcdf(dest)
                report(f"job {spec.key}: {dest} already made and verified")
                outputs[key] = str(dest)
                continue
            except OutputError as exc:
                report(f"job {spec.key}: {dest} fails verification ({exc}); making it again")
        outputs[key] = str(_with_cached(product, Path(product_files[key]), config, report,
                                        lambda path, key=key, dest=dest: process(key, path, dest)))  # fmt: skip
    return outputs


def _with_cached(
    product: Mapping[str, Any],
    path: Path,
    config: Mapping[str, Any],
    report: Callable[[str], None],
    use: Callable[[Path], Path],
) -> Path:
    """``use(path)``; a product that proves damaged is downloaded once more and used again."""
    from ..download import with_product

    if not path.exists():
        raise ConfigError(
            f"{path}: the downloaded product is missing; re-run snakemake to fetch it"
        )
    return with_product(product, config, use, report=report)


def _processor(
    spec: JobSpec,
    config: Mapping[str, Any],
    *,
    log_dir: Path,
    threads: int | None,
    report: Callable[[str], None],
) -> Processor:
    backend = config["backend"]
    if backend == "native":
        from .native import NativeSettings, graph_params, job_grid, process_product

        params = graph_params(spec.graph)
        settings = NativeSettings.from_config(config["native"])
        if threads:  # what Snakemake granted the job (it caps native.threads at --cores)
            settings = NativeSettings(settings.nets_dir, threads, settings.dem)
        grid = job_grid(spec)
        report(f"job {spec.key}: native C2RCC ({params.netSet}), {grid.width} x {grid.height} px")

        def native(key: str, path: Path, dest: Path) -> Path:
            return process_product(
                path, key, grid, params, dest, settings=settings, report=report,
                metadata={"seasonal_c2rcc_job": spec.key},
            ).path  # fmt: skip

        return native
    if backend == "gpt":
        from .gpt import GptSettings, run_gpt

        if len(spec.products) != 1:
            raise ConfigError(
                f"job {spec.key}: gpt runs one product per job, not {len(spec.products)}"
            )
        gpt_settings = GptSettings.from_config(config["gpt"])
        run_kwargs = gpt_settings.run_kwargs()
        if threads and not gpt_settings.threads:
            run_kwargs["threads"] = threads

        def gpt(key: str, path: Path, dest: Path) -> Path:
            report(f"job {spec.key}: gpt on {key}")
            return run_gpt(
                spec.graph, path, dest, log_path=Path(log_dir) / f"{spec.key}.gpt.log",
                report=report, **run_kwargs,
            )  # fmt: skip

        return gpt
    raise ConfigError(f"backend {backend!r} does not process locally")
