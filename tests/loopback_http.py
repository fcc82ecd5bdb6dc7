"""Small real HTTP servers on loopback that record what reaches them.

``Recorder`` answers every request itself (a trap: a host vastbuild must never
talk to, or a forward proxy that must never be used); ``Relay`` forwards every
request to an upstream server (the dev server) and records it on the way, and
can point the upload URLs the upstream hands out at a second relay, so a test
sees exactly which host received which headers and bodies.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit, urlunsplit

import requests

#: hop-by-hop headers a relay does not pass on
_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
        "proxy-authorization", "proxy-connection", "content-length", "host",
        "content-encoding"}


@dataclass(frozen=True)
class Seen:
    """One request as it arrived."""

    method: str
    target: str
    headers: dict[str, str]
    body: bytes


@dataclass
class _Server:
    url: str
    seen: list[Seen] = field(default_factory=list)
    #: where a relay sends requests (None: answer 403 to everything)
    upstream: str | None = None
    #: a relay's upload URLs of ``upstream`` are rewritten to this origin
    upload_via: str | None = None
    #: answer every request with a 307 to this origin (same path)
    redirect_to: str | None = None


def _handler(server: _Server) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            server.seen.append(Seen(self.command, self.path, dict(self.headers.items()), body))
            if server.redirect_to is not None:
                self._answer(307, b"", {"Location": server.redirect_to + self.path})
                return
            if server.upstream is None:
                self._answer(403, b'{"error": "this host must not be used"}',
                             {"Content-Type": "application/json"})
                return
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
            answer = requests.request(self.command, server.upstream + self.path, data=body,
                                      headers=headers, timeout=60, allow_redirects=False)
            content = answer.content
            if server.upload_via and "json" in answer.headers.get("Content-Type", ""):
                content = _rewrite_upload_url(content, server.upload_via)
            self._answer(answer.status_code, content,
                         {k: v for k, v in answer.headers.items() if k.lower() not in _HOP})

        def _answer(self, status: int, body: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_CONNECT = _serve

    return Handler


def _rewrite_upload_url(content: bytes, origin: str) -> bytes:
    try:
        doc = json.loads(content)
    except ValueError:
        return content
    if isinstance(doc, dict) and isinstance(doc.get("upload_url"), str):
        parts = urlsplit(doc["upload_url"])
        new = urlsplit(origin)
        doc["upload_url"] = urlunsplit(parts._replace(scheme=new.scheme, netloc=new.netloc))
        return json.dumps(doc).encode()
    return content


@contextmanager
def serving(upstream: str | None = None, upload_via: str | None = None,
            redirect_to: str | None = None) -> Iterator[_Server]:
    """A server on 127.0.0.1: a relay to ``upstream``, a redirector to ``redirect_to``,
    else a recorder that refuses everything."""
    state = _Server(url="", upstream=upstream, upload_via=upload_via, redirect_to=redirect_to)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    httpd.daemon_threads = True
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
