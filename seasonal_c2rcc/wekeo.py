"""Every HTTP conversation with WEkEO goes through this module.

It builds the official ``hda`` and ``eocanvas`` clients, unmodified, with the settings they lack
(explicit URLs, credentials from ``~/.hdarc`` or the environment, a small retry budget, time-outs on
every call) and streams downloads to a temporary file that is checked and renamed. Nothing here
blocks without a deadline.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import requests

from .errors import (
    CatalogueError,
    ConfigError,
    CredentialsError,
    DownloadError,
    QuotaError,
    TransientBackendError,
)

PROD_HDA_URL = "https://gateway.prod.wekeo2.eu/hda-broker/"
PROD_EOCANVAS_URL = "https://gateway.prod.wekeo2.eu/serverless"


@dataclass(frozen=True)
class Credentials:
    """A WEkEO username and password. The password never appears in ``repr``."""

    user: str
    password: str = field(repr=False)

    def __repr__(self) -> str:
        return f"Credentials(user={self.user!r}, password='***')"


def load_credentials(
    env: dict[str, str] | None = None, rc_path: str | Path | None = None
) -> Credentials:
    """Credentials from ``HDA_USER``/``HDA_PASSWORD``, else ``$HDA_RC`` or ``~/.hdarc``.

    The rc file is read the way ``hda`` reads it (``key: value`` lines, split on the first colon),
    not as YAML, so numeric or special-character passwords work.
    """
    env = dict(os.environ) if env is None else env
    user, password = env.get("HDA_USER"), env.get("HDA_PASSWORD")
    rc = Path(rc_path or env.get("HDA_RC") or Path.home() / ".hdarc")
    if (not user or not password) and rc.is_file():
        values: dict[str, str] = {}
        for line in rc.read_text().splitlines():
            key, sep, value = line.partition(":")
            if sep:
                values[key.strip()] = value.strip()
        user = user or values.get("user")
        password = password or values.get("password")
    if not user or not password:
        raise CredentialsError(
            "no WEkEO credentials: set HDA_USER and HDA_PASSWORD, or write 'user: ...' and "
            f"'password: ...' lines to {rc} (credentials never go in the config file)"
        )
    if any(c.isspace() for c in user + password):
        raise CredentialsError("WEkEO username and password may not contain white space")
    return Credentials(user, password)


@dataclass(frozen=True)
class Endpoints:
    """Where HDA and EOCanvas live (production by default, the emulator in tests and the demo)."""

    hda_url: str = PROD_HDA_URL
    eocanvas_url: str = PROD_EOCANVAS_URL
    eocanvas_token_url: str | None = None

    def __post_init__(self) -> None:
        if not self.hda_url.endswith("/"):
            raise ConfigError(
                f"wekeo.hda_url {self.hda_url!r} must end with '/' (hda drops the last path part "
                "otherwise)"
            )
        if self.eocanvas_url.endswith("/"):
            raise ConfigError(f"wekeo.eocanvas_url {self.eocanvas_url!r} must not end with '/'")

    @property
    def token_url(self) -> str:
        """eocanvas's token URL: configured, else ``<host>/hda-broker/gettoken``."""
        if self.eocanvas_token_url:
            return self.eocanvas_token_url
        parts = urlsplit(self.eocanvas_url)
        return urlunsplit((parts.scheme, parts.netloc, "/hda-broker/gettoken", "", ""))

    @property
    def hda_token_url(self) -> str:
        """Where hda 2.40 asks for its token: ``gettoken`` next to ``hda_url``, with
        ``hda-broker`` replaced by ``identity`` (as ``hda.Client._get_token`` derives it)."""
        return urljoin(self.hda_url, "gettoken").replace("hda-broker", "identity")

    @classmethod
    def from_config(cls, wekeo: dict[str, Any]) -> Endpoints:
        """Build from the validated ``wekeo`` config section.

        Slashes are normalised as users expect a copied URL to work: ``hda_url`` gets its trailing
        slash (without it hda silently drops the last path part, ``hda-broker``), ``eocanvas_url``
        loses one.
        """
        hda_url = wekeo["hda_url"] if wekeo["hda_url"].endswith("/") else wekeo["hda_url"] + "/"
        return cls(hda_url, wekeo["eocanvas_url"].rstrip("/"), wekeo.get("eocanvas_token_url"))


def check_login(endpoints: Endpoints, creds: Credentials, *, timeout: float) -> None:
    """Prove the credentials with exactly one token request to hda's token endpoint.

    One attempt, never retried: hda itself would retry a refused login twice more (federated
    ``origin`` values) and every Snakemake retry again, and repeated failed logins can lock the
    account. Raises :class:`CredentialsError` on 401/403 (or a 200 carrying an ``error``),
    :class:`ConfigError` on any other 4xx (a wrong URL), :class:`TransientBackendError` on 5xx,
    a refused connection or a time-out. The token itself is discarded.
    """
    url = endpoints.hda_token_url
    try:
        resp = requests.post(
            url, json={"username": creds.user, "password": creds.password}, timeout=timeout
        )
    except requests.Timeout:
        raise TransientBackendError(
            f"WEkEO login at {url} timed out after {timeout:g} s: check wekeo.hda_url and your "
            "network, or raise wekeo.http_timeout"
        ) from None
    except requests.RequestException as exc:
        reason = type(exc).__name__
        if isinstance(exc, requests.ConnectionError) and "refused" in str(exc).lower():
            reason = "connection refused"
        raise TransientBackendError(
            f"cannot reach the WEkEO login at {url} ({reason}): check wekeo.hda_url and your "
            "network"
        ) from None
    try:
        payload = resp.json()
    except ValueError:
        payload = {}
    if resp.status_code in (401, 403) or (resp.ok and isinstance(payload, dict) and "error" in payload):
        detail = payload.get("error_description") if isinstance(payload, dict) else None
        raise CredentialsError(
            f"WEkEO refused the login of user {creds.user!r} (HTTP {resp.status_code}"
            f"{': ' + str(detail) if detail else ''}): fix HDA_USER/HDA_PASSWORD or the 'user:'/"
            "'password:' lines of ~/.hdarc (not retried, so the account is not locked)"
        )
    if resp.status_code >= 500:
        raise TransientBackendError(
            f"the WEkEO login at {url} answered HTTP {resp.status_code}: the service is down or "
            "overloaded; try again later"
        )
    if not resp.ok or not isinstance(payload, dict) or "access_token" not in payload:
        raise ConfigError(
            f"wekeo.hda_url {endpoints.hda_url!r}: its token endpoint {url} answered HTTP "
            f"{resp.status_code} without a token; is the URL right (the default is {PROD_HDA_URL})?"
        )


def hda_client(
    endpoints: Endpoints, creds: Credentials, *, timeout: float = 60, retries: int = 3
) -> Any:
    """An ``hda.Client`` with explicit URL and credentials, a time-out and a small retry budget.

    hda's default (500 retries, waits up to 120 s) turns a persistent HTTP 500 into a 16-hour hang.
    """
    from hda import Client, Configuration

    cfg = Configuration(url=endpoints.hda_url, user=creds.user, password=creds.password)
    return Client(
        config=cfg, timeout=timeout, retry_max=max(1, retries), sleep_max=30, progress=False
    )


def hda_order_client(endpoints: Endpoints, creds: Credentials, *, timeout: float = 60) -> Any:
    """An ``hda.Client`` that sends each request exactly once, for orders (POST).

    hda's retry wrapper repeats a POST on 5xx and dropped connections; one client-wide knob,
    ``retry_max``, sets it, so orders get their own client with ``retry_max=1`` (one attempt). A
    failed order is then retried by the job, after its durable record says what was sent.
    """
    return hda_client(endpoints, creds, timeout=timeout, retries=1)


_HDA_RESET_TEXT = re.compile(r"Please wait until (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?) ")


def hda_quota_reset(message: str) -> float | None:
    """The reset time (epoch s) of an hda ``QuotaReachedError``, or None.

    hda builds the message from the 429 reply's ``X-Quota-Reset`` header (epoch ms) as
    ``datetime.fromtimestamp(ms / 1000)``: a naive local time with microseconds, which this
    process reads back exactly (same time zone). The exception carries no response, so the
    message is the only part of the reply that reaches us.
    """
    from datetime import datetime

    m = _HDA_RESET_TEXT.search(message)
    if m is None:
        return None
    try:
        return datetime.fromisoformat(m.group(1)).timestamp()
    except ValueError:
        return None


def _raise_hda(exc: Exception, what: str) -> None:
    from hda.api import QuotaReachedError

    if isinstance(exc, QuotaReachedError):
        reset = hda_quota_reset(str(exc))
        raise QuotaError(f"HDA quota reached during {what}: {exc}", reset) from exc
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        code = exc.response.status_code
        try:
            detail = exc.response.json()
        except ValueError:
            detail = exc.response.text[:300]
        if code >= 500:
            raise TransientBackendError(f"HDA {what}: HTTP {code}: {detail}") from exc
        raise CatalogueError(f"HDA {what} rejected: HTTP {code}: {detail}") from exc
    if isinstance(exc, requests.RequestException | AttributeError):
        # hda returns None after only connection errors, which surfaces as AttributeError.
        raise TransientBackendError(f"HDA {what}: connection failed: {exc}") from exc
    raise exc


def search(client: Any, query: dict[str, Any]) -> list[dict[str, Any]]:
    """Run one catalogue search (``Client.search(query_dict)``) and return the raw features."""
    try:
        return list(client.search(dict(query)).results)
    except Exception as exc:  # hda raises a mix of its own errors, requests' and builtins
        _raise_hda(exc, "search")
        raise


def order(client: Any, dataset_id: str, product_id: str, location: str) -> str:
    """Place one HDA order for one product (never ``get_download_urls()`` on a result set)."""
    body = {"dataset_id": dataset_id, "product_id": product_id, "location": location}
    try:
        reply = client.post(body, "dataaccess/download")
    except Exception as exc:
        _raise_hda(exc, f"order of {product_id}")
        raise
    if not isinstance(reply, dict) or "download_id" not in reply:
        raise CatalogueError(f"HDA order of {product_id}: malformed reply {reply!r}")
    return str(reply["download_id"])


def order_ready(client: Any, download_id: str) -> bool:
    """One readiness probe of an order: True when ready (200), False while preparing (202)."""
    try:
        r = client.head("dataaccess/download", download_id)
    except Exception as exc:
        _raise_hda(exc, f"order status {download_id}")
        raise
    if r.status_code == 200:
        return True
    if r.status_code == 202:
        return False
    raise CatalogueError(f"HDA order {download_id}: unexpected status {r.status_code}")


def download_url(client: Any, download_id: str) -> str:
    """The URL EOCanvas stages an ordered product from."""
    return str(client.full_url(f"dataaccess/download/{download_id}"))


def open_download(client: Any, download_id: str) -> requests.Response:
    """Start streaming an ordered product (``GET dataaccess/download/<id>``, ``stream=True``).

    Goes through the official client's own session, token handling and retry wrapper
    (``Client.robust``: 5xx and dropped connections are retried, as for its other GETs), with its
    time-out. hda's ``Client.stream`` is not used: it writes straight to the final file name with
    no temporary file. Read the body with :func:`stream_to_file`.
    """
    url = download_url(client, download_id)
    try:
        resp = client.robust(client.session.get)(
            url, stream=True, timeout=client.timeout, verify=client.config.verify
        )
        if resp is None:  # robust() gives None after connection errors only
            raise requests.ConnectionError(f"no reply from {url}")
        resp.raise_for_status()
    except Exception as exc:
        _raise_hda(exc, f"download {download_id}")
        raise
    if resp.status_code != 200:
        resp.close()
        raise TransientBackendError(
            f"HDA download {download_id}: HTTP {resp.status_code} (order not ready yet)"
        )
    return resp


class EOCanvas:
    """The official ``eocanvas.API`` with a time-out on every call.

    ``eocanvas`` sets no HTTP time-outs, so each call goes through ``eocanvas.http`` with one, using
    the client's own URL table, auth and model builder.
    """

    def __init__(self, endpoints: Endpoints, creds: Credentials, *, timeout: float = 60) -> None:
        from eocanvas import API
        from eocanvas import Credentials as EoCredentials
        from eocanvas.config import URLs
        from eocanvas.utils import Singleton

        urls = URLs()
        urls.base_url = endpoints.eocanvas_url
        urls.token_url = endpoints.token_url
        # API is a process-wide singleton whose first construction wins; rebuild it so these
        # endpoints and credentials are the ones used.
        Singleton._instances.pop(API, None)
        import logging

        self.api = API(
            urls=urls,
            credentials=EoCredentials(creds.user, creds.password),
            log_level=logging.WARNING,
        )
        self.timeout = timeout

    def _call(self, method: str, url: str, *, once: bool = False, **kwargs: Any) -> requests.Response:
        """One request through ``eocanvas.http.request``.

        ``once``: send it exactly once. Over https the client retries every method, POST
        included, on 500/502/503/504 (``Retry(total=5)``, ``allowed_methods`` with POST): a
        gateway 504 after the job was created would create up to 6 paid jobs. The client's own
        ``max_retries`` argument turns that off per call; a 5xx then surfaces as its
        ``HTTPError("Maximum retries (0) reached ...")``, an unknown outcome for the caller.

        A 429's reset time is read from the reply itself: the client raises
        ``QuotaExceededError`` with the body's message only, so a ``requests`` response hook
        keeps the reply for its ``X-Quota-Reset`` / ``Retry-After`` headers.
        """
        from eocanvas import http
        from eocanvas.exceptions import HTTPError as EoHTTPError
        from eocanvas.exceptions import QuotaExceededError

        replies: list[requests.Response] = []

        def keep(resp: requests.Response, *args: Any, **kw: Any) -> None:
            replies.append(resp)

        if once:
            kwargs["max_retries"] = 0
        try:
            return http.request(
                method, url, auth=self.api.auth, timeout=self.timeout,
                hooks={"response": [keep]}, **kwargs,
            )  # fmt: skip
        except QuotaExceededError as exc:
            raise QuotaError(f"EOCanvas quota: {exc}", _reset(replies[-1] if replies else None)) from exc
        except (requests.ConnectionError, requests.Timeout, EoHTTPError) as exc:
            raise TransientBackendError(f"EOCanvas {method.upper()} {url}: {exc}") from exc
        except requests.HTTPError as exc:
            resp = exc.response
            code = resp.status_code if resp is not None else 0
            if code == 429:
                raise QuotaError(f"EOCanvas quota: {resp.text[:200]}", _reset(resp)) from exc
            if code >= 500:
                raise TransientBackendError(f"EOCanvas {method.upper()} {url}: HTTP {code}") from exc
            body = resp.text[:500] if resp is not None else ""
            raise ConfigError(f"EOCanvas rejected {method.upper()} {url}: HTTP {code}: {body}") from exc

    def submit(self, process: Any) -> Any:
        """POST one execution; returns the ``eocanvas.api.Job`` (status ``accepted``).

        A :class:`TransientBackendError` here is ambiguous: the job may exist. Callers must
        reconcile (see :mod:`seasonal_c2rcc.backends.eocanvas`) before submitting again.
        """
        url = self.api.urls.get("process_execution", process_id=process.process_id)
        resp = self._call("post", url, once=True, json=process.prepare_inputs())
        return self.api._builder.build_job(resp.json())

    def cancel(self, job_id: str) -> bool:
        """Dismiss a job on the service (OGC API Processes ``DELETE /jobs/{id}``), sent once.

        eocanvas 2.0.1 has no call for it, so it goes through the client's own HTTP function, URL
        table and auth. Returns False when the service does not offer it (404, 405, 501): the
        caller then records the job as abandoned. Other failures raise as usual.
        """
        url = self.api.urls.get("job_detail", job_id=job_id)
        try:
            self._call("delete", url, once=True)
        except (ConfigError, TransientBackendError) as exc:
            cause = exc.__cause__
            code = getattr(getattr(cause, "response", None), "status_code", None)
            if code in (404, 405, 501):
                return False
            raise
        return True

    def job(self, job_id: str) -> Any:
        """One status poll."""
        resp = self._call("get", self.api.urls.get("job_detail", job_id=job_id))
        return self.api._builder.build_job(resp.json())

    def jobs(self, max_pages: int = 20) -> list[Any]:
        """The user's jobs, newest pages first as the service lists them (bounded paging)."""
        url: str | None = self.api.urls.get("job_list")
        out = []
        for _ in range(max_pages):
            if not url:
                break
            data = self._call("get", url).json()
            out += [self.api._builder.build_job(j) for j in data.get("jobs", [])]
            url = next((lk["href"] for lk in data.get("links", []) if lk.get("rel") == "next"), None)
        return out

    def logs(self, job_id: str) -> list[Any]:
        """The job's log entries."""
        resp = self._call("get", self.api.urls.get("job_logs", job_id=job_id))
        return [self.api._builder.build_log_entry(e) for e in resp.json()]

    def results(self, job_id: str) -> list[Any]:
        """All result entries of a job, following next-page items."""
        resp = self._call("get", self.api.urls.get("job_results", job_id=job_id))
        items = resp.json()
        if not isinstance(items, list):
            raise TransientBackendError(f"EOCanvas results of {job_id}: not a list: {items!r}")
        results: list[dict[str, Any]] = []
        for _ in range(1000):
            nxt = next((i for i in items if i.get("title") == "next-page"), None)
            results += [i for i in items if i.get("title") not in ("next-page", "prev-page")]
            if nxt is None:
                break
            items = self._call("get", self.api.urls.base_url + nxt["href"]).json()
        return [self.api._builder.build_result(r) for r in results]

    def download(
        self,
        href: str,
        dest: Path,
        *,
        progress: Callable[[int, int | None], None] | None = None,
    ) -> Path:
        """Stream one result to ``dest`` through a ``.part`` file; see :func:`stream_to_file`."""
        return stream_to_file(
            lambda: self._call("get", href, stream=True), dest, progress=progress
        )


def _reset(resp: requests.Response | None) -> float | None:
    """A 429's reset time (epoch s): ``X-Quota-Reset`` (epoch ms, WEkEO) or ``Retry-After``
    (seconds from now, or an HTTP date)."""
    if resp is None:
        return None
    value = resp.headers.get("X-Quota-Reset")
    try:
        if value:
            return float(value) / 1000.0
    except ValueError:
        pass
    after = resp.headers.get("Retry-After")
    if not after:
        return None
    try:
        return time.time() + float(after)
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            return parsedate_to_datetime(after).timestamp()
        except (TypeError, ValueError):
            return None


def stream_to_file(
    open_response: Callable[[], requests.Response],
    dest: Path,
    *,
    progress: Callable[[int, int | None], None] | None = None,
    chunk: int = 1 << 20,
) -> Path:
    """Stream a response body to ``dest.part``, check its length, then rename to ``dest``.

    A short body (fewer bytes than ``Content-Length``) raises :class:`DownloadError` and leaves
    no file behind, so a truncated download can never pass for a result.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    try:
        resp = open_response()
        expected = resp.headers.get("Content-Length")
        size = int(expected) if expected and expected.isdigit() else None
        got = 0
        with open(part, "wb") as fh:
            try:
                for block in resp.iter_content(chunk_size=chunk):
                    fh.write(block)
                    got += len(block)
                    if progress:
                        progress(got, size)
            except (requests.RequestException, OSError) as exc:
                raise DownloadError(f"download to {dest} broke after {got} bytes: {exc}") from exc
        if size is not None and got != size:
            raise DownloadError(f"download to {dest} truncated: {got} of {size} bytes")
        if got == 0:
            raise DownloadError(f"download to {dest} is empty")
        os.replace(part, dest)
        return dest
    finally:
        part.unlink(missing_ok=True)
