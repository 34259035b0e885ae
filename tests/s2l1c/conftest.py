"""Fixtures of the SAFE reader tests: small synthetic L1C products built once per session."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from s2l1c_testdata import SENSING, TILE, small_extent

from seasonal_c2rcc.s2l1c.synthetic import make_product_id, write_synthetic_safe


@pytest.fixture(scope="session")
def make_safe(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """``make_safe(baseline="04.00", zip=True, **kwargs)``: a synthetic product in a fresh folder."""
    counter = iter(range(10_000))

    def make(baseline: str = "04.00", **kwargs) -> Path:
        kwargs.setdefault("extent", small_extent())
        dest = tmp_path_factory.mktemp(f"safe{next(counter)}")
        pid = make_product_id(TILE, SENSING, baseline=baseline)
        return write_synthetic_safe(dest, pid, **kwargs)

    return make


@pytest.fixture(scope="session")
def safe_zip(make_safe) -> Path:
    """A default 6 km x 6 km product, baseline 04.00, zipped, with AUX_ECMWFT."""
    return make_safe("04.00", ecmwf=True)


@pytest.fixture(scope="session")
def safe_zip_0209(make_safe) -> Path:
    """The same field at baseline 02.09 (no radiometric offset)."""
    return make_safe("02.09")
