"""SNAP graph XML as EOCanvas receives it: parsing, placeholders and Read->...->Write chains.

The emulator does not run SNAP; it reads the graph the way gpt would, to find for every ``Write``
node the chain of operators feeding it (Read, Subset, Resample/S2Resampling, c2rcc.msi) and
their parameters. Those decide the output grid, the bands and whether the job fails.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from lxml import etree

#: gpt's TemplateReader substitutes ``$key`` and ``${key}`` (Java identifier chars plus '.').
PLACEHOLDER_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_.]*)\}|\$([A-Za-z_][A-Za-z0-9_.]*)")
SUPPORTED_OPERATORS = ("Read", "Subset", "Resample", "S2Resampling", "c2rcc.msi", "Write")



class GraphError(Exception):
    """The graph is not a usable SNAP graph (bad XML or structure)."""


@dataclass
class Node:
    """One ``<node>`` of a SNAP graph."""

    id: str
    operator: str
    sources: list[str]
    params: dict[str, str] = field(default_factory=dict)


@dataclass
class Chain:
    """The nodes feeding one Write node, upstream of it."""

    write: Node
    read: Node | None
    subset: Node | None = None
    resample: Node | None = None
    c2rcc: Node | None = None
    #: ids of nodes in order from Read to Write
    path: list[str] = field(default_factory=list)
    #: True if Subset sits upstream of the resampling node (its pixel region is then in 10 m px)
    subset_before_resample: bool = False
    #: True if c2rcc.msi sits upstream of the resampling node (it then sees mixed raster sizes)
    c2rcc_before_resample: bool = False
    unsupported: list[str] = field(default_factory=list)


def parse_graph(xml: bytes) -> dict[str, Node]:
    """Parse graph XML bytes into nodes by id; raise :class:`GraphError` if it is not a graph."""
    try:
        parser = etree.XMLParser(resolve_entities=False, no_network=True)
        root = etree.fromstring(xml, parser)
    except etree.XMLSyntaxError as exc:
        raise GraphError(f"graph is not well-formed XML: {exc}") from None
    if root.tag != "graph":
        raise GraphError(f"root element must be <graph>, found <{root.tag}>")
    nodes: dict[str, Node] = {}
    for el in root.findall("node"):
        nid = el.get("id")
        op = (el.findtext("operator") or "").strip()
        if not nid:
            raise GraphError("a <node> has no id attribute")
        if not op:
            raise GraphError(f"node '{nid}' has no <operator>")
        if nid in nodes:
            raise GraphError(f"duplicate node id '{nid}'")
        sources: list[str] = []
        src = el.find("sources")
        if src is not None:
            for s in src:
                if not isinstance(s.tag, str):
                    continue
                ref = s.get("refid")
                if ref:
                    sources.append(ref)
                elif s.text and s.text.strip():
                    sources.extend(t.strip() for t in s.text.split(",") if t.strip())
        params: dict[str, str] = {}
        par = el.find("parameters")
        if par is not None:
            for p in par:
                if isinstance(p.tag, str):
                    # Nested elements (e.g. band descriptors) are kept as their text content.
                    params[p.tag] = "".join(p.itertext()).strip()
        nodes[nid] = Node(nid, op, sources, params)
    if not nodes:
        raise GraphError("graph has no <node> elements")
    return nodes


def placeholders(text: str) -> set[str]:
    """Names of all ``$key`` / ``${key}`` placeholders in ``text``."""
    return {a or b for a, b in PLACEHOLDER_RE.findall(text)}


def write_nodes(nodes: dict[str, Node]) -> list[Node]:
    """Write nodes in document order."""
    return [n for n in nodes.values() if n.operator == "Write"]


def trace(nodes: dict[str, Node], write: Node) -> Chain:
    """Follow first sources upstream from ``write`` to its Read node."""
    chain = Chain(write=write, read=None)
    seen: set[str] = set()
    cur: Node | None = write
    order: list[str] = []
    while cur is not None:
        if cur.id in seen:
            raise GraphError(f"graph has a cycle through node '{cur.id}'")
        seen.add(cur.id)
        order.append(cur.id)
        if cur.operator == "Read":
            chain.read = cur
            break
        if cur is not write:
            if cur.operator == "Subset":
                chain.subset = cur
                chain.subset_before_resample = chain.resample is not None
            elif cur.operator in ("Resample", "S2Resampling"):
                chain.resample = cur
            elif cur.operator == "c2rcc.msi":
                chain.c2rcc = cur
                chain.c2rcc_before_resample = chain.resample is not None
            elif cur.operator not in SUPPORTED_OPERATORS:
                chain.unsupported.append(cur.operator)
        if not cur.sources:
            break
        src = cur.sources[0]
        if src not in nodes:
            raise GraphError(f"node '{cur.id}' refers to unknown source node '{src}'")
        cur = nodes[src]
    chain.path = list(reversed(order))
    return chain
