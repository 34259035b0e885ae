"""SNAP graph templates: checked when the config is loaded, filled and re-checked before submission.

A template is any gpt graph with ``$img1`` in its Read node, ``$polygon`` in its Subset ``geoRegion``
and ``$output`` in the ``Write`` node's file. ``$img1`` and ``$output`` are substituted by EOCanvas;
``$polygon`` must be filled here, with lon/lat WKT, because SNAP silently returns an empty product for
UTM metres.
"""

from __future__ import annotations

import hashlib
import re

from lxml import etree
from shapely import wkt as shapely_wkt
from shapely.errors import ShapelyError

from .errors import ConfigError

PLACEHOLDER_RE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_.]*)\}?")
SERVER_PLACEHOLDERS = frozenset({"img1", "output"})
TEMPLATE_PLACEHOLDERS = SERVER_PLACEHOLDERS | {"polygon"}
#: Resample reference band giving each supported output resolution.
REFERENCE_BAND = {10: "B2", 20: "B5", 60: "B1"}


def _parse(text: str | bytes, where: str) -> etree._Element:
    data = text.encode() if isinstance(text, str) else text
    try:
        root = etree.fromstring(data, parser=etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError as exc:
        raise ConfigError(f"{where}: graph is not well-formed XML: {exc}") from None
    if root.tag != "graph":
        raise ConfigError(f"{where}: root element is <{root.tag}>, expected <graph>")
    return root


def _nodes(root: etree._Element, operator: str) -> list[etree._Element]:
    return [n for n in root.findall("node") if (n.findtext("operator") or "").strip() == operator]


def placeholders(text: str) -> set[str]:
    """Names of all ``$name`` / ``${name}`` placeholders in ``text`` (comments ignored)."""
    root = _parse(text, "graph")
    for c in root.xpath("//comment()"):
        c.getparent().remove(c)
    return set(PLACEHOLDER_RE.findall(etree.tostring(root, encoding="unicode")))


def check_template(text: str, where: str = "graph") -> None:
    """Raise :class:`ConfigError` unless ``text`` is a usable single-input C2RCC graph template."""
    root = _parse(text, where)
    found = placeholders(text)
    unknown = found - TEMPLATE_PLACEHOLDERS
    if unknown:
        raise ConfigError(
            f"{where}: unknown placeholders {sorted('$' + u for u in unknown)}; a template may use "
            "only $img1 (input), $polygon (lon/lat WKT) and $output (EOCanvas fills $img1/$output)"
        )
    reads = _nodes(root, "Read")
    if not any((n.findtext("parameters/file") or "").strip() == "$img1" for n in reads):
        raise ConfigError(f"{where}: needs a Read node whose <file> is $img1")
    subsets = _nodes(root, "Subset")
    if not any("$polygon" in (n.findtext("parameters/geoRegion") or "") for n in subsets):
        raise ConfigError(f"{where}: needs a Subset node whose <geoRegion> is $polygon")
    write = root.find("node[@id='Write']")
    if write is None or (write.findtext("parameters/file") or "").strip() != "$output":
        raise ConfigError(f"{where}: needs a node with id 'Write' whose <file> is $output")
    fmt = (write.findtext("parameters/formatName") or "BEAM-DIMAP").strip()
    if not fmt.startswith("NetCDF4"):
        raise ConfigError(
            f"{where}: Write formatName is {fmt!r}; use NetCDF4-BEAM (or NetCDF4-CF): BEAM-DIMAP is "
            "flattened on download and GeoTIFF corrupts c2rcc_flags"
        )
    if not _nodes(root, "c2rcc.msi"):
        raise ConfigError(f"{where}: needs a c2rcc.msi node")
    if not _nodes(root, "Resample"):
        raise ConfigError(f"{where}: needs a Resample node (c2rcc.msi needs one resolution)")


def check_lonlat_wkt(polygon_wkt: str) -> None:
    """Refuse anything but a lon/lat POLYGON: UTM metres give SNAP an empty product."""
    try:
        geom = shapely_wkt.loads(polygon_wkt)
    except (ShapelyError, TypeError, ValueError) as exc:
        raise ConfigError(f"geoRegion is not valid WKT: {exc}") from None
    if geom.geom_type != "Polygon" or geom.is_empty:
        raise ConfigError(f"geoRegion must be a POLYGON, got {geom.geom_type}")
    xmin, ymin, xmax, ymax = geom.bounds
    if not (-180 <= xmin <= xmax <= 180 and -90 <= ymin <= ymax <= 90):
        raise ConfigError(
            f"geoRegion bounds {geom.bounds} are not lon/lat; SNAP's Subset needs WGS84 lon/lat WKT "
            "(UTM metres produce an empty product)"
        )


def fill_graph(template: str, polygon_wkt: str, resolution: int) -> str:
    """Fill ``$polygon`` and the Resample resolution; return the graph text to submit.

    The result is re-parsed and checked: well-formed, special characters escaped (lxml escapes text
    content), and no placeholder left but ``$img1`` and ``$output``.
    """
    check_template(template)
    check_lonlat_wkt(polygon_wkt)
    if resolution not in REFERENCE_BAND:
        raise ConfigError(f"resolution {resolution} not supported; use one of {sorted(REFERENCE_BAND)}")
    root = _parse(template, "graph")
    # Comments may mention placeholders; the service must only ever see $img1 and $output.
    for c in root.xpath("//comment()"):
        c.getparent().remove(c)
    for node in _nodes(root, "Subset"):
        geo = node.find("parameters/geoRegion")
        if geo is not None and geo.text and "$polygon" in geo.text:
            geo.text = geo.text.replace("$polygon", polygon_wkt)
    for node in _nodes(root, "Resample"):
        params = node.find("parameters")
        for name in ("targetResolution", "targetWidth", "targetHeight", "referenceBand"):
            el = params.find(name)
            if el is not None:
                params.remove(el)
        ref = etree.Element("referenceBand")
        ref.text = REFERENCE_BAND[int(resolution)]
        params.insert(0, ref)
    text = etree.tostring(root, encoding="unicode")
    _parse(text, "filled graph")
    left = placeholders(text) - SERVER_PLACEHOLDERS
    if left:
        raise ConfigError(f"filled graph still has placeholders {sorted(left)}")
    return text


def graph_resolution(text: str) -> int | None:
    """Resolution (m) a graph's Resample node produces, if it is set by reference band or value."""
    root = _parse(text, "graph")
    inverse = {v: k for k, v in REFERENCE_BAND.items()} | {
        "B3": 10, "B4": 10, "B8": 10, "B6": 20, "B7": 20, "B8A": 20, "B11": 20, "B12": 20,
        "B9": 60, "B10": 60,
    }  # fmt: skip
    for node in _nodes(root, "Resample"):
        band = (node.findtext("parameters/referenceBand") or "").strip()
        if band in inverse:
            return inverse[band]
        res = (node.findtext("parameters/targetResolution") or "").strip()
        if res:
            return int(float(res))
    return None


def graph_sha256(text: str) -> str:
    """Stable hash of a graph's text, for provenance and job keys."""
    return hashlib.sha256(text.encode()).hexdigest()


def c2rcc_parameters(text: str, where: str = "graph") -> dict[str, str] | None:
    """The c2rcc.msi node's parameters as strings (provenance), or None without such a node."""
    root = _parse(text, where)
    nodes = _nodes(root, "c2rcc.msi")
    if not nodes:
        return None
    params = nodes[0].find("parameters")
    if params is None:
        return {}
    return {el.tag: (el.text or "").strip() for el in params if isinstance(el.tag, str)}
