"""Graph templates, config validation and credentials: all checked before any remote call."""

import copy

import pytest
import yaml

from seasonal_c2rcc.config import load_campaign, validate_schema
from seasonal_c2rcc.errors import ConfigError
from seasonal_c2rcc.graph import (
    c2rcc_parameters,
    check_template,
    fill_graph,
    graph_resolution,
    placeholders,
)
from seasonal_c2rcc.wekeo import Credentials, Endpoints, load_credentials

LONLAT = "POLYGON ((-5.7896 49.9788, -5.6503 49.9820, -5.6553 50.0719, -5.7949 50.0686, -5.7896 49.9788))"


@pytest.fixture
def template(repo_root):
    return (repo_root / "graphs/s2_c2rcc.xml").read_text()


def test_shipped_graph_is_a_valid_template_with_the_users_settings(template):
    check_template(template)
    p = c2rcc_parameters(template)
    assert p["netSet"] == "C2X-COMPLEX-Nets" and p["outputAsRrs"] == "true"
    assert (
        p["validPixelExpression"] == "B8 > 0 && B8 < 0.1"
    )  # escaped in the XML, intact when parsed
    assert (p["TSMfac"], p["TSMexp"], p["CHLfac"], p["CHLexp"]) == ("1.06", "0.942", "21.0", "1.04")


@pytest.mark.parametrize("res,band", [(10, "B2"), (20, "B5"), (60, "B1")])
def test_fill_sets_region_and_resolution_and_leaves_only_server_placeholders(template, res, band):
    g = fill_graph(template, LONLAT, res)
    assert placeholders(g) == {"img1", "output"}
    assert f"<referenceBand>{band}</referenceBand>" in g and graph_resolution(g) == res
    assert "POLYGON ((-5.7896 49.9788" in g
    assert "&amp;&amp;" in g  # still escaped: the service runs xmllint on it


def test_utm_polygon_is_refused_before_submission(template):
    utm = (
        "POLYGON ((300000 5540000, 310000 5540000, 310000 5550000, 300000 5550000, 300000 5540000))"
    )
    with pytest.raises(ConfigError, match="not lon/lat"):
        fill_graph(template, utm, 20)


@pytest.mark.parametrize(
    "edit,message",
    [
        (lambda t: t.replace("</graph>", ""), "not well-formed"),
        (lambda t: t.replace("$img1", "/data/x.zip"), "Read node whose <file> is \\$img1"),
        (
            lambda t: t.replace("$polygon", "POLYGON ((0 0, 1 0, 1 1, 0 0))"),
            "geoRegion> is \\$polygon",
        ),
        (lambda t: t.replace('id="Write"', 'id="Writer"'), "id 'Write'"),
        (lambda t: t.replace("NetCDF4-BEAM", "GeoTIFF"), "corrupts c2rcc_flags"),
        (lambda t: t.replace("<salinity>35.0", "<salinity>$salinity"), "unknown placeholders"),
        (lambda t: t.replace("c2rcc.msi</operator>", "c2rcc.olci</operator>"), "c2rcc.msi node"),
    ],
)
def test_bad_templates_fail_with_specific_messages(template, edit, message):
    with pytest.raises(ConfigError, match=message):
        check_template(edit(template))


def test_config_defaults_are_filled(repo_root):
    cfg = validate_schema({"subtiles": "x.json"})
    assert cfg["cloud_cover_max"] == 20 and cfg["images_per_season"] == 5
    assert cfg["seasons"]["winter"] == {"start": "12-01", "end": "02-29"}
    assert cfg["wekeo"]["hda_url"] == "https://gateway.prod.wekeo2.eu/hda-broker/"
    assert cfg["quota"]["eocanvas_per_hour"] == 10 and cfg["quota"]["eocanvas_per_month"] == 100
    assert cfg["packing"] == "per-product"


@pytest.mark.parametrize(
    "change,message",
    [
        ({"cloud_cover_max": 120}, "cloud_cover_max"),
        ({"images_per_season": 0}, "images_per_season"),
        ({"backend": "snap"}, "backend"),
        ({"password": "hunter2"}, "unknown config key .password."),
        ({"years": "20-16"}, "years"),
        ({"seasons": {"a": {"start": "03-01"}}}, "end"),
        ({"masking": {"exclude_flags": ["Cloudy"]}}, "unknown flags"),
        ({"graph": "graphs/nope.xml"}, "does not exist"),
        ({"tiles": ["31UDQ"]}, "not in the grid file"),
    ],
)
def test_bad_config_fails_before_anything_runs(repo_root, monkeypatch, change, message):
    monkeypatch.chdir(repo_root)
    cfg = yaml.safe_load((repo_root / "config/demo.yaml").read_text())
    cfg = copy.deepcopy(cfg) | change
    with pytest.raises(ConfigError, match=message):
        load_campaign(cfg)


def test_demo_config_resolves(repo_root):
    c = load_campaign(yaml.safe_load((repo_root / "config/demo.yaml").read_text()), repo_root)
    assert (
        c.tiles == ["30UUA"]
        and c.years == (2019,)
        and [w.name for w in c.seasons] == ["summer", "winter"]
    )


def test_credentials_env_wins_then_hdarc(tmp_path):
    rc = tmp_path / ".hdarc"
    rc.write_text("url: https://ignored\nuser: alice\npassword: 12345:x\n")
    assert load_credentials({}, rc) == Credentials("alice", "12345:x")
    assert load_credentials({"HDA_USER": "bob", "HDA_PASSWORD": "pw"}, rc).user == "bob"
    with pytest.raises(ConfigError, match="HDA_USER"):
        load_credentials({}, tmp_path / "missing")
    assert "12345" not in repr(load_credentials({}, rc))


def test_endpoint_slashes_are_checked():
    with pytest.raises(ConfigError, match="must end with '/'"):
        Endpoints(hda_url="http://127.0.0.1:1/hda-broker")
    with pytest.raises(ConfigError, match="must not end"):
        Endpoints(eocanvas_url="http://127.0.0.1:1/serverless/")
    assert (
        Endpoints(eocanvas_url="http://h:1/serverless").token_url
        == "http://h:1/hda-broker/gettoken"
    )
