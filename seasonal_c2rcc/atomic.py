"""Atomic file writes: a temporary name in the same folder, then ``os.replace``.

Readers (and a workflow killed half-way) never see a half-written file.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it to ``path``, else delete it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield an empty temporary folder next to ``path``; on success it replaces ``path``, else it
    is deleted. ``path`` is never seen half-written: it is absent or whole (POSIX cannot swap a
    non-empty folder in one step, so an old ``path`` is removed just before the rename).

    Temporary folders left by killed processes (SIGKILL, an out-of-memory or wall-time kill) are
    removed first: only one writer per ``path`` runs at a time (Snakemake's output lock)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # exactly .<name>.<pid>.tmp: a sibling such as sub-tile "0.5" must not match sub-tile "0"
    stale_name = re.compile(rf"\.{re.escape(path.name)}\.\d+\.tmp")
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        if stale_name.fullmatch(stale.name):
            shutil.rmtree(stale, ignore_errors=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.mkdir()
    try:
        yield tmp
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_json_atomic(path: str | Path, data: Any) -> None:
    """Write ``data`` as JSON to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True, default=str) + "\n")


def read_json(path: str | Path) -> Any:
    """Read a JSON file."""
    return json.loads(Path(path).read_text())
