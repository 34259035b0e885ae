"""Logging for Snakemake job scripts: timestamped lines to the rule's log file and to stderr."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any


def script_logger(snakemake: Any, name: str = "seasonal_c2rcc") -> logging.Logger:
    """Send the package's log records to ``snakemake.log[0]`` and stderr, and return a logger.

    Secrets never reach the log: the package logs no credentials, and the eocanvas/hda clients'
    DEBUG output (which prints tokens) stays off.
    """
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%dT%H:%M:%S%z")
    root = logging.getLogger("seasonal_c2rcc")
    root.setLevel(logging.INFO)
    root.handlers.clear()
    root.propagate = False
    if getattr(snakemake, "log", None):
        path = Path(str(snakemake.log[0]))
        path.parent.mkdir(parents=True, exist_ok=True)
        fh = logging.FileHandler(path)
        fh.setFormatter(fmt)
        root.addHandler(fh)
    sh = logging.StreamHandler(sys.stderr)
    sh.setFormatter(fmt)
    root.addHandler(sh)
    for noisy in ("hda", "eocanvas", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return logging.getLogger(name)
