"""Campaign configuration: schema validation with defaults, then the checks a schema cannot express.

Everything here runs before any remote call, so a bad config, grid file or graph costs nothing.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator, validators

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


def load_schema(path: Path = SCHEMA_PATH) -> dict[str, Any]:
    """The config JSON schema (YAML file ``config/schema.yaml``)."""
    return yaml.safe_load(path.read_text())


def validate_schema(config: Mapping[str, Any]) -> dict[str, Any]:
    """Return a copy of ``config`` validated against the schema with every default filled in."""
    cfg = copy.deepcopy(dict(config))
    errors = sorted(_Validator(load_schema()).iter_errors(cfg), key=lambda e: list(e.path))
    if errors:
        lines = [f"  {'.'.join(map(str, e.path)) or '(top level)'}: {e.message}" for e in errors]
        raise ConfigError("invalid configuration:\n" + "\n".join(lines))
    return cfg


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
