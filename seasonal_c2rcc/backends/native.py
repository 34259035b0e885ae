"""The ``native`` backend: C2RCC-MSI in numpy on a locally downloaded L1C product.

What the graph ``Read -> Subset -> Resample -> c2rcc.msi -> Write`` does on EOCanvas, done here:
:mod:`seasonal_c2rcc.s2l1c` reads the job's window of the SAFE product the way SNAP's reader and
Resample node do, :func:`seasonal_c2rcc.c2rcc.run_c2rcc_msi` runs every parameter of the graph's
``c2rcc.msi`` node, and :func:`seasonal_c2rcc.beam_netcdf.write_beam_netcdf_blocks` writes the
same NetCDF4-BEAM file the EOCanvas path downloads, row block by row block, so memory is bounded
by the block and not by the job's region (C2RCC's output is about 180 bytes a pixel: a whole tile
at 20 m would need 5.4 GB).

Altitude is 0 m (the s3tbx C2RCC-MSI that EOCanvas's SNAP 9 packaging runs used no DEM; only
pressure above 10 m is affected, and coastal sub-tiles are at sea level) unless ``native.dem``
names a GeoTIFF DEM, which is sampled (nearest) at the pixel centres.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..beam_netcdf import BeamGrid, write_beam_netcdf_blocks
from ..c2rcc import C2rccMsiParams, find_nets_dir, load_nets, run_c2rcc_msi
from ..errors import ConfigError, OutputError
from ..verify import verify_c2rcc_netcdf
from .base import JobSpec

log = logging.getLogger("seasonal_c2rcc.native")

#: Output pixels per processing block: about 180 MB of C2RCC output and 13 bands of input.
BLOCK_PIXELS = 1_000_000


@dataclass(frozen=True)
class ProductResult:
    """One processed product: the verified file and where the time went (seconds)."""

    path: Path
    pixels: int
    read_s: float
    c2rcc_s: float
    write_s: float


@dataclass(frozen=True)
class NativeSettings:
    """The validated ``native`` config section, resolved."""

    nets_dir: Path
    threads: int
    dem: Path | None

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> NativeSettings:
        """Resolve the nets folder (config, ``$SEASONAL_C2RCC_NETS`` or an installed SNAP) and
        check the DEM exists: both are config errors, raised before any download."""
        nets = find_nets_dir(section.get("nets"))
        dem = Path(section["dem"]) if section.get("dem") else None
        if dem is not None and not dem.is_file():
            raise ConfigError(
                f"config key 'native.dem': {dem} is not a file (a GeoTIFF DEM in metres)"
            )
        threads = int(section["threads"])
        return cls(nets_dir=nets, threads=threads, dem=dem)


def graph_params(graph_text: str) -> C2rccMsiParams:
    """Every parameter of the graph's ``c2rcc.msi`` node; unknown or malformed ones raise
    :class:`ConfigError` (checked when the workflow starts, before any download)."""
    return C2rccMsiParams.from_graph(graph_text)


def check_native_config(
    config: Mapping[str, Any], graph_text: str
) -> tuple[C2rccMsiParams, NativeSettings]:
    """Everything the native backend needs that can be wrong in the config: the graph's
    ``c2rcc.msi`` parameters, the nets of its net set, the DEM. Raises :class:`ConfigError`."""
    params = graph_params(graph_text)
    settings = NativeSettings.from_config(config["native"])
    load_nets(
        params.netSet, nets_dir=settings.nets_dir, alternative_nn_path=params.alternativeNNPath
    )
    _check_resample(graph_text)
    return params, settings


#: The Resample settings the reader implements (seasonal_c2rcc.s2l1c), as in graphs/s2_c2rcc.xml.
_RESAMPLE_SUPPORTED = {"upsampling": "Nearest", "downsampling": "Mean"}


def _check_resample(graph_text: str) -> None:
    from lxml import etree

    root = etree.fromstring(graph_text.encode())
    for node in root.iter("node"):
        if (node.findtext("operator") or "").strip() != "Resample":
            continue
        for name, supported in _RESAMPLE_SUPPORTED.items():
            value = (node.findtext(f"parameters/{name}") or supported).strip()
            if value != supported:
                raise ConfigError(
                    f"graph Resample {name}={value}: the native backend implements only "
                    f"{name}={supported} (SNAP's choice in graphs/s2_c2rcc.xml); use backend gpt "
                    "or eocanvas for other resampling"
                )


def job_grid(spec: JobSpec) -> BeamGrid:
    """The job's region as the pixel grid its results are written on."""
    xmin, ymin, xmax, ymax = spec.utm_bounds
    res = float(spec.resolution)
    width = round((xmax - xmin) / res)
    height = round((ymax - ymin) / res)
    if width <= 0 or height <= 0 or not spec.epsg:
        raise ConfigError(f"job {spec.key}: no UTM region to process ({spec.utm_bounds})")
    return BeamGrid(int(spec.epsg), xmin, ymax, res, res, width, height)


def _dem_sampler(dem: Path | None, grid: BeamGrid) -> Callable[[int, int], np.ndarray | None]:
    if dem is None:
        return lambda r0, r1: None
    import rasterio
    from rasterio.warp import transform as warp_transform

    src = rasterio.open(dem)
    xs = grid.x_centres()

    def sample(r0: int, r1: int) -> np.ndarray:
        ys = grid.y_centres()[r0:r1]
        xx, yy = np.meshgrid(xs, ys)
        px, py = warp_transform(
            f"EPSG:{grid.epsg}", src.crs, xx.ravel().tolist(), yy.ravel().tolist()
        )
        values = np.array([v[0] for v in src.sample(zip(px, py, strict=True))], dtype=np.float32)
        if src.nodata is not None:
            values[values == src.nodata] = 0.0
        return values.reshape(xx.shape)

    return sample


def process_product(
    product_path: str | os.PathLike[str],
    product_key: str,
    grid: BeamGrid,
    params: C2rccMsiParams,
    out_path: str | os.PathLike[str],
    *,
    settings: NativeSettings,
    metadata: Mapping[str, str] | None = None,
    report: Callable[[str], None] = lambda msg: None,
) -> ProductResult:
    """Run C2RCC-MSI over ``grid`` of one L1C product (``.zip`` or ``.SAFE``) and write the
    NetCDF4-BEAM result to ``out_path`` (atomically; verified before it is returned).

    The result carries the product in its processing-graph metadata, as SNAP's Write does, so
    :func:`seasonal_c2rcc.clip.source_product` can check it came from ``product_key``.
    """
    from ..s2l1c import open_safe

    product = open_safe(product_path)
    res = float(grid.res_x)
    dem = _dem_sampler(settings.dem, grid)
    use_ecmwf = bool(params.useEcmwfAuxData)
    timings = {"read": 0.0, "c2rcc": 0.0}
    started = time.perf_counter()
    first: dict[str, Any] = {}

    def compute(r0: int, r1: int) -> dict[str, np.ndarray]:
        bounds = (grid.ulx, grid.uly - r1 * res, grid.ulx + grid.width * res, grid.uly - r0 * res)
        t0 = time.perf_counter()
        inputs = product.read_window(bounds, res, ecmwf=use_ecmwf)
        t1 = time.perf_counter()
        altitude = dem(r0, r1)
        ds = run_c2rcc_msi(
            inputs.toa,
            inputs.angles,
            altitude=0.0 if altitude is None else altitude,
            params=params,
            nets_dir=settings.nets_dir,
            ecmwf=inputs.ecmwf if use_ecmwf else None,
            threads=settings.threads,
        )
        t2 = time.perf_counter()
        timings["read"] += t1 - t0
        timings["c2rcc"] += t2 - t1
        if not first:
            first["attrs"] = {str(n): dict(ds[n].attrs) for n in ds.data_vars}
            first["global"] = dict(ds.attrs)
        report(f"{product_key}: rows {r0}-{r1} of {grid.height} done")
        return {str(n): np.asarray(ds[n].values) for n in ds.data_vars}

    rows = max(1, BLOCK_PIXELS // max(grid.width, 1))
    first_block = compute(0, min(grid.height, rows))

    def block(r0: int, r1: int) -> Mapping[str, np.ndarray]:
        return first_block if r0 == 0 else compute(r0, r1)

    meta = {
        # what SNAP's Write puts in the metadata: the Read node names the input product
        "Processing_Graph:node.0:operator": "Read",
        "Processing_Graph:node.0:parameters:file": f"{product_key}.SAFE",
        "Processing_Graph:node.1:operator": "c2rcc.msi",
        "seasonal_c2rcc_backend": "native",
        "seasonal_c2rcc_altitude": "DEM" if settings.dem else "0 m (no DEM)",
        **{k: str(v) for k, v in first["global"].items() if k != "product_type"},
        **(metadata or {}),
    }
    path = write_beam_netcdf_blocks(
        out_path,
        grid,
        block,
        product_name=product_key,
        metadata=meta,
        var_attrs=first["attrs"],
        global_attrs={"seasonal_c2rcc_backend": "native"},
        max_block_pixels=rows * grid.width,
    )
    # the writer pulls the blocks: what is neither reading nor C2RCC is writing
    write_s = time.perf_counter() - started - timings["read"] - timings["c2rcc"]
    try:
        verify_c2rcc_netcdf(path)
    except OutputError:
        Path(path).unlink(missing_ok=True)
        raise
    report(
        f"{product_key}: {grid.width} x {grid.height} px, read {timings['read']:.1f} s, "
        f"C2RCC {timings['c2rcc']:.1f} s, writing {write_s:.1f} s"
    )
    return ProductResult(
        Path(path), grid.width * grid.height, timings["read"], timings["c2rcc"], write_s
    )
