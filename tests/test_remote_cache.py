"""The remote cache against a real server on loopback: nginx (Debian's package) with
WebDAV PUT, serving Bazel's HTTP remote-cache protocol as plain files."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from build_helpers import vastbuild, write_tree

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)

CONFIG = """
{user}
worker_processes 1;
daemon off;
error_log {prefix}/error.log;
pid {prefix}/nginx.pid;
events {{ worker_connections 64; }}
http {{
    access_log {prefix}/access.log;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    server {{
        listen 127.0.0.1:{port};
        client_max_body_size 0;
        location / {{
            root {prefix}/data;
            dav_methods PUT;
            create_full_put_path on;
            dav_access user:rw;
        }}
    }}
}}
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def nginx(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A WebDAV nginx on loopback: its URL and the folder it stores into."""
    if NGINX is None:
        if os.environ.get("CI"):
            pytest.fail("nginx is missing: .ci/run installs Debian's nginx-light")
        pytest.skip("nginx is not installed (apt-get install nginx-light)")
    prefix, port = tmp_path / "nginx", _free_port()
    (prefix / "data").mkdir(parents=True)
    (prefix / "nginx.conf").write_text(CONFIG.format(
        prefix=prefix, port=port, user="user root;" if os.geteuid() == 0 else ""))
    process = subprocess.Popen([NGINX, "-p", str(prefix), "-c", str(prefix / "nginx.conf")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            assert process.poll() is None, process.communicate()[1]
            assert time.monotonic() < deadline, "nginx did not start"
            time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", prefix / "data"
    finally:
        process.terminate()
        process.wait(timeout=20)


def _workspace(root: Path) -> Path:
    files: dict[str, bytes | str] = {
        "Vastfile": "DEPLOYMENT demo\nFROM vastai/base\nCODE app.py\nCOPY data /app/data\n",
        "app.py": "from vastai.serverless.remote import Deployment\n"
                  "app = Deployment(name='demo')\n"}
    for i in range(40):
        files[f"data/f{i:02d}.bin"] = hashlib.sha256(str(i).encode()).digest() * (900 * i + 1)
    write_tree(root, files)
    return root


def _build(project: Path, cache: Path, out: Path, *extra: str) -> dict[str, object]:
    run = vastbuild("--cache-dir", str(cache), *extra, "build", str(project), "-o", str(out),
                    "--json")
    assert run.returncode == 0, run.stderr
    report: dict[str, object] = json.loads(run.stdout)
    report["stderr"] = run.stderr
    return report


def _outputs(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _built(report: dict[str, object]) -> int:
    targets = report["targets"]
    assert isinstance(targets, list)
    return sum(int(t["built_steps"]) for t in targets)


def test_a_second_machine_builds_from_the_remote_cache_alone(
        nginx: tuple[str, Path], tmp_path: Path) -> None:
    url, stored = nginx
    project = _workspace(tmp_path / "project")
    out = tmp_path / "out"
    first = _build(project, tmp_path / "cache-a", out, "--remote-cache", url)
    assert _built(first) > 0 and "warning" not in str(first["stderr"])
    assert any(stored.glob("cas/*")) and any(stored.glob("ac/*"))
    expected = _outputs(out)
    shutil.rmtree(out)
    # machine B: an empty cache, the same workspace; everything comes from the server
    second = _build(project, tmp_path / "cache-b", out, "--remote-cache", url,
                    "--remote-cache-read-only")
    assert _built(second) == 0, second
    assert _outputs(out) == expected
    # and a third, without the remote cache, builds the same bytes itself
    shutil.rmtree(out)
    third = _build(project, tmp_path / "cache-c", out)
    assert _built(third) > 0 and _outputs(out) == expected


def test_a_corrupted_blob_on_the_server_is_refused(
        nginx: tuple[str, Path], tmp_path: Path) -> None:
    url, stored = nginx
    project = _workspace(tmp_path / "project")
    out = tmp_path / "out"
    _build(project, tmp_path / "cache-a", out, "--remote-cache", url)
    expected = _outputs(out)
    for blob in stored.glob("cas/*"):
        data = bytearray(blob.read_bytes())
        data[len(data) // 2] ^= 0xFF
        blob.write_bytes(bytes(data))
    shutil.rmtree(out)
    second = _build(project, tmp_path / "cache-b", out, "--remote-cache", url)
    assert _outputs(out) == expected
    assert _built(second) > 0
    assert "warning[remote-cache]" in str(second["stderr"]) and "not used" in str(second["stderr"])


def test_with_the_server_down_a_build_passes_with_one_warning(tmp_path: Path) -> None:
    project = _workspace(tmp_path / "project")
    url = f"http://127.0.0.1:{_free_port()}"  # nothing listens there
    report = _build(project, tmp_path / "cache", tmp_path / "out", "--remote-cache", url)
    assert _built(report) > 0
    assert str(report["stderr"]).count("warning[remote-cache]") == 1
    assert "cannot reach the remote cache" in str(report["stderr"])


def test_a_remote_cache_url_is_checked_like_every_url(tmp_path: Path) -> None:
    run = vastbuild("--remote-cache", "ftp://u:p@host", "hash", str(_workspace(tmp_path / "p")))
    assert run.returncode == 2 and "--remote-cache" in run.stderr and "u:p" not in run.stderr
