"""Shared fixtures: a real ``vastbuild dev-server`` process on loopback.

``start_dev_server(...)`` starts one (session-scoped factory, so fixtures of any
scope can use it); ``dev_server`` is one server for a test, ``dev_server_module``
one for a test module. Each server gets a fresh data folder, two fresh API keys
(one account each, passed through the environment, never on the command line)
and an admin token for fault injection; it is stopped at teardown.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent
_LISTENING = re.compile(r"vastbuild dev-server listening on (http://\S+)")
_START_TIMEOUT = 30.0


@dataclass
class RunningDevServer:
    """A dev-server process: where it listens, who may use it, where its state and output are."""

    url: str
    keys: tuple[str, ...]
    data_dir: Path
    proc: subprocess.Popen[bytes]
    admin_token: str
    #: the process's stdout and stderr, interleaved
    log_path: Path

    def auth(self, index: int = 0) -> dict[str, str]:
        """The Authorization header of ``keys[index]``."""
        return {"Authorization": f"Bearer {self.keys[index]}"}

    def inject_fault(self, route: str, kind: str, **options: int) -> None:
        """Arm a fault (kinds: error, throttle, reset, expired_url; see docs/dev-server.md)."""
        answer = requests.post(f"{self.url}/_dev/faults", json={"route": route, "kind": kind,
                                                                 **options},
                               headers={"X-Dev-Admin-Token": self.admin_token}, timeout=10)
        answer.raise_for_status()

    def output(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> int:
        """SIGTERM, wait, return the exit code (killed after 10 s: a hang is a failure)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


StartDevServer = Callable[..., RunningDevServer]


def new_api_key() -> str:
    return f"vbtest-{secrets.token_hex(16)}"


@pytest.fixture(scope="session")
def start_dev_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StartDevServer]:
    """Factory: ``start_dev_server(data_dir=None, keys=None, args=(), env=None)``.

    ``data_dir`` None makes a fresh folder; ``keys`` None makes two fresh keys
    (pass ``()`` to start on the keys a data folder already knows); ``args`` are
    extra ``dev-server`` options (``--upload-ttl 0``, ``--omit-workergroup-id``).
    Servers still running at the end of the session are stopped.
    """
    started: list[RunningDevServer] = []

    def start(data_dir: Path | None = None, keys: Sequence[str] | None = None,
              args: Sequence[str] = (), env: dict[str, str] | None = None) -> RunningDevServer:
        run_dir = tmp_path_factory.mktemp("dev-server")
        data = data_dir or run_dir / "data"
        api_keys = tuple(keys) if keys is not None else (new_api_key(), new_api_key())
        admin_token = secrets.token_hex(16)
        log_path = run_dir / "server.log"
        environment = {**os.environ, **(env or {}),
                       "VASTBUILD_DEV_SERVER_API_KEYS": " ".join(api_keys),
                       "VASTBUILD_DEV_SERVER_ADMIN_TOKEN": admin_token}
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "vastbuild", "dev-server", "--port", "0",
                 "--data", str(data), *args],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=environment, cwd=run_dir)
        server = RunningDevServer(url="", keys=api_keys, data_dir=data, proc=proc,
                                  admin_token=admin_token, log_path=log_path)
        started.append(server)
        server.url = _wait_until_listening(server)
        return server

    yield start
    for server in started:
        server.stop()


def _wait_until_listening(server: RunningDevServer) -> str:
    deadline = time.monotonic() + _START_TIMEOUT
    while time.monotonic() < deadline:
        found = _LISTENING.search(server.output())
        if found:
            return found.group(1)
        if server.proc.poll() is not None:
            pytest.fail(f"dev-server exited with {server.proc.returncode}:\n{server.output()}")
        time.sleep(0.05)
    server.stop()
    pytest.fail(f"dev-server did not start within {_START_TIMEOUT} s:\n{server.output()}")


@pytest.fixture
def dev_server(start_dev_server: StartDevServer) -> Iterator[RunningDevServer]:
    """One dev server for one test."""
    server = start_dev_server()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def dev_server_module(start_dev_server: StartDevServer) -> Iterator[RunningDevServer]:
    """One dev server shared by the tests of a module (state carries over between them)."""
    server = start_dev_server()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def sdk_python() -> Path:
    """A Python >= 3.12 with vastai 1.9.1, for the tests that drive the SDK: the one
    ``$VASTBUILD_SDK_PYTHON`` names (``make test`` sets it; then it must exist), else
    the checkout's ``.venv-sdk``; skipped when neither is there (the SDK's
    ``ensure_ready`` needs Python >= 3.12, which this test run may not be)."""
    configured = os.environ.get("VASTBUILD_SDK_PYTHON")
    candidate = Path(configured) if configured else ROOT / ".venv-sdk" / "bin" / "python"
    if candidate.exists():
        return candidate
    if configured:
        pytest.fail(f"VASTBUILD_SDK_PYTHON={configured} does not exist (run `make sdk-venv`)")
    pytest.skip("no Python 3.12 with vastai 1.9.1: set VASTBUILD_SDK_PYTHON (make sdk-venv)")
