"""Masking rules: Valid_PE, exclude flags, cloud buffer, zeros."""

from __future__ import annotations

import numpy as np
import pytest

from seasonal_c2rcc.errors import ConfigError
from seasonal_c2rcc.flags import DEFAULT_EXCLUDE_FLAGS, FLAG_MASKS
from seasonal_c2rcc.masking import MaskConfig, dilate, usable_values, valid_mask

V = FLAG_MASKS["Valid_PE"]


def test_valid_mask__valid_pe_required_and_each_default_flag_excludes():
    flags = [0, V] + [V | FLAG_MASKS[f] for f in DEFAULT_EXCLUDE_FLAGS]
    flags += [V | FLAG_MASKS["Apig_at_min"], V | FLAG_MASKS["Kd489_OOR"], FLAG_MASKS["Cloud_risk"]]
    ok = valid_mask(np.array([flags], dtype=np.uint32))[0]
    expected = [False, True] + [False] * len(DEFAULT_EXCLUDE_FLAGS) + [True, True, False]
    assert ok.tolist() == expected


def test_valid_mask__configurable_flags():
    f = np.array([[V | FLAG_MASKS["Cloud_risk"], V | FLAG_MASKS["Apig_at_min"]]], np.uint32)
    ok = valid_mask(f, MaskConfig(exclude_flags=("Apig_at_min",)))[0]
    assert ok.tolist() == [True, False]


def test_valid_mask__cloud_buffer_square_and_only_from_processed_pixels():
    f = np.full((7, 7), V, np.uint32)
    f[3, 3] |= FLAG_MASKS["Cloud_risk"]
    f[0, 6] = FLAG_MASKS["Cloud_risk"]  # not processed: its Cloud_risk bit means nothing
    ok = valid_mask(f, MaskConfig(cloud_buffer_px=2))
    expected = np.ones((7, 7), bool)
    expected[1:6, 1:6] = False
    expected[0, 6] = False  # invalid itself (no Valid_PE), but does not spread
    np.testing.assert_array_equal(ok, expected)


def test_dilate__matches_bruteforce():
    rng = np.random.default_rng(3)
    m = rng.random((15, 11)) < 0.05
    for r in (1, 3):
        ref = np.zeros_like(m)
        for i, j in zip(*np.nonzero(m), strict=True):
            ref[max(0, i - r) : i + r + 1, max(0, j - r) : j + r + 1] = True
        np.testing.assert_array_equal(dilate(m, r), ref)


def test_usable_values__zero_nan_fill_and_mask_are_never_values():
    vals = np.array([0.0, 1.5, np.nan, -999.0, 2.0, 3.0], np.float32)
    valid = np.array([True, True, True, True, True, False])
    out = usable_values(vals, valid, fill_value=-999.0)
    np.testing.assert_array_equal(np.isnan(out), [True, False, True, True, False, True])
    assert out[1] == np.float32(1.5) and out[4] == np.float32(2.0)


def test_mask_config__validation_and_from_config():
    assert MaskConfig.from_config(None) == MaskConfig()
    c = MaskConfig.from_config(
        {"exclude_flags": ["Cloud_risk"], "cloud_buffer_px": 2, "min_valid_obs": 5}
    )
    assert (c.exclude_mask, c.cloud_buffer_px, c.min_valid_obs) == (FLAG_MASKS["Cloud_risk"], 2, 5)
    with pytest.raises(ConfigError, match="unknown c2rcc flag"):
        MaskConfig(exclude_flags=("Clouds",))
    with pytest.raises(ConfigError, match="Valid_PE"):
        MaskConfig(exclude_flags=("Valid_PE",))
    with pytest.raises(ConfigError, match="min_valid_obs"):
        MaskConfig(min_valid_obs=0)
    with pytest.raises(ConfigError, match="cloud_buffer_px"):
        MaskConfig(cloud_buffer_px=-1)
    with pytest.raises(ConfigError, match="unknown key"):
        MaskConfig.from_config({"min_obs": 3})
    with pytest.raises(ConfigError, match="list of flag names"):
        MaskConfig.from_config({"exclude_flags": "Cloud_risk"})
