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
    blocks = dn.reshape(h // factor, factor, w // factor, factor)
    valid = blocks != nodata
    total = np.where(valid, blocks, 0).astype(np.float64).sum(axis=(1, 3))
    count = valid.sum(axis=(1, 3))
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / count
    out = np.zeros(mean.shape, dtype=np.uint16)
    ok = count > 0
    out[ok] = np.trunc(mean[ok]).astype(np.uint16)
    return out
