"""Season windows: named month-day ranges turned into exact date ranges per year.

A season is labelled by the year it starts in. A window whose end month-day comes before its start
(winter, 12-01..end of February) ends in the next year, and an end of ``02-28`` or ``02-29`` means
"the last day of February", so winter 2019 ends on 2020-02-29 and winter 2020 on 2021-02-28.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from .errors import ConfigError

DEFAULT_SEASONS: dict[str, dict[str, str]] = {
    "spring": {"start": "03-01", "end": "05-31"},
    "summer": {"start": "06-01", "end": "08-31"},
    "autumn": {"start": "09-01", "end": "11-30"},
    "winter": {"start": "12-01", "end": "02-29"},
}
_MD_RE = re.compile(r"^(\d\d)-(\d\d)$")
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class SeasonWindow:
    """A named window of month-days, e.g. ``winter``: ``12-01`` .. ``02-29`` (end of February)."""

    name: str
    start: tuple[int, int]
    end: tuple[int, int]

    @property
    def crosses_year(self) -> bool:
        """True if the window ends in the year after it starts."""
        return self.end < self.start

    def dates(self, year: int) -> tuple[date, date]:
        """First and last day (inclusive) of this season in ``year`` (the year it starts in)."""
        start = date(year, *self.start)
        end_year = year + 1 if self.crosses_year else year
        month, day = self.end
        if month == 2 and day >= 28:
            day = calendar.monthrange(end_year, 2)[1]
        return start, date(end_year, month, day)

    def query_range(self, year: int) -> tuple[str, str]:
        """``startdate``/``enddate`` strings for an HDA query covering the whole last day."""
        first, last = self.dates(year)
        t0 = datetime.combine(first, time(0), tzinfo=UTC)
        t1 = datetime.combine(last + timedelta(days=1), time(0), tzinfo=UTC)
        t1 -= timedelta(milliseconds=1)
        return (
            t0.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            t1.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t1.microsecond // 1000:03d}Z",
        )


def _parse_md(text: str, where: str) -> tuple[int, int]:
    m = _MD_RE.match(str(text))
    if not m:
        raise ConfigError(f"{where}: expected MM-DD, got {text!r}")
    month, day = int(m.group(1)), int(m.group(2))
    if not 1 <= month <= 12 or not 1 <= day <= calendar.monthrange(2000, month)[1]:
        raise ConfigError(f"{where}: {text!r} is not a day of the year")
    return month, day


def parse_seasons(spec: dict[str, dict[str, str]] | None = None) -> list[SeasonWindow]:
    """Validate a ``seasons`` config mapping (name -> {start, end}) and return the windows.

    Windows may not overlap within a year: an image must belong to one season only.
    """
    spec = DEFAULT_SEASONS if spec is None else spec
    if not spec:
        raise ConfigError("seasons: at least one season is needed")
    windows = []
    for name, w in spec.items():
        if not _NAME_RE.match(name):
            raise ConfigError(
                f"seasons: name {name!r} must be lower-case letters, digits or '_' (used in paths)"
            )
        if not isinstance(w, dict) or set(w) != {"start", "end"}:
            raise ConfigError(f"seasons.{name}: needs exactly the keys 'start' and 'end'")
        windows.append(
            SeasonWindow(
                name,
                _parse_md(w["start"], f"seasons.{name}.start"),
                _parse_md(w["end"], f"seasons.{name}.end"),
            )
        )
    # Overlap check on a leap year, in day-of-year space, unrolling year-crossing windows.
    spans = []
    for w in windows:
        a, b = w.dates(2020)
        spans.append((a, b, w.name))
        a2, b2 = w.dates(2019)
        if w.crosses_year:
            spans.append((a2, b2, w.name))
    spans.sort()
    for (_, b1, n1), (a2, _, n2) in zip(spans, spans[1:], strict=False):
        if a2 <= b1 and n1 != n2:
            raise ConfigError(f"seasons: {n1!r} and {n2!r} overlap")
    return windows


def season_of(when: date, windows: list[SeasonWindow]) -> tuple[str, int] | None:
    """Return (season name, season year) that ``when`` falls in, or None."""
    for w in windows:
        for year in (when.year, when.year - 1):
            first, last = w.dates(year)
            if first <= when <= last:
                return w.name, year
    return None
