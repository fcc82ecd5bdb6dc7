"""The vastai SDK as a second client of the same dev server.

Its ``Deployment(...).ensure_ready()`` must register, upload and roll a
deployment on the dev server exactly as it would on Vast; its worker bootstrap
(``vastai.serverless.remote.serve_deployment``) must fetch, unpack and read what
vastbuild uploaded, and find the deployment by the name in config.json. Both
run in their own processes: the SDK's ``ensure_ready`` needs Python 3.12
(``$VASTBUILD_SDK_PYTHON``), the bootstrap reads ``VAST_API_URL`` at import.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path

import pytest
import requests
from conftest import RunningDevServer

from vastbuild import wire
from vastbuild.api import deploy as deploy_targets
from vastbuild.api import load
from vastbuild.vast.client import VastClient

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

#: A user's SDK program. The cached SSL contexts are preset, or the SDK would
#: fetch Vast's root certificate from console.vast.ai before its first request.
SDK_PROGRAM = '''
import json, os, ssl, sys
from vastai.serverless.remote import Deployment

api = os.environ["DEV_SERVER_URL"]
app = Deployment(name="sdk-hello", api_key=os.environ["VAST_API_KEY"],
                 webserver_url=api, autoscaler_url=api)
app.async_client._ssl_context = ssl.create_default_context()
app.client._ssl_context = ssl.create_default_context()
image = app.image("vastai/base-image:@vastai-automatic-tag", 20)
image.pip_install("numpy")
image.env(GREETING=os.environ["GREETING"])
app.configure_autoscaling(cold_workers=0, max_workers=2)


@app.remote
async def hello(name: str) -> str:
    return f"{os.environ['GREETING']} {name}"


app.ensure_ready()
deployment = app._inner.deployment
print(json.dumps({"id": deployment.id, "endpoint_id": deployment.endpoint_id,
                  "action": deployment.action}))
'''

#: The worker's side: what serve_deployment.main does up to starting the worker.
BOOTSTRAP = '''
import dataclasses, json, os, sys
from vastai.serverless.remote import serve_deployment as boot
from vastai.serverless.remote.serve import Deployment

assert boot.VAST_API_URL == os.environ["VAST_API_URL"], boot.VAST_API_URL
url = boot.get_download_url(os.environ["DEPLOYMENT_ID"], boot.get_api_key())
path = boot.download_tarball(url)
try:
    boot.extract_tarball(path)
finally:
    os.unlink(path)
config = boot.get_config("config.json")
sys.path.insert(0, os.getcwd())
import deployment  # registers the code's Deployment under its name
found = Deployment.lookup(config.name)
print(json.dumps({"config": dataclasses.asdict(config), "found": found is not None}))
'''


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("VAST_API_URL", "VAST_API_KEY", "IS_DEPLOYMENT", "CONTAINER_API_KEY")}
    env.update(extra)
    return env


def run_sdk(python: Path, program: Path, server: RunningDevServer,
            greeting: str) -> dict[str, object]:
    result = subprocess.run(
        [str(python), str(program)], cwd=program.parent, capture_output=True, text=True,
        timeout=120, env=clean_env(VAST_API_KEY=server.keys[0], DEV_SERVER_URL=server.url,
                                   GREETING=greeting))
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_sdk_ensure_ready_deploys_to_the_dev_server(dev_server: RunningDevServer,
                                                        tmp_path: Path, sdk_python: Path) -> None:
    program = tmp_path / "sdk_app" / "hello_app.py"
    program.parent.mkdir()
    program.write_text(SDK_PROGRAM)

    first = run_sdk(sdk_python, program, dev_server, "hello")
    assert first["action"] == "created"
    again = run_sdk(sdk_python, program, dev_server, "hello")
    assert (again["action"], again["id"]) == ("exists", first["id"])
    # config.json's envs changed: a soft update
    changed = run_sdk(sdk_python, program, dev_server, "good day")
    assert (changed["action"], changed["id"]) == ("soft_update", first["id"])

    client = VastClient(dev_server.keys[0], api_url=dev_server.url, autoscaler_url=dev_server.url)
    record = client.get_deployment(int(first["id"]))  # type: ignore[arg-type]
    assert (record["name"], record["tag"], record["image"]) == (
        "sdk-hello", "default", "vastai/base-image:@vastai-automatic-tag")
    [group] = [g for g in client.list_workergroups() if g["endpoint_id"] == first["endpoint_id"]]
    assert group["rolling_updates"] == 1  # the SDK found the group and rolled it
    blob = requests.get(client.get_download_url(int(first["id"])), timeout=30)  # type: ignore[arg-type]
    archive = tmp_path / "sdk.tar.gz"
    archive.write_bytes(blob.content)
    with tarfile.open(archive, "r:gz") as tar:
        members = {m.name.removeprefix("./"): m for m in tar.getmembers()}
        config = json.load(tar.extractfile(members["config.json"]))  # type: ignore[arg-type]
    assert "deployment.py" in members
    assert config["envs"] == [["GREETING", "good day"]]


@pytest.mark.parametrize("example, copy_line", [
    ("imagegen", None),  # CODE is a module; COPY ../lib/common lib/common
    ("embed", ("COPY ../lib /app/lib", "COPY ../lib lib")),  # CODE is a package
])
def test_the_worker_bootstrap_unpacks_what_vastbuild_uploaded(
        dev_server: RunningDevServer, tmp_path: Path, example: str,
        copy_line: tuple[str, str] | None) -> None:
    root = tmp_path / "examples"
    shutil.copytree(EXAMPLES, root, ignore=shutil.ignore_patterns(
        "__pycache__", "*.pyc", "out", ".vastbuild*", "plugins"))
    vastfile = root / example / "Vastfile"
    if copy_line:  # relative COPY destinations only: the worker extracts with full trust
        vastfile.write_text(vastfile.read_text().replace(*copy_line))
    model = load(vastfile)
    with VastClient(dev_server.keys[0], api_url=dev_server.url,
                    autoscaler_url=dev_server.url) as client:
        [outcome] = deploy_targets([model], client=client, cache_dir=tmp_path / "cache")
    assert outcome.uploaded

    worker = tmp_path / "worker"
    worker.mkdir()
    script = tmp_path / "bootstrap.py"
    script.write_text(textwrap.dedent(BOOTSTRAP))
    result = subprocess.run(
        [sys.executable, str(script)], cwd=worker, capture_output=True, text=True, timeout=120,
        env=clean_env(VAST_API_URL=dev_server.url, CONTAINER_API_KEY=dev_server.keys[0],
                      DEPLOYMENT_ID=str(outcome.deployment_id), IS_DEPLOYMENT="1"))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])

    assert report["config"] == {**json.loads(wire.config_json(model))}
    assert report["found"] is True, "the worker cannot find the deployment by its name"
    if model.code.kind == "module":
        assert (worker / "deployment.py").read_bytes() == model.code.path.read_bytes()
    else:
        for source in model.code.path.glob("*.py"):
            assert (worker / "deployment" / source.name).read_bytes() == source.read_bytes()
    copied = worker / "lib" / "common" / "timing.py"
    assert copied.read_bytes() == (root / "lib/common/timing.py").read_bytes()
