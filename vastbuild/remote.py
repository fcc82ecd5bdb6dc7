"""A cache shared by machines, over HTTP, in Bazel's remote-cache protocol.

The protocol is two folders of a web server: ``{url}/cas/{sha256}``, content
named by its SHA-256, and ``{url}/ac/{key}``, small records named by a key
(``GET`` and ``HEAD`` read, ``PUT`` writes). Any server that speaks it serves:
bazel-remote, a WebDAV-enabled nginx, a bucket behind a proxy. vastbuild keeps
there what a build on another machine can use without its local cache:

- step results: ``ac/<sha256("vastbuild step " kind key)>`` holds
  ``{"cas": <sha256>, "size": n}``, the result's canonical JSON being in ``cas/``;
- compressed chunks: ``ac/<sha256("vastbuild blob " name)>`` names the chunk's
  blob in ``cas/`` the same way;
- generated files (``config.json``, plugin output), in ``cas/`` by their digest.

Everything read from ``cas/`` is checked against its digest and length: a
mismatch is a miss (and one warning), never used. A record of ``ac/`` is
trusted as the remote cache's operators are (``--remote-cache-read-only`` keeps
an untrusted job from writing one). A server that cannot be reached, or that
fails, turns the remote cache off for the rest of the run with one warning: the
build goes on locally, never fails for it. Credentials come from the
environment only: ``VASTBUILD_REMOTE_CACHE_TOKEN`` (a bearer token), or
``VASTBUILD_REMOTE_CACHE_USER`` and ``VASTBUILD_REMOTE_CACHE_PASSWORD`` (basic
authentication); they are sent to the remote cache's host only, never printed.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import requests

#: how long a remote cache may take to accept a connection, and to answer
CONNECT_TIMEOUT = 3.0
READ_TIMEOUT = 60.0
TOKEN_VARIABLE = "VASTBUILD_REMOTE_CACHE_TOKEN"
USER_VARIABLE = "VASTBUILD_REMOTE_CACHE_USER"
PASSWORD_VARIABLE = "VASTBUILD_REMOTE_CACHE_PASSWORD"


class RemoteCache:
    """The remote cache at ``url`` (checked, see :func:`vastbuild.urls.check_url`);
    thread-safe."""

    def __init__(self, url: str, *, read_only: bool = False):
        self.url = url
        self.read_only = read_only
        #: what went wrong, once each (shown as warnings); empty when all went well
        self.problems: list[str] = []
        self.off = False
        self.downloaded = self.uploaded = 0
        self._lock = threading.Lock()
        self._local = threading.local()

    # -- the protocol --------------------------------------------------------------

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            import requests

            session = requests.Session()
            token = os.environ.get(TOKEN_VARIABLE)
            user = os.environ.get(USER_VARIABLE)
            if token:
                session.headers["Authorization"] = f"Bearer {token}"
            elif user:
                session.auth = (user, os.environ.get(PASSWORD_VARIABLE, ""))
            session.trust_env = False  # no proxy or .netrc credentials sent elsewhere
            self._local.session = session
        return session

    def _request(self, method: str, path: str, data: bytes | None = None) -> bytes | None:
        """The body of a 200 answer (b"" for HEAD and PUT); None for a 404. Anything
        else turns the remote cache off, with one warning."""
        if self.off:
            return None
        import requests

        try:
            answer = self._session().request(method, f"{self.url}/{path}", data=data,
                                              timeout=(CONNECT_TIMEOUT, READ_TIMEOUT))
        except requests.RequestException as exc:
            self._give_up(f"cannot reach the remote cache {self.url} ({type(exc).__name__})")
            return None
        if answer.status_code == 404 and method in ("GET", "HEAD"):
            return None
        if not 200 <= answer.status_code < 300:
            self._give_up(f"the remote cache {self.url} answered {method} {path} with "
                          f"HTTP {answer.status_code}")
            return None
        return answer.content

    def _give_up(self, problem: str) -> None:
        with self._lock:
            if not self.off:
                self.off = True
                self.problems.append(problem + "; building without it")

    def _warn(self, problem: str) -> None:
        with self._lock:
            if problem not in self.problems:
                self.problems.append(problem)

    def get_content(self, digest: str, size: int | None = None) -> bytes | None:
        """The bytes whose SHA-256 is ``digest`` (and length ``size``), or None: a miss,
        or bytes that are not those (a warning)."""
        data = self._request("GET", f"cas/{digest}")
        if data is None:
            return None
        if hashlib.sha256(data).hexdigest() != digest or (size is not None
                                                          and len(data) != size):
            self._warn(f"the remote cache {self.url} holds something else under "
                       f"cas/{digest}: not used")
            return None
        with self._lock:
            self.downloaded += len(data)
        return data

    def put_content(self, data: bytes) -> str:
        """Store ``data`` in ``cas/`` (unless it is there); its digest."""
        digest = hashlib.sha256(data).hexdigest()
        if not self.read_only and not self.off \
                and self._request("HEAD", f"cas/{digest}") is None and not self.off:
            if self._request("PUT", f"cas/{digest}", data) is not None:
                with self._lock:
                    self.uploaded += len(data)
        return digest

    def get_record(self, name: str) -> bytes | None:
        """The content a record of ``ac/`` names (see the module's layout)."""
        raw = self._request("GET", f"ac/{_record_key(name)}")
        if raw is None:
            return None
        try:
            record = json.loads(raw)
            digest, size = record["cas"], record["size"]
        except (ValueError, KeyError, TypeError):
            self._warn(f"the remote cache {self.url} holds an unreadable record for {name}")
            return None
        if not isinstance(digest, str) or not isinstance(size, int):
            return None
        return self.get_content(digest, size)

    def put_record(self, name: str, data: bytes) -> None:
        """Store ``data`` in ``cas/`` and a record of ``ac/`` naming it."""
        if self.read_only or self.off:
            return
        digest = self.put_content(data)
        record = json.dumps({"cas": digest, "size": len(data)}).encode()
        self._request("PUT", f"ac/{_record_key(name)}", record)


def _record_key(name: str) -> str:
    """The ``ac/`` key of a record: a SHA-256, as the protocol's servers expect."""
    return hashlib.sha256(f"vastbuild {name}".encode("utf-8", "surrogateescape")).hexdigest()
