"""Checks that a file is a usable C2RCC product before it is accepted as an output."""

from __future__ import annotations

from pathlib import Path

from .errors import OutputError

#: Variables every C2RCC product must carry for compositing.
REQUIRED_VARIABLES = ("conc_chl", "conc_tsm", "kd489", "c2rcc_flags")
REFLECTANCE_BANDS = ("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8A")


def verify_c2rcc_netcdf(path: str | Path) -> dict[str, int]:
    """Open ``path`` as NetCDF and check the C2RCC variables and a non-empty y/x grid.

    Returns ``{"width": .., "height": ..}``; raises :class:`OutputError` saying what is wrong.
    """
    import netCDF4

    p = Path(path)
    if not p.is_file() or p.stat().st_size == 0:
        raise OutputError(f"{p}: missing or empty")
    try:
        with netCDF4.Dataset(p) as nc:
            dims = {name: len(d) for name, d in nc.dimensions.items()}
            names = set(nc.variables)
            missing = [v for v in REQUIRED_VARIABLES if v not in names]
            if not any(f"{kind}_B2" in names for kind in ("rrs", "rhow")):
                missing.append("rrs_B2 or rhow_B2")
            if missing:
                raise OutputError(f"{p}: not a C2RCC product, missing variables {missing}")
            width, height = dims.get("x", 0), dims.get("y", 0)
            if width == 0 or height == 0:
                raise OutputError(f"{p}: empty grid ({height} x {width}); was geoRegion lon/lat?")
            flags = nc.variables["c2rcc_flags"]
            if flags.dtype.kind != "u" or flags.dtype.itemsize != 4:
                raise OutputError(f"{p}: c2rcc_flags is {flags.dtype}, expected uint32")
    except OSError as exc:
        raise OutputError(f"{p}: cannot be opened as NetCDF ({exc})") from None
    return {"width": width, "height": height}
