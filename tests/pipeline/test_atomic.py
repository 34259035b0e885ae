"""Atomic folder writes (the per-product folder of a sub-tile and season)."""

from __future__ import annotations

import pytest

from seasonal_c2rcc.atomic import atomic_dir


def test_a_finished_folder_replaces_the_old_one_whole(tmp_path):
    out = tmp_path / "0"
    out.mkdir()
    (out / "old.nc").write_text("old")
    with atomic_dir(out) as tmp:
        assert not out.joinpath("new.nc").exists()
        (tmp / "new.nc").write_text("new")
    assert sorted(p.name for p in out.iterdir()) == ["new.nc"]
    assert [p.name for p in tmp_path.iterdir()] == ["0"]


def test_a_failure_keeps_the_old_folder_and_leaves_no_temporary(tmp_path):
    out = tmp_path / "0"
    out.mkdir()
    (out / "old.nc").write_text("old")
    with pytest.raises(RuntimeError), atomic_dir(out) as tmp:
        (tmp / "half.nc").write_text("half")
        raise RuntimeError("clip failed")
    assert sorted(p.name for p in out.iterdir()) == ["old.nc"]
    assert [p.name for p in tmp_path.iterdir()] == ["0"]


def test_leftovers_of_killed_writers_go_but_other_folders_temporaries_stay(tmp_path):
    killed = tmp_path / ".0.999999.tmp"  # a SIGKILLed writer of folder "0"
    killed.mkdir()
    (killed / "x.nc").write_text("x")
    other = tmp_path / ".0.5.123.tmp"  # folder "0.5" being written right now
    other.mkdir()
    with atomic_dir(tmp_path / "0") as tmp:
        (tmp / "a.nc").write_text("a")
    assert not killed.exists()
    assert other.exists()
    assert (tmp_path / "0" / "a.nc").read_text() == "a"
