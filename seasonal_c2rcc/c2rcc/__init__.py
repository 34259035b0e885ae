"""Native numpy C2RCC-MSI: SNAP's ``c2rcc.msi`` operator without Java.

Public API::

    from seasonal_c2rcc.c2rcc import C2rccMsiParams, load_nets, run_c2rcc_msi, find_nets_dir
    params = C2rccMsiParams.from_graph(xml_text)        # or C2rccMsiParams(netSet="C2X-Nets", ...)
    ds = run_c2rcc_msi(toa, angles, lat, lon, altitude=None, params=params)
    inputs = open_dimap("S2Ref_Product.zip").c2rcc_inputs()   # arrays from a BEAM-DIMAP product
    write_netcdf(ds, "out.nc", beam_grid(inputs))              # SNAP-shaped NetCDF4-BEAM

Nets are loaded at run time (GPL-3.0 SNAP resources, not shipped); see :func:`find_nets_dir`.
BEAM-DIMAP products (such as SNAP's test product) are read by :mod:`seasonal_c2rcc.c2rcc.dimap`.
"""

from seasonal_c2rcc.c2rcc.dimap import C2rccInputs, open_dimap
from seasonal_c2rcc.c2rcc.msi import (
    ANGLE_NAMES,
    NN_BANDS,
    SOURCE_BANDS,
    c2rcc_msi_pixels,
    nets_evaluated,
    output_bands,
    run_c2rcc_msi,
)
from seasonal_c2rcc.c2rcc.nets import (
    NET_SET_DIRS,
    NETS_ENV_VAR,
    NetSet,
    NeuralNet,
    find_nets_dir,
    load_nets,
    parse_net,
)
from seasonal_c2rcc.c2rcc.output import beam_grid, run_on_dimap, write_netcdf
from seasonal_c2rcc.c2rcc.params import C2rccMsiParams

__all__ = [
    "ANGLE_NAMES",
    "NETS_ENV_VAR",
    "NET_SET_DIRS",
    "NN_BANDS",
    "SOURCE_BANDS",
    "C2rccInputs",
    "C2rccMsiParams",
    "NetSet",
    "NeuralNet",
    "beam_grid",
    "c2rcc_msi_pixels",
    "find_nets_dir",
    "load_nets",
    "nets_evaluated",
    "open_dimap",
    "output_bands",
    "parse_net",
    "run_c2rcc_msi",
    "run_on_dimap",
    "write_netcdf",
]
