"""Preflight: everything that can be checked before any job runs, once per run, failing in one line.

Two halves, both called by the Snakefile (and by ``seasonal-c2rcc preflight``):

* :func:`check_local` (parse time, so also on dry runs; no network, no credentials): the config
  schema, one line per problem with every default filled in; the grid file (duplicate sub-tiles
  included), years, seasons and flags (:func:`~seasonal_c2rcc.config.load_campaign`); endpoint URLs
  well formed; the graph template: ``$polygon`` in the Subset node's ``geoRegion`` and nowhere else,
  and the ``c2rcc.msi`` parameters known to SNAP (:mod:`seasonal_c2rcc.c2rcc.params`).
* :func:`check_access` (Snakemake ``onstart``: after the DAG is built, before the first job, never on
  ``-n`` and never in a spawned job): credentials present, and exactly one token request to prove
  them (never retried: failed logins can lock the account). ``~/.hdarc`` readable by group or others
  gets one warning.

A failure prints one line per problem (``seasonal-c2rcc: <cause and fix>``) to stderr and exits 1
before anything is spent: no search, no order, no job.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Iterable, Mapping, MutableMapping
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

from lxml import etree

from .config import Campaign, load_campaign
from .errors import ConfigError, SeasonalC2rccError
from .graph import PLACEHOLDER_RE

PREFIX = "seasonal-c2rcc: "
#: Rules that talk to WEkEO: the login is checked only when one of them is about to run (so
#: `snakemake bill`, figures or composites from frozen results need no credentials).
WEKEO_RULES = frozenset({"catalogue", "remote_job", "download_product"})


def problem_lines(exc: BaseException) -> list[str]:
    """The one-line messages of ``exc`` (a schema error carries one line per problem)."""
    lines = [" ".join(line.split()) for line in str(exc).splitlines() if line.strip()]
    return lines or [type(exc).__name__]


def fail(exc: BaseException | str) -> NoReturn:
    """Print ``exc`` as ``seasonal-c2rcc: ...`` lines to stderr and exit 1 (no traceback)."""
    lines = [exc] if isinstance(exc, str) else problem_lines(exc)
    for line in lines:
        sys.stderr.write(PREFIX + line + "\n")
    sys.stderr.flush()
    sys.exit(1)


# --- local checks ---------------------------------------------------------------------------------


def check_url(key: str, url: str | None) -> None:
    """Refuse anything but an absolute http(s) URL without spaces, query or fragment."""
    if url is None:
        return
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or any(c.isspace() for c in url):
        raise ConfigError(
            f"config key '{key}': {url!r} is not an http(s) URL; write it in full, e.g. "
            "'https://gateway.prod.wekeo2.eu/hda-broker/'"
        )
    if parts.query or parts.fragment:
        raise ConfigError(f"config key '{key}': {url!r} has a query or fragment; remove it")
    try:
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        raise ConfigError(f"config key '{key}': {url!r} has an invalid port") from None


def check_endpoints(wekeo: Mapping[str, Any]) -> None:
    """The ``wekeo`` URLs are well formed. A missing or extra trailing slash is not an error:
    :meth:`seasonal_c2rcc.wekeo.Endpoints.from_config` normalises it."""
    for name in ("hda_url", "eocanvas_url", "eocanvas_token_url"):
        check_url(f"wekeo.{name}", wekeo.get(name))
    url = wekeo["hda_url"]
    if urlsplit(url).path.rstrip("/").endswith("/api/v1"):
        raise ConfigError(
            f"config key 'wekeo.hda_url': {url!r} ends in api/v1; give the broker root "
            f"{url[: url.rfind('api/v1')]!r}, hda adds api/v1 itself"
        )


def check_graph_placeholders(text: str, where: str) -> None:
    """``$polygon`` may only sit in a Subset node's ``geoRegion`` (it is filled there only; anywhere
    else the service would receive it literally and fail after an order and a job were paid)."""
    root = etree.fromstring(text.encode(), etree.XMLParser(resolve_entities=False, no_network=True))
    for el in root.iter():
        if not isinstance(el.tag, str):  # comments may mention placeholders
            continue
        found = {
            m
            for part in (el.text, *el.attrib.values())
            if part
            for m in PLACEHOLDER_RE.findall(part)
        }
        if "polygon" not in found:
            continue
        node = next((a for a in el.iterancestors("node")), None)
        operator = (node.findtext("operator") or "").strip() if node is not None else ""
        if el.tag == "geoRegion" and operator == "Subset":
            continue
        node_id = node.get("id") if node is not None else None
        place = (
            f"<{el.tag}> of node {node_id!r} ({operator or 'no operator'})"
            if node_id
            else f"<{el.tag}>"
        )
        raise ConfigError(
            f"{where}: $polygon is in {place}; it belongs only in the Subset node's <geoRegion>"
        )


def check_c2rcc_parameters(text: str, where: str) -> None:
    """Every ``c2rcc.msi`` parameter is one SNAP knows, with a value SNAP accepts."""
    from .c2rcc.params import C2rccMsiParams

    try:
        C2rccMsiParams.from_graph(text)
    except ConfigError as exc:
        raise ConfigError(f"{where}: c2rcc.msi node: {' '.join(str(exc).split())}") from None


def check_graph(path: Path) -> None:
    """The graph template is usable (see :func:`seasonal_c2rcc.graph.check_template`), ``$polygon``
    sits only in Subset/geoRegion, and the c2rcc.msi parameters are SNAP's."""
    from .graph import check_template

    where = f"graph {path}"
    text = path.read_text()
    check_template(text, where=where)
    check_graph_placeholders(text, where)
    check_c2rcc_parameters(text, where)


def check_local(config: MutableMapping[str, Any], base_dir: str | Path = ".") -> Campaign:
    """Validate everything that needs neither network nor credentials; return the campaign.

    ``config`` is updated in place with every schema default filled in (what the rules see).
    Raises :class:`ConfigError` (one line per schema problem).
    """
    campaign = load_campaign(config, base_dir)  # validates the schema and fills the defaults
    config.update(campaign.config)
    check_endpoints(campaign.config["wekeo"])
    check_graph(Path(base_dir) / campaign.config["graph"])
    return campaign


# --- access checks ---------------------------------------------------------------------------------


def hdarc_path(env: Mapping[str, str] | None = None) -> Path:
    """The rc file credentials are read from (``$HDA_RC``, else ``~/.hdarc``)."""
    env = os.environ if env is None else env
    return Path(env.get("HDA_RC") or Path.home() / ".hdarc")


def hdarc_warning(env: Mapping[str, str] | None = None) -> str | None:
    """A warning if the rc file holds a password and is readable by group or others."""
    rc = hdarc_path(env)
    try:
        mode = rc.stat().st_mode
        lines = rc.read_text().splitlines()
    except OSError:
        return None
    has_password = any(line.partition(":")[0].strip() == "password" for line in lines)
    if has_password and mode & (stat.S_IRGRP | stat.S_IROTH):
        return (
            f"warning: {rc} holds your WEkEO password and is readable by group or others (mode "
            f"{stat.S_IMODE(mode):o}); run: chmod 600 {rc}"
        )
    return None


def check_access(campaign: Campaign, env: Mapping[str, str] | None = None) -> None:
    """Credentials present and accepted: exactly one token request, never retried.

    Raises :class:`~seasonal_c2rcc.errors.CredentialsError` (missing or refused),
    :class:`ConfigError` (the URL answers, but not as a token endpoint) or
    :class:`~seasonal_c2rcc.errors.TransientBackendError` (unreachable, 5xx, time-out).
    """
    from .wekeo import Endpoints, check_login, load_credentials

    creds = load_credentials(dict(os.environ) if env is None else dict(env))
    wekeo = campaign.config["wekeo"]
    check_login(Endpoints.from_config(wekeo), creds, timeout=wekeo["http_timeout"])


# --- entry points (Snakefile, CLI) ------------------------------------------------------------------


def needs_wekeo(rule_names: Iterable[str]) -> bool:
    """True if any of the rules about to run talks to WEkEO (see :data:`WEKEO_RULES`)."""
    return not WEKEO_RULES.isdisjoint(rule_names)


def campaign_or_exit(config: MutableMapping[str, Any], base_dir: str | Path = ".") -> Campaign:
    """:func:`check_local`, or print its problems one per line and exit 1 (rules/common.smk)."""
    try:
        return check_local(config, base_dir)
    except SeasonalC2rccError as exc:
        fail(exc)


def access_or_exit(campaign: Campaign, env: Mapping[str, str] | None = None) -> None:
    """Warn once about a readable ``~/.hdarc``, then :func:`check_access`, or print one line and
    exit 1 (the Snakefile's ``onstart``)."""
    warning = hdarc_warning(env)
    if warning:
        sys.stderr.write(PREFIX + warning + "\n")
    try:
        check_access(campaign, env)
    except SeasonalC2rccError as exc:
        fail(exc)
