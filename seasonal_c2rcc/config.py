"""Campaign configuration: schema validation with defaults, then the checks a schema cannot express.

Everything here runs before any remote call, so a bad config, grid file or graph costs nothing.
"""

from __future__ import annotations

import copy
import difflib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator, ValidationError, validators

from .errors import ConfigError
from .flags import FLAG_MASKS
from .grid import Subtile, load_subtiles
from .seasons import SeasonWindow, parse_seasons

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "config" / "schema.yaml"


def _with_defaults(cls: Any) -> Any:
    validate_properties = cls.VALIDATORS["properties"]

    def set_defaults(validator: Any, properties: Any, instance: Any, schema: Any) -> Any:
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if "default" in sub and name not in instance:
                    instance[name] = copy.deepcopy(sub["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return validators.extend(cls, {"properties": set_defaults})


_Validator = _with_defaults(Draft202012Validator)


@cache
def _schema_text(path: Path) -> str:
    return path.read_text()


def load_schema(path: Path = SCHEMA_PATH) -> dict[str, Any]:
    """The config JSON schema (YAML file ``config/schema.yaml``; the file is read once)."""
    return yaml.safe_load(_schema_text(path))


def validate_schema(config: Mapping[str, Any]) -> dict[str, Any]:
    """Return a copy of ``config`` validated against the schema with every default filled in.

    Raises :class:`ConfigError` whose message has one line per problem, each naming the key
    (``config key 'cloud_cover_max': 150 is above the maximum 100``).
    """
    cfg = copy.deepcopy(dict(config))
    errors = _Validator(load_schema()).iter_errors(cfg)
    errors = sorted(errors, key=lambda e: list(map(str, e.path)))
    lines = list(dict.fromkeys(line for e in errors for line in schema_error_lines(e)))
    if lines:
        raise ConfigError("\n".join(lines))
    return cfg


def _key(path: Any) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _show(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def schema_error_lines(error: ValidationError) -> list[str]:
    """One line per problem of a jsonschema error, naming the config key and saying the fix."""
    key, value, schema, kind = _key(error.absolute_path), error.instance, error.schema, None
    kind = error.validator
    where = f"config key '{key}'" if key else "config"
    if kind == "additionalProperties" and isinstance(value, dict):
        known = list(schema.get("properties", {}))
        unknown = [k for k in value if k not in known]
        lines = []
        for name in unknown:
            full = f"{key}.{name}" if key else str(name)
            close = difflib.get_close_matches(str(name), known, n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"known keys: {', '.join(known)}"
            lines.append(
                f"unknown config key '{full}': {hint} (config/schema.yaml lists every key)"
            )
        return lines
    if kind == "required":
        missing = [k for k in error.validator_value if k not in value]
        return [
            f"config key '{f'{key}.{m}' if key else m}' is missing; it is required "
            "(config/schema.yaml describes it)"
            for m in missing
        ]
    limits = {
        "maximum": "is above the maximum",
        "minimum": "is below the minimum",
        "exclusiveMaximum": "must be below",
        "exclusiveMinimum": "must be above",
    }
    if kind in limits:
        return [f"{where}: {_show(value)} {limits[kind]} {error.validator_value}"]
    if kind == "type":
        wanted = error.validator_value
        wanted = " or ".join(wanted) if isinstance(wanted, list) else wanted
        return [f"{where}: {_show(value)} is not of type {wanted}"]
    if kind == "enum":
        return [
            f"{where}: {_show(value)} is not one of {', '.join(map(_show, error.validator_value))}"
        ]
    if kind == "pattern":
        return [f"{where}: {_show(value)} does not match the pattern {error.validator_value}"]
    if kind in ("minItems", "maxItems"):
        bound = "at least" if kind == "minItems" else "at most"
        return [f"{where}: {_show(value)} has {len(value)} items; {bound} {error.validator_value}"]
    described = schema.get("description") or ""
    specific = [c for c in error.context or [] if c.validator not in ("type", "pattern")]
    if kind in ("oneOf", "anyOf") and specific:  # e.g. years: [1999] -> years[0] below 2015
        return [line for c in specific for line in schema_error_lines(c)]
    if kind in ("oneOf", "anyOf") and described:
        return [f"{where}: {_show(value)} is not valid; expected: {' '.join(described.split())}"]
    return [f"{where}: {error.message}"]


def parse_years(spec: list[int] | str) -> list[int]:
    """``[2019, 2020]`` or ``"2016-2023"`` -> sorted list of years."""
    if isinstance(spec, str):
        a, _, b = spec.partition("-")
        first, last = int(a), int(b or a)
        if last < first:
            raise ConfigError(f"years: range {spec!r} ends before it starts")
        return list(range(first, last + 1))
    return sorted(set(int(y) for y in spec))


@dataclass(frozen=True, eq=False)  # identity hash: plans are memoised per campaign
class Campaign:
    """The resolved campaign: validated config plus the parsed grid, years and seasons."""

    config: dict[str, Any]
    subtiles: tuple[Subtile, ...]
    years: tuple[int, ...]
    seasons: tuple[SeasonWindow, ...]

    @property
    def tiles(self) -> list[str]:
        """Tiles of the campaign, in grid-file order."""
        return list(dict.fromkeys(s.tile for s in self.subtiles))

    def subtiles_of(self, tile: str) -> list[Subtile]:
        """Sub-tiles of ``tile`` in grid-file order."""
        return [s for s in self.subtiles if s.tile == tile]

    def season(self, name: str) -> SeasonWindow:
        """The season window called ``name``."""
        for w in self.seasons:
            if w.name == name:
                return w
        raise ConfigError(f"unknown season {name!r}; configured: {[w.name for w in self.seasons]}")


def load_campaign(config: Mapping[str, Any], base_dir: str | Path = ".") -> Campaign:
    """Validate ``config`` fully (schema, grid file, seasons, years, flags, graph) and resolve it.

    Relative paths are taken from ``base_dir`` (the Snakemake working directory).
    """
    cfg = validate_schema(config)
    base = Path(base_dir)
    subtiles = load_subtiles(base / cfg["subtiles"], cfg["subtiles_crs"])
    if cfg["tiles"]:
        from .mgrs import validate_tile_id

        wanted = {validate_tile_id(t) for t in cfg["tiles"]}
        missing = wanted - {s.tile for s in subtiles}
        if missing:
            raise ConfigError(f"tiles: {sorted(missing)} not in the grid file {cfg['subtiles']}")
        subtiles = [s for s in subtiles if s.tile in wanted]
    years = parse_years(cfg["years"])
    seasons = parse_seasons(cfg["seasons"])
    unknown = [f for f in cfg["masking"]["exclude_flags"] if f not in FLAG_MASKS]
    if unknown:
        raise ConfigError(
            f"masking.exclude_flags: unknown flags {unknown}; known: {', '.join(FLAG_MASKS)}"
        )
    graph = base / cfg["graph"]
    if not graph.is_file():
        raise ConfigError(f"graph: {graph} does not exist")
    from .graph import check_template

    check_template(graph.read_text(), where=str(graph))
    return Campaign(cfg, tuple(subtiles), tuple(years), tuple(seasons))


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML config file into a dict (no validation)."""
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read config {p}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config {p}: expected a mapping at the top level")
    return data
