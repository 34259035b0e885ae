"""Shared fixtures for the composite / figure tests."""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # never open a window in tests
sys.path.insert(0, str(Path(__file__).parent))  # c2rcc_testdata helper module
