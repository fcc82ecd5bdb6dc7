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
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

from vastbuild.devserver.accesslog import AccessLog
from vastbuild.devserver.context import Context, DevServerOptions
from vastbuild.devserver.database import ServerDatabase
from vastbuild.devserver.faults import FaultBook
from vastbuild.devserver.market import Market
from vastbuild.devserver.routing import DevHTTPServer, DevHTTPServer6, RequestHandler
from vastbuild.devserver.signing import load_or_create_secret
from vastbuild.errors import VastbuildError

DEFAULT_HOST = "127.0.0.1"


class DevServer:
    """A dev server bound to ``host:port`` (0: any free port) with its state in ``data_dir``."""

    def __init__(self, data_dir: Path, *, host: str = DEFAULT_HOST, port: int = 0,
                 api_keys: Iterable[str] = (), options: DevServerOptions | None = None,
                 access_log: TextIO | None = None):
        keys = list(api_keys)
        for key in keys:
            if not key or key != key.strip() or any(c.isspace() for c in key):
                raise VastbuildError("an API key is empty or contains white space",
                                     hint="give each key as one word",
                                     setting="dev_server_keys")
        options = options or DevServerOptions()
        market = Market.load(options.offers_file)
        self.database = ServerDatabase(data_dir, worker_step=options.worker_step,
                                       fail_workers=options.fail_workers)
        try:
            self.database.add_keys(keys, time.time())
            if self.database.account_count() == 0:
                raise VastbuildError(
                    f"no API key: the data folder {data_dir} knows none and none was given",
                    hint="give the server its API keys once; it keeps a digest of each",
                    setting="dev_server_keys")
            secret = load_or_create_secret(data_dir / "secret")
        except OSError as exc:
            self.database.close()
            raise VastbuildError(f"cannot use the data folder {data_dir}: {exc}",
                                 hint="use a data folder this user can write",
                                 setting="data_dir") from exc
        except BaseException:
            self.database.close()
            raise
        try:
            self._http = _bind(host, port)
        except BaseException:
            self.database.close()
            raise
        self._http.context = Context(database=self.database, secret=secret,
                                     options=options, faults=FaultBook(), market=market)
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
        self.database.close()

    def __enter__(self) -> DevServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _bind(host: str, port: int) -> DevHTTPServer:
    server_class = DevHTTPServer6 if ":" in host else DevHTTPServer
    try:
        return server_class((host, port), RequestHandler)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise VastbuildError(f"cannot listen on {host}:{port}: the port is in use",
                                 hint="pick another port, or port 0 for any free one",
                                 setting="port") from exc
        raise VastbuildError(f"cannot listen on {host}:{port}: {exc.strerror or exc}",
                             hint="check the address and the port", setting="host") from exc
