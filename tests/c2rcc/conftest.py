"""Fixtures for the native C2RCC-MSI tests.

``nets_dir`` and ``snap_test_product`` (SNAP's GPL-3.0 data, kept outside the repository) come from
``tests/conftest.py``: they skip with the reason where the data is absent, and fail where
``SEASONAL_C2RCC_REQUIRE_SNAP_DATA=1`` demands them (CI).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from seasonal_c2rcc.c2rcc import NetSet, load_nets


@pytest.fixture(scope="session")
def std_nets(nets_dir: Path) -> NetSet:
    """The C2RCC-Nets (standard) set."""
    return load_nets("C2RCC-Nets", nets_dir=nets_dir)
