"""The gpt backend's processor: SNAP's gpt run on one product, with a stand-in gpt.

The stand-in (``fake_gpt.py``) parses gpt's command line and the graph as gpt does and writes what
the emulated EOCanvas writes for the same product and region; ``FAKE_GPT_MODE`` makes it fail the
way gpt fails. Every failure class must give its one-line message with the log path and leave
nothing at the output path or under a temporary name.
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import netCDF4
import numpy as np
import pytest
from pyproj import Transformer

from seasonal_c2rcc.backends import gpt as gpt_backend
from seasonal_c2rcc.backends.gpt import GptSettings, check_gpt, find_gpt, run_gpt
from seasonal_c2rcc.beam_netcdf import read_beam_grid
from seasonal_c2rcc.config import validate_schema
from seasonal_c2rcc.emulator.catalogue import products_for_tile
from seasonal_c2rcc.errors import (
    ConfigError,
    JobFailedError,
    NotCoveredError,
    OutputError,
    ResourceError,
    TransientBackendError,
    is_permanent,
)
from seasonal_c2rcc.graph import fill_graph

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = (REPO / "graphs" / "s2_c2rcc.xml").read_text()
#: A 10 km sub-tile of 30UUA in UTM metres (EPSG:32630): E 300-310 km, N 5540-5550 km.
BOX = (300_000.0, 5_540_000.0, 310_000.0, 5_550_000.0)


def lonlat_polygon(box, epsg=32630) -> str:
    x0, y0, x1, y1 = box
    tr = Transformer.from_crs(epsg, 4326, always_xy=True)
    ring = [tr.transform(x, y) for x, y in ((x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0))]
    return "POLYGON ((" + ", ".join(f"{lon:.8f} {lat:.8f}" for lon, lat in ring) + "))"


@pytest.fixture(scope="module")
def graph_text() -> str:
    return fill_graph(TEMPLATE, lonlat_polygon(BOX), 20)


@pytest.fixture
def fake_gpt(tmp_path, monkeypatch) -> Path:
    """The stand-in as ``<tmp>/bin/gpt``, first on PATH, with its record file set."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    exe = bin_dir / "gpt"
    body = (Path(__file__).with_name("fake_gpt.py")).read_text()
    exe.write_text(f"#!{sys.executable}\n{body}")
    exe.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_GPT_RECORD", str(tmp_path / "record.json"))
    monkeypatch.delenv("FAKE_GPT_MODE", raising=False)
    return exe


@pytest.fixture
def product(tmp_path) -> Path:
    """A downloaded product as the cache holds it: ``<id without .SAFE>.zip`` (a full-tile
    product of the emulator's catalogue, so the stand-in can compute its values)."""
    found = products_for_tile("30UUA", datetime(2019, 6, 1, tzinfo=UTC),
                              datetime(2019, 6, 30, tzinfo=UTC))  # fmt: skip
    p = next(p for p in found if p.partial is None)
    path = tmp_path / "cache" / f"{p.stem}.zip"
    path.parent.mkdir()
    path.write_bytes(b"PK\x05\x06" + b"\0" * 18)  # the stand-in only checks that it exists
    return path


def folder_listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_runs_the_graph_with_the_configured_options(tmp_path, fake_gpt, product, graph_text):
    out = tmp_path / "job" / "result.nc"
    log = tmp_path / "logs" / "result.log"
    progress: list[str] = []
    got = run_gpt(graph_text, product, out, log_path=log, threads=2, tile_cache="1024M",
                  max_heap="4G", timeout=120, report=progress.append)  # fmt: skip
    assert got == out
    rec = json.loads((tmp_path / "record.json").read_text())
    argv = rec["argv"]
    # the options a user configured reach gpt in gpt's own syntax
    assert argv[argv.index("-q") + 1] == "2"
    assert argv[argv.index("-c") + 1] == "1024M"
    assert "-J-Xmx4G" in argv and rec["jvm"] == ["-Xmx4G"]
    assert rec["params"]["img1"] == str(product)
    # gpt writes under a temporary name in the job folder, never straight to the output
    tmp_out = Path(rec["params"]["output"])
    assert tmp_out.parent == out.parent and tmp_out.name != out.name
    # the graph gpt ran: the product substituted for $img1, the sub-tile's lon/lat polygon
    text = rec["graph_text"]
    assert "$" not in text
    assert f"<file>{product}</file>" in text
    assert lonlat_polygon(BOX) in text
    for op in ("Read", "Subset", "Resample", "c2rcc.msi", "Write"):
        assert f"<operator>{op}</operator>" in text
    # the result: verified, covering the sub-tile at 20 m, nothing else left in the folder
    assert folder_listing(out.parent) == ["result.nc"]
    g = read_beam_grid(out)
    assert (g.epsg, g.res_x) == (32630, 20.0)
    assert g.ulx <= BOX[0] and g.uly >= BOX[3]
    assert g.ulx + g.width * 20 >= BOX[2] and g.uly - g.height * 20 <= BOX[1]
    with netCDF4.Dataset(out) as nc:
        flags = nc["c2rcc_flags"][:]
        assert flags.dtype == np.uint32 and ((flags >> 31) & 1).any()
    # gpt's log is kept: our header (command, graph) and gpt's own output
    log_text = log.read_text()
    assert "-Pimg1=" in log_text and "<operator>c2rcc.msi</operator>" in log_text
    assert "Processing completed" in log_text and "gpt exit status 0" in log_text
    assert progress and "verified" in progress[-1]


def test_unset_options_are_left_to_snap(tmp_path, fake_gpt, product, graph_text):
    out = tmp_path / "result.nc"
    run_gpt(graph_text, product, out, log_path=tmp_path / "r.log", threads=None,
            tile_cache=None, max_heap=None, timeout=120)  # fmt: skip
    argv = json.loads((tmp_path / "record.json").read_text())["argv"]
    assert "-q" not in argv and "-c" not in argv and not any(a.startswith("-J") for a in argv)
    assert out.is_file()


def test_stale_temporaries_of_a_killed_run_are_removed(tmp_path, fake_gpt, product, graph_text):
    out = tmp_path / "job" / "result.nc"
    out.parent.mkdir()
    stale = [
        out.parent / ".result.nc.99999999.tmp.nc",
        out.parent / ".result.nc.99999999.tmp.nc.data",
    ]
    stale[0].write_bytes(b"partial")
    stale[1].mkdir()
    keep = out.parent / "other.nc"  # another product's result in the same job folder
    keep.write_bytes(b"x")
    run_gpt(graph_text, product, out, log_path=tmp_path / "r.log", timeout=120)
    assert folder_listing(out.parent) == ["other.nc", "result.nc"]


def _with_unknown_parameter(graph: str) -> str:
    return graph.replace("<outputKd>", "<outputRtosa>true</outputRtosa><outputKd>")


# (how to make gpt fail, expected error, words the message must contain, permanent?)
FAILURES = {
    "unknown parameter": (
        {"graph": _with_unknown_parameter},
        ConfigError,
        ["Unknown element 'outputRtosa'", "fix the graph"],
        True,
    ),
    "unknown operator": (
        {"mode": "unknown-operator"},
        ConfigError,
        ["SPI not found for operator 'c2rcc.msi'"],
        True,
    ),
    "empty subset": (
        # a 10 km square near 10 E, 50 N: nowhere near tile 30UUA
        {"polygon": "POLYGON ((10.0 50.0, 10.14 50.0, 10.14 50.09, 10.0 50.09, 10.0 50.0))"},
        NotCoveredError,
        ["no data over the job's region", "No intersection with source product boundary"],
        True,
    ),
    "java heap space": (
        {"mode": "heap"},
        ResourceError,
        ["Java heap", "raise gpt.max_heap", "gpt.threads"],
        True,
    ),
    "crash leaving a partial file": (
        {"mode": "crash"},
        JobFailedError,
        ["failed (exit 1)", "NetCDF: HDF error"],
        False,
    ),
    "killed by a signal": (
        {"mode": "killed"},
        TransientBackendError,
        ["killed by SIGKILL", "retried"],
        False,
    ),
    "hang past the timeout": (
        {"mode": "hang", "timeout": 4.0},
        TransientBackendError,
        ["longer than gpt.timeout (4 s)", "raise gpt.timeout"],
        False,
    ),
}


@pytest.mark.parametrize("case", list(FAILURES))
def test_each_failure_class_gives_its_message_and_leaves_nothing(
    case, tmp_path, fake_gpt, product, graph_text, monkeypatch
):
    how, error, words, permanent = FAILURES[case]
    monkeypatch.setattr(gpt_backend, "_TERM_GRACE_S", 1.0)
    if "mode" in how:
        monkeypatch.setenv("FAKE_GPT_MODE", how["mode"])
    child_pid_file = tmp_path / "child.pid"
    monkeypatch.setenv("FAKE_GPT_CHILD_PID", str(child_pid_file))
    graph = graph_text
    if "graph" in how:
        graph = how["graph"](graph)
    if "polygon" in how:
        graph = fill_graph(TEMPLATE, how["polygon"], 20)
    job = tmp_path / "job"
    job.mkdir()
    (job / "earlier.nc").write_bytes(b"an earlier product's result")
    out, log = job / "result.nc", tmp_path / "logs" / "result.log"

    t0 = time.monotonic()
    with pytest.raises(error) as info:
        run_gpt(graph, product, out, log_path=log, timeout=how.get("timeout", 120))
    msg = str(info.value)
    assert type(info.value) is error
    for w in words:
        assert w in msg, (w, msg)
    assert f"log: {log}" in msg and "\n" not in msg
    assert product.name in msg or "refused the graph" in msg
    assert is_permanent(info.value) is permanent
    # nothing under the final name, no partial output, the earlier result untouched
    assert folder_listing(job) == ["earlier.nc"]
    assert (job / "earlier.nc").read_bytes() == b"an earlier product's result"
    assert "gpt exit status" in log.read_text()
    if case == "hang past the timeout":
        assert time.monotonic() - t0 < 30
        # the whole process group is gone, SIGTERM-ignoring child (the JVM) included
        pid = int(child_pid_file.read_text())
        for _ in range(50):
            if not _alive(pid):
                break
            time.sleep(0.1)
        assert not _alive(pid)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (killed, not yet reaped by init) is dead too
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def test_a_dimap_partial_is_removed_whole(tmp_path, fake_gpt, product, graph_text, monkeypatch):
    monkeypatch.setenv("FAKE_GPT_MODE", "crash")
    graph = graph_text.replace("NetCDF4-BEAM", "BEAM-DIMAP")
    job = tmp_path / "job"
    with pytest.raises(JobFailedError):
        run_gpt(graph, product, job / "result.nc", log_path=tmp_path / "r.log", timeout=120)
    assert folder_listing(job) == []


def test_exit_zero_without_a_result_is_an_output_error(tmp_path, fake_gpt, product, graph_text,
                                                       monkeypatch):  # fmt: skip
    monkeypatch.setenv("FAKE_GPT_MODE", "no-output")
    with pytest.raises(OutputError, match="wrote no NetCDF result"):
        run_gpt(graph_text, product, tmp_path / "r.nc", log_path=tmp_path / "r.log", timeout=120)
    assert not (tmp_path / "r.nc").exists()


def test_gpt_not_found_is_a_config_error_before_anything_runs(tmp_path, product, graph_text,
                                                              monkeypatch):  # fmt: skip
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    monkeypatch.delenv("SNAP_HOME", raising=False)
    for call in (lambda: check_gpt("gpt"),
                 lambda: run_gpt(graph_text, product, tmp_path / "o.nc",
                                 log_path=tmp_path / "o.log")):  # fmt: skip
        with pytest.raises(ConfigError, match="gpt not found: 'gpt' is not on PATH.*gpt.path"):
            call()
    with pytest.raises(ConfigError, match="gpt.path '/nowhere/bin/gpt' does not exist"):
        check_gpt("/nowhere/bin/gpt")
    assert not (tmp_path / "o.log").exists() and not (tmp_path / "o.nc").exists()


def test_gpt_is_found_on_path_then_in_snap_home(tmp_path, fake_gpt, monkeypatch):
    assert find_gpt("gpt") == fake_gpt
    assert check_gpt("gpt") == "10.0.0"
    assert check_gpt(str(fake_gpt)) == "10.0.0"
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    monkeypatch.setenv("SNAP_HOME", str(tmp_path))  # <SNAP_HOME>/bin/gpt
    assert find_gpt("gpt") == fake_gpt


def test_a_program_that_is_not_snap_gpt_is_refused(tmp_path):
    impostor = tmp_path / "gpt"
    impostor.write_text("#!/bin/sh\necho 'usage: gpt [options]'\n")
    impostor.chmod(0o755)
    with pytest.raises(ConfigError, match="without 'SNAP Release version'"):
        check_gpt(str(impostor))


def test_settings_from_the_schema_defaults_and_their_checks():
    cfg = validate_schema({"subtiles": "grid.json"})
    s = GptSettings.from_config(cfg["gpt"])
    assert s.run_kwargs()["gpt"] == "gpt" and s.threads >= 1
    # the job declares the heap plus the JVM's own memory
    assert s.job_mem_mb == int(s.max_heap[:-1]) * 1024 + gpt_backend.JVM_OVERHEAD_MB
    with pytest.raises(
        ConfigError, match=r"gpt.tile_cache \(8G\) must be smaller than gpt.max_heap"
    ):
        GptSettings.from_config(dict(cfg["gpt"], tile_cache="8G", max_heap="6G"))
    with pytest.raises(ConfigError, match="gpt.max_heap is '6 GB'"):
        GptSettings.from_config(dict(cfg["gpt"], max_heap="6 GB", tile_cache=None))


def test_a_graph_with_other_placeholders_is_refused_before_gpt_runs(tmp_path, fake_gpt, product):
    with pytest.raises(ConfigError, match=r"exactly \$img1 and \$output.*\$polygon"):
        run_gpt(TEMPLATE, product, tmp_path / "o.nc", log_path=tmp_path / "o.log")
    assert not (tmp_path / "record.json").exists()  # gpt never started


def test_a_stopped_job_takes_gpt_down_with_it(tmp_path, fake_gpt, product, graph_text, monkeypatch):
    """SIGTERM to the job (Snakemake or SLURM stopping it) kills gpt's whole process group and
    removes the partial result; the job exits with SIGTERM's status."""
    import signal
    import subprocess

    monkeypatch.setenv("FAKE_GPT_MODE", "hang")
    child_pid_file = tmp_path / "child.pid"
    monkeypatch.setenv("FAKE_GPT_CHILD_PID", str(child_pid_file))
    (tmp_path / "graph.xml").write_text(graph_text)
    job = tmp_path / "job"
    script = (
        "import sys; from pathlib import Path\n"
        "from seasonal_c2rcc.backends import gpt as g\n"
        "g._TERM_GRACE_S = 1.0\n"
        f"g.run_gpt(Path({str(tmp_path / 'graph.xml')!r}).read_text(), {str(product)!r}, "
        f"{str(job / 'result.nc')!r}, log_path={str(tmp_path / 'r.log')!r}, timeout=300)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script])
    for _ in range(300):  # gpt (and its JVM stand-in) started
        if child_pid_file.exists() and child_pid_file.read_text():
            break
        time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail("the stand-in gpt never started")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 128 + signal.SIGTERM
    pid = int(child_pid_file.read_text())
    for _ in range(50):
        if not _alive(pid):
            break
        time.sleep(0.1)
    assert not _alive(pid)
    assert folder_listing(job) == []
    assert "gpt exit status" in (tmp_path / "r.log").read_text()


def test_relative_paths_reach_gpt_absolute(tmp_path, fake_gpt, product, graph_text, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rel_product = product.relative_to(tmp_path)
    got = run_gpt(
        graph_text, rel_product, Path("job/result.nc"), log_path=Path("r.log"), timeout=120
    )
    params = json.loads((tmp_path / "record.json").read_text())["params"]
    assert params["img1"] == str(product)
    assert Path(params["output"]).is_absolute()
    assert got == Path("job/result.nc") and (tmp_path / "job" / "result.nc").is_file()
    assert folder_listing(tmp_path / "job") == ["result.nc"]
