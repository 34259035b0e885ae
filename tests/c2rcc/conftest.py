"""Fixtures for the native C2RCC-MSI tests.

The nets and SNAP's test product are GPL-3.0 SNAP material kept outside the repository, in the
shared data folder next to the checkout (``<repo>/../shared/data``). ``SEASONAL_C2RCC_NETS`` (the
``msi`` folder or its parent) and ``SEASONAL_C2RCC_SNAP_TEST`` (the S2Ref_Product.zip) override the
locations. Missing data is a failure with instructions, never a skip.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from c2rcc_native_testdata import SHARED_DATA

from seasonal_c2rcc.c2rcc import NetSet, load_nets


def _must_exist(path: Path, what: str, env: str) -> Path:
    if not path.exists():
        pytest.fail(
            f"{what} not found at {path}. Put SNAP's data in the shared data folder next to the "
            f"repository or set ${env} (see docs/c2rcc.md, 'Getting the nets').",
            pytrace=False,
        )
    return path


@pytest.fixture(scope="session")
def nets_dir() -> Path:
    """The folder holding std_s2_20160502/, ext_s2_elbetsm_20170320/, complex_20200321/."""
    env = os.environ.get("SEASONAL_C2RCC_NETS")
    base = Path(env) if env else SHARED_DATA / "c2rcc-nets" / "msi"
    if (base / "msi").is_dir():
        base = base / "msi"
    return _must_exist(base, "C2RCC-MSI nets", "SEASONAL_C2RCC_NETS")


@pytest.fixture(scope="session")
def snap_test_product() -> Path:
    """SNAP's real BEAM-DIMAP test subset S2Ref_Product.zip."""
    env = os.environ.get("SEASONAL_C2RCC_SNAP_TEST")
    path = Path(env) if env else SHARED_DATA / "snap-test" / "S2Ref_Product.zip"
    return _must_exist(path, "S2Ref_Product.zip", "SEASONAL_C2RCC_SNAP_TEST")


@pytest.fixture(scope="session")
def std_nets(nets_dir: Path) -> NetSet:
    """The C2RCC-Nets (standard) set."""
    return load_nets("C2RCC-Nets", nets_dir=nets_dir)
