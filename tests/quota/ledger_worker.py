"""Worker process for the multi-process ledger tests: acquire N EOCanvas slots, print JSON lines.

Run as ``python ledger_worker.py DB N TIME_SCALE PER_HOUR PER_MONTH``; prints one JSON object per
acquisition (``{"at": t}``) or ``{"month": resume_at}`` when the monthly quota stops it.
"""

from __future__ import annotations

import json
import sys

from seasonal_c2rcc.errors import MonthlyQuotaExhausted
from seasonal_c2rcc.quota import QuotaLedger, QuotaLimits


def main() -> None:
    db, n, scale, per_hour, per_month = sys.argv[1:6]
    limits = QuotaLimits(
        eocanvas_per_hour=int(per_hour),
        eocanvas_per_month=int(per_month),
        time_scale=float(scale),
    )
    with QuotaLedger(db, limits, poll=5.0) as ledger:
        for i in range(int(n)):
            try:
                res = ledger.acquire("eocanvas", f"job-{i}")
            except MonthlyQuotaExhausted as exc:
                print(json.dumps({"month": exc.resume_at, "msg": str(exc)}), flush=True)
                return
            print(json.dumps({"at": res.at}), flush=True)


if __name__ == "__main__":
    main()
