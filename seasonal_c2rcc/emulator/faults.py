"""Fault and behaviour knobs of the emulator, and the seeded dice that drive them.

Every knob is a field of :class:`FaultConfig`; the same names are CLI flags (``--job-failure-rate``)
and keys of ``POST /admin/faults``. Random decisions are a pure function of ``(seed, kind, key)``
so that a run with the same seed and the same request order injects the same faults.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import threading
from dataclasses import dataclass, fields
from typing import Any

PAGINATION_MODES = ("total", "next")


@dataclass
class FaultConfig:
    """Behaviour and fault settings. Defaults mimic a healthy real service (quotas on)."""

    #: probability that an otherwise valid job ends ``failed`` (with realistic error logs)
    job_failure_rate: float = 0.0
    #: seconds a job stays ``running`` (real seconds; not divided by ``time_scale``)
    job_duration: float = 1.0
    #: seconds a job stays ``accepted`` before it starts running
    accept_delay: float = 0.2
    #: probability that a job never leaves ``running``
    stuck_job_rate: float = 0.0
    #: probability that an API request (not token, not admin) gets a 500/502/503/504 reply
    http_5xx_rate: float = 0.0
    #: probability that a job submission is created but the reply is a 504 (ambiguous failure)
    submit_5xx_after_create_rate: float = 0.0
    #: probability that an API request's connection is dropped without any reply
    drop_connection_rate: float = 0.0
    #: probability that a download (product or result) sends fewer bytes than Content-Length
    truncate_download_rate: float = 0.0
    #: probability that a download is sent whole (Content-Length right) with 64 bytes in its middle
    #: inverted: a zip that arrives complete but fails its CRC check
    corrupt_download_rate: float = 0.0
    #: ``expires_in`` advertised with every token (seconds)
    token_expires_in: int = 3600
    #: seconds after issue when the server really stops accepting a token (None: expires_in)
    token_lifetime: float | None = None
    #: password that is refused with 401 (any other non-empty credentials are accepted)
    bad_password: str = "wrong"
    #: quota enforcement (on by default, as on the real service)
    quota_enabled: bool = True
    hda_orders_per_hour: int = 100
    eocanvas_jobs_per_hour: int = 10
    eocanvas_jobs_per_month: int = 100
    #: divides quota window lengths: 720 makes an "hour" last 5 s and a "month" 1 h
    time_scale: float = 1.0
    #: number of readiness HEADs answered 202 before an order is ready (200)
    order_ready_polls: int = 1
    #: search pagination: "total" (properties.totalResults) or "next" (properties.nextIndex)
    search_pagination: str = "total"
    #: results per page of GET /jobs/{id}/results (next-page/prev-page items beyond that)
    results_page_size: int = 10

    def validate(self) -> None:
        """Raise ``ValueError`` with a readable message if a value is out of range."""
        for name in (
            "job_failure_rate",
            "stuck_job_rate",
            "http_5xx_rate",
            "submit_5xx_after_create_rate",
            "drop_connection_rate",
            "truncate_download_rate",
            "corrupt_download_rate",
        ):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{name} must be within [0, 1], got {v}")
        for name in ("job_duration", "accept_delay"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        if self.token_expires_in < 1:
            raise ValueError("token_expires_in must be >= 1")
        if self.token_lifetime is not None and self.token_lifetime < 0:
            raise ValueError("token_lifetime must be >= 0 or null")
        if not self.bad_password:
            raise ValueError("bad_password must be non-empty")
        for name in (
            "hda_orders_per_hour",
            "eocanvas_jobs_per_hour",
            "eocanvas_jobs_per_month",
            "order_ready_polls",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        if self.time_scale <= 0:
            raise ValueError("time_scale must be > 0")
        if self.search_pagination not in PAGINATION_MODES:
            raise ValueError(f"search_pagination must be one of {PAGINATION_MODES}")
        if self.results_page_size < 1:
            raise ValueError("results_page_size must be >= 1")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of all fields."""
        return dataclasses.asdict(self)

    def updated(self, changes: dict[str, Any]) -> FaultConfig:
        """Return a validated copy with ``changes`` applied; unknown keys or bad types raise."""
        known = {f.name: f for f in fields(self)}
        unknown = sorted(set(changes) - set(known))
        if unknown:
            raise ValueError(f"unknown fault setting(s): {', '.join(unknown)}")
        new = dataclasses.replace(self)
        for key, value in changes.items():
            setattr(new, key, _coerce(key, value, getattr(self, key)))
        new.validate()
        return new


def _coerce(key: str, value: Any, current: Any) -> Any:
    """Coerce a JSON value to the type of the current setting (bool/int/float/str/None)."""
    if key == "token_lifetime":
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{key} must be a number or null")
        return float(value)
    if isinstance(current, bool):
        if not isinstance(value, bool):
            raise ValueError(f"{key} must be true or false")
        return value
    if isinstance(current, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{key} must be an integer")
        return value
    if isinstance(current, float):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{key} must be a number")
        return float(value)
    if not isinstance(value, str):
        raise ValueError(f"{key} must be a string")
    return value


def unit_hash(seed: int, kind: str, key: str) -> float:
    """Deterministic pseudo-random number in [0, 1) for ``(seed, kind, key)``."""
    digest = hashlib.sha256(f"{seed}|{kind}|{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


class Dice:
    """Seeded fault decisions: one counter per kind, so decisions replay with the same seed."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._counters: dict[str, itertools.count[int]] = {}
        self._lock = threading.Lock()

    def draw(self, kind: str) -> float:
        """Next number in [0, 1) of the ``kind`` sequence."""
        with self._lock:
            counter = self._counters.setdefault(kind, itertools.count())
            n = next(counter)
        return unit_hash(self.seed, kind, str(n))

    def roll(self, kind: str, probability: float) -> bool:
        """True with ``probability``; consumes one draw of ``kind`` only when probability > 0."""
        return probability > 0.0 and self.draw(kind) < probability

    def keyed(self, kind: str, key: str, probability: float) -> bool:
        """True with ``probability`` for a stable ``key`` (e.g. a job id)."""
        return probability > 0.0 and unit_hash(self.seed, kind, key) < probability

    def choice(self, kind: str, key: str, n: int) -> int:
        """Stable index in ``range(n)`` for ``key``."""
        return int(unit_hash(self.seed, kind, key) * n)
