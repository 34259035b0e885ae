"""Job scripts: our own errors as one line, and a permanent failure never tried again.

Snakemake re-runs a failed job up to ``retries:`` times whatever the cause; it cannot be told that
a refused password or a rejected query will be refused again. So the first attempt that fails
permanently (:func:`seasonal_c2rcc.errors.is_permanent`) writes a marker
(``paths.FAILFAST_MARKER``, keyed by rule and wildcards) and every later attempt of the same run
reads it and exits at once with the same line, before any remote call. Attempt 1 of a run always
deletes the marker first, so a new run (after fixing the cause) starts clean; the attempt number
comes from the rule's ``attempt`` resource (``resources: attempt=lambda wildcards, attempt:
attempt``), the only per-attempt value Snakemake hands to a script.

Errors of the package are logged as one line (to the rule's log, which Snakemake names, and to
stderr), never a traceback; anything else is a bug and keeps its traceback in the log.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from types import TracebackType
from typing import Any

from . import paths
from .atomic import read_json, write_json_atomic
from .errors import SeasonalC2rccError, is_permanent


def attempt_of(snakemake: Any) -> int:
    """The attempt number of this job (1 on the first run; from the rule's ``attempt`` resource)."""
    return int(getattr(snakemake.resources, "attempt", 1) or 1)


def marker_path(snakemake: Any) -> Path:
    """Where this job's permanent failure is recorded (rule + wildcard values)."""
    key = "/".join(str(v) for v in snakemake.wildcards) or "all"
    return Path(paths.FAILFAST_MARKER.format(rule=snakemake.rule, key=key))


def one_line(text: str) -> str:
    """``text`` with every run of white space (newlines included) collapsed to one space."""
    return " ".join(str(text).split())


def install(snakemake: Any, log: logging.Logger, what: str, hint: str = "") -> None:
    """Set this script up to fail fast: call it first, right after the logger.

    On attempt 2+ of a job whose earlier attempt failed permanently this logs that failure's line
    and exits 1 at once. Otherwise it installs a ``sys.excepthook`` that logs our errors as
    ``<what> failed: <cause>`` (plus ``hint`` for transient ones, e.g. how to resume) and records a
    permanent one for the next attempt.
    """
    marker = marker_path(snakemake)
    attempt = attempt_of(snakemake)
    if attempt <= 1:
        marker.unlink(missing_ok=True)
    elif marker.is_file():
        line = read_json(marker).get("message", f"{what} failed permanently")
        log.error(
            "%s (attempt %d not run: the cause is permanent, a retry cannot help)", line, attempt
        )
        sys.exit(1)

    def hook(etype: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        if not isinstance(exc, SeasonalC2rccError):
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                sys.__excepthook__(etype, exc, tb)
                return
            log.error(
                "%s failed with an unexpected error (a bug: please report it with this log)",
                what,
                exc_info=(etype, exc, tb),
            )
            return
        line = f"{what} failed: {one_line(str(exc))}"
        if is_permanent(exc):
            write_json_atomic(
                marker, {"message": line, "error": type(exc).__name__, "attempt": attempt}
            )
        elif hint:
            line += f". {hint}"
        log.error("%s", line)

    sys.excepthook = hook
