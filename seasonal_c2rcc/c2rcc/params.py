"""Parameters of SNAP's ``c2rcc.msi`` operator: same names, defaults, ranges and aliases.

Source of truth: ``opttbx-c2rcc/.../msi/C2rccMsiOperator.java`` (optical-toolbox @ 92d55223). A SNAP
graph's ``c2rcc.msi`` node configures :class:`C2rccMsiParams` one to one
(:meth:`C2rccMsiParams.from_graph`); unknown element names are an error, as in gpt
(``DefaultDomConverter``: "Unknown element 'x'").
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, Final

from lxml import etree

from seasonal_c2rcc.errors import ConfigError

NET_SETS: Final[tuple[str, ...]] = ("C2RCC-Nets", "C2X-Nets", "C2X-COMPLEX-Nets")
DEM_NAMES: Final[tuple[str, ...]] = (
    "Copernicus 90m Global DEM",
    "Copernicus 30m Global DEM",
    "GETASSE30",
)

#: Java field names that SNAP accepts in place of the alias (``PropertyContainer`` maps both).
FIELD_ALIASES: Final[dict[str, str]] = {
    "TSMfakBpart": "TSMfac",
    "TSMfakBwit": "TSMexp",
    "CHLfak": "CHLfac",
}

#: ``interval`` attributes of the ``@Parameter`` annotations: (min, max, min_included, max_included).
INTERVALS: Final[dict[str, tuple[float, float, bool, bool]]] = {
    "salinity": (0.000028, 43.0, False, False),
    "temperature": (0.000111, 36.0, False, False),
    "ozone": (0.0, 1000.0, False, False),
    "press": (800.0, 1040.0, False, False),
    "elevation": (0.0, 8500.0, False, False),
}

#: Optional source products of the operator; they are graph <sources>, not parameters.
SOURCE_PRODUCT_NAMES: Final = (
    "sourceProduct",
    "tomsomiStartProduct",
    "tomsomiEndProduct",
    "ncepStartProduct",
    "ncepEndProduct",
)


@dataclass(frozen=True)
class C2rccMsiParams:
    """All parameters of ``c2rcc.msi`` (version 1.2) with SNAP's defaults.

    Field names are SNAP's XML names (aliases where the operator declares one). Construct directly,
    with :meth:`from_mapping` (accepts the Java field names too) or :meth:`from_graph`. Values are
    validated like SNAP does: ranges, value sets, and the valid-pixel expression's syntax.

    ``atmosphericAuxDataPath`` (NCEP/TOMSOMI download) and ``demName`` are accepted for graph
    compatibility; the native port has no DEM or download: pass ``altitude`` (else ``elevation``
    is used, SNAP's fallback) and ECMWF grids for ``useEcmwfAuxData``.
    """

    validPixelExpression: str = "B8 > 0 && B8 < 0.1"
    salinity: float = 35.0
    temperature: float = 15.0
    ozone: float = 330.0
    press: float = 1000.0
    elevation: float = 0.0
    TSMfac: float = 1.06
    TSMexp: float = 0.942
    CHLexp: float = 1.04
    CHLfac: float = 21.0
    thresholdRtosaOOS: float = 0.05
    thresholdAcReflecOos: float = 0.1
    thresholdCloudTDown865: float = 0.955
    atmosphericAuxDataPath: str | None = None
    alternativeNNPath: str | None = None
    netSet: str = "C2RCC-Nets"
    outputAsRrs: bool = False
    deriveRwFromPathAndTransmittance: bool = False
    useEcmwfAuxData: bool = False
    demName: str = "Copernicus 90m Global DEM"
    outputRtoa: bool = True
    outputRtosaGc: bool = False
    outputRtosaGcAann: bool = False
    outputRpath: bool = False
    outputTdown: bool = False
    outputTup: bool = False
    outputAcReflectance: bool = True
    outputRhown: bool = True
    outputOos: bool = False
    outputKd: bool = True
    outputUncertainties: bool = True

    def __post_init__(self) -> None:
        defaults = C2rccMsiParams.__dataclass_fields__
        for f in fields(self):
            value = getattr(self, f.name)
            kind = _kind(f.name)
            if kind is float:
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise ConfigError(f"c2rcc.msi parameter {f.name}={value!r} is not a number")
                object.__setattr__(self, f.name, float(value))
            elif kind is bool and not isinstance(value, bool):
                raise ConfigError(f"c2rcc.msi parameter {f.name}={value!r} is not a boolean")
            elif kind is str and value is not None and not isinstance(value, str):
                raise ConfigError(f"c2rcc.msi parameter {f.name}={value!r} is not a string")
        for name, (lo, hi, lo_in, hi_in) in INTERVALS.items():
            value = getattr(self, name)
            # SNAP validates only values that differ from the current (default) value
            # (ceres Property.setValue returns early on equal values), so e.g. the user's
            # elevation=0.0 passes although the interval (0, 8500) excludes 0.
            if value == defaults[name].default:
                continue
            ok = (value >= lo if lo_in else value > lo) and (value <= hi if hi_in else value < hi)
            if not ok or math.isnan(value):
                raise ConfigError(
                    f"Value for '{name}' is out of range {'[' if lo_in else '('}{lo:g},{hi:g}"
                    f"{']' if hi_in else ')'}: {value}"
                )
        if self.netSet not in NET_SETS:
            raise ConfigError(
                f"c2rcc.msi netSet {self.netSet!r} is not one of {', '.join(NET_SETS)}"
            )
        if self.demName not in DEM_NAMES:
            raise ConfigError(
                f"c2rcc.msi demName {self.demName!r} is not one of {', '.join(DEM_NAMES)}"
            )
        # local import: the expression module is independent of the parameters
        from seasonal_c2rcc.c2rcc.expression import parse_expression

        parse_expression(self.validPixelExpression or "true")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> C2rccMsiParams:
        """Build from ``{name: value}``; values may be strings as in a graph. Unknown names raise."""
        kwargs: dict[str, Any] = {}
        known = {f.name for f in fields(cls)}
        for raw_name, raw in values.items():
            name = FIELD_ALIASES.get(raw_name, raw_name)
            if name not in known:
                raise ConfigError(
                    f"Unknown element '{raw_name}' for operator c2rcc.msi; known parameters: "
                    f"{', '.join(sorted(known | set(FIELD_ALIASES)))}"
                )
            if name in kwargs:
                raise ConfigError(f"c2rcc.msi parameter {name} given twice (alias and field name)")
            kwargs[name] = _convert(name, raw) if isinstance(raw, str) else raw
        return cls(**{k: v for k, v in kwargs.items() if v is not _KEEP_DEFAULT})

    @classmethod
    def from_graph(
        cls,
        xml_text: str | bytes,
        variables: Mapping[str, str] | None = None,
        node_id: str | None = None,
    ) -> C2rccMsiParams:
        """Read the ``<parameters>`` of the ``c2rcc.msi`` node of a SNAP graph XML.

        ``variables`` substitutes ``${key}`` / ``$key`` placeholders the way gpt's TemplateReader
        does (only inside the c2rcc node; unresolved ones stay and then fail conversion). With
        several ``c2rcc.msi`` nodes pass ``node_id``.
        """
        try:
            root = etree.fromstring(xml_text.encode() if isinstance(xml_text, str) else xml_text)
        except etree.XMLSyntaxError as exc:
            raise ConfigError(f"SNAP graph is not valid XML: {exc}") from exc
        nodes = [
            n
            for n in root.iter("node")
            if (n.findtext("operator") or "").strip() == "c2rcc.msi"
            and (node_id is None or n.get("id") == node_id)
        ]
        if len(nodes) != 1:
            raise ConfigError(
                f"expected exactly one c2rcc.msi node{f' with id {node_id!r}' if node_id else ''} "
                f"in the graph, found {len(nodes)}"
            )
        params_el = nodes[0].find("parameters")
        values: dict[str, str] = {}
        if params_el is not None:
            for child in params_el:
                if not isinstance(child.tag, str):  # comments, processing instructions
                    continue
                text = (child.text or "").strip()
                if variables:
                    text = _substitute(text, variables)
                values[child.tag] = text
        return cls.from_mapping(values)

    def replace(self, **changes: Any) -> C2rccMsiParams:
        """Return a copy with ``changes`` applied (validated again)."""
        return dataclasses.replace(self, **changes)


_KEEP_DEFAULT: Final = object()


def _kind(name: str) -> type:
    default = C2rccMsiParams.__dataclass_fields__[name].default
    if isinstance(default, bool):
        return bool
    if isinstance(default, float):
        return float
    return str


def _convert(name: str, text: str) -> Any:
    """Convert graph text the way ceres' converters do; empty text keeps the default."""
    kind = _kind(name)
    text = text.strip()
    if kind is str:
        # gpt passes "" for an empty element; the operator treats null and "" alike
        return text or None if name in ("atmosphericAuxDataPath", "alternativeNNPath") else text
    if text == "":
        return _KEEP_DEFAULT
    if "$" in text:
        raise ConfigError(f"c2rcc.msi parameter {name}={text!r} has an unresolved placeholder")
    if kind is bool:
        # stricter than Java's Boolean.parseBoolean, which reads any typo as false
        if text.lower() not in ("true", "false"):
            raise ConfigError(f"c2rcc.msi parameter {name}={text!r} is not true/false")
        return text.lower() == "true"
    try:
        return float(text)
    except ValueError as exc:
        raise ConfigError(f"c2rcc.msi parameter {name}={text!r} is not a number") from exc


_PLACEHOLDER = re.compile(r"\$\{([\w.]+)\}|\$([\w.]+)")


def _substitute(text: str, variables: Mapping[str, str]) -> str:
    def repl(m: re.Match[str]) -> str:
        key = m.group(1) or m.group(2)
        return str(variables[key]) if key in variables else m.group(0)

    return _PLACEHOLDER.sub(repl, text)
