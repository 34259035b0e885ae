"""Bad inputs fail before anything is spent, with one line naming the item (issue 12).

One table of bad inputs (config keys, grid files, graphs, credentials, endpoints). Every case runs
through ``seasonal-c2rcc preflight``, which calls the very entry points the Snakefile calls
(``preflight.campaign_or_exit`` at parse time, ``preflight.access_or_exit`` in ``onstart``), in
process against one shared emulator; a few also run through a real ``snakemake``. Each asserts
a non-zero exit, exactly one ``seasonal-c2rcc:`` line naming the item, no traceback, and nothing
spent in the emulator's accounting (no search, order, job or download; no token request unless the
case is about the login, and then exactly one).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from seasonal_c2rcc import cli, failfast, paths
from seasonal_c2rcc.emulator import EmulatorServer, FaultConfig
from seasonal_c2rcc.errors import CatalogueError, TransientBackendError

from . import harness

ROOT = harness.ROOT
TEMPLATE = (ROOT / "graphs" / "s2_c2rcc.xml").read_text()
#: Accounting groups that cost money or quota on the real service.
SPENT = ("searches", "orders", "submissions", "downloads", "terms", "order_polls", "status_polls")
SQUARE_A = (
    "POLYGON ((300000 5540000, 310000 5540000, 310000 5550000, 300000 5550000, 300000 5540000))"
)
SQUARE_B = (
    "POLYGON ((310000 5540000, 320000 5540000, 320000 5550000, 310000 5550000, 310000 5540000))"
)


@pytest.fixture(scope="module")
def emu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorServer]:
    server = EmulatorServer(
        state_dir=tmp_path_factory.mktemp("emu"),
        port=0,
        faults=FaultConfig(accept_delay=0.1, job_duration=0.4),
    ).start()
    yield server
    server.stop()


def counters(emu: EmulatorServer) -> dict[str, int]:
    acc = emu.accounting()
    return {k: len(acc.get(k, [])) for k in (*SPENT, "tokens")}


# --- the table ------------------------------------------------------------------------------------

Mutate = Callable[[dict[str, Any], Path], None]


@dataclass(frozen=True)
class Case:
    """One bad input: how to spoil the demo config (and files), and what the line must name."""

    id: str
    mutate: Mutate
    expect: str
    env: dict[str, str | None] = field(default_factory=dict)
    #: token requests this case may make (0: it must fail before any network call)
    tokens: int = 0


def set_key(path: str, value: Any) -> Mutate:
    def mutate(cfg: dict[str, Any], _: Path) -> None:
        *parents, last = path.split(".")
        node = cfg
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value

    return mutate


def drop_key(name: str) -> Mutate:
    return lambda cfg, _: cfg.pop(name)


def grid_file(
    name: str, content: str | Callable[[Path], None], crs: str | None = "EPSG:32630"
) -> Mutate:
    def mutate(cfg: dict[str, Any], wd: Path) -> None:
        path = wd / name
        if callable(content):
            content(path)
        else:
            path.write_text(content)
        cfg["subtiles"] = str(path)
        cfg["subtiles_crs"] = crs

    return mutate


def graph_edit(edit: Callable[[str], str]) -> Mutate:
    def mutate(cfg: dict[str, Any], wd: Path) -> None:
        path = wd / "graph.xml"
        path.write_text(edit(TEMPLATE))
        cfg["graph"] = str(path)

    return mutate


def duplicate_rows_geojson(path: Path) -> None:
    import geopandas as gpd
    from shapely import wkt

    gpd.GeoDataFrame(
        {"tile": ["30UUA", "30UUA", "30UUA"], "id": ["a", "b", "a"]},
        geometry=[wkt.loads(SQUARE_A), wkt.loads(SQUARE_B), wkt.loads(SQUARE_B)],
        crs="EPSG:32630",
    ).to_file(path)


def c2rcc_param(old: str, new: str) -> Callable[[str], str]:
    def edit(text: str) -> str:
        assert old in text
        return text.replace(old, new)

    return edit


NO_CREDENTIALS = {"HDA_USER": None, "HDA_PASSWORD": None}

CASES = [
    # config keys (schema)
    Case("cloud_cover_max", set_key("cloud_cover_max", 150),
         "config key 'cloud_cover_max': 150 is above the maximum 100"),
    Case("images_per_season", set_key("images_per_season", 0),
         "config key 'images_per_season': 0 is below the minimum 1"),
    Case("unknown_key", set_key("cloud_cover", 10),
         "unknown config key 'cloud_cover': did you mean 'cloud_cover_max'?"),
    Case("unknown_nested_key", set_key("wekeo.hda_ulr", "x"), "unknown config key 'wekeo.hda_ulr'"),
    Case("password_in_config", set_key("password", "hunter2"), "unknown config key 'password'"),
    Case("years_pattern", set_key("years", "2019-20x"), "config key 'years': '2019-20x'"),
    Case("years_too_early", set_key("years", [1999]),
         "config key 'years[0]': 1999 is below the minimum 2015"),
    Case("years_reversed", set_key("years", "2020-2019"), "years: range '2020-2019' ends before"),
    Case("season_without_end", set_key("seasons", {"summer": {"start": "06-01"}}),
         "config key 'seasons.summer.end' is missing"),
    Case("season_bad_date", set_key("seasons", {"summer": {"start": "6-1", "end": "08-31"}}),
         "config key 'seasons.summer.start': '6-1' does not match"),
    Case("season_impossible_day", set_key("seasons", {"summer": {"start": "06-01", "end": "02-30"}}),
         "seasons.summer.end: '02-30' is not a day of the year"),
    Case("packing", set_key("packing", "per-tile"), "config key 'packing': 'per-tile' is not one of"),
    Case("resolution", set_key("resolution", 30), "config key 'resolution': 30 is not one of"),
    Case("coverage", set_key("min_subtile_coverage", 1.5),
         "config key 'min_subtile_coverage': 1.5 is above the maximum 1"),
    Case("retries_negative", set_key("eocanvas.retries", -1),
         "config key 'eocanvas.retries': -1 is below the minimum 0"),
    Case("exclude_flags", set_key("masking.exclude_flags", ["Cloudy"]),
         "masking.exclude_flags: unknown flags ['Cloudy']"),
    Case("tiles_not_in_grid", set_key("tiles", ["31UDQ"]), "tiles: ['31UDQ'] not in the grid file"),
    Case("subtiles_missing", drop_key("subtiles"), "config key 'subtiles' is missing"),
    # grid files
    Case("grid_absent", set_key("subtiles", "/nonexistent/grid.json"),
         "sub-tile grid file /nonexistent/grid.json does not exist"),
    Case("grid_duplicate_tile_key",
         grid_file("dup.json", f'{{\n "30UUA": ["{SQUARE_A}"],\n "30UUA": ["{SQUARE_B}"]\n}}\n'),
         "key '30UUA' appears twice (lines 2 and 3)"),
    Case("grid_duplicate_id_key",
         grid_file("dup_ids.json", json.dumps(
             {"a": {"geoRegion": SQUARE_A, "tileId": "30UUA"}}, indent=1)[:-2]
             + f',\n "a": {{"geoRegion": "{SQUARE_B}", "tileId": "30UUA"}}\n}}\n'),
         "key 'a' appears twice (lines 2 and 6)"),
    Case("grid_duplicate_rows_geojson", grid_file("dup.geojson", duplicate_rows_geojson),
         "features 1 and 3 (counting from 1) are both sub-tile 'a' of tile 30UUA"),
    Case("grid_not_json", grid_file("broken.json", '{"30UUA": ['), "broken.json: not valid JSON"),
    Case("grid_without_crs", grid_file("utm.json", json.dumps({"30UUA": [SQUARE_A]}), crs=None),
         "set `subtiles_crs`"),
    Case("grid_bad_wkt", grid_file("wkt.json", json.dumps({"30UUA": ["POLYGON ((1 2"]})),
         "wkt.json: 30UUA[0]: not valid WKT"),
    Case("grid_bad_tile", grid_file("tile.json", json.dumps({"30UUI": [SQUARE_A]})),
         "invalid MGRS tile id '30UUI'"),
    # graphs
    Case("graph_absent", set_key("graph", "/nonexistent/graph.xml"),
         "graph: /nonexistent/graph.xml does not exist"),
    Case("graph_not_xml", graph_edit(lambda t: t.replace("</graph>", "")), "not well-formed"),
    Case("graph_polygon_in_wrong_node",
         graph_edit(lambda t: t.replace("<geoRegion>$polygon</geoRegion>", "<geoRegion/>").replace(
             "<referenceBand>B5</referenceBand>",
             "<referenceBand>B5</referenceBand><geoRegion>$polygon</geoRegion>")),
         "needs a Subset node whose <geoRegion> is $polygon"),
    Case("graph_polygon_also_elsewhere",
         graph_edit(c2rcc_param("<salinity>35.0</salinity>",
                                "<salinity>35.0</salinity><region>$polygon</region>")),
         "$polygon is in <region> of node 'c2rcc_msi' (c2rcc.msi)"),
    Case("graph_unknown_c2rcc_parameter",
         graph_edit(c2rcc_param("<salinity>35.0</salinity>", "<salinty>35.0</salinty>")),
         "c2rcc.msi node: Unknown element 'salinty'"),
    Case("graph_c2rcc_value_out_of_range",
         graph_edit(c2rcc_param("<salinity>35.0</salinity>", "<salinity>50</salinity>")),
         "Value for 'salinity' is out of range"),
    Case("graph_unknown_net_set",
         graph_edit(c2rcc_param("<netSet>C2X-COMPLEX-Nets</netSet>", "<netSet>C2X-Nets-2</netSet>")),
         "c2rcc.msi netSet 'C2X-Nets-2' is not one of"),
    Case("graph_geotiff", graph_edit(lambda t: t.replace("NetCDF4-BEAM", "GeoTIFF")),
         "Write formatName is 'GeoTIFF'"),
    # endpoints
    Case("hda_url_without_scheme", set_key("wekeo.hda_url", "gateway.prod.wekeo2.eu/hda-broker/"),
         "config key 'wekeo.hda_url': 'gateway.prod.wekeo2.eu/hda-broker/' is not an http(s) URL"),
    Case("eocanvas_url_ftp", set_key("wekeo.eocanvas_url", "ftp://example.org/serverless"),
         "config key 'wekeo.eocanvas_url'"),
    Case("hda_url_api_v1", set_key("wekeo.hda_url", "https://gateway.prod.wekeo2.eu/hda-broker/api/v1/"),
         "config key 'wekeo.hda_url': 'https://gateway.prod.wekeo2.eu/hda-broker/api/v1/' ends in api/v1"),
    Case("hda_url_closed_port", set_key("wekeo.hda_url", "http://127.0.0.1:9/hda-broker/"),
         "cannot reach the WEkEO login at http://127.0.0.1:9/identity/gettoken (connection refused)"),
    # credentials
    Case("no_credentials", lambda cfg, wd: None, "no WEkEO credentials", env=NO_CREDENTIALS),
    Case("hdarc_without_password", lambda cfg, wd: (wd / "hdarc").write_text("user: alice\n"),
         "no WEkEO credentials", env={**NO_CREDENTIALS, "HDA_RC": "{wd}/hdarc"}),
    Case("password_with_space", lambda cfg, wd: None, "may not contain white space",
         env={"HDA_PASSWORD": "two words"}),
    Case("wrong_password", lambda cfg, wd: None, "WEkEO refused the login of user 'test-user'",
         env={"HDA_PASSWORD": "wrong"}, tokens=1),
]  # fmt: skip
BY_ID = {c.id: c for c in CASES}


def test_the_table_is_large_enough() -> None:
    assert len(CASES) >= 30 and len(BY_ID) == len(CASES)


def prepare(case: Case, emu: EmulatorServer, wd: Path) -> tuple[Path, dict[str, str | None]]:
    """Write the spoiled config into ``wd``; return it and the environment changes."""
    cfg_path = harness.write_config(wd, emu.url)
    cfg = yaml.safe_load(cfg_path.read_text())
    case.mutate(cfg, wd)
    cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    env = {
        "HDA_USER": "test-user",
        "HDA_PASSWORD": "test-password",
        "HDA_RC": "/nonexistent/.hdarc",
    }
    env.update({k: (v.format(wd=wd) if v else v) for k, v in case.env.items()})
    return cfg_path, env


def run_preflight(
    cfg_path: Path, env: dict[str, str | None], monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> tuple[int, str, str]:
    """``seasonal-c2rcc preflight --configfile cfg_path`` in process: (exit code, stdout, stderr)."""
    monkeypatch.chdir(cfg_path.parent)
    for key, value in env.items():
        if value is None:
            monkeypatch.delenv(key, raising=False)
        else:
            monkeypatch.setenv(key, value)
    try:
        rc = cli.main(["preflight", "--configfile", str(cfg_path)])
    except SystemExit as exc:
        rc = exc.code if isinstance(exc.code, int) else 1
    out = capsys.readouterr()
    return rc, out.out, out.err


def assert_one_line(output: str, expect: str) -> None:
    assert "Traceback" not in output, output
    lines = [line for line in output.splitlines() if line.startswith("seasonal-c2rcc: ")]
    assert len(lines) == 1, output
    assert expect in lines[0], lines[0]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_fails_in_one_line_before_spending(
    case: Case, emu: EmulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    cfg_path, env = prepare(case, emu, tmp_path)
    before = counters(emu)
    rc, out, err = run_preflight(cfg_path, env, monkeypatch, capsys)
    after = counters(emu)
    assert rc != 0
    assert out == ""
    assert len(err.splitlines()) == 1, err
    assert_one_line(err, case.expect)
    assert {k: after[k] - before[k] for k in SPENT} == dict.fromkeys(SPENT, 0)
    assert after["tokens"] - before["tokens"] == case.tokens


# --- what must pass -------------------------------------------------------------------------------


def test_hda_url_without_its_slash_is_normalised(
    emu: EmulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    case = Case("slash", set_key("wekeo.hda_url", f"{emu.url}/hda-broker"), "")
    cfg_path, env = prepare(case, emu, tmp_path)
    before = emu.accounting()["tokens"]
    rc, out, err = run_preflight(cfg_path, env, monkeypatch, capsys)
    tokens = emu.accounting()["tokens"][len(before) :]
    assert rc == 0 and err == "" and "nothing was spent" in out
    assert [(t["path"], t["status"]) for t in tokens] == [("/identity/gettoken", 200)]


def test_hdarc_readable_by_others_gets_one_warning(
    emu: EmulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    rc_file = tmp_path / "hdarc"
    rc_file.write_text("user: alice\npassword: s3cret\n")
    case = Case("hdarc", lambda cfg, wd: None, "", env={**NO_CREDENTIALS, "HDA_RC": str(rc_file)})
    cfg_path, env = prepare(case, emu, tmp_path)
    rc_file.chmod(0o644)
    rc, out, err = run_preflight(cfg_path, env, monkeypatch, capsys)
    assert rc == 0 and "Traceback" not in err
    assert err.splitlines() == [
        f"seasonal-c2rcc: warning: {rc_file} holds your WEkEO password and is readable by group or "
        f"others (mode 644); run: chmod 600 {rc_file}"
    ]
    assert "s3cret" not in out + err
    rc_file.chmod(0o600)
    rc, out, err = run_preflight(cfg_path, env, monkeypatch, capsys)
    assert rc == 0 and err == ""


def test_wrong_password_makes_exactly_one_token_request(
    emu: EmulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    cfg_path, env = prepare(BY_ID["wrong_password"], emu, tmp_path)
    before = len(emu.accounting()["tokens"])
    rc, _, err = run_preflight(cfg_path, env, monkeypatch, capsys)
    tokens = emu.accounting()["tokens"][before:]
    assert rc != 0 and "wrong" not in err
    assert [(t["username"], t["status"], t["origin"]) for t in tokens] == [("test-user", 401, None)]


# --- permanent failures inside jobs are not retried -------------------------------------------------


class FakeSnakemake:
    """What failfast reads from Snakemake's script object."""

    def __init__(self, attempt: int) -> None:
        self.rule = "catalogue"
        self.wildcards = ["30UUA", "2019", "summer"]
        self.resources = type("R", (), {"attempt": attempt})()


def test_failfast_marks_a_permanent_failure_and_skips_the_retry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import logging
    import sys

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # restored after the test
    log = logging.getLogger("seasonal_c2rcc.test_failfast")
    caplog.set_level(logging.INFO, logger=log.name)

    failfast.install(FakeSnakemake(1), log, "catalogue search for 30UUA 2019 summer")
    exc = CatalogueError("HDA search rejected: HTTP 404:\n dataset not found")
    sys.excepthook(type(exc), exc, None)
    line = "catalogue search for 30UUA 2019 summer failed: HDA search rejected: HTTP 404: dataset not found"
    assert [r.getMessage() for r in caplog.records] == [line]
    marker = failfast.marker_path(FakeSnakemake(2))
    assert marker.is_file()

    caplog.clear()
    with pytest.raises(SystemExit) as stop:
        failfast.install(FakeSnakemake(2), log, "catalogue search for 30UUA 2019 summer")
    assert stop.value.code == 1
    assert [r.getMessage() for r in caplog.records] == [
        f"{line} (attempt 2 not run: the cause is permanent, a retry cannot help)"
    ]

    # a new run (attempt 1) starts clean; a transient failure leaves no marker and adds the hint
    caplog.clear()
    failfast.install(FakeSnakemake(1), log, "remote job J", hint="resume by re-running")
    assert not marker.exists()
    exc2 = TransientBackendError("EOCanvas GET x: HTTP 503")
    sys.excepthook(type(exc2), exc2, None)
    assert [r.getMessage() for r in caplog.records] == [
        "remote job J failed: EOCanvas GET x: HTTP 503. resume by re-running"
    ]
    failfast.install(FakeSnakemake(2), log, "remote job J")  # runs: nothing recorded
    assert not marker.exists()


# --- real snakemake runs ----------------------------------------------------------------------------

#: Through a real snakemake too: a parse-time failure and the onstart ones.
E2E = ["cloud_cover_max", "no_credentials", "wrong_password"]


def snakemake(emu: EmulatorServer, wd: Path, case: Case | None, *args: str) -> tuple[int, str]:
    cfg_path, env_changes = prepare(case or Case("ok", lambda c, w: None, ""), emu, wd)
    env = harness.env()
    for key, value in env_changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    import subprocess

    proc = subprocess.run(
        harness.snakemake_cmd(wd, cfg_path, *args), env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    return proc.returncode, proc.stdout + proc.stderr


@pytest.mark.slow
@pytest.mark.parametrize("case_id", E2E)
def test_snakemake_fails_in_one_line_before_spending(
    case_id: str, emu: EmulatorServer, tmp_path: Path
) -> None:
    case = BY_ID[case_id]
    before = counters(emu)
    rc, output = snakemake(emu, tmp_path, case)
    after = counters(emu)
    assert rc != 0
    assert_one_line(output, case.expect)
    assert {k: after[k] - before[k] for k in SPENT} == dict.fromkeys(SPENT, 0)
    assert after["tokens"] - before["tokens"] == case.tokens
    results = tmp_path / paths.RESULTS
    assert not results.exists() or not any(results.rglob("*.json"))


@pytest.mark.slow
def test_dry_run_needs_no_credentials_and_no_network(emu: EmulatorServer, tmp_path: Path) -> None:
    before = counters(emu)
    rc, output = snakemake(emu, tmp_path, BY_ID["no_credentials"], "-n")
    assert rc == 0, output
    assert "seasonal-c2rcc:" not in output and "Traceback" not in output
    assert counters(emu) == before


@pytest.mark.slow
def test_bill_needs_no_credentials(emu: EmulatorServer, tmp_path: Path) -> None:
    """Only jobs that talk to WEkEO need the login: the bill is local."""
    before = counters(emu)
    rc, output = snakemake(emu, tmp_path, BY_ID["no_credentials"], "bill")
    assert rc == 0, output
    assert (tmp_path / paths.BILL).is_file()
    assert counters(emu) == before


@pytest.mark.slow
def test_permanent_catalogue_failure_is_not_retried(emu: EmulatorServer, tmp_path: Path) -> None:
    """A dataset the catalogue does not have (HTTP 404): each catalogue job asks once; Snakemake's
    two retries exit at once with the same line (1 token for the preflight + 1 per job, not 3)."""
    case = Case("dataset", set_key("wekeo.dataset_id", "EO:ESA:DAT:SENTINEL-3"), "")
    before = counters(emu)
    rc, output = snakemake(emu, tmp_path, case, *harness.composites([2019], ["summer", "winter"]))
    after = counters(emu)
    assert rc != 0 and "Traceback" not in output
    for season in ("summer", "winter"):
        line = f"catalogue search for 30UUA 2019 {season} failed: HDA search rejected: HTTP 404"
        for attempt in (2, 3):
            assert any(
                line in text and f"(attempt {attempt} not run: the cause is permanent" in text
                for text in output.splitlines()
            ), output
    assert after["tokens"] - before["tokens"] == 1 + 2
    assert {k: after[k] - before[k] for k in SPENT} == dict.fromkeys(SPENT, 0)
    shutil.rmtree(tmp_path / ".snakemake", ignore_errors=True)
