"""The Snakemake report on a partial campaign.

``snakemake --report`` walks every job of the requested targets' DAG and fails on the first
output marked ``report()`` that does not exist yet (Snakemake 9.27: "... marked for report but
does not exist"), so on a campaign still running it failed on the first missing map. Snakemake
tells a Snakefile nothing about the report mode (no setting, and the DAG settings are set only
after the Snakefile is read), so :func:`report_only_run` reads it from the command line, and
the default target then asks only for the outputs that exist (:func:`existing_targets`): the
report shows what is there and leaves the rest out.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Sequence

__all__ = ["existing_targets", "report_only_run"]


def report_only_run(argv: Sequence[str] | None = None) -> bool:
    """True when this Snakemake process only builds a report (``--report FILE`` or
    ``--report=FILE`` without ``--report-after-run``, which runs the workflow first)."""
    args = list(sys.argv[1:] if argv is None else argv)
    report = any(a == "--report" or a.startswith("--report=") for a in args)
    return report and "--report-after-run" not in args


def existing_targets(targets: Iterable[str], optional: Iterable[str] = ()) -> list[str]:
    """The ``targets`` that exist, then the ``optional`` extras that exist, in order, once."""
    wanted = [*targets, *optional]
    return [t for t in dict.fromkeys(wanted) if os.path.exists(t)]
