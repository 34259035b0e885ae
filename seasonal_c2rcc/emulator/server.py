"""The emulator's HTTP service: one threaded werkzeug server for HDA, EOCanvas and admin routes.

Routes follow wekeo-api.md §5 and §7. Every reply is JSON (or the served bytes); every error is a
JSON body with a ``message``; an unexpected exception becomes a JSON 500, never a stack trace.
:class:`EmulatorServer` runs the service in a background thread for pytest and the CLI.
"""

from __future__ import annotations

import json
import logging
import secrets
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from . import catalogue, jobs, quota
from .catalogue import DATASET_ID, QueryError, product_by_id
from .faults import Dice, FaultConfig
from .products import DEFAULT_PRODUCT_EXTENT, PRODUCT_PAYLOADS, product_zip, safe_zip_path
from .state import State

log = logging.getLogger("seasonal_c2rcc.emulator")

HDA = "/hda-broker/api/v1"
SLS = "/serverless"
MAX_BODY = 32 * 1024 * 1024
STATIC_PING = b"pong\n"
_5XX = (500, 502, 503, 504)


class ApiError(Exception):
    """An error reply: HTTP status, JSON message and optional extra headers/body fields."""

    def __init__(
        self,
        status: int,
        message: str,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}
        self.extra = extra


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON reply."""
    return Response(
        json.dumps(data), status=status, headers=headers, content_type="application/json"
    )


def _rules() -> Map:
    r = [
        Rule("/identity/gettoken", endpoint="gettoken", methods=["POST"]),
        Rule("/hda-broker/gettoken", endpoint="gettoken", methods=["POST"]),
        Rule("/identity/refreshtoken", endpoint="refreshtoken", methods=["POST"]),
        Rule("/hda-broker/refreshtoken", endpoint="refreshtoken", methods=["POST"]),
        Rule(f"{HDA}/datasets", endpoint="datasets", methods=["GET"]),
        Rule(f"{HDA}/datasets/<path:dataset_id>", endpoint="dataset", methods=["GET"]),
        Rule(f"{HDA}/termsaccepted/<path:term>", endpoint="terms", methods=["PUT"]),
        Rule(f"{HDA}/dataaccess/search", endpoint="search", methods=["POST"]),
        Rule(f"{HDA}/dataaccess/download", endpoint="order", methods=["POST"]),
        Rule(f"{HDA}/dataaccess/download/<download_id>", endpoint="download",
             methods=["GET", "HEAD"]),
        Rule(f"{HDA}/dataaccess/downloads", endpoint="downloads", methods=["GET"]),
        Rule(f"{HDA}/dataaccess/queryable/<path:dataset_id>", endpoint="queryable",
             methods=["GET"]),
        Rule(f"{SLS}/", endpoint="landing", methods=["GET"]),
        Rule(f"{SLS}", endpoint="landing", methods=["GET"], strict_slashes=False),
        Rule(f"{SLS}/api", endpoint="api", methods=["GET"]),
        Rule(f"{SLS}/conformance", endpoint="conformance", methods=["GET"]),
        Rule(f"{SLS}/processes", endpoint="processes", methods=["GET"]),
        Rule(f"{SLS}/processes/<pid>", endpoint="process", methods=["GET"]),
        Rule(f"{SLS}/processes/<pid>/execution", endpoint="execute", methods=["POST"]),
        Rule(f"{SLS}/jobs", endpoint="jobs", methods=["GET"]),
        Rule(f"{SLS}/jobs/<job_id>", endpoint="job", methods=["GET", "DELETE"]),
        Rule(f"{SLS}/jobs/<job_id>/logs", endpoint="logs", methods=["GET"]),
        Rule(f"{SLS}/jobs/<job_id>/results", endpoint="results", methods=["GET"]),
        Rule(f"{SLS}/download/<job_id>/<name>", endpoint="result_download",
             methods=["GET", "HEAD"]),
        Rule(f"{SLS}/keys", endpoint="keys", methods=["GET"]),
        Rule("/admin/accounting", endpoint="admin_accounting", methods=["GET"]),
        Rule("/admin/faults", endpoint="admin_faults", methods=["GET", "POST"]),
        Rule("/admin/health", endpoint="admin_health", methods=["GET"]),
        Rule("/static/ping", endpoint="static_ping", methods=["GET"]),
    ]
    return Map(r, strict_slashes=False, merge_slashes=False)


#: endpoints that are never subject to injected 5xx / dropped connections
_NO_FAULT = {"gettoken", "refreshtoken", "admin_accounting", "admin_faults", "admin_health",
             "static_ping"}
_NO_AUTH = _NO_FAULT


class EmulatorApp:
    """The WSGI application holding the emulator's state."""

    def __init__(
        self,
        state_dir: Path,
        faults: FaultConfig | None = None,
        seed: int = 0,
        max_output_pixels: int = 4_000_000,
        product_payload: str = "safe",
        product_extent: tuple[float, float, float, float] = DEFAULT_PRODUCT_EXTENT,
        native_nets: Path | None = None,
    ) -> None:
        if product_payload not in PRODUCT_PAYLOADS:
            raise ValueError(f"product_payload must be one of {PRODUCT_PAYLOADS}")
        self.product_payload = product_payload
        self.product_extent = product_extent
        #: with SNAP's nets, job results come from the native C2RCC on the served SAFE
        self.native: jobs.NativeMode | None = None
        if native_nets is not None:
            self.native = (Path(native_nets), self._served_safe)
        self.state = State(Path(state_dir))
        self.faults = faults or FaultConfig()
        self.faults.validate()
        self.seed = seed
        self.dice = Dice(seed)
        self.max_output_pixels = max_output_pixels
        self.url_map = _rules()
        self._faults_lock = threading.Lock()
        self._tokens: dict[str, tuple[str, float]] = {}
        for access, user, expires in self.state.query(
            "SELECT access, username, expires FROM tokens"
        ):
            self._tokens[access] = (user, expires)
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="emu-produce")
        self._handlers: dict[str, Callable[..., Response]] = {
            name[3:]: getattr(self, name) for name in dir(self) if name.startswith("on_")
        }

    def close(self) -> None:
        """Stop background work and close the database."""
        self.executor.shutdown(wait=True, cancel_futures=True)
        self.state.close()

    # --- WSGI -------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        request.max_content_length = MAX_BODY
        try:
            try:
                response = self.dispatch(request)
            except HTTPException as exc:  # e.g. 413 from werkzeug's body size limit
                if exc.code == 413:
                    raise ApiError(413, f"Request body too large (limit {MAX_BODY} bytes)"
                                   ) from None
                raise ApiError(exc.code or 400, exc.description or "Bad request") from None
        except ApiError as exc:
            response = json_response(
                {"message": exc.message, "status": exc.status, **exc.extra},
                exc.status,
                exc.headers,
            )
        except Exception:  # noqa: BLE001 - the client must get JSON, never a traceback
            log.error("internal error on %s %s\n%s", request.method, request.path,
                      traceback.format_exc())
            response = json_response({"message": "Internal Server Error", "status": 500}, 500)
        return response(environ, start_response)

    def dispatch(self, request: Request) -> Response:
        """Route a request, applying auth and fault injection."""
        adapter = self.url_map.bind_to_environ(request.environ)
        try:
            endpoint, args = adapter.match()
        except NotFound:
            raise ApiError(404, f"Not found: {request.path}") from None
        except MethodNotAllowed as exc:
            allowed = ", ".join(exc.valid_methods or [])
            raise ApiError(405, f"Method {request.method} not allowed on {request.path}",
                           {"Allow": allowed}) from None
        except HTTPException as exc:  # e.g. redirects for slashes
            raise ApiError(exc.code or 400, exc.description or "Bad request") from None
        faults = self.faults
        if endpoint not in _NO_FAULT:
            if self.dice.roll("drop", faults.drop_connection_rate):
                self._record("fault", kind="drop_connection", path=request.path)
                return self._drop(request)
            if self.dice.roll("5xx", faults.http_5xx_rate):
                status = _5XX[int(self.dice.draw("5xx-status") * len(_5XX))]
                self._record("fault", kind="http_5xx", status=status, path=request.path)
                raise ApiError(status, {500: "Internal Server Error", 502: "Bad Gateway",
                                        503: "Service Unavailable",
                                        504: "Gateway Timeout"}[status])
        user = None if endpoint in _NO_AUTH else self._auth(request)
        handler = self._handlers[endpoint]
        return handler(request, user, **args) if user is not None else handler(request, **args)

    def _drop(self, request: Request) -> Response:
        sock = request.environ.get("werkzeug.socket")
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        return Response(b"", status=500)

    # --- helpers ----------------------------------------------------------------------------

    def _record(self, event: str, /, **data: Any) -> None:
        self.state.record(event, time.time(), **data)

    def _json_body(self, request: Request) -> Any:
        data = request.get_data(cache=True)
        if not data:
            raise ApiError(400, "Request body is empty; a JSON object is required")
        try:
            return json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ApiError(400, "Request body is not valid JSON") from None

    def _auth(self, request: Request) -> str:
        header = request.headers.get("Authorization", "")
        if not header:
            self._record("auth_failure", path=request.path, reason="missing")
            raise ApiError(401, "Missing Authorization header (Bearer token required)")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            self._record("auth_failure", path=request.path, reason="malformed")
            raise ApiError(401, "Malformed Authorization header; expected 'Bearer <token>'")
        entry = self._tokens.get(token.strip())
        if entry is None:
            self._record("auth_failure", path=request.path, reason="unknown token")
            raise ApiError(401, "Invalid token")
        user, expires = entry
        if time.time() > expires:
            self._record("auth_failure", path=request.path, reason="expired", username=user)
            raise ApiError(403, "Token expired")
        return user

    def _issue_token(self, username: str) -> dict[str, Any]:
        f = self.faults
        now = time.time()
        access = "emu-" + secrets.token_hex(20)
        refresh = "emr-" + secrets.token_hex(20)
        # A grace period absorbs the clients' whole-second expiry arithmetic; an explicit
        # token_lifetime (fault) is enforced to the second.
        lifetime = f.token_lifetime if f.token_lifetime is not None else f.token_expires_in + 2.0
        expires = now + lifetime
        with self.state.transaction() as db:
            db.execute(
                "INSERT INTO tokens(access, refresh, username, issued, expires) "
                "VALUES(?, ?, ?, ?, ?)",
                (access, refresh, username, now, expires),
            )
        self._tokens[access] = (username, expires)
        return {
            "access_token": access,
            "refresh_token": refresh,
            "expires_in": f.token_expires_in,
            "refresh_expires_in": 86400,
            "token_type": "Bearer",
            "scope": "openid",
        }

    def base_url(self, request: Request) -> str:
        """Absolute root URL as the client addressed us (no trailing slash)."""
        return request.host_url.rstrip("/")

    # --- tokens -----------------------------------------------------------------------------

    def on_gettoken(self, request: Request) -> Response:
        body = request.get_data(cache=True)
        try:
            data = json.loads(body) if body else None
        except (json.JSONDecodeError, UnicodeDecodeError):
            data = None
        if not isinstance(data, dict):
            raise ApiError(400, "Body must be JSON {\"username\", \"password\"}",
                           error="invalid_request",
                           error_description="Body must be JSON with username and password")
        user, password = data.get("username"), data.get("password")
        origin = data.get("origin")
        if not isinstance(user, str) or not isinstance(password, str) or not user or not password:
            raise ApiError(400, "username and password are required", error="invalid_request",
                           error_description="username and password are required")
        if origin not in (None, "eumetsat", "cmems"):
            raise ApiError(400, f"unknown origin {origin!r}", error="invalid_request",
                           error_description=f"unknown origin {origin!r}")
        if password == self.faults.bad_password:
            self._record("token", path=request.path, username=user, origin=origin, status=401)
            raise ApiError(401, "Invalid user credentials", error="invalid_grant",
                           error_description="Invalid user credentials")
        payload = self._issue_token(user)
        self._record("token", path=request.path, username=user, origin=origin, status=200)
        return json_response(payload)

    def on_refreshtoken(self, request: Request) -> Response:
        refresh = request.form.get("refresh_token", "")
        rows = self.state.query("SELECT username FROM tokens WHERE refresh=?", (refresh,)) \
            if refresh else []
        if not rows:
            self._record("refresh", path=request.path, status=400)
            raise ApiError(400, "Invalid refresh token", error="invalid_grant",
                           error_description="Invalid refresh token")
        user = rows[0][0]
        with self.state.transaction() as db:
            # A refresh token is single-use, as with Keycloak's rotation.
            db.execute("UPDATE tokens SET refresh='' WHERE refresh=?", (refresh,))
        payload = self._issue_token(user)
        self._record("refresh", path=request.path, username=user, status=200)
        return json_response(payload)

    # --- HDA --------------------------------------------------------------------------------

    def on_datasets(self, request: Request, user: str) -> Response:
        start = _int_arg(request, "startIndex", 0)
        ipp = _int_arg(request, "itemsPerPage", 100)
        feats = [catalogue.dataset_info()][start : start + ipp]
        return json_response({"type": "FeatureCollection", "features": feats, "properties": {
            "totalResults": 1, "startIndex": start, "itemsPerPage": ipp}})

    def on_dataset(self, request: Request, user: str, dataset_id: str) -> Response:
        if dataset_id != DATASET_ID:
            raise ApiError(404, f"Dataset {dataset_id!r} not found")
        return json_response(catalogue.dataset_info())

    def on_queryable(self, request: Request, user: str, dataset_id: str) -> Response:
        if dataset_id != DATASET_ID:
            raise ApiError(404, f"Dataset {dataset_id!r} not found")
        return json_response(catalogue.queryable_schema())

    def on_terms(self, request: Request, user: str, term: str) -> Response:
        body = self._json_body(request)
        if term not in catalogue.TERMS:
            raise ApiError(404, f"Terms {term!r} not found")
        if not isinstance(body, dict) or body.get("accepted") is not True:
            raise ApiError(400, "Body must be {\"accepted\": true}")
        self._record("terms", username=user, term=term)
        return json_response({"term_id": term, "accepted": True})

    def on_search(self, request: Request, user: str) -> Response:
        body = self._json_body(request)
        try:
            q = catalogue.parse_query(body)
            found = catalogue.search(q)
        except QueryError as exc:
            self._record("search", username=user, query=body, status=exc.status,
                         message=exc.message)
            raise ApiError(exc.status, exc.message) from None
        page = found[q.start_index : q.start_index + q.items_per_page]
        props: dict[str, Any] = {"startIndex": q.start_index, "itemsPerPage": q.items_per_page}
        if self.faults.search_pagination == "total":
            props["totalResults"] = len(found)
        else:
            nxt = q.start_index + len(page)
            props["nextIndex"] = nxt if nxt < len(found) else 0
        props["returned"] = len(page)
        self._record("search", username=user, query=body, status=200, total_results=len(found),
                     returned=len(page), product_ids=[p.id for p in page])
        # Features are serialised once per product (JSON encoding dominated search time).
        body = ('{"type": "FeatureCollection", "features": ['
                + ", ".join(catalogue.feature_json(p) for p in page)
                + '], "properties": ' + json.dumps(props) + "}")
        return Response(body, status=200, content_type="application/json")

    def on_order(self, request: Request, user: str) -> Response:
        body = self._json_body(request)
        if not isinstance(body, dict):
            raise ApiError(400, "The order must be a JSON object")
        missing = [k for k in ("dataset_id", "product_id", "location") if k not in body]
        if missing:
            raise ApiError(400, f"Missing field(s) in order: {', '.join(missing)}")
        unknown = sorted(set(body) - {"dataset_id", "product_id", "location"})
        if unknown:
            raise ApiError(400, f"Unknown field(s) in order: {', '.join(unknown)}")
        if not all(isinstance(body[k], str) for k in ("dataset_id", "product_id", "location")):
            raise ApiError(400, "dataset_id, product_id and location must be strings")
        if body["dataset_id"] != DATASET_ID:
            raise ApiError(404, f"Dataset {body['dataset_id']!r} not found")
        product = product_by_id(body["product_id"])
        if product is None:
            raise ApiError(404, f"Product {body['product_id']!r} not found")
        if body["location"] != product.location:
            raise ApiError(400, f"location does not match product {product.id}")
        now = time.time()
        denied = quota.take_order_slot(self.state, self.faults, user, product.id, now)
        if denied is not None:
            self._record("quota_denied", service="hda", username=user, product_id=product.id,
                         limit=denied.limit, reset=denied.reset)
            raise ApiError(429, f"Quota exceeded: {denied.limit} orders per hour. Retry after "
                                f"{jobs.iso(denied.reset)}", denied.headers())
        with self.state.transaction() as db:
            seq = self.state.next_counter(db, "orders")
            # 24 hex characters like the real broker's ids; deterministic per (seed, order number).
            download_id = uuid.uuid5(jobs.JOB_NAMESPACE, f"order:{self.seed}:{seq}").hex[:24]
            db.execute(
                "INSERT INTO orders(download_id, product_id, dataset_id, location, username, "
                "time, polls) VALUES(?, ?, ?, ?, ?, ?, 0)",
                (download_id, product.id, DATASET_ID, product.location, user, now),
            )
        self._record("order", username=user, product_id=product.id, download_id=download_id,
                     size=product.size)
        return json_response({"download_id": download_id})

    def _order(self, download_id: str) -> tuple[str, str, int]:
        rows = self.state.query(
            "SELECT product_id, username, polls FROM orders WHERE download_id=?", (download_id,)
        )
        if not rows:
            raise ApiError(404, f"Download {download_id!r} not found")
        return rows[0][0], rows[0][1], int(rows[0][2])

    def on_download(self, request: Request, user: str, download_id: str) -> Response:
        product_id, owner, polls = self._order(download_id)
        if owner != user:
            raise ApiError(404, f"Download {download_id!r} not found")
        product = product_by_id(product_id)
        assert product is not None
        ready = polls >= self.faults.order_ready_polls
        if request.method == "HEAD":
            with self.state.transaction() as db:
                db.execute("UPDATE orders SET polls = polls + 1 WHERE download_id=?",
                           (download_id,))
            self._record("order_poll", username=user, download_id=download_id,
                         status=200 if ready else 202)
            if not ready:
                return Response(b"", status=202, headers={"Content-Length": "0"})
            payload = self._product_bytes(product)
            return _head_response(f"{product.stem}.zip", len(payload), "application/zip")
        if not ready:
            return json_response({"message": "The order is still being prepared"}, 202)
        payload = self._product_bytes(product)
        return self._stream(request, payload, f"{product.stem}.zip", "application/zip",
                            kind="product", ref=download_id, username=user)

    def _product_bytes(self, product: catalogue.Product) -> bytes:
        """What a download of ``product`` serves: its SAFE zip (made once, kept in the state
        folder under ``products/``) or the metadata-only stand-in."""
        if self.product_payload == "stub":
            return product_zip(product)
        path = safe_zip_path(product, self.state.state_dir / "products", self.product_extent)
        return path.read_bytes()

    def _stream(self, request: Request, payload: bytes, filename: str, ctype: str, *,
                kind: str, ref: str, username: str) -> Response:
        truncate = self.dice.roll("truncate", self.faults.truncate_download_rate)
        send = payload[: len(payload) // 2] if truncate else payload
        if truncate:
            self._record("fault", kind="truncated_download", path=request.path)
        corrupt = self.dice.roll("corrupt", self.faults.corrupt_download_rate)
        if corrupt:
            mid = len(send) // 2
            send = send[:mid] + bytes(b ^ 0xFF for b in send[mid : mid + 64]) + send[mid + 64 :]
            self._record("fault", kind="corrupt_download", path=request.path)
        record = self._record

        def body() -> Iterator[bytes]:
            sent = 0
            try:
                for i in range(0, len(send), 64 * 1024):
                    chunk = send[i : i + 64 * 1024]
                    yield chunk
                    sent += len(chunk)
            finally:
                record("download", kind=kind, ref=ref, path=request.path, username=username,
                       content_length=len(payload), bytes_sent=sent, truncated=truncate,
                       corrupted=corrupt)

        resp = Response(body(), status=200, headers=_file_headers(filename, len(payload), ctype),
                        direct_passthrough=True)
        return resp

    def on_downloads(self, request: Request, user: str) -> Response:
        download_id = request.args.get("download_id", "")
        product_id, _owner, polls = self._order(download_id)
        status = "Done" if polls >= self.faults.order_ready_polls else "In progress"
        return json_response({"features": [{"download_id": download_id, "product_id": product_id,
                                            "status": status}]})

    # --- EOCanvas ---------------------------------------------------------------------------

    def on_landing(self, request: Request, user: str) -> Response:
        base = self.base_url(request) + SLS
        return json_response({
            "title": "WEkEO Serverless Functions (emulated)",
            "description": "OGC API - Processes emulation for seasonal-c2rcc",
            "links": [
                {"href": f"{base}/", "rel": "self", "type": "application/json"},
                {"href": f"{base}/api?f=json", "rel": "service-desc",
                 "type": "application/vnd.oai.openapi+json;version=3.0"},
                {"href": f"{base}/conformance", "rel": "conformance", "type": "application/json"},
                {"href": f"{base}/processes", "rel": "processes", "type": "application/json"},
                {"href": f"{base}/jobs", "rel": "job-list", "type": "application/json"},
            ],
        })

    def on_api(self, request: Request, user: str) -> Response:
        return json_response({"openapi": "3.0.2", "info": {"title": "Serverless Functions",
                              "version": "2.0"}, "paths": {p: {} for p in (
                                  "/", "/conformance", "/processes", "/processes/{processId}",
                                  "/processes/{processId}/execution", "/jobs", "/jobs/{jobId}",
                                  "/jobs/{jobId}/logs", "/jobs/{jobId}/results")}})

    def on_conformance(self, request: Request, user: str) -> Response:
        return json_response({"conformsTo": [
            "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/core",
            "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/json",
            "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/job-list",
        ]})

    def on_processes(self, request: Request, user: str) -> Response:
        limit = _int_arg(request, "limit", 10)
        offset = _int_arg(request, "offset", 0)
        items = [dict(p, links=[]) for p in jobs.PROCESSES.values()]
        page = items[offset : offset + limit]
        links = []
        if offset + limit < len(items):
            links.append({"href": f"{self.base_url(request)}{SLS}/processes?limit={limit}"
                          f"&offset={offset + limit}", "rel": "next",
                          "type": "application/json"})
        return json_response({"processes": page, "links": links})

    def on_process(self, request: Request, user: str, pid: str) -> Response:
        if pid not in jobs.PROCESSES:
            raise ApiError(404, f"Process '{pid}' not found")
        return json_response(dict(jobs.PROCESSES[pid], links=[]))

    def on_keys(self, request: Request, user: str) -> Response:
        return json_response([])

    def on_execute(self, request: Request, user: str, pid: str) -> Response:
        now = time.time()
        raw = request.get_data(cache=True)
        record: dict[str, Any] = {"username": user, "process_id": pid, "accepted": False,
                                  "job_id": None}
        try:
            try:
                body = json.loads(raw) if raw else None
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise jobs.ExecError("Request body is not valid JSON") from None
            if body is None:
                raise jobs.ExecError("Request body is empty; a JSON object is required")
            # Any download id this broker issued is accepted here; the real stage-in fetches
            # it server-side, so the id is what matters, not the host in the URL.
            known = {r[0] for r in self.state.query("SELECT download_id FROM orders")}
            sub = jobs.validate_execution(pid, body, known)
        except jobs.ExecError as exc:
            self._record("submission", **record, status=exc.status, message=exc.message,
                         body=raw[:4096].decode("utf-8", "replace"))
            raise ApiError(exc.status, exc.message) from None
        record.update(graph_xml=sub.graph_xml, eo_input=sub.eo_input, eo_config=sub.eo_config)
        products = {}
        urls = {}
        for key, did in sub.inputs.items():
            product_id, _owner, _polls = self._order(did)
            p = product_by_id(product_id)
            assert p is not None
            products[key] = p
            urls[key] = next(v for item in sub.eo_input for k, v in item.items() if k == key)
        record["products"] = [products[k].id for k in sorted(products)]
        with self.state.transaction() as db:
            seq = self.state.next_counter(db, "jobs")
        job = jobs.new_job(sub, seq, self.seed, user, now, self.faults, self.dice, products,
                           urls, self.max_output_pixels)
        denied = quota.take_job_slot(self.state, self.faults, user, job["job_id"], now)
        if denied is not None:
            self._record("submission", **record, status=429, message="quota exceeded")
            self._record("quota_denied", service="eocanvas", username=user, window=denied.window,
                         limit=denied.limit, reset=denied.reset)
            raise ApiError(429, f"Quota exceeded: {denied.limit} jobs per {denied.window}. "
                                f"Retry after {jobs.iso(denied.reset)}", denied.headers(),
                           limit=denied.limit, remaining=0, reset=int(denied.reset * 1000))
        self.state.put_job(job)
        if job["outputs"]:
            self.executor.submit(self._produce, job)
        ghost = self.dice.roll("submit-5xx", self.faults.submit_5xx_after_create_rate)
        record.update(accepted=True, job_id=job["job_id"], geo_regions=job["geo_regions"],
                      work_items=job["work_items"], status=504 if ghost else 201)
        self._record("submission", **record)
        if ghost:
            self._record("fault", kind="submit_5xx_after_create", job_id=job["job_id"])
            raise ApiError(504, "Gateway Timeout")
        return json_response(jobs.job_json(job, now, self.base_url(request) + SLS), 201,
                             {"Location": f"{self.base_url(request)}{SLS}/jobs/{job['job_id']}"})

    def _served_safe(self, product: Any) -> Path:
        """The SAFE zip an HDA download of ``product`` serves (made once)."""
        return safe_zip_path(product, self.state.state_dir / "products", self.product_extent)

    def _produce(self, job: dict[str, Any]) -> None:
        try:
            jobs.produce_outputs(job, self.state.state_dir, self.native)
        except Exception:  # noqa: BLE001 - logged; results requests retry production
            log.error("producing outputs of job %s failed\n%s", job["job_id"],
                      traceback.format_exc())

    def _job(self, user: str, job_id: str) -> dict[str, Any]:
        job = self.state.get_job(job_id)
        if job is None or job["username"] != user:
            raise ApiError(404, f"Job '{job_id}' not found")
        return job

    def on_job(self, request: Request, user: str, job_id: str) -> Response:
        job = self._job(user, job_id)
        now = time.time()
        if request.method == "DELETE":
            return self._dismiss(request, user, job, now)
        doc = jobs.job_json(job, now, self.base_url(request) + SLS)
        self._record("status_poll", username=user, job_id=job_id, status=doc["status"])
        return json_response(doc)

    def _dismiss(self, request: Request, user: str, job: dict[str, Any], now: float) -> Response:
        """OGC API Processes "dismiss": a job that has not finished is stopped for good
        (``dismissed``, no results); a finished one keeps its status (its results are deleted
        on the real service; here they simply stay)."""
        before = jobs.job_status(job, now)
        if before in ("accepted", "running"):
            job["dismissed"] = now
            self.state.put_job(job)
        self._record("dismissal", username=user, job_id=job["job_id"], status_before=before)
        doc = jobs.job_json(job, now, self.base_url(request) + SLS)
        return json_response(doc)

    def on_jobs(self, request: Request, user: str) -> Response:
        limit = _int_arg(request, "limit", 10)
        offset = _int_arg(request, "offset", 0)
        if not 1 <= limit <= 1000:
            raise ApiError(400, "'limit' must be between 1 and 1000")
        now = time.time()
        base = self.base_url(request) + SLS
        page = self.state.list_jobs(user, limit + 1, offset)
        more = len(page) > limit
        docs = [jobs.job_json(j, now, base) for j in page[:limit]]
        links = [{"href": f"{base}/jobs?limit={limit}&offset={offset}", "rel": "self",
                  "type": "application/json"}]
        if more:
            links.append({"href": f"{base}/jobs?limit={limit}&offset={offset + limit}",
                          "rel": "next", "type": "application/json"})
        self._record("job_list", username=user, limit=limit, offset=offset, returned=len(docs))
        return json_response({"jobs": docs, "links": links})

    def on_logs(self, request: Request, user: str, job_id: str) -> Response:
        job = self._job(user, job_id)
        entries = jobs.job_logs(job, time.time())
        self._record("log_fetch", username=user, job_id=job_id, entries=len(entries))
        return json_response(entries)

    def _results(self, job: dict[str, Any], request: Request) -> list[dict[str, str]]:
        base = self.base_url(request)
        out = []
        for o in job["outputs"]:
            if job["keystore_output"]:
                title = f"{job['keystore_output']}/{job['job_id']}/output/{o['name']}"
            else:
                title = f"wks3:///{job['job_id']}/output/{o['name']}"
            out.append({"href": f"{base}{SLS}/download/{job['job_id']}/{o['name']}",
                        "title": title, "rel": "result", "type": "application/x-netcdf"})
        return out

    def on_results(self, request: Request, user: str, job_id: str) -> Response:
        job = self._job(user, job_id)
        status = jobs.job_status(job, time.time())
        if status != "successful":
            self._record("results_fetch", username=user, job_id=job_id, status=404)
            raise ApiError(404, f"Results of job '{job_id}' are not available: job is {status}")
        page = _int_arg(request, "page", 1)
        size = self.faults.results_page_size
        items = self._results(job, request)
        pages = max(1, -(-len(items) // size))
        if not 1 <= page <= pages:
            raise ApiError(404, f"Results page {page} does not exist (1..{pages})")
        out: list[dict[str, str]] = list(items[(page - 1) * size : page * size])
        if page < pages:
            out.append({"title": "next-page", "href": f"/jobs/{job_id}/results?page={page + 1}",
                        "rel": "next"})
        if page > 1:
            out.append({"title": "prev-page", "href": f"/jobs/{job_id}/results?page={page - 1}",
                        "rel": "prev"})
        self._record("results_fetch", username=user, job_id=job_id, status=200, page=page,
                     results=len(out))
        return json_response(out)

    def on_result_download(self, request: Request, user: str, job_id: str, name: str) -> Response:
        job = self._job(user, job_id)
        if jobs.job_status(job, time.time()) != "successful" or job["keystore_output"]:
            raise ApiError(404, f"Result '{name}' of job '{job_id}' not found")
        if name not in {o["name"] for o in job["outputs"]}:
            raise ApiError(404, f"Result '{name}' of job '{job_id}' not found")
        paths = jobs.produce_outputs(job, self.state.state_dir, self.native)
        path = next(p for p in paths if p.name == name)
        payload = path.read_bytes()
        if request.method == "HEAD":
            return _head_response(name, len(payload), "application/x-netcdf")
        return self._stream(request, payload, name, "application/x-netcdf", kind="result",
                            ref=f"{job_id}/{name}", username=user)

    # --- admin ------------------------------------------------------------------------------

    def on_admin_health(self, request: Request) -> Response:
        return json_response({"ok": True, "seed": self.seed})

    def on_static_ping(self, request: Request) -> Response:
        return Response(STATIC_PING, content_type="text/plain")

    def on_admin_faults(self, request: Request) -> Response:
        if request.method == "POST":
            body = self._json_body(request)
            if not isinstance(body, dict):
                raise ApiError(400, "Body must be a JSON object of fault settings")
            with self._faults_lock:
                try:
                    self.faults = self.faults.updated(body)
                except ValueError as exc:
                    raise ApiError(400, str(exc)) from None
            self._record("faults_changed", changes=body)
        return json_response(self.faults.to_dict())

    def on_admin_accounting(self, request: Request) -> Response:
        return json_response(self.accounting())

    def accounting(self) -> dict[str, Any]:
        """Every recorded interaction grouped by kind, plus counters and quota use."""
        groups = {
            "token": "tokens", "refresh": "refreshes", "terms": "terms", "search": "searches",
            "order": "orders", "order_poll": "order_polls", "submission": "submissions",
            "status_poll": "status_polls", "log_fetch": "log_fetches",
            "results_fetch": "results_fetches", "download": "downloads", "job_list": "job_lists",
            "fault": "faults_injected", "quota_denied": "quota_denials",
            "auth_failure": "auth_failures", "faults_changed": "fault_changes",
            "dismissal": "dismissals",
        }
        out: dict[str, Any] = {v: [] for v in groups.values()}
        for kind, t, data in self.state.events():
            out.setdefault(groups.get(kind, kind), []).append(
                {"time": t, "time_iso": jobs.iso(t), **data})
        counters = {k: len(v) for k, v in out.items()}
        counters["jobs_created"] = sum(1 for s in out["submissions"] if s.get("accepted"))
        counters["jobs_dismissed"] = sum(
            1 for d in out["dismissals"] if d["status_before"] in ("accepted", "running"))
        counters["orders_placed"] = len(out["orders"])
        counters["bytes_downloaded"] = sum(d.get("bytes_sent", 0) for d in out["downloads"])
        out["counters"] = counters
        out["quota_usage"] = quota.usage(self.state, self.faults, time.time())
        return out


def _head_response(filename: str, length: int, ctype: str) -> Response:
    """HEAD reply announcing the exact byte count a GET would send."""
    resp = Response(b"", status=200)
    # Set after construction: Response(b"") computes Content-Length 0 itself.
    resp.headers.update(_file_headers(filename, length, ctype))
    return resp


def _file_headers(filename: str, length: int, ctype: str) -> dict[str, str]:
    return {"Content-Length": str(length), "Content-Type": ctype,
            "Content-Disposition": f'attachment; filename="{filename}"'}


def _int_arg(request: Request, name: str, default: int) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit():
        raise ApiError(400, f"Query parameter '{name}' must be a non-negative integer")
    return int(raw)


class _QuietHandler(WSGIRequestHandler):
    """Request handler that does not log every request (the accounting log has them)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        if log.isEnabledFor(logging.DEBUG):
            super().log_request(code, size)


class EmulatorServer:
    """Run the emulator on a real threaded HTTP server in a background thread.

    >>> with EmulatorServer(state_dir=tmp, port=0) as emu:   # doctest: +SKIP
    ...     Configuration(url=emu.hda_url, user="u", password="p")
    """

    def __init__(
        self,
        state_dir: str | Path,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: FaultConfig | None = None,
        seed: int = 0,
        max_output_pixels: int = 4_000_000,
        tls: bool = False,
        product_payload: str = "safe",
        product_extent: tuple[float, float, float, float] = DEFAULT_PRODUCT_EXTENT,
        native_nets: str | Path | None = None,
    ) -> None:
        self.state_dir = Path(state_dir)
        self.product_payload = product_payload
        self.product_extent = product_extent
        #: SNAP's nets: job results computed by the native C2RCC on the served SAFE (.native)
        self.native_nets = Path(native_nets) if native_nets else None
        self.tls = tls
        #: the self-signed certificate (its own CA) when ``tls``: point REQUESTS_CA_BUNDLE at it
        self.ca_path: Path | None = None
        self.host = host
        self.port = port
        self.seed = seed
        self._initial_faults = faults or FaultConfig()
        self.max_output_pixels = max_output_pixels
        self.app: EmulatorApp | None = None
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    # URLs ------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Root URL, e.g. ``http://127.0.0.1:PORT`` (``https://`` with ``tls``)."""
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    @property
    def hda_url(self) -> str:
        """What hda's ``Configuration(url=...)`` needs (trailing slash)."""
        return f"{self.url}/hda-broker/"

    @property
    def eocanvas_url(self) -> str:
        """eocanvas ``URLs().base_url`` (no trailing slash)."""
        return f"{self.url}/serverless"

    @property
    def token_url(self) -> str:
        """eocanvas ``URLs().token_url``."""
        return f"{self.url}/hda-broker/gettoken"

    # lifecycle -------------------------------------------------------------------------------

    def start(self) -> EmulatorServer:
        """Bind the port and serve in a daemon thread; returns self."""
        self.app = EmulatorApp(self.state_dir, self._initial_faults, self.seed,
                               self.max_output_pixels, self.product_payload,
                               self.product_extent, self.native_nets)
        ssl_context = None
        if self.tls:
            from .tls import make_self_signed

            cert, key = make_self_signed(self.state_dir / "tls", self.host)
            self.ca_path = cert
            ssl_context = (str(cert), str(key))
        try:
            self._server = make_server(self.host, self.port, self.app, threaded=True,
                                       request_handler=_QuietHandler, ssl_context=ssl_context)
        except SystemExit:
            # werkzeug prints a message and calls sys.exit(1) when the port is taken.
            self.app.close()
            self.app = None
            raise OSError(f"cannot listen on {self.host}:{self.port} (address in use?)") from None
        # Many short-lived connections (werkzeug closes after each reply): a deep backlog keeps
        # bursts of concurrent clients from being refused. socketserver listened with its
        # default of 5; listening again on the bound socket raises the backlog.
        self._server.socket.listen(128)
        self.port = self._server.server_port
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.1},
                                        name="emulator-http", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port and the database."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        if self.app is not None:
            self.app.close()
            self.app = None

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # admin -----------------------------------------------------------------------------------

    def accounting(self) -> dict[str, Any]:
        """The accounting report (same JSON as ``GET /admin/accounting``)."""
        return _http_json("GET", f"{self.url}/admin/accounting", cafile=self.ca_path)

    @property
    def faults(self) -> FaultConfig:
        """The current fault settings."""
        return FaultConfig(**_http_json("GET", f"{self.url}/admin/faults", cafile=self.ca_path))

    def set_faults(self, faults: FaultConfig | None = None, **changes: Any) -> FaultConfig:
        """Change fault settings at run time (``POST /admin/faults``); returns the new config.

        Pass a whole :class:`FaultConfig`, or keyword changes such as ``http_5xx_rate=0.5``.
        """
        body = dict(faults.to_dict()) if faults is not None else {}
        body.update(changes)
        return FaultConfig(**_http_json("POST", f"{self.url}/admin/faults", body,
                                        cafile=self.ca_path))


def _http_json(method: str, url: str, body: Any = None, cafile: Path | None = None) -> Any:
    import ssl
    import urllib.error
    import urllib.request

    context = ssl.create_default_context(cafile=str(cafile)) if cafile else None

    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30, context=context) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", "replace")
        raise ValueError(f"{method} {url} -> {exc.code}: {detail}") from None
