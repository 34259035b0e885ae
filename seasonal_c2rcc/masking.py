"""Per-observation validity of C2RCC pixels, from the ``c2rcc_flags`` word.

C2RCC writes 0.0 (not NaN) into every band of a pixel that failed its valid-pixel expression, and
sets quality bits on pixels it did process. A composite that reads the bands without this mask
averages zeros and out-of-range retrievals into the result and still looks plausible. The rule
implemented here (issue 6, ``docs/composites.md``):

* an observation is usable only if ``Valid_PE`` (bit 31) is set **and** none of the configured
  exclude flags is set (default :data:`~seasonal_c2rcc.flags.DEFAULT_EXCLUDE_FLAGS`: Cloud_risk,
  Rtosa_OOR, Rhow_OOR, Iop_OOR and every ``*_at_max`` flag, because an at-max value is censored:
  the true value is that value *or higher*);
* optionally, every pixel within ``cloud_buffer_px`` pixels (square neighbourhood, Chebyshev
  distance) of a Cloud_risk pixel is excluded too: cloud edges and shadows are the main residual
  error source and C2RCC's Cloud_risk alone is a weak screen;
* a value that is exactly 0, non-finite or equal to the variable's fill value is never a value,
  whatever the flags say.

Pure numpy; no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import ConfigError
from .flags import DEFAULT_EXCLUDE_FLAGS, FLAG_MASKS, flag_mask

__all__ = [
    "DEFAULT_CLOUD_BUFFER_PX",
    "DEFAULT_MIN_VALID_OBS",
    "MaskConfig",
    "dilate",
    "usable_values",
    "valid_mask",
]


#: Defaults of the ``masking`` config section (also documented in ``docs/composites.md``).
DEFAULT_CLOUD_BUFFER_PX = 0
DEFAULT_MIN_VALID_OBS = 3

_VALID_PE = FLAG_MASKS["Valid_PE"]
_CLOUD_RISK = FLAG_MASKS["Cloud_risk"]


@dataclass(frozen=True)
class MaskConfig:
    """How observations are screened and how many a composite pixel needs.

    Attributes
    ----------
    exclude_flags
        ``c2rcc_flags`` names; an observation with any of them set is not used.
    cloud_buffer_px
        Exclude pixels within this many pixels (square neighbourhood) of a Cloud_risk pixel;
        0 disables the buffer.
    min_valid_obs
        Composite pixels with fewer valid observations (after same-day grouping) are no-data.
    """

    exclude_flags: tuple[str, ...] = DEFAULT_EXCLUDE_FLAGS
    cloud_buffer_px: int = DEFAULT_CLOUD_BUFFER_PX
    min_valid_obs: int = DEFAULT_MIN_VALID_OBS

    def __post_init__(self) -> None:
        try:
            flag_mask(self.exclude_flags)
        except KeyError as exc:
            raise ConfigError(f"masking.exclude_flags: {exc.args[0]}") from None
        if "Valid_PE" in self.exclude_flags:
            raise ConfigError(
                "masking.exclude_flags must not contain Valid_PE: it marks the pixels C2RCC did "
                "process, which are the only usable ones"
            )
        if not isinstance(self.cloud_buffer_px, int) or self.cloud_buffer_px < 0:
            raise ConfigError(
                f"masking.cloud_buffer_px must be an integer >= 0, got {self.cloud_buffer_px!r}"
            )
        if not isinstance(self.min_valid_obs, int) or self.min_valid_obs < 1:
            raise ConfigError(
                f"masking.min_valid_obs must be an integer >= 1, got {self.min_valid_obs!r}"
            )

    @property
    def exclude_mask(self) -> int:
        """OR of the exclude flags' bit masks."""
        return flag_mask(self.exclude_flags)

    @classmethod
    def from_config(cls, section: Mapping[str, Any] | None) -> MaskConfig:
        """Build from the ``masking`` config section; missing keys take the defaults.

        Unknown keys raise :class:`ConfigError` so that a typo does not silently fall back to a
        default.
        """
        section = dict(section or {})
        known = {"exclude_flags", "cloud_buffer_px", "min_valid_obs"}
        unknown = set(section) - known
        if unknown:
            raise ConfigError(
                f"masking: unknown key(s) {sorted(unknown)}; known keys: {sorted(known)}"
            )
        flags = section.get("exclude_flags", DEFAULT_EXCLUDE_FLAGS)
        if isinstance(flags, str) or not isinstance(flags, Iterable):
            raise ConfigError(f"masking.exclude_flags must be a list of flag names, got {flags!r}")
        return cls(
            exclude_flags=tuple(str(f) for f in flags),
            cloud_buffer_px=section.get("cloud_buffer_px", DEFAULT_CLOUD_BUFFER_PX),
            min_valid_obs=section.get("min_valid_obs", DEFAULT_MIN_VALID_OBS),
        )

    def to_attrs(self) -> dict[str, Any]:
        """The settings as NetCDF-friendly attributes (strings and ints)."""
        return {
            "masking_exclude_flags": " ".join(self.exclude_flags),
            "masking_cloud_buffer_px": self.cloud_buffer_px,
            "masking_min_valid_obs": self.min_valid_obs,
        }


def dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """Binary dilation of a 2-D boolean mask by a (2·radius+1)² square.

    Separable running-OR along each axis: O(radius) array passes, no SciPy needed.
    """
    out = np.asarray(mask, dtype=bool)
    if radius <= 0 or not out.any():
        return out.copy()
    for axis in (0, 1):
        n = out.shape[axis]
        acc = out.copy()
        for shift in range(1, min(radius, n - 1) + 1):
            lead = [slice(None)] * 2
            lag = [slice(None)] * 2
            lead[axis], lag[axis] = slice(shift, None), slice(None, -shift)
            acc[tuple(lead)] |= out[tuple(lag)]  # spread towards higher indices
            acc[tuple(lag)] |= out[tuple(lead)]  # and towards lower indices
        out = acc
    return out


def valid_mask(flags: np.ndarray, config: MaskConfig = MaskConfig()) -> np.ndarray:  # noqa: B008
    """Boolean mask of usable observations from a ``c2rcc_flags`` array (2-D, any int dtype).

    ``True`` where Valid_PE is set, no exclude flag is set and (with a cloud buffer) no Cloud_risk
    pixel is within ``config.cloud_buffer_px`` pixels.
    """
    f = np.asarray(flags).astype(np.uint32, copy=False)
    ok = ((f & np.uint32(_VALID_PE)) != 0) & ((f & np.uint32(config.exclude_mask)) == 0)
    if config.cloud_buffer_px > 0:
        # Only processed pixels carry a meaningful Cloud_risk bit.
        cloud = ((f & np.uint32(_CLOUD_RISK)) != 0) & ((f & np.uint32(_VALID_PE)) != 0)
        ok &= ~dilate(cloud, config.cloud_buffer_px)
    return ok


def usable_values(
    values: np.ndarray, valid: np.ndarray, *, fill_value: float | None = None
) -> np.ndarray:
    """float32 copy of ``values`` with NaN wherever the observation is not usable.

    Not usable: ``valid`` is False, or the value is 0, non-finite or equal to ``fill_value``
    (C2RCC stores 0.0 in invalid pixels; no C2RCC output is legitimately exactly 0).
    """
    out = np.array(values, dtype=np.float32, copy=True)
    bad = ~np.asarray(valid, dtype=bool) | (out == 0) | ~np.isfinite(out)
    if fill_value is not None and np.isfinite(fill_value):
        bad |= out == np.float32(fill_value)
    out[bad] = np.nan
    return out
