"""The Vast API client: every request vastbuild sends to the web API, the
autoscaler and the upload URL.

Three rules shape it. The API key travels in the ``Authorization`` header of
requests to the web API and the autoscaler (and in the body of the run host's
log and update routes, where the vastai package puts it too): never in a URL, never to
the upload URL (a presigned POST needs no key), never across a redirect to
another origin, and never in a trace line or an error message (both pass
through :meth:`VastClient.redact`). Transient failures
(connection errors, 5xx, 429) are retried with capped exponential backoff and
full jitter, waiting at least what ``Retry-After`` asks, inside a bounded total
time per call, so a deploy neither gives up on a blip nor hangs forever. The
upload streams the tarball from disk through a multipart encoder, so a
multi-gigabyte artifact costs a few kilobytes of memory.
"""

from __future__ import annotations

import email.utils
import json
import random
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from requests_toolbelt import MultipartEncoder, MultipartEncoderMonitor
from urllib3.exceptions import LocationValueError

from vastbuild import __version__
from vastbuild.errors import VastbuildError
from vastbuild.units import optional_int
from vastbuild.urls import DEFAULT_API_URL, DEFAULT_AUTOSCALER_URL
from vastbuild.wire import masked_env

#: Where trace lines go (the CLI passes a stderr writer for ``-v``).
Trace = Callable[[str], None]
#: Opens a request body for one attempt: yields (data, extra headers).
BodyOpener = Callable[[], AbstractContextManager[tuple[Any, dict[str, str]]]]

REDACTED = "<redacted>"
#: what an API key may hold: the printable ASCII an HTTP header carries as is
_HEADER_SAFE = re.compile(r"[\x21-\x7e]+")
#: Socket reads and writes of this size move a large upload with few system calls.
UPLOAD_BLOCK_SIZE = 1 << 20
#: API answers are read in blocks of this size, and are never larger than this.
ANSWER_BLOCK = 64 << 10
MAX_ANSWER = 64 << 20


class VastApiError(VastbuildError):
    """The Vast API (or the upload URL) answered with an error status."""

    def __init__(self, message: str, hint: str | None, status: int | None, *,
                 setting: str | None = None):
        super().__init__(message, hint, setting=setting)
        self.status = status


class VastConnectionError(VastbuildError):
    """No answer: the host could not be reached, or kept dropping the connection."""


class SearchQuotaExceeded(VastApiError):
    """The API key's daily offer-search quota is used up: asking again before it resets
    only fails again, so this is never retried (and a market check of several targets
    stops at the first)."""

    def __init__(self, message: str, hint: str):
        super().__init__(message, hint, 429)


class UploadRejected(VastApiError):
    """The upload URL refused the file: it expired, or its policy does not fit the file.

    The remedy is a fresh URL, which only a new registration gives.
    """


@dataclass(frozen=True)
class RetryPolicy:
    """How hard one call tries before it reports a failure.

    ``total_time`` bounds the time from a call's first attempt to its last
    retry decision: no retry starts (and no ``Retry-After`` wait begins) that
    would end past it. A single attempt is bounded by the connect and read
    timeouts, not by ``total_time``, so a long upload is never cut off halfway.
    """

    attempts: int = 6
    base_delay: float = 0.5
    max_delay: float = 10.0
    total_time: float = 120.0
    connect_timeout: float = 10.0
    read_timeout: float = 60.0

    def backoff(self, attempt: int) -> float:
        """Full jitter over a capped exponential: retries of many clients spread out."""
        return random.uniform(0.0, min(self.max_delay, self.base_delay * 2 ** (attempt - 1)))


@dataclass(frozen=True)
class PutResponse:
    """The server's answer to a registration (``PUT /api/v0/deployments/``)."""

    action: str
    deployment_id: int
    endpoint_id: int
    workergroup_id: int | None = None
    upload_url: str | None = None
    upload_fields: dict[str, str] | None = None
    evicted_versions: list[Any] = field(default_factory=list)

    @property
    def needs_upload(self) -> bool:
        """The server has no blob for this ``file_hash`` and says where to put it."""
        return self.upload_url is not None and self.upload_fields is not None


class VastClient:
    """One API key, one web API, one autoscaler; a pooled HTTP session."""

    def __init__(
        self,
        api_key: str,
        *,
        api_url: str = DEFAULT_API_URL,
        autoscaler_url: str = DEFAULT_AUTOSCALER_URL,
        retry: RetryPolicy | None = None,
        trace: Trace | None = None,
        trace_bodies: bool = False,
    ):
        if not api_key:
            raise VastbuildError("no API key", "give an API key", setting="api_key")
        if not _HEADER_SAFE.fullmatch(api_key):  # said without the key, which would leak
            raise VastbuildError(
                "the API key holds white space, a control character or a non-ASCII "
                "character, which an HTTP header cannot carry",
                "a Vast API key is one word of plain ASCII characters: check the key",
                setting="api_key")
        self._api_key = api_key
        self.api_url = api_url.rstrip("/")
        self.autoscaler_url = autoscaler_url.rstrip("/")
        self.retry = retry or RetryPolicy()
        self._trace = trace
        self._trace_bodies = trace_bodies
        self._hidden: list[re.Pattern[str]] = [_token_pattern(api_key)]
        self.session = _KeyKeepingSession(self.api_url, self.autoscaler_url)
        adapter = _LargeBlockAdapter()
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers["User-Agent"] = f"vastbuild/{__version__}"

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> VastClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the web API ---------------------------------------------------------

    def put_deployment(self, config: Mapping[str, Any]) -> PutResponse:
        """Register a deployment: the server compares it with what it has and
        answers with the action it took and, when it lacks the blob, an upload URL."""
        doc = self._api("PUT", self.api_url, "/api/v0/deployments/", json_body=dict(config))
        if doc.get("success") is False:
            raise VastApiError(
                f"registration refused: {self._server_message(doc)}",
                "the server did not accept the deployment; check the Vastfile's values",
                None)
        try:
            fields = doc.get("upload_fields")
            return PutResponse(
                action=str(doc["action"]),
                deployment_id=int(doc["deployment_id"]),
                endpoint_id=int(doc["endpoint_id"]),
                workergroup_id=optional_int(doc.get("workergroup_id")),
                upload_url=_upload_url(doc.get("upload_url")),
                upload_fields={str(k): str(v) for k, v in fields.items()}
                if isinstance(fields, dict) else None,
                evicted_versions=list(doc.get("evicted_versions") or []),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise _unexpected("PUT /api/v0/deployments/", f"missing or bad field {exc}") from None

    def list_deployments(self) -> list[dict[str, Any]]:
        """Every deployment this key owns."""
        what = "GET /api/v0/deployments/"
        deployments = _list(self._api("GET", self.api_url, "/api/v0/deployments/"),
                            "deployments", what)
        try:
            for deployment in deployments:
                optional_int(deployment.get("id"))
        except (TypeError, ValueError):
            raise _unexpected(what, "a deployment's id is not a number") from None
        return deployments

    def get_deployment(self, deployment_id: int) -> dict[str, Any]:
        """The full record of one deployment (image, env, search_params, file_hash, ttl...)."""
        route = f"/api/v0/deployment/{int(deployment_id)}/"
        doc = self._api("GET", self.api_url, route)
        record = doc.get("deployment")
        if not isinstance(record, dict):
            raise _unexpected(f"GET {route}", "no 'deployment' object")
        return record

    def get_versions(self, deployment_id: int) -> list[dict[str, Any]]:
        """The deployment's version history, as the server keeps it."""
        route = f"/api/v0/deployment/{int(deployment_id)}/versions/"
        return _list(self._api("GET", self.api_url, route), "versions", f"GET {route}")

    def get_download_url(self, deployment_id: int) -> str:
        """Where the deployment's current blob can be fetched (what workers ask for)."""
        route = f"/api/v0/deployment/{int(deployment_id)}/download_url/"
        doc = self._api("GET", self.api_url, route)
        url = doc.get("download_url")
        if not isinstance(url, str) or not url:
            raise _unexpected(f"GET {route}", "no 'download_url'")
        return url

    def list_endpoints(self) -> list[dict[str, Any]]:
        """Every endpoint of this key, each with its autoscaling settings."""
        return _list(self._api("GET", self.api_url, "/api/v0/endptjobs/"), "results",
                     "GET /api/v0/endptjobs/")

    def list_workergroups(self) -> list[dict[str, Any]]:
        return _list(self._api("GET", self.api_url, "/api/v0/workergroups/"), "results",
                     "GET /api/v0/workergroups/")

    def find_workergroup(self, endpoint_id: int) -> int | None:
        """The workergroup serving an endpoint, when the registration did not name it."""
        for group in self.list_workergroups():
            if optional_int(group.get("endpoint_id")) == endpoint_id and "id" in group:
                return int(group["id"])
        return None

    def delete_deployment(self, deployment_id: int) -> dict[str, Any]:
        """Remove a deployment with its endpoint and workergroup; the server's answer."""
        return self._api("DELETE", self.api_url, f"/api/v0/deployment/{int(deployment_id)}/",
                         json_body={})

    def delete_deployments_by_name(self, name: str, tag: str | None) -> dict[str, Any]:
        """Remove the deployment ``name`` under ``tag``, or under every tag when None."""
        body: dict[str, Any] = {"name": name} if tag is None else {"name": name, "tag": tag}
        return self._api("DELETE", self.api_url, "/api/v0/deployments/", json_body=body)

    def stop_deployment(self, deployment_id: int) -> dict[str, Any]:
        """Stop the deployment's endpoint: its workers go inactive."""
        return self._api("POST", self.api_url,
                         f"/api/v0/deployment/{int(deployment_id)}/stop/", json_body={})

    def start_deployment(self, deployment_id: int) -> dict[str, Any]:
        """Make a stopped deployment's endpoint active again."""
        return self._api("POST", self.api_url,
                         f"/api/v0/deployment/{int(deployment_id)}/start/", json_body={})

    # -- the run host: logs and workers ----------------------------------------

    def get_logs(self, kind: str, object_id: int, tail: int | None = None) -> dict[str, str]:
        """The logs of an endpoint (``kind`` "endpoint") or a workergroup ("workergroup"),
        by level (``info0``, ``info1``, ``trace``, ``debug``); an answer in the documented
        other shape, ``{"logs": text}``, comes back as ``{"logs": text}``. The run host
        reads the key from the body too, as the vastai package sends it."""
        route = {"endpoint": "/get_endpoint_logs/", "workergroup": "/get_autogroup_logs/"}[kind]
        body: dict[str, Any] = {"id": int(object_id), "api_key": self._api_key}
        if tail is not None:
            body["tail"] = int(tail)
        doc = self._json("POST", self.autoscaler_url, route, body)
        if isinstance(doc, str):  # an error, said as a bare JSON string
            raise VastApiError(f"POST {route}: {self.redact(doc)[:300]}",
                               "check the id: the endpoint may be gone", None)
        if not isinstance(doc, dict):
            raise _unexpected(f"POST {route}", "the answer is not a JSON object")
        return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in doc.items()}

    def get_endpoint_workers(self, endpoint_id: int) -> list[dict[str, Any]]:
        """The endpoint's workers with their status; an answer saying the endpoint is not
        ready yet (``error_msg``) is no workers."""
        route = "/get_endpoint_workers/"
        doc = self._json("POST", self.autoscaler_url, route, {"id": int(endpoint_id)})
        if isinstance(doc, dict):
            if "error_msg" in doc and "workers" not in doc:
                return []
            doc = doc.get("workers")
        if not isinstance(doc, list):
            raise _unexpected(f"POST {route}", "no list of workers")
        return [worker for worker in doc if isinstance(worker, dict)]

    def search_offers(self, body: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The market's offers matching ``body``, the bare query object (filters plus
        ``order``, ``type``, ``limit``, ``allocated_storage``), in the server's order.
        A used-up daily search quota raises :class:`SearchQuotaExceeded` at once."""
        return _list(self._api("POST", self.api_url, "/api/v0/bundles/", json_body=dict(body)),
                     "offers", "POST /api/v0/bundles/")

    def heartbeat(self, deployment_id: int) -> None:
        """Tell the server a client still uses a deployment that has a TTL."""
        self._api("POST", self.api_url, f"/api/v0/deployment/{int(deployment_id)}/heartbeat/")

    # -- the autoscaler ------------------------------------------------------

    def update_workers(self, workergroup_id: int) -> dict[str, Any]:
        """Start a rolling update: the group's workers pull the new blob one by one."""
        return self._api("POST", self.autoscaler_url, "/update_workers/",
                         json_body={"workergroup_id": int(workergroup_id),
                                    "api_key": self._api_key})

    # -- the upload URL ------------------------------------------------------

    def upload(self, url: str, fields: Mapping[str, str], path: Path,
               progress: Callable[[int, int], None] | None = None) -> None:
        """POST the tarball to a presigned upload URL: every field first, then ``file``.

        The file is read from disk as the socket drains it; ``progress`` hears
        (bytes sent, total) as it goes. A dropped connection retries the whole
        upload from the first byte (a presigned POST cannot resume). 400 and 403
        raise :class:`UploadRejected`.
        """

        @contextmanager
        def open_body() -> Iterator[tuple[Any, dict[str, str]]]:
            with path.open("rb") as handle:
                encoder = MultipartEncoder(
                    fields=[*fields.items(), ("file", (path.name, handle, "application/gzip"))])
                body: Any = encoder
                if progress is not None:
                    body = MultipartEncoderMonitor(
                        encoder, lambda monitor: progress(monitor.bytes_read, monitor.len))
                yield body, {"Content-Type": encoder.content_type,
                             "Content-Length": str(encoder.len)}

        response = self._send("POST", url, authorized=False, open_body=open_body,
                              describe=f"multipart, {len(fields)} fields + file "
                                       f"{path.name} ({path.stat().st_size} bytes)")
        if response.status_code in (200, 201, 204):
            return
        message = f"upload refused: HTTP {response.status_code}: {self._body_message(response)}"
        if response.status_code in (400, 403):
            raise UploadRejected(message, "the upload URL expired or does not fit the file; "
                                          "run the deploy again for a fresh one",
                                 response.status_code)
        raise VastApiError(message, "the storage behind the upload URL failed; run the deploy "
                                    "again", response.status_code)

    # -- redaction -----------------------------------------------------------

    def hide(self, values: Iterable[str]) -> None:
        """Redact these values too (a deploy's secrets) from traces and messages."""
        self._hidden.extend(_token_pattern(value) for value in values if value)

    def redact(self, text: str) -> str:
        """The text with the API key (and every hidden value) replaced where it stands
        as a whole: a key ``k`` hides ``Bearer k``, not the k of ``workers``, so a
        message stays readable whatever the key is."""
        for pattern in self._hidden:
            text = pattern.sub(REDACTED, text)
        return text

    # -- plumbing ------------------------------------------------------------

    def _api(self, method: str, base: str, route: str,
             json_body: dict[str, Any] | None = None) -> dict[str, Any]:
        """One authorized JSON call: the decoded object, or a typed error."""
        doc = self._json(method, base, route, json_body)
        if not isinstance(doc, dict):
            raise _unexpected(f"{method} {route}", "the answer is not a JSON object")
        return doc

    def _json(self, method: str, base: str, route: str,
              json_body: dict[str, Any] | None = None) -> Any:
        """One authorized call answered with JSON of any shape (a run-host route may
        answer with a list, or an error as a bare string)."""
        body: BodyOpener | None = None
        describe = ""
        if json_body is not None:
            payload = json.dumps(json_body).encode("utf-8")

            def body() -> AbstractContextManager[tuple[Any, dict[str, str]]]:
                return nullcontext((payload, {"Content-Type": "application/json"}))

            describe = f"json, {len(payload)} bytes"
            if self._trace_bodies:
                describe += f": {_masked_json(payload.decode('utf-8'))}"
        response = self._send(method, base + route, authorized=True, open_body=body,
                              describe=describe)
        what = f"{method} {route}"
        if not response.ok:
            raise self._status_error(what, response)
        try:
            return response.json()
        except ValueError:
            raise _unexpected(what, "the answer is not JSON") from None

    def _send(self, method: str, url: str, *, authorized: bool,
              open_body: BodyOpener | None, describe: str) -> requests.Response:
        """Send with retries: connection errors, 5xx and 429 are tried again
        until the policy's attempts or total time run out."""
        policy = self.retry
        deadline = time.monotonic() + policy.total_time
        headers = {"Authorization": f"Bearer {self._api_key}"} if authorized else {}
        shown = _display_url(url)
        attempt = 0
        while True:
            attempt += 1
            self._say(f"> {method} {shown}"
                      + (f" [Authorization: Bearer {REDACTED}]" if authorized else "")
                      + (f" ({describe})" if describe else "")
                      + (f" attempt {attempt}" if attempt > 1 else ""))
            started = time.monotonic()
            retry_after: float | None = None
            refused: requests.Response | None = None  # an answer that may be retried
            try:
                with open_body() if open_body else nullcontext((None, {})) as (data, extra):
                    response = self.session.request(
                        method, url, data=data, headers={**headers, **extra},
                        timeout=(policy.connect_timeout, policy.read_timeout), stream=True)
                _read_answer(response, time.monotonic() + policy.read_timeout)
            except (requests.ConnectionError, requests.Timeout) as exc:
                failure = f"connection failed: {_reason(exc)}"
            except (requests.RequestException, LocationValueError) as exc:
                # a URL requests cannot use (the server's upload URL too): no retry
                raise VastConnectionError(
                    self.redact(f"{method} {shown}: {_reason(exc)}"),
                    "check the URL: it must be http(s)://host[:port]", setting=_setting_of(
                        url, self.api_url, self.autoscaler_url)) from None
            else:
                elapsed = (time.monotonic() - started) * 1000
                self._say(f"< {response.status_code} {method} {shown} ({elapsed:.0f} ms, "
                          f"{len(response.content)} bytes)"
                          + (f": {self.redact(_masked_json(response.text))[:2000]}"
                             if self._trace_bodies else ""))
                if (response.status_code != 429 and response.status_code < 500
                        or _quota_exceeded(response)):  # a quota resets at midnight, not soon
                    return response
                refused = response
                failure = f"HTTP {response.status_code}"
                retry_after = _retry_after(response.headers.get("Retry-After"))
            delay = policy.backoff(attempt)
            if retry_after is not None:
                delay = max(delay, retry_after)
            out_of_time = time.monotonic() + delay > deadline
            if attempt >= policy.attempts or out_of_time:
                why = (f"the server asked to wait {retry_after:.0f} s, past the "
                       f"{policy.total_time:.0f} s limit" if out_of_time and retry_after
                       else f"gave up after {attempt} attempts")
                if refused is None:
                    raise VastConnectionError(
                        self.redact(f"{method} {shown}: {failure} ({why})"),
                        "check the network and the URL", setting=_setting_of(
                            url, self.api_url, self.autoscaler_url))
                raise self._status_error(f"{method} {urlsplit(url).path}", refused,
                                         note=f" ({why})")
            self._say(f"  {failure}; retrying in {delay:.2f} s")
            time.sleep(delay)

    def _status_error(self, what: str, response: requests.Response,
                      note: str = "") -> VastApiError:
        status = response.status_code
        if _quota_exceeded(response):
            return _quota_error(what, response)
        message = self.redact(f"{what}: HTTP {status}: {self._body_message(response)}{note}")
        return VastApiError(message, _STATUS_HINTS.get(status, _status_hint(status)), status,
                            setting="api_key" if status == 401 else None)

    def _body_message(self, response: requests.Response) -> str:
        """What the server said, short: its JSON message field, else the start of the text."""
        try:
            doc = response.json()
        except ValueError:
            doc = None
        if isinstance(doc, dict):
            return self._server_message(doc)
        text = " ".join(self.redact(response.text).split())  # redacted before it is cut
        return text[:300] or response.reason or "no message"

    def _server_message(self, doc: dict[str, Any]) -> str:
        for key in ("msg", "error", "detail", "message"):
            if isinstance(doc.get(key), str) and doc[key]:
                return self.redact(doc[key])[:300]
        return self.redact(json.dumps(doc))[:300]

    def _say(self, line: str) -> None:
        if self._trace is not None:
            self._trace("http: " + self.redact(line))


def _read_answer(response: requests.Response, deadline: float) -> None:
    """Read the whole answer by ``deadline``: the read timeout bounds each read, so a
    server sending a byte at a time would otherwise hold a call forever; a server
    sending more than any API answer holds is cut off too."""
    body = bytearray()
    try:
        # read1: whatever one socket read brings, so the deadline is checked as bytes come
        while block := response.raw.read1(ANSWER_BLOCK, decode_content=True):
            body += block
            if time.monotonic() > deadline:
                raise requests.Timeout("the answer did not arrive in time")
            if len(body) > MAX_ANSWER:
                raise requests.ConnectionError(f"the answer is over {MAX_ANSWER >> 20} MiB")
    except urllib3.exceptions.HTTPError as exc:  # a reset or a bad chunk mid-answer
        raise requests.ConnectionError(exc) from exc
    finally:
        response.close()
    response._content = bytes(body)  # what requests itself caches for .text and .json()


#: a value this long cannot be a piece of an ordinary word: it is hidden wherever it is
_ALWAYS_HIDDEN = 16


def _token_pattern(value: str) -> re.Pattern[str]:
    """``value`` wherever it is when it is long; a short one only where it is not
    glued to a letter or digit on a side where it has one itself: a whole key,
    never a piece of a longer word (a key ``k`` must leave ``workers`` alone)."""
    if len(value) >= _ALWAYS_HIDDEN:
        return re.compile(re.escape(value))
    before = r"(?<![A-Za-z0-9])" if value[:1].isalnum() else ""
    after = r"(?![A-Za-z0-9])" if value[-1:].isalnum() else ""
    return re.compile(before + re.escape(value) + after)


class _KeyKeepingSession(requests.Session):
    """A session that carries ``Authorization`` across a redirect only to the API's
    or the autoscaler's own origin (scheme, host, port): a server that redirects
    elsewhere, or a hostile answer, cannot make the key travel to a third host."""

    def __init__(self, *bases: str):
        super().__init__()
        self._origins = {_origin(base) for base in bases}

    def should_strip_auth(self, old_url: str, new_url: str) -> bool:
        if _origin(new_url) not in self._origins:
            return True
        strip: bool = super().should_strip_auth(old_url, new_url)  # type: ignore[no-untyped-call]
        return strip


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or {"http": 80, "https": 443}.get(scheme)
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").lower(), port


class _LargeBlockAdapter(HTTPAdapter):
    """An adapter whose connections move request bodies in 1 MiB blocks, not 16 KiB."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["blocksize"] = UPLOAD_BLOCK_SIZE
        super().init_poolmanager(*args, **kwargs)


_STATUS_HINTS = {
    401: "the API key was refused: check the key",
    403: "this API key may not do that: the deployment may belong to another account",
    404: "not found for this API key: check the id, the name and tag, and the API URL",
    429: "the API kept rate-limiting; wait a minute and run it again",
}


#: the ``error`` of a 429 that means the day's search quota, not a burst: no retry helps
SEARCH_QUOTA_ERROR = "search_quota_exceeded"


def _quota_exceeded(response: requests.Response) -> bool:
    """A 429 whose JSON body says the daily search quota is used up."""
    if response.status_code != 429:
        return False
    try:
        doc = response.json()
    except ValueError:
        return False
    return isinstance(doc, dict) and doc.get("error") == SEARCH_QUOTA_ERROR


def _quota_error(what: str, response: requests.Response) -> SearchQuotaExceeded:
    """The used-up quota, said with its reset time in UTC when the server gave it."""
    when = "; it resets at midnight UTC"
    try:
        reset = float(response.headers.get("X-RateLimit-Reset", ""))
        when = "; it resets at " + time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(reset))
    except (ValueError, OverflowError, OSError):  # no header, or not a time
        pass
    return SearchQuotaExceeded(
        f"{what}: HTTP 429: the API key's daily offer-search quota is used up{when}",
        "wait for the reset; answers of the last minutes are reused from the cache, and "
        "`plan`/`deploy --no-market` skip the market check")


def _status_hint(status: int) -> str:
    if status >= 500:
        return "the Vast API is failing; try again later"
    return "the server rejected the request; check the Vastfile and the options"


def _unexpected(what: str, detail: str) -> VastApiError:
    return VastApiError(f"{what}: unexpected answer: {detail}",
                        "is the API URL a Vast API? (it must speak /api/v0/)", None,
                        setting="api_url")


def _list(doc: dict[str, Any], key: str, what: str) -> list[dict[str, Any]]:
    items = doc.get(key)
    if not isinstance(items, list):
        raise _unexpected(what, f"no '{key}' list")
    return [item for item in items if isinstance(item, dict)]


def _setting_of(url: str, api_url: str, autoscaler_url: str) -> str | None:
    """Which URL setting a failing URL came from (None: one a server handed out)."""
    if url.startswith(api_url + "/"):
        return "api_url"
    if url.startswith(autoscaler_url + "/"):
        return "autoscaler_url"
    return None


def _upload_url(value: Any) -> str | None:
    """The registration's upload URL: absent, or a string (TypeError otherwise)."""
    if not value:
        return None
    if not isinstance(value, str):
        raise TypeError("'upload_url' is not a string")
    return value


def _retry_after(value: str | None) -> float | None:
    """``Retry-After`` as seconds: a number of seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


#: JSON keys whose values are credentials: an endpoint's own key, upload signatures.
_SECRET_KEYS = frozenset({"api_key", "token", "policy", "signature", "x-amz-signature",
                          "x-amz-credential", "docker_login_pass", "password", "secret"})


def _masked_json(text: str) -> str:
    """A JSON body for a trace line, every credential-like value replaced; other text as is."""
    try:
        doc = json.loads(text)
    except ValueError:
        return text

    def mask(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: REDACTED if str(k).lower() in _SECRET_KEYS
                    # docker options: a secret's -e value, even one this run was not given
                    else masked_env(v) if k == "env" and isinstance(v, str)
                    else mask(v) for k, v in value.items()}
        if isinstance(value, list):
            return [mask(item) for item in value]
        return value

    return json.dumps(mask(doc))


def _display_url(url: str) -> str:
    """A URL fit for a trace line: a query string (a presigned URL's signature) is hidden."""
    parts = urlsplit(url)
    if not parts.query:
        return url
    return urlunsplit(parts._replace(query=REDACTED))


def _reason(exc: Exception) -> str:
    """The innermost cause of a requests failure, without the layers of wrapping around it."""
    inner: BaseException = exc
    for _ in range(10):  # a chain is a few links long; never follow a cycle forever
        cause = inner.__cause__ or inner.__context__
        if cause is None:
            break
        inner = cause
    name = type(inner).__name__
    text = str(inner)
    return text if name in text else f"{name}: {text}" if text else name
