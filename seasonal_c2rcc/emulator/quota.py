"""Rolling-window quotas of WEkEO, kept in the persistent ledger.

* HDA: ``hda_orders_per_hour`` distinct products ordered per user per rolling hour; ordering a
  product again while it is still in the window is free.
* EOCanvas: ``eocanvas_jobs_per_hour`` and ``eocanvas_jobs_per_month`` (rolling 30 days)
  accepted jobs per user. Each slot is given back one window after its use.

Window lengths are divided by ``time_scale`` so tests can make an "hour" last seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

from .faults import FaultConfig
from .state import State

HOUR_S = 3600.0
MONTH_S = 30 * 86400.0


@dataclass
class QuotaDenied:
    """A refused request: the limit that was hit and when its oldest slot frees."""

    limit: int
    remaining: int
    reset: float  # epoch seconds
    window: str  # "hour" or "month"
    service: str

    def headers(self) -> dict[str, str]:
        """The X-Quota-* headers of the 429 reply (reset in epoch milliseconds)."""
        return {
            "X-Quota-Limit": str(self.limit),
            "X-Quota-Remaining": str(self.remaining),
            "X-Quota-Reset": str(int(self.reset * 1000)),
        }


def _window_use(
    state: State, service: str, username: str, since: float
) -> list[tuple[str, float]]:
    rows = state.query(
        "SELECT key, time FROM quota WHERE service=? AND username=? AND time>? ORDER BY time",
        (service, username, since),
    )
    return [(str(k), float(t)) for k, t in rows]


def take_order_slot(
    state: State, faults: FaultConfig, username: str, product_id: str, now: float
) -> QuotaDenied | None:
    """Use one HDA order slot for ``product_id`` unless it is already in the window."""
    if not faults.quota_enabled:
        return None
    window = HOUR_S / faults.time_scale
    with state.transaction() as db:
        use = _window_use(state, "hda", username, now - window)
        if any(k == product_id for k, _ in use):
            return None
        if len(use) >= faults.hda_orders_per_hour:
            return QuotaDenied(faults.hda_orders_per_hour, 0, use[0][1] + window, "hour", "hda")
        db.execute(
            "INSERT INTO quota(service, username, key, time) VALUES('hda', ?, ?, ?)",
            (username, product_id, now),
        )
    return None


def take_job_slot(
    state: State, faults: FaultConfig, username: str, job_id: str, now: float
) -> QuotaDenied | None:
    """Use one EOCanvas job slot (hour and month windows) or say why not."""
    if not faults.quota_enabled:
        return None
    hour = HOUR_S / faults.time_scale
    month = MONTH_S / faults.time_scale
    with state.transaction() as db:
        month_use = _window_use(state, "eocanvas", username, now - month)
        hour_use = [(k, t) for k, t in month_use if t > now - hour]
        if len(month_use) >= faults.eocanvas_jobs_per_month:
            return QuotaDenied(
                faults.eocanvas_jobs_per_month, 0, month_use[0][1] + month, "month", "eocanvas"
            )
        if len(hour_use) >= faults.eocanvas_jobs_per_hour:
            return QuotaDenied(
                faults.eocanvas_jobs_per_hour, 0, hour_use[0][1] + hour, "hour", "eocanvas"
            )
        db.execute(
            "INSERT INTO quota(service, username, key, time) VALUES('eocanvas', ?, ?, ?)",
            (username, job_id, now),
        )
    return None


def usage(state: State, faults: FaultConfig, now: float) -> dict[str, dict[str, int]]:
    """Per-user slots in use in each window (for the accounting report)."""
    out: dict[str, dict[str, int]] = {}
    hour = HOUR_S / faults.time_scale
    month = MONTH_S / faults.time_scale
    for service, user, t in state.query("SELECT service, username, time FROM quota"):
        u = out.setdefault(user, {"hda_orders_hour": 0, "eocanvas_jobs_hour": 0,
                                  "eocanvas_jobs_month": 0})
        if service == "hda" and t > now - hour:
            u["hda_orders_hour"] += 1
        if service == "eocanvas":
            if t > now - hour:
                u["eocanvas_jobs_hour"] += 1
            if t > now - month:
                u["eocanvas_jobs_month"] += 1
    return out
