"""Parse the two metadata files of a Sentinel-2 L1C SAFE product: ``MTD_MSIL1C.xml`` and ``MTD_TL.xml``.

Parsing is namespace-agnostic (elements are matched by local name): the namespace URI changes with
the product format (``psd-14``, ``psd-15`` ...; baseline N0511 moved it), and only SNAP's PSD rule
for the radiometric offset needs the number in it (:attr:`ProductMetadata.psd`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

import numpy as np
import numpy.typing as npt
from lxml import etree

#: Band names in metadata ``bandId`` order: id 8 is B8A, B9..B12 follow.
BAND_NAMES: Final[tuple[str, ...]] = (
    "B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9", "B10", "B11", "B12",
)  # fmt: skip
#: Native resolution (m) of each band.
BAND_RESOLUTION: Final[dict[str, int]] = {
    "B1": 60, "B2": 10, "B3": 10, "B4": 10, "B5": 20, "B6": 20, "B7": 20, "B8": 10,
    "B8A": 20, "B9": 60, "B10": 60, "B11": 20, "B12": 20,
}  # fmt: skip
#: File-name suffix of each band's JP2 (``T30UUA_20190612T113321_B8A.jp2``).
BAND_FILE_SUFFIX: Final[dict[str, str]] = {
    b: ("B8A" if b == "B8A" else f"B{int(b[1:]):02d}") for b in BAND_NAMES
}

_PSD_RE = re.compile(r"psd-(\d{2,})\.sentinel2\.eo\.esa\.int")


class MetadataError(ValueError):
    """A metadata file lacks an element or holds a malformed value (``part`` names the element)."""

    def __init__(self, message: str, part: str) -> None:
        super().__init__(message)
        self.part = part


def _local(tag: object) -> str:
    return etree.QName(tag).localname if isinstance(tag, str) else ""


def _iter(root: etree._Element, name: str) -> Iterator[etree._Element]:
    for el in root.iter():
        if _local(el.tag) == name:
            yield el


def _first(root: etree._Element, name: str, where: str) -> etree._Element:
    for el in _iter(root, name):
        return el
    raise MetadataError(f"{where}: no <{name}> element", name)


def _text(root: etree._Element, name: str, where: str) -> str:
    text = (_first(root, name, where).text or "").strip()
    if not text:
        raise MetadataError(f"{where}: <{name}> is empty", name)
    return text


def _child(el: etree._Element, name: str) -> etree._Element | None:
    for c in el:
        if _local(c.tag) == name:
            return c
    return None


def _parse_xml(data: bytes, where: str) -> etree._Element:
    try:
        return etree.fromstring(
            data, parser=etree.XMLParser(huge_tree=True, resolve_entities=False)
        )
    except etree.XMLSyntaxError as exc:
        raise MetadataError(f"{where} is not well-formed XML: {exc}", where) from exc


@dataclass(frozen=True)
class ProductMetadata:
    """What the reader needs from ``MTD_MSIL1C.xml``."""

    product_id: str
    processing_baseline: str
    sensing_start: datetime
    quantification_value: float
    #: ``RADIO_ADD_OFFSET`` by band id (empty before baseline 04.00)
    radio_add_offsets: dict[int, float]
    #: metadata format number as SNAP derives it (``S2Metadata``): 143, 148, 150, ... (0 unknown)
    psd: int
    #: ``IMAGE_FILE`` entries (paths inside the SAFE, without ``.jp2``)
    image_files: tuple[str, ...]

    @property
    def offset_applied(self) -> bool:
        """SNAP adds the offset only for metadata format > 14.7 (and the offsets must be listed)."""
        return self.psd > 147 and bool(self.radio_add_offsets)

    @property
    def radiometric_offset(self) -> float:
        """The DN offset SNAP applies to every band: the *last* listed value, or 0."""
        if not self.offset_applied:
            return 0.0
        return list(self.radio_add_offsets.values())[-1]


def _psd(xml: bytes, baseline: str) -> int:
    """SNAP's ``S2Metadata`` rule: psd-14 with baseline >= 04.00 is 148; psd >= 15 is 10 x it."""
    m = _PSD_RE.search(xml.decode("utf-8", "replace"))
    if not m:
        return 0
    number = int(m.group(1)[:2])
    try:
        pb = int(round(float(baseline) * 100))
    except ValueError:
        pb = 0
    if number == 14 and pb > 399:
        return 148
    if number == 14:
        return 143
    if number >= 15:
        return number * 10
    return number


def _datetime(text: str, where: str) -> datetime:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise MetadataError(f"{where}: bad time {text!r}", "time") from exc


def parse_product_metadata(xml: bytes, where: str = "MTD_MSIL1C.xml") -> ProductMetadata:
    """Parse ``MTD_MSIL1C.xml`` (raises :class:`MetadataError` naming the missing element)."""
    root = _parse_xml(xml, where)
    uri = _text(root, "PRODUCT_URI", where)
    product_id = uri[:-5] if uri.upper().endswith(".SAFE") else uri
    baseline = _text(root, "PROCESSING_BASELINE", where)
    start = _datetime(_text(root, "PRODUCT_START_TIME", where), where)
    chars = _first(root, "Product_Image_Characteristics", where)
    q_el = _child(chars, "QUANTIFICATION_VALUE")
    if q_el is None or not (q_el.text or "").strip():
        raise MetadataError(f"{where}: no QUANTIFICATION_VALUE", "QUANTIFICATION_VALUE")
    try:
        quant = float(q_el.text)
        offsets: dict[int, float] = {}
        for el in _iter(chars, "RADIO_ADD_OFFSET"):
            offsets[int(el.get("band_id", len(offsets)))] = float((el.text or "").strip())
    except ValueError as exc:
        raise MetadataError(f"{where}: bad radiometric value: {exc}", "RADIO_ADD_OFFSET") from exc
    if quant <= 0:
        raise MetadataError(f"{where}: QUANTIFICATION_VALUE {quant} <= 0", "QUANTIFICATION_VALUE")
    files = tuple((el.text or "").strip() for el in _iter(root, "IMAGE_FILE"))
    return ProductMetadata(
        product_id=product_id,
        processing_baseline=baseline,
        sensing_start=start,
        quantification_value=quant,
        radio_add_offsets=offsets,
        psd=_psd(xml, baseline),
        image_files=files,
    )


@dataclass(frozen=True)
class ViewingGrid:
    """One ``Viewing_Incidence_Angles_Grids`` entry (one band, one detector), nodes (rows, cols)."""

    band_id: int
    detector_id: int
    zenith: npt.NDArray[np.float32]
    azimuth: npt.NDArray[np.float32]


@dataclass(frozen=True)
class TileMetadata:
    """What the reader needs from ``MTD_TL.xml``."""

    tile_id: str
    sensing_time: datetime
    epsg: int
    #: upper-left corner (m) of the 10 m grid; SNAP anchors the angle grids there too
    ulx: float
    uly: float
    #: (ncols, nrows) per resolution in m
    sizes: dict[int, tuple[int, int]]
    #: (ULX, ULY) per resolution (equal in real products; checked)
    origins: dict[int, tuple[float, float]]
    angle_step: tuple[float, float]  # (col step, row step) in m
    sun_zenith: npt.NDArray[np.float32]
    sun_azimuth: npt.NDArray[np.float32]
    viewing: tuple[ViewingGrid, ...] = field(default=())

    @property
    def width_m(self) -> float:
        """Extent of the product image east-west (m)."""
        return self.sizes[10][0] * 10.0

    @property
    def height_m(self) -> float:
        """Extent of the product image north-south (m)."""
        return self.sizes[10][1] * 10.0


def _values_list(el: etree._Element | None, where: str, what: str) -> npt.NDArray[np.float32]:
    """A ``Zenith``/``Azimuth`` element's ``Values_List`` as float32 rows (``NaN`` kept)."""
    if el is None:
        raise MetadataError(f"{where}: {what} has no values", what)
    vl = _child(el, "Values_List")
    if vl is None:
        raise MetadataError(f"{where}: {what} has no Values_List", what)
    try:
        rows = [[float(v) for v in (r.text or "").split()] for r in vl if _local(r.tag) == "VALUES"]
    except ValueError as exc:
        raise MetadataError(f"{where}: {what}: {exc}", what) from exc
    if not rows or len({len(r) for r in rows}) != 1:
        raise MetadataError(f"{where}: {what} rows are empty or ragged", what)
    return np.array(rows, dtype=np.float32)


def _steps(el: etree._Element, where: str) -> tuple[float, float]:
    col = _child(el, "COL_STEP")
    row = _child(el, "ROW_STEP")
    if col is None or row is None:
        raise MetadataError(f"{where}: angle grid without COL_STEP/ROW_STEP", "COL_STEP")
    return float(col.text), float(row.text)


def parse_tile_metadata(xml: bytes, where: str = "MTD_TL.xml") -> TileMetadata:
    """Parse ``MTD_TL.xml`` (raises :class:`MetadataError` naming the missing element)."""
    root = _parse_xml(xml, where)
    tile_id = _text(root, "TILE_ID", where)
    sensing = _datetime(_text(root, "SENSING_TIME", where), where)
    code = _text(root, "HORIZONTAL_CS_CODE", where)
    try:
        epsg = int(code.split(":")[-1])
    except ValueError as exc:
        raise MetadataError(
            f"{where}: bad HORIZONTAL_CS_CODE {code!r}", "HORIZONTAL_CS_CODE"
        ) from exc
    sizes: dict[int, tuple[int, int]] = {}
    for el in _iter(root, "Size"):
        res = int(el.get("resolution", "0"))
        ncols, nrows = _child(el, "NCOLS"), _child(el, "NROWS")
        if ncols is None or nrows is None:
            raise MetadataError(f"{where}: Size {res} lacks NCOLS/NROWS", "Size")
        sizes[res] = (int(ncols.text), int(nrows.text))
    origins: dict[int, tuple[float, float]] = {}
    for el in _iter(root, "Geoposition"):
        res = int(el.get("resolution", "0"))
        ulx, uly = _child(el, "ULX"), _child(el, "ULY")
        if ulx is None or uly is None:
            raise MetadataError(f"{where}: Geoposition {res} lacks ULX/ULY", "Geoposition")
        origins[res] = (float(ulx.text), float(uly.text))
    for res in (10, 20, 60):
        if res not in sizes or res not in origins:
            raise MetadataError(f"{where}: no Size/Geoposition for {res} m", f"Geoposition {res}")
        if origins[res] != origins[10]:
            raise MetadataError(
                f"{where}: the {res} m grid starts at {origins[res]}, not at the 10 m grid's "
                f"{origins[10]}",
                f"Geoposition {res}",
            )
        if sizes[res][0] * res != sizes[10][0] * 10 or sizes[res][1] * res != sizes[10][1] * 10:
            raise MetadataError(
                f"{where}: the {res} m size {sizes[res]} does not match 10 m", "Size"
            )
    sun = _first(root, "Sun_Angles_Grid", where)
    zen, azi = _child(sun, "Zenith"), _child(sun, "Azimuth")
    sun_zenith = _values_list(zen, where, "Sun_Angles_Grid/Zenith")
    sun_azimuth = _values_list(azi, where, "Sun_Angles_Grid/Azimuth")
    assert zen is not None
    step = _steps(zen, where)
    viewing: list[ViewingGrid] = []
    for el in _iter(root, "Viewing_Incidence_Angles_Grids"):
        try:
            band_id, det = int(el.get("bandId", "")), int(el.get("detectorId", ""))
        except ValueError as exc:
            raise MetadataError(
                f"{where}: viewing grid without bandId/detectorId", "bandId"
            ) from exc
        what = f"Viewing_Incidence_Angles_Grids band {band_id} detector {det}"
        viewing.append(
            ViewingGrid(
                band_id,
                det,
                _values_list(_child(el, "Zenith"), where, what + " Zenith"),
                _values_list(_child(el, "Azimuth"), where, what + " Azimuth"),
            )
        )
    return TileMetadata(
        tile_id=tile_id,
        sensing_time=sensing,
        epsg=epsg,
        ulx=origins[10][0],
        uly=origins[10][1],
        sizes=sizes,
        origins=origins,
        angle_step=step,
        sun_zenith=sun_zenith,
        sun_azimuth=sun_azimuth,
        viewing=tuple(viewing),
    )
