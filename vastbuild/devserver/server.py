"""Starting and stopping a dev server, in this process or as the ``dev-server`` command.

:class:`DevServer` opens the data folder, registers the API keys (as digests),
binds the port and serves, either blocking (:meth:`DevServer.serve_forever`, for
the command) or from a background thread (:meth:`DevServer.start`, for scripts
and tests). Binding is done in the constructor, so a port in use or an
unwritable data folder is a :class:`~vastbuild.errors.VastbuildError` before
anything is served.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import socketserver
import sys
import threading
import time
from collections.abc import Iterable
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any, TextIO

from vastbuild.devserver.accesslog import AccessLog
from vastbuild.devserver.app import RequestHandler
from vastbuild.devserver.faults import FaultBook
from vastbuild.devserver.signing import load_or_create_secret
from vastbuild.devserver.store import Store
from vastbuild.devserver.web import Context, Options
from vastbuild.errors import VastbuildError

DEFAULT_HOST = "127.0.0.1"


class HTTPServer(ThreadingHTTPServer):
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


class DevServer:
    """A dev server bound to ``host:port`` (0: any free port) with its state in ``data_dir``."""

    def __init__(self, data_dir: Path, *, host: str = DEFAULT_HOST, port: int = 0,
                 api_keys: Iterable[str] = (), options: Options | None = None,
                 access_log: TextIO | None = None):
        keys = list(api_keys)
        for key in keys:
            if not key or key != key.strip() or any(c.isspace() for c in key):
                raise VastbuildError("an API key is empty or contains white space",
                                     hint="pass each key as one word to --api-key")
        self.store = Store(data_dir)
        try:
            self.store.add_keys(keys, time.time())
            if self.store.account_count() == 0:
                raise VastbuildError(
                    f"no API key: the data folder {data_dir} knows none and none was given",
                    hint="pass --api-key KEY (repeatable) once; the server keeps a digest of it")
            secret = load_or_create_secret(data_dir / "secret")
        except OSError as exc:
            self.store.close()
            raise VastbuildError(f"cannot use the data folder {data_dir}: {exc}",
                                 hint="pass --data with a folder this user can write") from exc
        except BaseException:
            self.store.close()
            raise
        try:
            self._http = _bind(host, port)
        except BaseException:
            self.store.close()
            raise
        self._http.context = Context(store=self.store, secret=secret,
                                     options=options or Options(), faults=FaultBook())
        self._http.access_log = AccessLog(access_log) if access_log is not None else None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The base URL to give clients (``http://127.0.0.1:PORT``)."""
        host, port = str(self._http.server_address[0]), self._http.server_address[1]
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}"

    @property
    def is_loopback(self) -> bool:
        return ipaddress.ip_address(str(self._http.server_address[0])).is_loopback

    def serve_forever(self) -> None:
        """Serve in this thread until :meth:`stop` is called from another, or an interrupt."""
        self._http.serve_forever(poll_interval=0.2)

    def start(self) -> DevServer:
        """Serve from a background thread; returns at once."""
        self._thread = threading.Thread(target=self.serve_forever, name="vastbuild-dev-server",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving (when started with :meth:`start`) and release the port and the data."""
        if self._thread is not None:
            self._http.shutdown()
            self._thread.join()
            self._thread = None
        self._http.server_close()
        self.store.close()

    def __enter__(self) -> DevServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class _HTTPServer6(HTTPServer):
    address_family = socket.AF_INET6


def _bind(host: str, port: int) -> HTTPServer:
    server_class = _HTTPServer6 if ":" in host else HTTPServer
    try:
        return server_class((host, port), RequestHandler)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise VastbuildError(f"cannot listen on {host}:{port}: the port is in use",
                                 hint="pick another --port, or --port 0 for any free one") from exc
        raise VastbuildError(f"cannot listen on {host}:{port}: {exc.strerror or exc}",
                             hint="check --host and --port") from exc
