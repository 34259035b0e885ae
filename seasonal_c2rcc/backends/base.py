"""What every processing backend receives and leaves behind.

A planned job (:class:`JobSpec`: one or several L1C products, the region of the sub-tiles they
serve and the filled SNAP graph) is processed by one backend, which leaves one NetCDF4-BEAM result
per product in the job folder, covering at least the job's region on the tile's pixel grid at the
configured resolution, plus the manifest ``{"files": {product key: path}, ...}``
(:data:`seasonal_c2rcc.paths.JOB_MANIFEST`). The composite rule clips every sub-tile out of those
files, so nothing downstream can tell which backend made them except the ``backend`` provenance
attribute.

Backends (the config key ``backend``):

``eocanvas``
    SNAP's graph on WEkEO's serverless EOCanvas (:mod:`.eocanvas`): order, submit once, poll,
    download, verify. Paced by the shared quota ledger.
``native``
    The product is downloaded once into the product cache (:mod:`seasonal_c2rcc.download`), read
    with :mod:`seasonal_c2rcc.s2l1c` and processed by the numpy C2RCC-MSI port (:mod:`.native`).
``gpt``
    The same download, then SNAP's own ``gpt`` runs the same graph locally (:mod:`.gpt`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: The backends the config may name, in the schema's order.
BACKENDS = ("eocanvas", "native", "gpt")
#: Backends that process a locally downloaded product.
LOCAL_BACKENDS = ("native", "gpt")


@dataclass(frozen=True)
class JobSpec:
    """One planned unit of work, the same for every backend."""

    key: str
    tile: str
    year: int
    season: str
    products: tuple[dict[str, Any], ...]  # catalogue product dicts with "key", "id", "location"
    geo_region: str  # lon/lat WKT (SNAP's Subset geoRegion)
    subtiles: tuple[str, ...]
    graph: str  # filled graph text ($img1..$imgK and $output left for the processor)
    #: The job's region on the tile's pixel grid (UTM metres) and that grid's CRS and resolution:
    #: what a local backend reads and writes (the geo_region covers it with a half-pixel pad).
    utm_bounds: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    epsg: int = 0
    resolution: float = 0.0

    @property
    def input_keys(self) -> list[str]:
        """``img1`` .. ``imgK``: the graph's input placeholders, in product order."""
        return [f"img{i + 1}" for i in range(len(self.products))]

    @property
    def product_keys(self) -> list[str]:
        """The products' keys (ids without ``.SAFE``), in branch order."""
        return [str(p["key"]) for p in self.products]
