"""Malformed requests get the real service's status and a JSON error, never a trace or a hang."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
import requests

from seasonal_c2rcc.emulator.catalogue import DATASET_ID

from .helpers import c2rcc_graph, lonlat_wkt, query, utm_box

WKT = lonlat_wkt(utm_box(10_000, 80_000, 10_000))


@pytest.fixture
def ctx(emulator) -> dict[str, Any]:
    """A token, a ready download URL and a valid execution body."""
    tok = requests.post(f"{emulator.url}/identity/gettoken",
                        json={"username": "u", "password": "p"}, timeout=10).json()
    h = {"Authorization": f"Bearer {tok['access_token']}"}
    api = f"{emulator.hda_url}api/v1"
    feats = requests.post(f"{api}/dataaccess/search", json=query(), headers=h,
                          timeout=10).json()["features"]
    f = feats[0]
    order = {"dataset_id": DATASET_ID, "product_id": f["id"],
             "location": f["properties"]["location"]}
    did = requests.post(f"{api}/dataaccess/download", json=order, headers=h,
                        timeout=10).json()["download_id"]
    url = f"{api}/dataaccess/download/{did}"
    graph = base64.b64encode(c2rcc_graph(WKT).encode()).decode()
    body = {"inputs": {"snap_graph": graph, "eo_input": json.dumps([{"img1": url}]),
                       "eo_config": json.dumps([{"img1": {"uncompress": False, "subPath": ""}}])},
            "outputs": {}, "response": "raw"}
    return {"h": h, "api": api, "order": order, "url": url, "body": body, "feature": f}


def _b64(xml: str) -> str:
    return base64.b64encode(xml.encode()).decode()


def _exec_body(ctx: dict[str, Any], **inputs: Any) -> dict[str, Any]:
    body = json.loads(json.dumps(ctx["body"]))
    for k, v in inputs.items():
        if v is None:
            body["inputs"].pop(k, None)
        else:
            body["inputs"][k] = v
    return body


def cases(ctx: dict[str, Any], emu: Any) -> list[tuple[str, str, str, dict[str, Any], int, str]]:
    """(name, method, url, requests kwargs, expected status, substring of the message)."""
    api, h = ctx["api"], ctx["h"]
    sls = emu.eocanvas_url
    ex = f"{sls}/processes/snap-function/execution"
    graph_no_write = c2rcc_graph(WKT).replace('id="Write"', 'id="Out"')
    return [
        ("search: no dataset_id", "POST", f"{api}/dataaccess/search",
         {"json": {"tileId": "30UUA"}}, 400, "dataset_id"),
        ("search: unknown key", "POST", f"{api}/dataaccess/search",
         {"json": query(cloudCover=20)}, 400, "cloudCover"),
        ("search: STAC filter object", "POST", f"{api}/dataaccess/search",
         {"json": query(tileId={"eq": "30UUA"})}, 400, "filter objects"),
        ("search: lte object on a known key", "POST", f"{api}/dataaccess/search",
         {"json": query(startdate={"lte": 20})}, 400, "filter objects"),
        ("search: bad tile pattern", "POST", f"{api}/dataaccess/search",
         {"json": query(tileId="T30UUA")}, 400, "tileId"),
        ("search: bad date", "POST", f"{api}/dataaccess/search",
         {"json": query(startdate="June 2020")}, 400, "date-time"),
        ("search: bbox of 3 numbers", "POST", f"{api}/dataaccess/search",
         {"json": query(bbox=[1, 2, 3])}, 400, "bbox"),
        ("search: not JSON", "POST", f"{api}/dataaccess/search",
         {"data": b"{tileId:", "headers": {**h, "Content-Type": "application/json"}}, 400, "JSON"),
        ("search: JSON array", "POST", f"{api}/dataaccess/search", {"json": [1, 2]}, 400,
         "object"),
        ("search: unknown dataset", "POST", f"{api}/dataaccess/search",
         {"json": {"dataset_id": "EO:ESA:DAT:NOPE", "tileId": "30UUA"}}, 404, "not found"),
        ("search: bad processingLevel", "POST", f"{api}/dataaccess/search",
         {"json": query(processingLevel="L1C")}, 400, "processingLevel"),
        ("order: missing location", "POST", f"{api}/dataaccess/download",
         {"json": {k: v for k, v in ctx["order"].items() if k != "location"}}, 400, "location"),
        ("order: unknown product", "POST", f"{api}/dataaccess/download",
         {"json": dict(ctx["order"], product_id="S2A_MSIL1C_nope.SAFE")}, 404, "not found"),
        ("order: wrong location", "POST", f"{api}/dataaccess/download",
         {"json": dict(ctx["order"], location="/eodata/elsewhere")}, 400, "location"),
        ("download: unknown id", "GET", f"{api}/dataaccess/download/{'0' * 24}", {}, 404,
         "not found"),
        ("dataset: unknown", "GET", f"{api}/datasets/EO:ESA:DAT:NOPE", {}, 404, "not found"),
        ("no token", "POST", f"{api}/dataaccess/search", {"json": query(), "headers": {}}, 401,
         "Authorization"),
        ("garbage token", "GET", f"{sls}/jobs", {"headers": {"Authorization": "Bearer xyz"}}, 401,
         "Invalid token"),
        ("basic auth instead of bearer", "GET", f"{sls}/jobs",
         {"headers": {"Authorization": "Basic dTpw"}}, 401, "Bearer"),
        ("gettoken: no password", "POST", f"{emu.url}/identity/gettoken",
         {"json": {"username": "u"}}, 400, "password"),
        ("gettoken: form instead of JSON", "POST", f"{emu.url}/hda-broker/gettoken",
         {"data": {"username": "u", "password": "p"}}, 400, "JSON"),
        ("refreshtoken: unknown", "POST", f"{emu.url}/hda-broker/refreshtoken",
         {"data": {"refresh_token": "nope"}}, 400, "refresh"),
        ("execute: unknown process", "POST", f"{sls}/processes/gdal/execution",
         {"json": ctx["body"]}, 404, "not found"),
        ("execute: body not JSON", "POST", ex, {"data": b"graph=1"}, 400, "JSON"),
        ("execute: no inputs", "POST", ex, {"json": {"outputs": {}}}, 400, "inputs"),
        ("execute: graph not base64", "POST", ex,
         {"json": _exec_body(ctx, snap_graph="<graph>!!")}, 400, "base64"),
        ("execute: graph not XML", "POST", ex,
         {"json": _exec_body(ctx, snap_graph=_b64("<graph><node"))}, 400, "XML"),
        ("execute: eo_input not a string", "POST", ex,
         {"json": _exec_body(ctx, eo_input=[{"img1": ctx["url"]}])}, 400, "JSON-encoded"),
        ("execute: eo_input not a list", "POST", ex,
         {"json": _exec_body(ctx, eo_input=json.dumps({"img1": ctx["url"]}))}, 400, "list"),
        ("execute: eo_config bad JSON", "POST", ex,
         {"json": _exec_body(ctx, eo_config="[{img1:")}, 400, "eo_config"),
        ("execute: key not in graph", "POST", ex,
         {"json": _exec_body(ctx, eo_input=json.dumps([{"scene": ctx["url"]}]), eo_config=None)},
         400, "$scene"),
        ("execute: no Write node", "POST", ex,
         {"json": _exec_body(ctx, snap_graph=_b64(graph_no_write))}, 400, "Write"),
        ("execute: input URL not issued", "POST", ex,
         {"json": _exec_body(ctx, eo_input=json.dumps(
             [{"img1": "https://example.org/dataaccess/download/" + "a" * 24}]))}, 400,
         "download URL"),
        ("execute: unknown input name", "POST", ex,
         {"json": _exec_body(ctx, epct_chain="x")}, 400, "epct_chain"),
        ("job: unknown id", "GET", f"{sls}/jobs/0000", {}, 404, "not found"),
        ("jobs: bad limit", "GET", f"{sls}/jobs?limit=abc", {}, 400, "limit"),
        ("results: unknown job", "GET", f"{sls}/jobs/0000/results", {}, 404, "not found"),
        ("wrong method", "DELETE", f"{sls}/jobs", {}, 405, "not allowed"),
        ("unknown path", "GET", f"{emu.url}/hda-broker/api/v2/whatever", {}, 404, "Not found"),
        ("execute: body over 32 MB", "POST", ex,
         {"data": b" " * (33 * 1024 * 1024), "headers": {**h, "Content-Type": "application/json"}},
         413, "large"),
        ("faults: unknown setting", "POST", f"{emu.url}/admin/faults",
         {"json": {"chaos": 1}}, 400, "unknown"),
        ("faults: rate out of range", "POST", f"{emu.url}/admin/faults",
         {"json": {"http_5xx_rate": 2}}, 400, "http_5xx_rate"),
    ]


def test_malformed_requests_get_json_errors(emulator, ctx) -> None:
    all_cases = cases(ctx, emulator)
    assert len(all_cases) >= 15
    failures = []
    for name, method, url, kwargs, status, text in all_cases:
        kwargs = dict(kwargs)
        headers = kwargs.pop("headers", ctx["h"])
        r = requests.request(method, url, headers=headers, timeout=10, **kwargs)
        ok = r.status_code == status and r.headers.get("Content-Type") == "application/json"
        body = r.json() if ok else {}
        if not ok or text.lower() not in json.dumps(body).lower() or "Traceback" in r.text:
            failures.append((name, r.status_code, r.text[:200]))
        assert "X-Quota-Limit" not in r.headers
    assert not failures, failures
    # a valid body is accepted after all that: validation is not stuck in a bad state
    r = requests.post(f"{emulator.eocanvas_url}/processes/snap-function/execution",
                      json=ctx["body"], headers=ctx["h"], timeout=10)
    assert r.status_code == 201 and r.json()["status"] == "accepted"
    acc = emulator.accounting()
    rejected = [s for s in acc["submissions"] if not s["accepted"]]
    assert len(rejected) >= 10 and all(s["status"] in (400, 404) for s in rejected)
    assert acc["counters"]["jobs_created"] == 1


def test_bad_credentials_are_refused_by_both_clients(emulator, hda_client_factory,
                                                     eocanvas_api_factory) -> None:
    client = hda_client_factory(emulator, password="wrong")
    with pytest.raises(requests.HTTPError) as err:
        client.search(query())
    assert err.value.response.status_code == 401
    # hda retried with both federated origins before giving up
    origins = [t["origin"] for t in emulator.accounting()["tokens"]]
    assert origins == [None, "eumetsat", "cmems"]
    api = eocanvas_api_factory(emulator, password="wrong")
    with pytest.raises(requests.HTTPError) as err2:
        api.get_jobs()
    assert err2.value.response.status_code == 401
