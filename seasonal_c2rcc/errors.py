"""One error tree for the whole package.

::

    SeasonalC2rccError
    ├── ConfigError            bad config, grid file or graph; raised before any remote call
    │   └── CredentialsError       WEkEO credentials missing, or refused by the token endpoint
    ├── CatalogueError         the HDA catalogue refused or garbled a search
    ├── BackendError           remote processing (EOCanvas) or local processing
    │   ├── TransientBackendError   worth retrying later (5xx, dropped connection, time-out)
    │   ├── QuotaError              a quota window is full; carries ``resume_at`` (epoch seconds)
    │   │   └── MonthlyQuotaExhausted   no submission possible before next month's window
    │   ├── JobFailedError          the remote job (or a local gpt run) failed; carries the log path
    │   ├── NotCoveredError         the product has no data over the job's region (permanent)
    │   └── ResourceError           the processor ran out of memory (permanent until settings change)
    ├── DownloadError          a result or product download was short, corrupt or missing
    ├── ProductError           a downloaded product is unreadable (truncated zip, corrupt JP2,
    │                          missing band or metadata); ``redownload_may_fix`` is True
    ├── OutputError            a produced file failed verification (not NetCDF, variables missing)
    └── StateError             a durable job record is corrupt (names the file and the fix)

Messages say what failed, where the evidence is, and what to do next.

Permanent or transient: every error says, in ``permanent``, whether doing the same thing again can
succeed. Permanent (bad config, grid or graph, refused credentials, a request the service rejects
with a 4xx) is never retried: a Snakemake ``retries:`` attempt after one exits at once with the same
line (:mod:`seasonal_c2rcc.failfast`). Transient (5xx, dropped connection, time-out, quota, a short
download) may be retried. The class sets the default; an instance may override it, e.g. a
``JobFailedError`` whose remote log shows an invalid graph sets ``exc.permanent = True``. Use
:func:`is_permanent` to ask (it is False for anything outside this tree).
"""

from __future__ import annotations


class SeasonalC2rccError(Exception):
    """Root of every error raised by seasonal_c2rcc. ``permanent``: see the module docstring."""

    permanent: bool = False


class ConfigError(SeasonalC2rccError):
    """Invalid configuration, grid file or SNAP graph (detected before any spend)."""

    permanent = True


class CredentialsError(ConfigError):
    """WEkEO credentials are missing, or the token endpoint refused them (401/403).

    Never retried: repeated failed logins can lock the account on the real service.
    """


class CatalogueError(SeasonalC2rccError):
    """The catalogue refused a request (HTTP 4xx) or returned malformed data.

    Permanent: the same query gets the same answer (5xx and dropped connections are
    :class:`TransientBackendError`).
    """

    permanent = True


class BackendError(SeasonalC2rccError):
    """A processing backend failed."""


class TransientBackendError(BackendError):
    """A failure that is expected to go away (HTTP 5xx, dropped connection, time-out)."""


class QuotaError(BackendError):
    """A quota window is full. ``resume_at`` is the epoch time (s) when a slot frees."""

    def __init__(self, message: str, resume_at: float | None = None) -> None:
        super().__init__(message)
        self.resume_at = resume_at


class MonthlyQuotaExhausted(QuotaError):
    """The monthly EOCanvas allowance is used up; work resumes at ``resume_at``."""


class JobFailedError(BackendError):
    """A remote job finished with status ``failed``. ``log_path`` holds its saved logs."""

    def __init__(self, message: str, log_path: str | None = None) -> None:
        super().__init__(message)
        self.log_path = log_path


class NotCoveredError(BackendError):
    """The product has no data over the job's region (SNAP's Subset found no intersection and gpt
    wrote an empty product). Permanent for that product and region: the sub-tiles are not covered
    by it."""

    permanent = True


class ResourceError(BackendError):
    """The processor ran out of memory (Java heap space). Permanent until the settings change
    (``gpt.max_heap``, ``gpt.threads``, ``gpt.tile_cache``, or a smaller ``pixel_budget``)."""

    permanent = True


class DownloadError(SeasonalC2rccError):
    """A download was truncated, corrupt or missing."""


class ProductError(SeasonalC2rccError):
    """A product (e.g. a Sentinel-2 L1C SAFE) is damaged: ``product`` names it, ``part`` the piece.

    ``redownload_may_fix`` is True for product-level corruption (a truncated zip, an undecodable
    JP2, a missing band or metadata file): a download layer may delete its cached copy and fetch
    it once more before giving up. Not ``permanent`` for the same reason: another attempt may get
    an intact copy.
    """

    redownload_may_fix: bool = True

    def __init__(self, message: str, product: str = "", part: str = "") -> None:
        super().__init__(message)
        self.product = product
        self.part = part


class OutputError(SeasonalC2rccError):
    """A produced file failed verification."""


class StateError(SeasonalC2rccError):
    """Durable local state (a job record) is corrupt; the message names the file and the fix.
    Permanent: a retry reads the same file (seasonal_c2rcc.integrity)."""

    permanent = True


def is_permanent(exc: BaseException) -> bool:
    """True if ``exc`` cannot go away on retry (see the module docstring); False for anything
    that is not a :class:`SeasonalC2rccError`, so unknown failures keep Snakemake's retries."""
    return isinstance(exc, SeasonalC2rccError) and bool(exc.permanent)
