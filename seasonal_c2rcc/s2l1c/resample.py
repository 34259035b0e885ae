"""The graph's Resample node on raw DN blocks: Nearest upsampling and SNAP's Mean downsampling.

Both work on grids that nest (factors 2, 3, 6 between 10, 20 and 60 m), which is what the reader
guarantees by reading windows aligned to the 60 m grid.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

U16 = npt.NDArray[np.uint16]


def upsample_nearest(dn: npt.NDArray[np.integer], factor: int) -> npt.NDArray[np.integer]:
    """Each source pixel repeated ``factor`` x ``factor`` times (pixel-centre containment)."""
    if factor == 1:
        return dn
    return np.repeat(np.repeat(dn, factor, axis=0), factor, axis=1)


def downsample_mean(dn: npt.NDArray[np.integer], factor: int, nodata: int = 0) -> U16:
    """SNAP's ``ResamplingOp`` Mean aggregation of ``factor`` x ``factor`` blocks of raw DNs.

    Invalid pixels (``== nodata``) are skipped, the mean of the others is taken in double and cast
    back to the band's integer type the way Java's ``(int)`` does: truncated toward zero, and a
    block without valid pixels (NaN mean) becomes 0, i.e. no-data again.
    """
    if factor == 1:
        return dn.astype(np.uint16, copy=False)
    h, w = dn.shape
    if h % factor or w % factor:
        raise ValueError(f"block of {h}x{w} pixels is not a multiple of the factor {factor}")
    # block sums as two contiguous reductions; integer sums are exact, so the double mean equals
    # SNAP's sum-in-double of the valid pixels (the no-data DN adds nothing when it is 0)
    values = np.where(dn != nodata, dn, 0).astype(np.uint32) if nodata else dn.astype(np.uint32)
    valid = (dn != nodata).astype(np.uint16)
    total = _block_sum(values, factor)
    count = _block_sum(valid, factor)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total.astype(np.float64) / count
    out = np.zeros(mean.shape, dtype=np.uint16)
    ok = count > 0
    out[ok] = np.trunc(mean[ok]).astype(np.uint16)
    return out


def _block_sum(a: np.ndarray, f: int) -> np.ndarray:
    """Sums of ``f`` x ``f`` blocks as ``f`` strided additions per axis (fast for small ``f``)."""
    cols = a[:, 0::f].copy()
    for k in range(1, f):
        cols += a[:, k::f]
    rows = cols[0::f].copy()
    for k in range(1, f):
        rows += cols[k::f]
    return rows
