"""HTTP plumbing of the dev server: the route table, authentication, faults, the wire.

One port serves the web API, the autoscaler's routes and the blob routes, as the
three hosts of the real service would. Paths match with or without their
trailing slash, as the SDK is not consistent about them. API routes take the
key as ``Authorization: Bearer KEY``, as ``?api_key=KEY`` (the SDK sends both),
or as ``"api_key"`` in a JSON body (the SDK's ``update_workers``); an unknown
key or none is 401. Blob routes take a signature instead, admin routes the
admin token.
"""

from __future__ import annotations

import hmac
import json
import re
import shutil
import socket
import socketserver
import struct
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from vastbuild.devserver import admin, blobs, webapi
from vastbuild.devserver.accesslog import AccessLog
from vastbuild.devserver.context import Context
from vastbuild.devserver.faults import (
    ERROR,
    RESET,
    SEARCH_QUOTA,
    SHORT_CIRCUIT_KINDS,
    THROTTLE,
    Fault,
    quota_reset,
)
from vastbuild.devserver.httpbody import CHUNK, BodyError, iter_body, read_body
from vastbuild.devserver.messages import Request, Response, api_error, json_response

#: Largest JSON body an API route reads (registrations are a few hundred bytes).
MAX_JSON_BODY = 1024 * 1024
#: The whole numbers a JSON body may carry: SQLite's signed 64-bit integers.
_MIN_INT, _MAX_INT = -(2**63), 2**63 - 1
_MAX_INT_DIGITS = len(str(_MAX_INT))
#: How long an answer that leaves the request body unread waits for the client
#: to finish sending before the connection is closed (see ``_linger``).
LINGER_SECONDS = 5.0

KEY, SIGNED, ADMIN, OPEN = "key", "signed", "admin", "open"
Handler = Callable[[Context, Request], Response]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    auth: str


def _route(method: str, path: str, handler: Handler, auth: str = KEY) -> Route:
    """A route whose path matches with or without a trailing slash."""
    return Route(method, re.compile(path.rstrip("/") + "/?"), handler, auth)


#: An id in a path: ASCII digits, at most 18 of them, so that it always fits
#: SQLite's 64-bit integers. A longer one is no route (404); it used to reach
#: SQLite (OverflowError) or ``int``'s digit limit (ValueError): a 500.
_ID = r"([0-9]{1,18})"
ROUTES: tuple[Route, ...] = (
    _route("GET", "/healthz", lambda context, request: json_response(200, {"ok": True}), OPEN),
    _route("PUT", "/api/v0/deployments", webapi.put_deployment),
    _route("GET", "/api/v0/deployments", webapi.list_deployments),
    _route("DELETE", "/api/v0/deployments", webapi.delete_deployment_by_name),
    _route("GET", f"/api/v0/deployment/{_ID}", webapi.get_deployment),
    _route("DELETE", f"/api/v0/deployment/{_ID}", webapi.delete_deployment),
    _route("GET", f"/api/v0/deployment/{_ID}/versions", webapi.list_versions),
    _route("GET", f"/api/v0/deployment/{_ID}/download_url", webapi.download_url),
    _route("POST", f"/api/v0/deployment/{_ID}/heartbeat", webapi.heartbeat),
    _route("POST", f"/api/v0/deployment/{_ID}/stop", webapi.stop_deployment),
    _route("POST", f"/api/v0/deployment/{_ID}/start", webapi.start_deployment),
    _route("GET", "/api/v0/workergroups", webapi.list_workergroups),
    _route("GET", "/api/v0/autojobs", webapi.list_workergroups),
    _route("DELETE", f"/api/v0/workergroups/{_ID}", webapi.delete_workergroup),
    _route("DELETE", f"/api/v0/autojobs/{_ID}", webapi.delete_workergroup),
    _route("GET", "/api/v0/endptjobs", webapi.list_endpoints),
    _route("GET", f"/api/v0/endptjobs/{_ID}", webapi.get_endpoint),
    _route("PUT", f"/api/v0/endptjobs/{_ID}", webapi.update_endpoint),
    _route("DELETE", f"/api/v0/endptjobs/{_ID}", webapi.delete_endpoint),
    _route("POST", "/update_workers", webapi.update_workers),
    _route("POST", "/get_endpoint_logs", webapi.endpoint_logs),
    _route("POST", "/get_autogroup_logs", webapi.workergroup_logs),
    _route("POST", "/get_endpoint_workers", webapi.endpoint_workers),
    _route("POST", "/api/v0/bundles", webapi.search_offers),
    _route("POST", webapi.UPLOAD_PATH, blobs.upload, SIGNED),
    _route("GET", rf"/blobs/{_ID}/([0-9A-Za-z][0-9A-Za-z_.-]*)", blobs.download, SIGNED),
    _route("GET", "/_dev/faults", admin.list_faults, ADMIN),
    _route("POST", "/_dev/faults", admin.arm_fault, ADMIN),
    _route("DELETE", "/_dev/faults", admin.clear_faults, ADMIN),
)


class RequestHandler(BaseHTTPRequestHandler):
    """Reads one request, finds its route, answers; keeps connections alive (HTTP/1.1)."""

    protocol_version = "HTTP/1.1"
    # headers and body go out in separate writes; without TCP_NODELAY every
    # answer on a kept-alive connection waits for the peer's delayed ACK
    disable_nagle_algorithm = True
    server_version = "vastbuild-dev-server"
    server: DevHTTPServer

    def do_GET(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def _serve(self) -> None:
        try:
            response = self._dispatch()
        except BodyError as exc:
            response = api_error(exc.status, "bad_request", exc.message)
            response.close = True
        except Exception:  # a bug: answer 500, keep serving, keep the traceback in the log
            self._log(traceback.format_exc().rstrip())
            response = api_error(500, "internal_error", "the dev server failed; see its log")
            response.close = True
        if response is not None:
            self._send(response)

    def _dispatch(self) -> Response | None:
        context = self.server.context
        try:
            split = urlsplit(self.path)
        except ValueError:  # an absolute-form target such as "http://[x/": no URL at all
            response = api_error(400, "bad_request", "the request target is not a URL")
            response.close = True  # the body, if any, was not read
            return response
        path = split.path
        found = _find_route(self.command, path)
        if isinstance(found, Response):
            found.close = True  # the body, if any, was not read
            return found
        route, params = found
        if route.auth != ADMIN:
            fault = context.faults.take(self.command, path, SHORT_CIRCUIT_KINDS)
            if fault is not None:
                return self._misbehave(fault)
        host = self.headers.get("Host") or "{}:{}".format(*self.server.server_address[:2])
        request = Request(
            method=self.command, path=path, query=dict(parse_qsl(split.query)),
            headers=self.headers, body_stream=self.rfile, base_url=f"http://{host}",
            params=params)
        if route.auth == ADMIN:
            denied = _check_admin(context, request)
            if denied is not None:
                denied.close = True  # the body was not read
                return denied
            request.json = _json_body(request)
        elif route.auth == KEY:
            request.json = _json_body(request)
            account = _account(context, request)
            if account is None:
                return api_error(401, "unauthorized",
                                 "missing or unknown API key: send 'Authorization: Bearer KEY'")
            request.account = account
            # the simulated clock: workers and TTLs catch up before the account looks
            context.database.advance(account, time.time())
        return route.handler(context, request)

    def _misbehave(self, fault: Fault) -> Response | None:
        if fault.kind == ERROR:
            response = api_error(fault.status, "injected_fault", "a fault injected for testing")
        elif fault.kind == THROTTLE:
            response = api_error(429, "rate_limited", "too many requests; retry later")
            response.headers["Retry-After"] = str(fault.retry_after)
        elif fault.kind == SEARCH_QUOTA:
            response = api_error(429, "search_quota_exceeded",
                                 "daily search quota exceeded; it resets at 00:00 UTC")
            response.headers["X-RateLimit-Reset"] = str(quota_reset(time.time()))
        else:
            assert fault.kind == RESET
            self._reset(fault.after_bytes)
            return None
        response.close = True  # the body was not read
        return response

    def _reset(self, after_bytes: int) -> None:
        """Read ``after_bytes`` of the body, then drop the connection with a TCP reset."""
        remaining = after_bytes
        try:
            for piece in iter_body(self.rfile, self.headers):
                remaining -= len(piece)
                if remaining <= 0:
                    break
        except BodyError:
            pass
        self._log(f'{self.client_address[0]} "{self.command} {self.path}" connection reset '
                  "(injected fault)")
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True

    def _send(self, response: Response) -> None:
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        if response.content_type:
            self.send_header("Content-Type", response.content_type)
        if response.close:
            self.send_header("Connection", "close")
            self.close_connection = True
        if response.file is not None:
            with response.file.open("rb") as source:
                self.send_header("Content-Length", str(response.file.stat().st_size))
                self.end_headers()
                shutil.copyfileobj(source, self.wfile, 1024 * 1024)
            return
        if response.status != 204:
            self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        self.wfile.write(response.body)
        if response.close:
            self._linger()

    def _linger(self) -> None:
        """Half-close, then swallow what the client still sends, for a while.

        Closing a socket with unread data makes the kernel send a reset, which
        can destroy the answer before the client reads it: a client that is
        still uploading would see "connection reset" instead of "policy expired".
        """
        deadline = time.monotonic() + LINGER_SECONDS
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_WR)
            while (remaining := deadline - time.monotonic()) > 0:
                self.connection.settimeout(remaining)
                if not self.rfile.read1(CHUNK):
                    break
        except OSError:
            pass

    # Every line of the access log goes through the redacting log: the request
    # line may carry ?api_key=.

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        self._log(f'{self.client_address[0]} "{self.requestline}" {code}')

    def log_message(self, format: str, *args: Any) -> None:
        self._log(f"{self.client_address[0]} {format % args}")

    def _log(self, line: str) -> None:
        log: AccessLog | None = self.server.access_log
        if log is not None:
            log.write(line)


def _find_route(method: str, path: str) -> tuple[Route, tuple[str, ...]] | Response:
    allowed = []
    for route in ROUTES:
        match = route.pattern.fullmatch(path)
        if match:
            if route.method == method:
                return route, match.groups()
            allowed.append(route.method)
    if allowed:
        response = api_error(405, "method_not_allowed", f"{path} takes {', '.join(allowed)}")
        response.headers["Allow"] = ", ".join(allowed)
        return response
    return api_error(404, "not_found", f"no route {method} {path}")


def _json_body(request: Request) -> Any:
    """The JSON body, or {} when there is none; a malformed one is a 400.

    Beyond the grammar, the body must be something the handlers and SQLite can
    hold: no nesting deep enough to exhaust the parser's recursion, no whole
    number outside 64 bits (SQLite's integers; ``float()`` of a huge one
    overflows), no string with a lone surrogate (``\\ud800`` is valid JSON but
    not UTF-8, so SQLite cannot bind it). Each of these was a 500.
    """
    raw = read_body(request.body_stream, request.headers, MAX_JSON_BODY)
    if not raw.strip():
        return {}
    try:
        document = json.loads(raw, parse_constant=_reject_constant, parse_int=_bounded_int)
        json.dumps(document, ensure_ascii=False).encode()  # raises for a lone surrogate
    except RecursionError:
        raise BodyError(400, "the body is nested too deeply") from None
    except UnicodeEncodeError:  # before ValueError: it is one
        raise BodyError(400, "the body has a string that is not valid Unicode") from None
    except ValueError:
        raise BodyError(400, "the body is not valid JSON") from None
    return document


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _bounded_int(digits: str) -> int:
    """A JSON whole number, refused (400) outside SQLite's signed 64 bits."""
    if len(digits.lstrip("-")) > _MAX_INT_DIGITS or not (
            _MIN_INT <= (value := int(digits)) <= _MAX_INT):
        raise BodyError(400, "a whole number in the body is out of range (64-bit)")
    return value


def _account(context: Context, request: Request) -> int | None:
    """The account of the request's API key: from the header, the query, or the JSON body."""
    scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
    key = credential.strip() if scheme.lower() == "bearer" else ""
    if not key:
        key = request.query.get("api_key", "")
    if not key and isinstance(request.json, dict) and isinstance(request.json.get("api_key"), str):
        key = request.json["api_key"]
    return context.database.account_for_key(key) if key else None


def _check_admin(context: Context, request: Request) -> Response | None:
    token = context.options.admin_token
    if token is None:
        return api_error(404, "not_found", "admin routes are off: start with --admin-token")
    offered = request.headers.get(admin.ADMIN_TOKEN_HEADER, "")
    if not hmac.compare_digest(offered.encode(), token.encode()):
        return api_error(401, "unauthorized", f"send the admin token in {admin.ADMIN_TOKEN_HEADER}")
    return None


class DevHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server that carries the dev server's context and log."""

    daemon_threads = True
    context: Context
    access_log: AccessLog | None

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks the host name up (getfqdn), which can
        # stall on a machine without DNS; the dev server never needs it.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up is routine; anything else goes to the log, not to stderr raw."""
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError | TimeoutError):
            return
        if self.access_log is not None:
            self.access_log.write(f"{client_address[0]} error while serving: {error!r}")


class DevHTTPServer6(DevHTTPServer):
    address_family = socket.AF_INET6
