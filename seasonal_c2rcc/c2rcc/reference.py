"""SNAP's C2RCC-MSI test pixel: the inputs its unit tests (``MsiTestProduct.java``) hard-code.

They equal the pin pixel (x 29, y 16) of SNAP's real ``S2Ref_Product``. Tests check the port
against SNAP's expected outputs for it; the benchmark builds its synthetic scene around it.
"""

from __future__ import annotations

from .msi import SOURCE_BANDS

#: Top-of-atmosphere reflectances of B1..B12 and B8A, in ``SOURCE_BANDS`` order (float32 values).
PIN_TOA: dict[str, float] = dict(
    zip(
        SOURCE_BANDS,
        [0.1251, 0.0985, 0.0827, 0.0647, 0.0705, 0.0569, 0.0593, 0.0498, 0.0547, 0.0106, 0.001,
         0.0452, 0.0318],
        strict=True,
    )
)  # fmt: skip

#: Sun and mean viewing angles of the test pixel (degrees).
PIN_ANGLES: dict[str, float] = {
    "sun_azimuth": 131.473,
    "sun_zenith": 30.195,
    "view_azimuth_mean": 86.0869,
    "view_zenith_mean": 5.01679,
}
