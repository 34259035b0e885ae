"""EOCanvas jobs: execution-body validation, job lifecycle, logs and result files.

A job's status is computed from stored timestamps (``created``, ``accept_delay``, ``duration``)
and its pre-decided outcome, so it moves accepted -> running -> successful/failed on the wall
clock and survives emulator restarts. What gpt would do with the graph is decided at submission
(:func:`plan_job`): either a list of outputs (one per Write node) or a failure with the log text
gpt would print. Output files are written by :func:`produce_outputs`.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from ..mgrs import tile_grid
from .catalogue import Product, product_by_id
from .faults import Dice, FaultConfig
from .graph import (
    Chain,
    GraphError,
    Node,
    parse_graph,
    placeholders,
    trace,
    write_nodes,
)
from .products import C2rccParams, c2rcc_fields

PROCESSES: dict[str, dict[str, Any]] = {
    "snap-function": {
        "id": "snap-function",
        "title": "SNAP function",
        "description": "Runs a SNAP graph (gpt) on staged-in inputs (emulated).",
        "version": "10.0.0",
        "jobControlOptions": ["async-execute"],
        "outputTransmission": ["reference"],
    },
}
ALLOWED_INPUTS = {"snap_graph", "eo_input", "eo_config"}
DOWNLOAD_URL_RE = re.compile(r"/dataaccess/download/(?P<id>[0-9a-f]{24})$")
JOB_NAMESPACE = uuid.UUID("6f2d7c1e-3b7a-5c8e-9a51-2f4e0c9d7b11")
FORMAT_EXT = {"NetCDF4-BEAM": ".nc", "NetCDF4-CF": ".nc"}
REFERENCE_BAND_RES = {
    "B2": 10, "B3": 10, "B4": 10, "B8": 10,
    "B5": 20, "B6": 20, "B7": 20, "B8A": 20, "B11": 20, "B12": 20,
    "B1": 60, "B9": 60, "B10": 60,
}  # fmt: skip
TILE_PX_10M = 10980
#: fraction of a pixel within which a region edge counts as lying on a grid line
SNAP_TOLERANCE = 0.02


class ExecError(Exception):
    """A submission refused with HTTP ``status`` and a JSON ``message``."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass
class Submission:
    """A validated execution request."""

    process_id: str
    graph_xml: str
    nodes: dict[str, Node]
    eo_input: list[dict[str, Any]]
    eo_config: list[dict[str, Any]]
    inputs: dict[str, str]  # key -> download_id
    keystore_output: str | None


def _loads_list(name: str, text: Any) -> list[dict[str, Any]]:
    if not isinstance(text, str):
        raise ExecError(f"'{name}' must be a JSON-encoded string holding a list")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ExecError(f"'{name}' is not valid JSON: {exc.msg}") from None
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ExecError(f"'{name}' must be a JSON list of objects")
    return value


def validate_execution(
    process_id: str, body: Any, known_download_ids: set[str] | Any
) -> Submission:
    """Validate an execution body as EOCanvas does (wekeo-api.md §2.4, §5.3)."""
    if process_id not in PROCESSES:
        raise ExecError(f"Process '{process_id}' not found", status=404)
    if not isinstance(body, dict):
        raise ExecError("The execution request must be a JSON object")
    unknown_top = sorted(set(body) - {"inputs", "outputs", "response", "subscriber"})
    if unknown_top:
        raise ExecError(f"Unexpected member(s) in execution request: {', '.join(unknown_top)}")
    inputs = body.get("inputs")
    if not isinstance(inputs, dict):
        raise ExecError("'inputs' is required and must be an object")
    unknown = sorted(set(inputs) - ALLOWED_INPUTS)
    if unknown:
        raise ExecError(f"Unexpected input(s) for {process_id}: {', '.join(unknown)}")
    for required in ("snap_graph", "eo_input"):
        if required not in inputs:
            raise ExecError(f"Missing required input '{required}'")
    response = body.get("response", "raw")
    if response not in ("raw", "document"):
        raise ExecError("'response' must be 'raw' or 'document'")
    outputs = body.get("outputs", {})
    if not isinstance(outputs, dict):
        raise ExecError("'outputs' must be an object")
    keystore_output = None
    if outputs:
        try:
            schema = outputs["output"]["format"]["schema"]
        except (KeyError, TypeError):
            raise ExecError("'outputs' must be {} or {\"output\": {\"format\": {\"schema\": "
                            "\"keystore://<key>\"}}}") from None
        if not isinstance(schema, str) or not schema.startswith("keystore://"):
            raise ExecError("'outputs.output.format.schema' must be 'keystore://<key>'")
        keystore_output = schema
    graph_b64 = inputs["snap_graph"]
    if not isinstance(graph_b64, str) or not graph_b64.strip():
        raise ExecError("'snap_graph' must be a non-empty base64 string")
    try:
        xml = base64.b64decode("".join(graph_b64.split()), validate=True)
    except (binascii.Error, ValueError):
        raise ExecError("'snap_graph' is not valid base64") from None
    try:
        nodes = parse_graph(xml)
    except GraphError as exc:
        raise ExecError(f"'snap_graph' is not a valid SNAP graph: {exc}") from None
    graph_text = xml.decode("utf-8", errors="replace")
    eo_input = _loads_list("eo_input", inputs["eo_input"])
    if not eo_input:
        raise ExecError("'eo_input' must list at least one input")
    eo_config = _loads_list("eo_config", inputs["eo_config"]) if "eo_config" in inputs else []
    keys: dict[str, str] = {}
    for item in eo_input:
        entries = {k: v for k, v in item.items() if k != "schema"}
        if len(entries) != 1:
            raise ExecError("each 'eo_input' item must hold exactly one {key: url} pair")
        (key, url), = entries.items()
        if not isinstance(url, str):
            raise ExecError(f"eo_input '{key}': the URL must be a string")
        if key in keys:
            raise ExecError(f"eo_input key '{key}' is given twice")
        keys[key] = url
    for item in eo_config:
        for key, opts in item.items():
            if key not in keys:
                raise ExecError(f"eo_config key '{key}' has no matching eo_input")
            if not isinstance(opts, dict) or set(opts) - {"uncompress", "subPath"}:
                raise ExecError(f"eo_config '{key}' must be {{\"uncompress\": bool, \"subPath\": "
                                "str}")
            if "subPath" in opts and not isinstance(opts["subPath"], str):
                raise ExecError(f"eo_config '{key}': 'subPath' must be a string")
            if "uncompress" in opts and not isinstance(opts["uncompress"], bool):
                raise ExecError(f"eo_config '{key}': 'uncompress' must be a boolean")
    used = placeholders(graph_text)
    for key in keys:
        if key not in used:
            raise ExecError(f"Input key '{key}' does not appear as ${key} in the graph")
    if "Write" not in nodes:
        raise ExecError("The graph has no node with id 'Write'")
    download_ids: dict[str, str] = {}
    for key, url in keys.items():
        m = DOWNLOAD_URL_RE.search(url.split("?")[0])
        if not m or m["id"] not in known_download_ids:
            raise ExecError(
                f"eo_input '{key}': {url!r} is not a download URL issued by the HDA broker"
            )
        download_ids[key] = m["id"]
    return Submission(
        process_id, graph_text, nodes, eo_input, eo_config, download_ids, keystore_output
    )


# --- planning -------------------------------------------------------------------------------


@dataclass
class OutputPlan:
    """One result file to be written for one Write node."""

    write_id: str
    name: str
    product_id: str
    input_key: str
    epsg: int
    ulx: float
    uly: float
    res: float
    width: int
    height: int
    params: dict[str, Any]
    geo_region: str | None
    format_name: str
    #: the graph's c2rcc.msi parameters as written (the native C2RCC mode runs with all of them)
    c2rcc_node_params: dict[str, str] | None = None


@dataclass
class Plan:
    """What a job will do: outputs on success, or gpt's failure text."""

    outputs: list[OutputPlan] = field(default_factory=list)
    failure: list[str] | None = None
    failure_exit: int = 1
    warnings: list[str] = field(default_factory=list)


class _Fail(Exception):
    def __init__(self, lines: list[str], warnings: list[str] | None = None) -> None:
        super().__init__(lines[0])
        self.lines = lines
        self.warnings = warnings or []


def _float(node: Node, name: str, default: float, *aliases: str) -> float:
    for key in (name, *aliases):
        v = node.params.get(key)
        if v not in (None, ""):
            try:
                return float(v)  # type: ignore[arg-type]
            except ValueError:
                raise _Fail([f"Error: [NodeId: {node.id}] Cannot convert '{v}' of parameter "
                             f"'{key}' to a number"]) from None
    return default


def _c2rcc_params(node: Node) -> C2rccParams:
    # The native port's parameter model is SNAP's (names, aliases, ranges), so the emulator
    # rejects exactly what gpt rejects.
    from ..c2rcc.params import C2rccMsiParams
    from ..errors import ConfigError

    given = {k: v for k, v in node.params.items() if v not in (None, "")}
    try:
        p = C2rccMsiParams.from_mapping(given)
    except (ConfigError, ValueError, TypeError) as exc:
        raise _Fail([
            f"Error: [NodeId: {node.id}] com.bc.ceres.binding.ConversionException: "
            f"{str(exc).split('; known parameters')[0]}"
        ]) from None
    return C2rccParams(
        output_as_rrs=p.outputAsRrs,
        chl_fac=p.CHLfac,
        chl_exp=p.CHLexp,
        tsm_fac=p.TSMfac,
        tsm_exp=p.TSMexp,
        output_rtoa=p.outputRtoa,
        output_ac_reflectance=p.outputAcReflectance,
        output_rhown=p.outputRhown,
        output_kd=p.outputKd,
        output_uncertainties=p.outputUncertainties,
        output_oos=p.outputOos,
        net_set=p.netSet,
        valid_pixel_expression=p.validPixelExpression,
    )


def _resolution(chain: Chain) -> float:
    node = chain.resample
    if node is None or chain.c2rcc_before_resample:
        raise _Fail([
            f"Error: [NodeId: {chain.c2rcc.id if chain.c2rcc else 'c2rcc.msi'}] Source product "
            "contains rasters of different sizes and can not be processed.",
            "Please consider resampling it so that all rasters have the same size.",
        ])
    p = node.params
    if node.operator == "S2Resampling":
        res = p.get("resolution") or "60"
        if res not in ("10", "20", "60"):
            raise _Fail([f"Error: [NodeId: {node.id}] Value for 'resolution' is invalid: '{res}'"])
        return float(res)
    if p.get("referenceBand") or p.get("referenceBandName"):
        band = p.get("referenceBand") or p.get("referenceBandName") or ""
        if band not in REFERENCE_BAND_RES:
            raise _Fail([f"Error: [NodeId: {node.id}] Reference band '{band}' does not exist "
                         "in the source product"])
        return float(REFERENCE_BAND_RES[band])
    if p.get("targetResolution"):
        res = _float(node, "targetResolution", 0.0)
        if res <= 0:
            raise _Fail([f"Error: [NodeId: {node.id}] targetResolution must be positive"])
        return res
    if p.get("targetWidth") and p.get("targetHeight"):
        w = _float(node, "targetWidth", 0.0)
        if w <= 0:
            raise _Fail([f"Error: [NodeId: {node.id}] targetWidth must be positive"])
        return TILE_PX_10M * 10.0 / w
    raise _Fail([
        f"Error: [NodeId: {node.id}] org.esa.snap.core.gpf.OperatorException: Either "
        "referenceBandName or targetResolution or targetWidth together with targetHeight "
        "must be set."
    ])


def _pixel_region_box(
    text: str, px: float, tile: str, node: Node
) -> tuple[float, float, float, float] | None:
    """UTM box of a SNAP pixel region 'x,y,w,h' in pixels of size ``px`` (None = whole)."""
    if not text or not text.strip():
        return None
    try:
        x, y, w, h = (int(float(v)) for v in text.split(","))
    except ValueError:
        raise _Fail([f"Error: [NodeId: {node.id}] Invalid region '{text}'"]) from None
    if w == 0 and h == 0:
        return None
    g = tile_grid(tile)
    return (g.ulx + x * px, g.uly - (y + h) * px, g.ulx + (x + w) * px, g.uly - y * px)


_NO_INTERSECTION = "WARNING: org.esa.snap.core.gpf.common.SubsetOp: No intersection with source " \
    "product boundary"


def _geo_region_box(
    wkt: str, tile: str, node: Node, product_name: str
) -> tuple[float, float, float, float]:
    """UTM bounding box of a lon/lat WKT region; SNAP's empty-product failure if it misses."""
    from pyproj import Transformer
    from shapely import wkt as shapely_wkt
    from shapely.errors import ShapelyError

    try:
        geom = shapely_wkt.loads(wkt)
    except (ShapelyError, ValueError, TypeError):
        raise _Fail([
            f"Error: [NodeId: {node.id}] Cannot convert '{wkt[:80]}' to a geometry "
            "(java.lang.IllegalArgumentException: Invalid WKT)"
        ]) from None
    empty_lines = [
        f"Error: [NodeId: Write] java.lang.IllegalArgumentException: Cannot write product "
        f"'{product_name}': the product is empty (raster size 0 x 0)",
    ]
    xmin, ymin, xmax, ymax = geom.bounds if not geom.is_empty else (0, 0, 0, 0)
    if geom.is_empty or not (-180 <= xmin <= xmax <= 180 and -90 <= ymin <= ymax <= 90):
        # Metres given where SNAP expects degrees: the region lies outside the product.
        raise _Fail(empty_lines, warnings=[_NO_INTERSECTION])
    g = tile_grid(tile)
    # Like SNAP's GeoUtils.computePixelRegionUsingGeometry: the vertices are mapped to the
    # grid (no densification), so a UTM box sent as lon/lat corners maps back onto that box.
    coords = np.array(
        [c for part in getattr(geom, "geoms", [geom]) for c in _coords(part)], dtype=float
    )
    tr = Transformer.from_crs(4326, g.epsg, always_xy=True)
    ex, ny = tr.transform(coords[:, 0], coords[:, 1])
    box = (float(np.min(ex)), float(np.min(ny)), float(np.max(ex)), float(np.max(ny)))
    txmin, tymin, txmax, tymax = g.bounds
    if box[2] <= txmin or box[0] >= txmax or box[3] <= tymin or box[1] >= tymax:
        raise _Fail(empty_lines, warnings=[_NO_INTERSECTION])
    return box


def _coords(geom: Any) -> list[tuple[float, float]]:
    if hasattr(geom, "exterior"):
        return [c[:2] for c in geom.exterior.coords]
    return [c[:2] for c in geom.coords]


def _intersect(
    a: tuple[float, float, float, float] | None, b: tuple[float, float, float, float] | None
) -> tuple[float, float, float, float] | None:
    if a is None:
        return b
    if b is None:
        return a
    return (max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3]))


def plan_chain(
    chain: Chain, key: str, product: Product, max_pixels: int, name: str
) -> OutputPlan:
    """Work out the output grid and parameters of one Write chain (raise _Fail like gpt)."""
    if chain.unsupported:
        raise _Fail([
            f"Error: emulator: operator '{chain.unsupported[0]}' is not emulated "
            f"(supported: Read, Subset, Resample, S2Resampling, c2rcc.msi, Write)"
        ])
    if chain.c2rcc is None:
        raise _Fail(["Error: emulator: only graphs with a c2rcc.msi node are emulated"])
    fmt = chain.write.params.get("formatName") or "BEAM-DIMAP"
    if fmt not in FORMAT_EXT:
        raise _Fail([f"Error: emulator: Write formatName '{fmt}' is not emulated "
                     "(use NetCDF4-BEAM or NetCDF4-CF)"])
    params = _c2rcc_params(chain.c2rcc)
    res = _resolution(chain)
    g = tile_grid(product.tile)
    box: tuple[float, float, float, float] | None = None
    geo_region = None
    assert chain.read is not None
    if chain.read.params.get("pixelRegion"):
        box = _intersect(box, _pixel_region_box(chain.read.params["pixelRegion"], 10.0,
                                                product.tile, chain.read))
    if chain.read.params.get("geometryRegion"):
        geo_region = chain.read.params["geometryRegion"]
        box = _intersect(box, _geo_region_box(geo_region, product.tile, chain.read, product.stem))
    if chain.subset is not None:
        sp = chain.subset.params
        if sp.get("geoRegion"):
            geo_region = sp["geoRegion"]
            box = _intersect(box, _geo_region_box(geo_region, product.tile, chain.subset,
                                                  product.stem))
        elif sp.get("region"):
            px = 10.0 if chain.subset_before_resample else res
            box = _intersect(box, _pixel_region_box(sp["region"], px, product.tile, chain.subset))
    if box is None:
        box = g.bounds
    n_px = int(round(g.size / res))
    # Snap outward to whole pixels; edges within SNAP_TOLERANCE px of a grid line snap onto it,
    # which absorbs the lon/lat round trip of UTM corners (WKT printed with ~6-8 decimals).
    tol = SNAP_TOLERANCE
    c0 = max(0, math.floor((box[0] - g.ulx) / res + tol))
    c1 = min(n_px, math.ceil((box[2] - g.ulx) / res - tol))
    r0 = max(0, math.floor((g.uly - box[3]) / res + tol))
    r1 = min(n_px, math.ceil((g.uly - box[1]) / res - tol))
    if c1 <= c0 or r1 <= r0:
        raise _Fail([
            f"Error: [NodeId: Write] java.lang.IllegalArgumentException: Cannot write product "
            f"'{product.stem}': the product is empty (raster size 0 x 0)"
        ], warnings=[_NO_INTERSECTION])
    width, height = c1 - c0, r1 - r0
    if width * height > max_pixels:
        raise _Fail([
            "Exception in thread \"main\" java.lang.OutOfMemoryError: Java heap space",
            f"emulator: {width} x {height} px exceeds the emulator's max_output_pixels "
            f"({max_pixels}); use a coarser resolution or a smaller region",
        ])
    return OutputPlan(
        write_id=chain.write.id,
        name=name + FORMAT_EXT[fmt],
        product_id=product.id,
        input_key=key,
        epsg=g.epsg,
        ulx=g.ulx + c0 * res,
        uly=g.uly - r0 * res,
        res=res,
        width=width,
        height=height,
        params=asdict(params),
        geo_region=geo_region,
        format_name=fmt,
        c2rcc_node_params=dict(chain.c2rcc.params),
    )


def _allowed_output_placeholder(name: str) -> bool:
    # gpt would only know "output"; "output_1"... are accepted because the project's
    # multi-input graphs use them (documented deviation, see docs/emulator.md).
    return name == "output" or re.fullmatch(r"output_?\d+", name) is not None


def plan_job(sub: Submission, products: dict[str, Product], max_pixels: int) -> Plan:
    """Decide what gpt would do with this graph and these inputs."""
    plan = Plan()
    # The server runs gpt with -Poutput=<outDir>/<uuid1>: one name per job, which each Write's
    # file expression extends (${output}_2 -> <uuid1>_2), as SNAP then appends the extension.
    job_stem = str(uuid.uuid1())
    try:
        unresolved = sorted(
            p
            for p in placeholders(sub.graph_xml)
            if p not in sub.inputs and not _allowed_output_placeholder(p)
        )
        if unresolved:
            name = unresolved[0]
            where = _placeholder_location(sub.nodes, name)
            raise _Fail([
                f"Error: [NodeId: {where[0]}] Value for '{where[1]}' is invalid: '${name}'",
                f"(unresolved graph variable '${name}': only {', '.join(sorted(sub.inputs))} "
                "and output are defined by -P options)",
            ])
        for write in write_nodes(sub.nodes):
            chain = trace(sub.nodes, write)
            if chain.read is None:
                raise _Fail([f"Error: [NodeId: {write.id}] the node has no source product"])
            file_ = chain.read.params.get("file", "")
            keys = placeholders(file_)
            key = next(iter(keys)) if len(keys) == 1 else None
            if key is None or key not in sub.inputs:
                raise _Fail([
                    f"Error: [NodeId: {chain.read.id}] Specified 'file' [{file_}] does not exist."
                ])
            wfile = write.params.get("file", "")
            if write.id != "Write" and not any(
                _allowed_output_placeholder(p) for p in placeholders(wfile)
            ):
                # Written outside outDir/output: never staged out.
                plan.warnings.append(
                    f"WARNING: Write node '{write.id}' writes to '{wfile}', outside the output "
                    "directory; the file will not be staged out"
                )
                continue
            stem = re.sub(r"\$\{output\}|\$output", job_stem, wfile).rsplit("/", 1)[-1]
            plan.outputs.append(plan_chain(chain, key, products[key], max_pixels, stem))
    except _Fail as f:
        plan.outputs = []
        plan.failure = f.lines
        plan.warnings.extend(f.warnings)
    except GraphError as exc:
        plan.outputs = []
        plan.failure = [f"Error: org.esa.snap.core.gpf.graph.GraphException: {exc}"]
    return plan


def _placeholder_location(nodes: dict[str, Node], name: str) -> tuple[str, str]:
    for node in nodes.values():
        for pname, value in node.params.items():
            if name in placeholders(value):
                return node.id, pname
    return "graph", "graph"


# --- lifecycle ------------------------------------------------------------------------------

RANDOM_FAILURES: tuple[tuple[int, list[str]], ...] = (
    (1, [
        "[ERROR] - StageIn failed for {key}: HTTP 500 Internal Server Error from {url}",
        "[ERROR] - WekEODownloader exited with code 1",
    ]),
    (137, [
        "Exception in thread \"SunTileScheduler0Standard0\" java.lang.OutOfMemoryError: "
        "Java heap space",
        "[ERROR] - gpt was killed (exit code 137)",
    ]),
    (1, [
        "Error: [NodeId: c2rcc.msi] org.esa.snap.core.gpf.OperatorException: "
        "java.io.IOException: Failed to read band 'B8A' of {key}",
    ]),
    (124, [
        "[ERROR] - timeout.sh: gpt exceeded 3600 s and was terminated",
    ]),
)


def job_status(job: dict[str, Any], now: float) -> str:
    """Status at ``now`` from the stored timestamps and outcome (``dismissed`` once cancelled)."""
    if job.get("dismissed") is not None:
        return "dismissed"
    elapsed = now - job["created"]
    if elapsed < job["accept_delay"]:
        return "accepted"
    if job["stuck"] or elapsed < job["accept_delay"] + job["duration"]:
        return "running"
    return str(job["outcome"])


def iso(t: float | None) -> str | None:
    """ISO-8601 UTC with microseconds and 'Z'."""
    if t is None:
        return None
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def job_json(job: dict[str, Any], now: float, base: str) -> dict[str, Any]:
    """The OGC job document."""
    status = job_status(job, now)
    start = job["created"] + job["accept_delay"]
    end = start + job["duration"]
    started = start if status != "accepted" else None
    finished = end if status in ("successful", "failed") else None
    updated = min(now, end) if not job["stuck"] else now
    if status == "dismissed":
        finished = updated = job["dismissed"]
    href = f"{base}/jobs/{job['job_id']}"
    links = [
        {"href": href, "rel": "self", "type": "application/json", "title": "this job"},
        {"href": f"{href}/logs", "rel": "logs", "type": "application/json", "title": "logs"},
    ]
    if status == "successful":
        links.append({"href": f"{href}/results", "rel": "results", "type": "application/json",
                      "title": "results"})
    return {
        "jobID": job["job_id"],
        "processID": job["process_id"],
        "type": "process",
        "status": status,
        "message": {"accepted": "Job accepted", "running": "Job running",
                    "successful": "Job finished", "failed": "Job failed",
                    "dismissed": "Job dismissed"}[status],
        "created": iso(job["created"]),
        "started": iso(started),
        "updated": iso(updated if status != "accepted" else job["created"]),
        "finished": iso(finished),
        "progress": 100 if finished else (50 if started else 0),
        "links": links,
    }


def log_timestamp(t: float) -> str:
    """eocanvas-compatible log timestamp: 6 fractional digits and '+00:00'."""
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="microseconds")


def job_logs(job: dict[str, Any], now: float) -> list[dict[str, str]]:
    """Log entries visible at ``now`` (grow while the job runs)."""
    a, d = job["created"] + job["accept_delay"], job["duration"]
    jid = job["job_id"]
    lines: list[tuple[float, str]] = []

    def at(frac: float, text: str) -> None:
        lines.append((a + frac * d, text))

    def info(frac: float, text: str) -> None:
        t = a + frac * d
        stamp = datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")
        lines.append((t, f"[{stamp}] [INFO] - {text}"))

    def error(frac: float, text: str) -> None:
        t = a + frac * d
        stamp = datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")
        lines.append((t, f"[{stamp}] [ERROR] - {text}"))

    at(0.0, f"[METRICS][{jid}][START] {json.dumps({'process': job['process_id']})}")
    inputs: dict[str, dict[str, Any]] = job["input_products"]
    for i, (key, info_) in enumerate(sorted(inputs.items())):
        info(0.02 + 0.01 * i, f"Preparing input: {key}")
        info(0.05 + 0.01 * i, f"StageIn {key}: {info_['product_id']} ({info_['size']} bytes) "
                              f"-> inDir/eo_input/{key}/{info_['product_id'][:-5]}.zip")
    random_failure = job.get("random_failure")
    if random_failure is not None and random_failure[0] == 0:
        key = sorted(inputs)[0]
        for j, text in enumerate(RANDOM_FAILURES[0][1]):
            error(0.1 + 0.01 * j, text.format(key=key, url=inputs[key]["url"]))
    else:
        info(0.15, "eo_input and eo_config are valid JSON")
        params = " ".join(
            f"-P{k}=/work/inDir/eo_input/{k}/{v['product_id'][:-5]}.zip"
            for k, v in sorted(inputs.items())
        )
        info(0.2, f"Launching SNAP: timeout.sh -t 3600 -i 60 -d 30 gpt graph.xml {params} "
                  f"-Poutput=/work/outDir/output/{job['output_stem']}")
        at(0.22, "Executing processing graph")
        for w in job["warnings"]:
            at(0.25, w)
        if job["plan_failure"]:
            for j, text in enumerate(job["plan_failure"]):
                at(0.3 + 0.01 * j, text)
            error(0.35, f"SNAP exit code: {job['failure_exit']}")
        elif random_failure is not None:
            key = sorted(inputs)[0]
            code, texts = RANDOM_FAILURES[random_failure[0]]
            for j, text in enumerate(texts):
                at(0.5 + 0.01 * j, text.format(key=key, url=inputs[key]["url"]))
            error(0.55, f"SNAP exit code: {code}")
        else:
            for k in range(1, 10):
                at(0.22 + 0.07 * k, "." * k * 3 + f"{k * 10}%")
            at(0.9, "...100% done.")
            info(0.92, "SNAP exit code: 0")
            for out in job["outputs"]:
                info(0.95, f"StageOut: uploading {out['name']} to "
                           f"wks3:///{jid}/output/{out['name']}")
    end_text = "Job finished successfully" if job["outcome"] == "successful" else "Job failed"
    at(1.0, f"[METRICS][{jid}][END] {json.dumps({'status': job['outcome']})}")
    (info if job["outcome"] == "successful" else error)(1.0, end_text)
    if job["stuck"]:
        lines = [ln for ln in lines if ln[0] <= a + 0.5 * d]
    return [{"timestamp": log_timestamp(t), "message": m} for t, m in sorted(
        (ln for ln in lines if ln[0] <= now), key=lambda ln: ln[0])]


def new_job(
    sub: Submission,
    seq: int,
    seed: int,
    username: str,
    now: float,
    faults: FaultConfig,
    dice: Dice,
    products: dict[str, Product],
    urls: dict[str, str],
    max_pixels: int,
) -> dict[str, Any]:
    """Build the stored record of a newly accepted job."""
    job_id = str(uuid.uuid5(JOB_NAMESPACE, f"{seed}:{seq}"))
    plan = plan_job(sub, products, max_pixels)
    outcome = "successful"
    random_failure = None
    if plan.failure is not None:
        outcome = "failed"
    elif dice.keyed("job-failure", job_id, faults.job_failure_rate):
        outcome = "failed"
        random_failure = [dice.choice("failure-kind", job_id, len(RANDOM_FAILURES))]
    stuck = dice.keyed("job-stuck", job_id, faults.stuck_job_rate)
    outputs = [asdict(o) for o in plan.outputs] if outcome == "successful" else []
    geo_regions = []
    work_items = []
    for write in write_nodes(sub.nodes):
        try:
            chain = trace(sub.nodes, write)
        except GraphError:
            continue
        region = chain.subset.params.get("geoRegion") if chain.subset else None
        geo_regions.append(region)
        keys = placeholders(chain.read.params.get("file", "")) if chain.read else set()
        key = next(iter(keys)) if len(keys) == 1 else None
        # One (product, region) unit of work per Write node, for duplicate-work checks.
        work_items.append({
            "write": write.id,
            "input_key": key,
            "product_id": products[key].id if key in products else None,
            "geo_region": region,
        })
    return {
        "job_id": job_id,
        "seq": seq,
        "username": username,
        "process_id": sub.process_id,
        "created": now,
        "accept_delay": faults.accept_delay,
        "duration": faults.job_duration,
        "outcome": outcome,
        "stuck": stuck,
        "random_failure": random_failure,
        "plan_failure": plan.failure,
        "failure_exit": plan.failure_exit,
        "warnings": plan.warnings,
        "outputs": outputs,
        "output_stem": outputs[0]["name"].rsplit(".", 1)[0] if outputs else str(uuid.uuid1()),
        "keystore_output": sub.keystore_output,
        "input_products": {
            k: {"product_id": p.id, "size": p.size, "download_id": sub.inputs[k], "url": urls[k]}
            for k, p in products.items()
        },
        "geo_regions": geo_regions,
        "work_items": work_items,
    }


# --- outputs --------------------------------------------------------------------------------

_produce_locks: dict[str, threading.Lock] = {}
_produce_guard = threading.Lock()


def output_dir(state_dir: Path, job_id: str) -> Path:
    """Directory holding a job's result files."""
    return state_dir / "jobs" / job_id / "output"


#: ``(nets folder, product -> its served SAFE zip)``: compute results with the native C2RCC.
NativeMode = tuple[Path, Callable[[Product], Path]]


def produce_outputs(
    job: dict[str, Any], state_dir: Path, native: NativeMode | None = None
) -> list[Path]:
    """Write the job's result files (idempotent; safe to call from several threads). With
    ``native``, values come from the native C2RCC on the served SAFE (:mod:`.native`)."""
    with _produce_guard:
        lock = _produce_locks.setdefault(job["job_id"], threading.Lock())
    with lock:
        out_dir = output_dir(state_dir, job["job_id"])
        paths = []
        for out in job["outputs"]:
            path = out_dir / out["name"]
            if not path.exists():
                write_output(OutputPlan(**out), path, native)
            paths.append(path)
        return paths


def write_output(out: OutputPlan, path: Path, native: NativeMode | None = None) -> None:
    """Compute and write one SNAP-shaped C2RCC product, row block by row block."""
    from ..beam_netcdf import BeamGrid, write_beam_netcdf_blocks

    product = product_by_id(out.product_id)
    if product is None:  # pragma: no cover - products are deterministic
        raise RuntimeError(f"unknown product {out.product_id}")
    grid = BeamGrid(out.epsg, out.ulx, out.uly, out.res, out.res, out.width, out.height)
    params = C2rccParams(**out.params)
    xs, ys = grid.x_centres(), grid.y_centres()

    def block(r0: int, r1: int) -> dict[str, np.ndarray]:
        # Values depend only on the pixel centre, so computing by rows is exact.
        return c2rcc_fields(product, xs, ys[r0:r1], params)

    ty, tx = 3, 3
    yy, xx = np.meshgrid(np.linspace(0, 1, ty), np.linspace(0, 1, tx), indexing="ij")
    tpg = {
        "tco3": (6.9e-3 + 4e-4 * xx + 2e-4 * yy).astype(np.float32),
        "tcwv": (14.0 + 3.0 * yy).astype(np.float32),
        "msl": (101_300.0 - 150.0 * xx).astype(np.float32),
    }
    meta = {
        "Processing_Graph:node.0:operator": "Read",
        "Processing_Graph:node.0:sources:sourceProduct": product.id,
        "Processing_Graph:node.1:operator": "c2rcc.msi",
        "Processing_Graph:node.1:parameters:netSet": params.net_set,
        "Processing_Graph:node.1:parameters:validPixelExpression": params.valid_pixel_expression,
        "Processing_Graph:node.1:parameters:outputAsRrs": str(params.output_as_rrs).lower(),
        "Processing_Graph:node.1:neuronalNets:usedNeuralNet": params.net_set,
        "Processing_Graph:node.2:operator": "Write",
        "Processing_Graph:node.2:parameters:formatName": out.format_name,
        "source_product": product.id,
        "emulator": "seasonal_c2rcc.emulator (synthetic values)",
    }
    if native is not None:
        from .native import write_native_output

        nets_dir, safe_for = native
        write_native_output(out, path, safe_for(product), nets_dir, meta)
        return
    write_beam_netcdf_blocks(
        path,
        grid,
        block,
        start_time=product.sensing.replace(tzinfo=None),
        stop_time=product.stop.replace(tzinfo=None),
        product_name=f"{product.stem}_C2RCC",
        metadata=meta,
        tie_point_grids=tpg,
        global_attrs={"metadata_profile": "cf"} if out.format_name == "NetCDF4-CF" else None,
        # c2rcc_fields needs ~800 B of temporaries per pixel: 64 k px blocks keep it ~50 MB.
        max_block_pixels=65_536,
    )
