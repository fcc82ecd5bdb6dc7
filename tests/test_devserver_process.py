"""The dev server as a process: restart, signals, start-up errors, faults, secrets, peers.

The peers are the vastai SDK's own code: its worker bootstrap functions (in this
interpreter) and its client (in a Python 3.12 interpreter with the SDK, when
one is available: ``VASTBUILD_SDK_PYTHON`` or ``.venv-sdk``).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import signal
import socket
import subprocess
import tarfile
import textwrap
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import requests
from build_helpers import vastbuild

from vastbuild.devserver import DevServer
from vastbuild.errors import VastbuildError

if TYPE_CHECKING:
    from conftest import RunningDevServer, StartDevServer

TIMEOUT = 10
ROOT = Path(__file__).resolve().parent.parent


def registration(name: str, content: bytes, **fields: Any) -> dict[str, Any]:
    return {"name": name, "image": "vastai/base-image:cuda-12",
            "file_hash": hashlib.sha256(content).hexdigest(), "file_size": len(content),
            **fields}


def put(server: RunningDevServer, document: dict[str, Any], key: int = 0) -> requests.Response:
    return requests.put(f"{server.url}/api/v0/deployments/", json=document,
                        headers=server.auth(key), timeout=TIMEOUT)


def upload(answer: dict[str, Any], content: bytes) -> requests.Response:
    return requests.post(answer["upload_url"], data=answer["upload_fields"],
                         files={"file": ("deployment.tar.gz", content, "application/gzip")},
                         timeout=TIMEOUT)


def deploy(server: RunningDevServer, name: str, content: bytes) -> dict[str, Any]:
    answer = put(server, registration(name, content)).json()
    assert upload(answer, content).status_code == 204
    return answer


def download_url(server: RunningDevServer, deployment_id: int) -> requests.Response:
    return requests.get(f"{server.url}/api/v0/deployment/{deployment_id}/download_url/",
                        headers=server.auth(), timeout=TIMEOUT)


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return vastbuild("dev-server", *args, env=env, timeout=60)


# lifecycle


def test_state_and_urls_survive_a_restart(start_dev_server: StartDevServer) -> None:
    first = start_dev_server()
    answer = deploy(first, "persisted", b"kept across restarts")
    url = download_url(first, answer["deployment_id"]).json()["download_url"]
    assert first.stop() == 0
    assert "vastbuild dev-server stopped" in first.output()

    again = start_dev_server(data_dir=first.data_dir, keys=())  # keys known by digest only
    again.keys = first.keys
    old_port_url = url.replace(first.url, again.url)
    assert requests.get(old_port_url, timeout=TIMEOUT).content == b"kept across restarts"
    record = requests.get(f"{again.url}/api/v0/deployment/{answer['deployment_id']}/",
                          headers=again.auth(), timeout=TIMEOUT).json()["deployment"]
    assert record["name"] == "persisted"
    same = put(again, registration("persisted", b"kept across restarts")).json()
    assert same["action"] == "exists" and "upload_url" not in same
    assert same["deployment_id"] == answer["deployment_id"]
    other = requests.get(f"{again.url}/api/v0/deployments/", headers=again.auth(1),
                         timeout=TIMEOUT)
    assert other.status_code == 200 and other.json()["deployments"] == []


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_the_server_cleanly(start_dev_server: StartDevServer,
                                           signum: int) -> None:
    server = start_dev_server()
    server.proc.send_signal(signum)
    assert server.proc.wait(timeout=10) == 0
    assert server.output().rstrip().endswith("vastbuild dev-server stopped")
    assert "Traceback" not in server.output()


def test_a_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("--port", str(port), "--data", str(tmp_path / "data"),
                         env={"VASTBUILD_DEV_SERVER_API_KEYS": "vbtest-port-key"})
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}: the port is in use" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_unusable_data_folder_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    result = run_cli("--port", "0", "--data", str(tmp_path / "a-file" / "data"),
                     env={"VASTBUILD_DEV_SERVER_API_KEYS": "vbtest-data-key"})
    assert result.returncode == 1
    assert "cannot use the data folder" in result.stderr and "help:" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_server_without_any_key_refuses_to_start(tmp_path: Path) -> None:
    result = run_cli("--port", "0", "--data", str(tmp_path / "data"),
                     env={"VASTBUILD_DEV_SERVER_API_KEYS": ""})
    assert result.returncode == 1 and "--api-key" in result.stderr


def test_it_runs_in_process_too(tmp_path: Path) -> None:
    key = "vbtest-in-process"
    with DevServer(tmp_path / "data", api_keys=[key]) as server:
        assert server.url.startswith("http://127.0.0.1:")
        answer = requests.put(f"{server.url}/api/v0/deployments/", timeout=TIMEOUT,
                              json=registration("inproc", b"x"),
                              headers={"Authorization": f"Bearer {key}"})
        assert answer.json()["action"] == "created"
        with pytest.raises(VastbuildError, match="in use"):
            DevServer(tmp_path / "other", port=int(server.url.rsplit(":", 1)[1]), api_keys=[key])


def test_options_change_expiry_and_the_workergroup_field(start_dev_server: StartDevServer) -> None:
    server = start_dev_server(args=["--upload-ttl", "0", "--omit-workergroup-id"])
    content = os.urandom(4_000_000)  # more than the socket buffers: the answer comes mid-upload
    answer = put(server, registration("short", content)).json()
    assert "workergroup_id" not in answer
    refused = upload(answer, content)
    assert refused.status_code == 403 and "expired" in refused.text
    groups = requests.get(f"{server.url}/api/v0/workergroups/", headers=server.auth(),
                          timeout=TIMEOUT).json()["results"]
    assert [g["endpoint_id"] for g in groups] == [answer["endpoint_id"]]


# faults


def test_injected_errors_and_throttling(dev_server: RunningDevServer) -> None:
    dev_server.inject_fault("PUT /api/v0/deployments/", "error", count=2, status=503)
    dev_server.inject_fault("GET /api/v0/deployments", "throttle", retry_after=3)
    document = registration("flaky", b"flaky")
    assert [put(dev_server, document).status_code for _ in range(3)] == [503, 503, 200]
    throttled = requests.get(f"{dev_server.url}/api/v0/deployments/", headers=dev_server.auth(),
                             timeout=TIMEOUT)
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "3"
    assert requests.get(f"{dev_server.url}/api/v0/deployments/", headers=dev_server.auth(),
                        timeout=TIMEOUT).status_code == 200


def test_a_connection_reset_mid_upload(dev_server: RunningDevServer) -> None:
    content = os.urandom(2_000_000)
    answer = put(dev_server, registration("cut", content)).json()
    dev_server.inject_fault("POST /blobs/upload/", "reset", after_bytes=100_000)
    with pytest.raises(requests.exceptions.ConnectionError):
        upload(answer, content)
    assert list((dev_server.data_dir / "tmp").iterdir()) == []
    assert upload(answer, content).status_code == 204  # the retry goes through


def test_expired_urls_on_demand(dev_server: RunningDevServer) -> None:
    dev_server.inject_fault("PUT /api/v0/deployments/", "expired_url")
    dev_server.inject_fault("GET /api/v0/deployment/*/download_url/", "expired_url")
    content = b"expiring"
    stale = put(dev_server, registration("expiring", content)).json()
    refused = upload(stale, content)
    assert refused.status_code == 403 and "expired" in refused.text
    fresh = put(dev_server, registration("expiring", content)).json()
    assert upload(fresh, content).status_code == 204
    expired = download_url(dev_server, fresh["deployment_id"]).json()["download_url"]
    assert requests.get(expired, timeout=TIMEOUT).status_code == 403
    valid = download_url(dev_server, fresh["deployment_id"]).json()["download_url"]
    assert requests.get(valid, timeout=TIMEOUT).content == content


def test_fault_routes_need_the_admin_token(dev_server: RunningDevServer) -> None:
    fault = {"route": "GET /api/v0/deployments", "kind": "error"}
    for headers in ({}, {"X-Dev-Admin-Token": "wrong"}, dev_server.auth()):
        answer = requests.post(f"{dev_server.url}/_dev/faults", json=fault, headers=headers,
                               timeout=TIMEOUT)
        assert answer.status_code == 401
    admin = {"X-Dev-Admin-Token": dev_server.admin_token}
    bad = requests.post(f"{dev_server.url}/_dev/faults", json={"route": "x", "kind": "error"},
                        headers=admin, timeout=TIMEOUT)
    assert bad.status_code == 400
    dev_server.inject_fault("GET /api/v0/deployments", "error")
    armed = requests.get(f"{dev_server.url}/_dev/faults", headers=admin, timeout=TIMEOUT)
    assert [f["kind"] for f in armed.json()["faults"]] == ["error"]
    requests.delete(f"{dev_server.url}/_dev/faults", headers=admin, timeout=TIMEOUT)
    assert requests.get(f"{dev_server.url}/api/v0/deployments", headers=dev_server.auth(),
                        timeout=TIMEOUT).status_code == 200


# secrets


def test_no_api_key_in_output_or_data(start_dev_server: StartDevServer) -> None:
    server = start_dev_server()
    key, other = server.keys
    # every way a key can reach the server: header, query (the SDK), JSON body (update_workers)
    answer = requests.put(f"{server.url}/api/v0/deployments/?api_key={key}",
                          json=registration("secretive", b"secretive", docker_login_pass=key),
                          headers={"Authorization": f"Bearer {key}"}, timeout=TIMEOUT).json()
    upload(answer, b"secretive")
    requests.post(f"{server.url}/update_workers/?api_key={other}",
                  json={"workergroup_id": answer["workergroup_id"], "api_key": other},
                  timeout=TIMEOUT)
    requests.get(f"{server.url}/api/v0/deployments?api_key={key}-wrong", timeout=TIMEOUT)
    requests.get(f"{server.url}/api/v0/deployment/999999/?api_key={other}", timeout=TIMEOUT)
    requests.put(f"{server.url}/api/v0/deployments/?api_key={key}", data=b"{not json",
                 timeout=TIMEOUT)
    with socket.create_connection((server.url.split("//")[1].split(":")[0],
                                   int(server.url.rsplit(":", 1)[1]))) as raw:
        raw.sendall(f"GET /x?api_key={key} HTTP/1.1 junk\r\n\r\n".encode())
        raw.recv(4096)
    while_running = _data_files(server.data_dir)  # the WAL and its index exist only now
    assert server.stop() == 0
    output = server.output()
    assert "api_key=REDACTED" in output
    assert "error while serving" not in output and "Traceback" not in output
    for secret in (key, other):
        assert secret not in output
        for path, content in [*while_running.items(), *_data_files(server.data_dir).items()]:
            assert secret.encode() not in content, path


def _data_files(folder: Path) -> dict[Path, bytes]:
    return {path: path.read_bytes() for path in folder.rglob("*") if path.is_file()}


# peers: the SDK's worker bootstrap and client


def deployment_tarball(name: str) -> bytes:
    """A tarball in the shape the worker bootstrap expects (config.json + deployment.py)."""
    members = {
        "config.json": json.dumps({"name": name, "pip_installs": [], "apt_gets": [],
                                   "envs": [["GREETING", "hi"]], "runs": []}).encode(),
        "deployment.py": b"GREETING = 'hello from the dev server'\n",
    }
    stream = io.BytesIO()
    with tarfile.open(fileobj=stream, mode="w") as archive:
        for member_name, content in members.items():
            info = tarfile.TarInfo(f"./{member_name}")
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    return gzip.compress(stream.getvalue(), mtime=0)


def test_the_sdk_worker_bootstrap_fetches_and_unpacks_the_deployment(
        dev_server: RunningDevServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from vastai.serverless.remote import serve_deployment as bootstrap

    tarball = deployment_tarball("worker-app")
    answer = deploy(dev_server, "worker-app", tarball)
    monkeypatch.setattr(bootstrap, "VAST_API_URL", dev_server.url)
    url = bootstrap.get_download_url(str(answer["deployment_id"]), dev_server.keys[0])
    path = bootstrap.download_tarball(url)
    assert Path(path).read_bytes() == tarball
    monkeypatch.chdir(tmp_path)
    bootstrap.extract_tarball(path)
    assert bootstrap.get_config("config.json").name == "worker-app"
    assert (tmp_path / "deployment.py").exists()
    with pytest.raises(Exception, match="404"):
        bootstrap.get_download_url(str(answer["deployment_id"]), dev_server.keys[1])


SDK_SCRIPT = textwrap.dedent("""
    import asyncio, json, os, ssl, sys, tempfile
    from vastai.serverless.client.client import CoroutineServerless
    from vastai.data.deployment import DeploymentConfig

    async def main(url, tarball_path, second_path):
        client = CoroutineServerless(webserver_url=url, autoscaler_url=url)
        client._ssl_context = ssl.create_default_context()
        seen = {}
        def config(path):
            data = open(path, "rb").read()
            import hashlib
            return DeploymentConfig(name="sdk-app", image="vastai/base-image:cuda-12",
                                    file_hash=hashlib.sha256(data).hexdigest(),
                                    file_size=len(data), ttl=60, max_workers=4)
        first = await client.put_deployment(config(tarball_path))
        seen["first"] = [first.action, first.needs_upload, first.workergroup_id]
        await first.upload(tarball_path)
        data = await first.get()
        seen["record"] = [data.name, data.tag, data.current_version_id is not None]
        second = await client.put_deployment(config(second_path))
        seen["second"] = [second.action, second.needs_upload]
        await second.upload(second_path)
        group = second.workergroup_id or await client.find_workergroup_for_endpoint(
            second.endpoint_id)
        seen["update"] = await client.update_workers(group)
        endpoints = await client.get_endpoints()
        seen["endpoints"] = [e.id for e in endpoints]
        seen["endpoint_id"] = second.endpoint_id
        second.sync_heartbeat()
        again = await client.fetch_deployment(second.id)
        seen["heartbeat"] = again.last_client_heartbeat is not None
        await client.close()
        print(json.dumps(seen))

    asyncio.run(main(*sys.argv[1:]))
""")


@pytest.mark.parametrize("args", [(), ("--omit-workergroup-id",)], ids=["with-wg", "without-wg"])
def test_the_sdk_client_deploys_against_it(start_dev_server: StartDevServer, tmp_path: Path,
                                           args: tuple[str, ...], sdk_python: Path) -> None:
    python = str(sdk_python)
    server = start_dev_server(args=args)
    first, second = tmp_path / "first.tar.gz", tmp_path / "second.tar.gz"
    first.write_bytes(deployment_tarball("sdk-app"))
    second.write_bytes(deployment_tarball(f"sdk-app-{uuid.uuid4()}"))
    result = subprocess.run([python, "-c", SDK_SCRIPT, server.url, str(first), str(second)],
                            capture_output=True, text=True, timeout=120, cwd=tmp_path,
                            env={**os.environ, "VAST_API_KEY": server.keys[0]})
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["first"][:2] == ["created", True]
    assert (seen["first"][2] is None) == bool(args)
    assert seen["record"] == ["sdk-app", "default", True]
    assert seen["second"] == ["soft_update", True]
    assert seen["update"]["success"] is True and seen["update"]["rolling_updates"] == 1
    assert seen["endpoints"] == [seen["endpoint_id"]]
    assert seen["heartbeat"] is True
    assert server.keys[0] not in server.output()
