"""Deploying through a misbehaving API: a real dev-server process with faults armed
on cue (500s, 429 with Retry-After, a reset mid-upload, an expired upload URL).

After each, the deployment is either fully registered with its blob (the server
serves exactly the bytes that were built) or reported as failed with nothing
half-done: no local record, and no deployment left without its file."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import requests
from conftest import RunningDevServer

from vastbuild.api import deploy as deploy_targets
from vastbuild.api import load, plan_deploy
from vastbuild.deploy import ROLLOUT_PENDING, DeployOutcome
from vastbuild.errors import VastbuildError
from vastbuild.model import Deployment
from vastbuild.vast.client import RetryPolicy, VastClient
from vastbuild.vast.last_deploy import read_last_deploy

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
QUICK = RetryPolicy(attempts=4, base_delay=0.05, max_delay=0.2, total_time=20.0,
                    connect_timeout=5.0, read_timeout=20.0)
PUT = "PUT /api/v0/deployments/"
UPLOAD = "POST /blobs/upload/"


@pytest.fixture
def target(tmp_path: Path) -> Deployment:
    """The llm example with a 2 MB incompressible file, so that an upload takes many writes."""
    root = tmp_path / "examples"
    shutil.copytree(EXAMPLES, root, ignore=shutil.ignore_patterns(
        "__pycache__", "*.pyc", "out", ".vastbuild*", "plugins"))
    (root / "lib" / "weights.bin").write_bytes(_noise(2 << 20))
    vastfile = root / "llm" / "Vastfile"
    vastfile.write_text(vastfile.read_text() + "COPY ../lib/weights.bin /app/weights.bin\n")
    return load(vastfile)


def _noise(size: int) -> bytes:
    import hashlib

    out, block = bytearray(), b"seed"
    while len(out) < size:
        block = hashlib.sha256(block).digest()
        out += block
    return bytes(out[:size])


def deploy(server: RunningDevServer, model: Deployment, cache: Path,
           retry: RetryPolicy = QUICK) -> list[DeployOutcome]:
    with VastClient(server.keys[0], api_url=server.url, autoscaler_url=server.url,
                    retry=retry) as client:
        return deploy_targets([model], client=client, cache_dir=cache)


def clear_faults(server: RunningDevServer) -> None:
    requests.delete(f"{server.url}/_dev/faults", timeout=10,
                    headers={"X-Dev-Admin-Token": server.admin_token}).raise_for_status()


def armed(server: RunningDevServer) -> list[dict[str, object]]:
    """The faults not yet fired: empty once the client has met every one."""
    answer = requests.get(f"{server.url}/_dev/faults", timeout=10,
                          headers={"X-Dev-Admin-Token": server.admin_token})
    return answer.json()["faults"]


def assert_fully_deployed(server: RunningDevServer, outcome: DeployOutcome, cache: Path) -> None:
    """The server's current version is this build, and its blob is the built file, whole."""
    client = VastClient(server.keys[0], api_url=server.url, autoscaler_url=server.url)
    assert armed(server) == []
    record = client.get_deployment(outcome.deployment_id)
    assert record["file_hash"] == outcome.hash
    blob = requests.get(client.get_download_url(outcome.deployment_id), timeout=30)
    assert blob.status_code == 200
    assert blob.content == outcome.artifact.read_bytes()
    assert read_last_deploy(cache, server.url, outcome.name, outcome.tag) is not None


def assert_nothing_half_done(server: RunningDevServer, model: Deployment, cache: Path) -> None:
    client = VastClient(server.keys[0], api_url=server.url, autoscaler_url=server.url)
    assert [d for d in client.list_deployments() if d["name"] == model.name] == []
    assert read_last_deploy(cache, server.url, model.name, model.tag) is None


def test_500s_on_registration_are_retried(
        dev_server: RunningDevServer, target: Deployment, tmp_path: Path) -> None:
    dev_server.inject_fault(PUT, "error", status=500, count=2)
    [outcome] = deploy(dev_server, target, tmp_path / "cache")
    assert (outcome.action, outcome.uploaded) == ("created", True)
    assert_fully_deployed(dev_server, outcome, tmp_path / "cache")


def test_429_with_retry_after_is_waited_out(
        dev_server: RunningDevServer, target: Deployment, tmp_path: Path) -> None:
    dev_server.inject_fault(PUT, "throttle", retry_after=1, count=1)
    dev_server.inject_fault("GET /api/v0/deployments/", "throttle", retry_after=1, count=1)
    [outcome] = deploy(dev_server, target, tmp_path / "cache")
    assert outcome.action == "created"
    assert_fully_deployed(dev_server, outcome, tmp_path / "cache")


def test_a_connection_reset_mid_upload_is_retried_whole(
        dev_server: RunningDevServer, target: Deployment, tmp_path: Path) -> None:
    dev_server.inject_fault(UPLOAD, "reset", after_bytes=256 << 10, count=2)
    [outcome] = deploy(dev_server, target, tmp_path / "cache")
    assert outcome.uploaded
    assert_fully_deployed(dev_server, outcome, tmp_path / "cache")


def test_an_expired_upload_url_is_registered_again_once(
        dev_server: RunningDevServer, target: Deployment, tmp_path: Path) -> None:
    dev_server.inject_fault(PUT, "expired_url", count=1)
    [outcome] = deploy(dev_server, target, tmp_path / "cache")
    assert (outcome.action, outcome.uploaded) == ("created", True)
    assert_fully_deployed(dev_server, outcome, tmp_path / "cache")


def test_an_upload_url_that_expires_twice_is_reported_and_undone(
        dev_server: RunningDevServer, target: Deployment, tmp_path: Path) -> None:
    dev_server.inject_fault(PUT, "expired_url", count=2)
    with pytest.raises(VastbuildError) as caught:
        deploy(dev_server, target, tmp_path / "cache")
    assert "refused twice" in caught.value.message
    assert "deleted again" in caught.value.message
    assert_nothing_half_done(dev_server, target, tmp_path / "cache")


def test_an_upload_that_keeps_failing_is_reported_and_undone(
        dev_server: RunningDevServer, target: Deployment, tmp_path: Path) -> None:
    dev_server.inject_fault(UPLOAD, "reset", after_bytes=64 << 10, count=100)
    with pytest.raises(VastbuildError) as caught:
        deploy(dev_server, target, tmp_path / "cache")
    assert "gave up after 4 attempts" in caught.value.message
    assert_nothing_half_done(dev_server, target, tmp_path / "cache")


def _with_changed_code(target: Deployment) -> Deployment:
    """The target after a line of its CODE changed: a Tier 2 soft update."""
    code = target.code.path
    code.write_text(code.read_text() + "\nRETRIES = 3\n")
    return load(target.vastfile)


def test_a_failed_update_upload_keeps_the_old_version_serving(
        dev_server: RunningDevServer, target: Deployment, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    [first] = deploy(dev_server, target, cache)
    changed = _with_changed_code(target)
    dev_server.inject_fault(UPLOAD, "error", status=503, count=100)
    with pytest.raises(VastbuildError) as caught:
        deploy(dev_server, changed, cache)
    assert "no rolling update was started" in caught.value.message
    client = VastClient(dev_server.keys[0], api_url=dev_server.url, autoscaler_url=dev_server.url)
    groups = {g["id"]: g for g in client.list_workergroups()}
    assert groups[first.workergroup_id]["rolling_updates"] == 0
    # the local record still describes the version that has its blob
    last = read_last_deploy(cache, dev_server.url, first.name, first.tag)
    assert last is not None and last.snapshot.file_hash == first.hash
    # and the next deploy finishes the job: the server still asks for the file
    clear_faults(dev_server)
    dev_server.inject_fault(UPLOAD, "error", status=503, count=1)  # and one more blip
    [second] = deploy(dev_server, changed, cache)
    assert second.uploaded and second.hash != first.hash
    assert_fully_deployed(dev_server, second, cache)
    # the rolling update the failed deploy never started is started now
    assert (second.action, second.rolling_update) == ("exists", True)
    groups = {g["id"]: g for g in client.list_workergroups()}
    assert groups[first.workergroup_id]["rolling_updates"] == 1


def test_a_rolling_update_that_failed_is_started_by_the_next_deploy(
        dev_server: RunningDevServer, target: Deployment, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    [first] = deploy(dev_server, target, cache)
    changed = _with_changed_code(target)
    dev_server.inject_fault("POST /update_workers/", "error", status=503, count=100)
    with pytest.raises(VastbuildError):
        deploy(dev_server, changed, cache)
    client = VastClient(dev_server.keys[0], api_url=dev_server.url, autoscaler_url=dev_server.url)
    groups = {g["id"]: g for g in client.list_workergroups()}
    assert groups[first.workergroup_id]["rolling_updates"] == 0
    clear_faults(dev_server)
    with VastClient(dev_server.keys[0], api_url=dev_server.url,
                    autoscaler_url=dev_server.url) as planner:
        [planned] = plan_deploy([changed], client=planner, cache_dir=cache)
    assert planned.rollout_pending and ROLLOUT_PENDING in planned.decision.reasons
    [second] = deploy(dev_server, changed, cache)
    assert (second.action, second.uploaded, second.rolling_update) == ("exists", False, True)
    groups = {g["id"]: g for g in client.list_workergroups()}
    assert groups[first.workergroup_id]["rolling_updates"] == 1
    # once recorded, nothing is pending any more
    [third] = deploy(dev_server, changed, cache)
    assert (third.action, third.rolling_update) == ("exists", False)


def test_a_persistent_500_registers_nothing(
        dev_server: RunningDevServer, target: Deployment, tmp_path: Path) -> None:
    dev_server.inject_fault(PUT, "error", status=500, count=100)
    with pytest.raises(VastbuildError) as caught:
        deploy(dev_server, target, tmp_path / "cache")
    assert "HTTP 500" in caught.value.message
    clear_faults(dev_server)
    assert_nothing_half_done(dev_server, target, tmp_path / "cache")


def test_500s_on_the_rolling_update_are_retried(
        dev_server: RunningDevServer, target: Deployment, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    deploy(dev_server, target, cache)
    code = target.code.path
    code.write_text(code.read_text() + "\nRETRIES = 3\n")
    dev_server.inject_fault("POST /update_workers/", "error", status=502, count=2)
    [outcome] = deploy(dev_server, load(target.vastfile), cache)
    assert (outcome.action, outcome.rolling_update) == ("soft_update", True)
    assert_fully_deployed(dev_server, outcome, cache)
