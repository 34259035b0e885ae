"""Graphs, regions and client shortcuts shared by the emulator tests."""

from __future__ import annotations

from typing import Any

from pyproj import Transformer

from seasonal_c2rcc.emulator.catalogue import DATASET_ID
from seasonal_c2rcc.mgrs import tile_grid

TILE = "30UUA"
SUMMER = {"startdate": "2020-06-01T00:00:00.000Z", "enddate": "2020-06-30T23:59:59.999Z"}


def query(**extra: Any) -> dict[str, Any]:
    """A Sentinel-2 L1C search query for TILE in June 2020."""
    q = {"dataset_id": DATASET_ID, "processingLevel": "S2MSI1C", "tileId": TILE, **SUMMER}
    q.update(extra)
    return q


def utm_box(x0: float, y0: float, size: float, tile: str = TILE) -> tuple[float, ...]:
    """UTM box (xmin, ymin, xmax, ymax) at offsets (x0 east of ULX, y0 south of ULY)."""
    g = tile_grid(tile)
    return (g.ulx + x0, g.uly - y0 - size, g.ulx + x0 + size, g.uly - y0)


def lonlat_wkt(box: tuple[float, ...], tile: str = TILE) -> str:
    """lon/lat POLYGON WKT of a UTM box of ``tile``."""
    g = tile_grid(tile)
    tr = Transformer.from_crs(g.epsg, 4326, always_xy=True)
    xmin, ymin, xmax, ymax = box
    pts = [tr.transform(x, y) for x, y in
           ((xmin, ymin), (xmax, ymin), (xmax, ymax), (xmin, ymax), (xmin, ymin))]
    return "POLYGON ((" + ", ".join(f"{lon:.8f} {lat:.8f}" for lon, lat in pts) + "))"


def utm_wkt(box: tuple[float, ...]) -> str:
    """The same box written in UTM metres (what SNAP must reject)."""
    xmin, ymin, xmax, ymax = box
    return (f"POLYGON (({xmin} {ymin}, {xmax} {ymin}, {xmax} {ymax}, {xmin} {ymax}, "
            f"{xmin} {ymin}))")


C2RCC_PARAMS = """
        <validPixelExpression>B8 &gt; 0 &amp;&amp; B8 &lt; 0.1</validPixelExpression>
        <salinity>35.0</salinity><temperature>15.0</temperature>
        <TSMfac>1.06</TSMfac><TSMexp>0.942</TSMexp><CHLexp>1.04</CHLexp><CHLfac>21.0</CHLfac>
        <netSet>C2X-COMPLEX-Nets</netSet>
        <outputAsRrs>{rrs}</outputAsRrs>
        <outputRtoa>false</outputRtoa>
        <outputKd>true</outputKd><outputUncertainties>true</outputUncertainties>"""


def branch(i: str, key: str, region: str, resample: str, out: str, rrs: bool = True) -> str:
    """One Read -> Subset -> Resample -> c2rcc.msi -> Write branch with node id suffix ``i``."""
    return f"""
  <node id="Read{i}"><operator>Read</operator><sources/>
    <parameters><file>${key}</file><copyMetadata>true</copyMetadata></parameters></node>
  <node id="Subset{i}"><operator>Subset</operator>
    <sources><sourceProduct refid="Read{i}"/></sources>
    <parameters><geoRegion>{region}</geoRegion><region>0,0,0,0</region>
      <subSamplingX>1</subSamplingX><subSamplingY>1</subSamplingY>
      <copyMetadata>true</copyMetadata></parameters></node>
  <node id="Resample{i}"><operator>Resample</operator>
    <sources><sourceProduct refid="Subset{i}"/></sources>
    <parameters>{resample}<upsampling>Nearest</upsampling><downsampling>Mean</downsampling>
    </parameters></node>
  <node id="c2rcc{i}"><operator>c2rcc.msi</operator>
    <sources><sourceProduct refid="Resample{i}"/></sources>
    <parameters>{C2RCC_PARAMS.format(rrs=str(rrs).lower())}</parameters></node>
  <node id="Write{i}"><operator>Write</operator>
    <sources><sourceProduct refid="c2rcc{i}"/></sources>
    <parameters><file>{out}</file><formatName>NetCDF4-BEAM</formatName></parameters></node>"""


def c2rcc_graph(region: str, resample: str = "<targetResolution>60</targetResolution>",
                rrs: bool = True, key: str = "img1") -> str:
    """The user's single-input graph (Read($img1) ... Write($output))."""
    return f"<graph id=\"c2rcc\"><version>1.0</version>{branch('', key, region, resample, '$output', rrs)}\n</graph>"


def multi_graph(regions: list[str], resample: str = "<targetResolution>60</targetResolution>",
                out_style: str = "${output}_K") -> str:
    """K branches: Read($imgK) ... Write(<out_style with K>); the first Write keeps id 'Write'
    and writes $output."""
    parts = []
    for k, region in enumerate(regions, start=1):
        suffix = "" if k == 1 else f"_{k}"
        out = "$output" if k == 1 else out_style.replace("K", str(k))
        parts.append(branch(suffix, f"img{k}", region, resample, out))
    return "<graph id=\"multi\"><version>1.0</version>" + "".join(parts) + "\n</graph>"


def snap_process(graph_xml: str, urls: dict[str, str]) -> Any:
    """An eocanvas SnapProcess for the graph with the given {key: download url} inputs."""
    from eocanvas.api import Config, ConfigOption, Input
    from eocanvas.processes import SnapProcess
    from eocanvas.snap.graph import Graph

    return SnapProcess(
        snap_graph=Graph.from_text(graph_xml.encode()),
        eo_input=[Input(key=k, url=u) for k, u in urls.items()],
        eo_config=[Config(key=k, options=ConfigOption(uncompress=False, sub_path=""))
                   for k in urls],
    )
