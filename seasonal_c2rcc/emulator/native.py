"""Emulated EOCanvas jobs computed by the real C2RCC: the native port on the served SAFE product.

With SNAP's nets available (``EmulatorServer(native_nets=...)`` or ``--c2rcc-nets``), a job's
result is no longer the emulator's synthetic field but what the graph would give: the emulator
reads the same synthetic SAFE zip its HDA downloads serve (:func:`.products.safe_zip_path`), on the
job's output grid, through :mod:`seasonal_c2rcc.s2l1c` and :func:`seasonal_c2rcc.c2rcc.run_c2rcc_msi`
with every parameter of the graph's ``c2rcc.msi`` node. The remote path and the local ``native``
backend can then be compared on one product. Pixels of the job's grid outside the served product's
window are no-data (0, flags 0), as SNAP writes them outside a product's footprint.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

#: Output pixels per block (bounds the emulator's memory as the native backend does).
BLOCK_PIXELS = 1_000_000


def write_native_output(
    out: Any, path: Path, safe_zip: Path, nets_dir: Path, metadata: dict[str, str]
) -> None:
    """Write ``out`` (an :class:`~.jobs.OutputPlan`) computed by the native C2RCC on ``safe_zip``."""
    from ..beam_netcdf import BeamGrid, write_beam_netcdf_blocks
    from ..c2rcc import C2rccMsiParams, run_c2rcc_msi
    from ..s2l1c import open_safe

    params = C2rccMsiParams.from_mapping(out.c2rcc_node_params or {})
    grid = BeamGrid(out.epsg, out.ulx, out.uly, out.res, out.res, out.width, out.height)
    product = open_safe(safe_zip)
    pxmin, pymin, pxmax, pymax = product.bounds
    res = float(out.res)
    # the columns of the job grid inside the product's window (both lie on the tile's pixel grid)
    c0 = max(0, round((pxmin - grid.ulx) / res))
    c1 = min(grid.width, round((pxmax - grid.ulx) / res))
    p_r0 = round((grid.uly - pymax) / res)
    p_r1 = round((grid.uly - pymin) / res)
    attrs: dict[str, Any] = {}

    def compute(r0: int, r1: int) -> dict[str, np.ndarray]:
        ra, rb = max(r0, p_r0), min(r1, p_r1)
        if c1 <= c0 or rb <= ra:
            if not attrs:  # nothing inside: still need the band names and types
                return compute_empty(r1 - r0)
            return {n: np.zeros((r1 - r0, grid.width), attrs["dtypes"][n]) for n in attrs["dtypes"]}
        bounds = (
            grid.ulx + c0 * res,
            grid.uly - rb * res,
            grid.ulx + c1 * res,
            grid.uly - ra * res,
        )
        inputs = product.read_window(bounds, res, ecmwf=bool(params.useEcmwfAuxData))
        ds = run_c2rcc_msi(
            inputs.toa, inputs.angles, altitude=0.0, params=params, nets_dir=nets_dir,
            ecmwf=inputs.ecmwf if params.useEcmwfAuxData else None, threads=1,
        )  # fmt: skip
        if not attrs:
            attrs["vars"] = {str(n): dict(ds[n].attrs) for n in ds.data_vars}
            attrs["dtypes"] = {str(n): ds[n].dtype for n in ds.data_vars}
            attrs["global"] = {k: str(v) for k, v in ds.attrs.items() if k != "product_type"}
        block = {}
        for n in ds.data_vars:
            full = np.zeros((r1 - r0, grid.width), ds[n].dtype)
            full[ra - r0 : rb - r0, c0:c1] = ds[n].values
            block[str(n)] = full
        return block

    def compute_empty(rows: int) -> dict[str, np.ndarray]:
        # a 1-pixel run on the product's first pixel gives the band set of these parameters
        b = product.bounds
        inputs = product.read_window((b[0], b[3] - res, b[0] + res, b[3]), res)
        ds = run_c2rcc_msi(inputs.toa, inputs.angles, altitude=0.0, params=params,
                           nets_dir=nets_dir, threads=1)  # fmt: skip
        attrs["vars"] = {str(n): dict(ds[n].attrs) for n in ds.data_vars}
        attrs["dtypes"] = {str(n): ds[n].dtype for n in ds.data_vars}
        attrs["global"] = {k: str(v) for k, v in ds.attrs.items() if k != "product_type"}
        return {n: np.zeros((rows, grid.width), attrs["dtypes"][n]) for n in attrs["dtypes"]}

    rows = max(1, BLOCK_PIXELS // max(grid.width, 1))
    first = compute(0, min(grid.height, rows))
    write_beam_netcdf_blocks(
        path, grid, lambda r0, r1: first if r0 == 0 else compute(r0, r1),
        product_name=Path(out.name).stem,
        metadata={**metadata, **attrs["global"],
                  "emulator": "seasonal_c2rcc.emulator (native C2RCC on the served SAFE)"},
        var_attrs=attrs["vars"], max_block_pixels=rows * grid.width,
    )  # fmt: skip
