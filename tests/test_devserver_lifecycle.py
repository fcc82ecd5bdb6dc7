"""The dev server's lifecycle routes and simulated workers, over real HTTP.

One server process (a fast worker clock: 0.05 s per state transition) serves
the module; each test registers its own deployment name. Waits poll with a
deadline and never sleep blindly: a worker reaches idle in a few steps.
"""

from __future__ import annotations

import hashlib
import re
import time
import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest
import requests

if TYPE_CHECKING:
    from conftest import RunningDevServer, StartDevServer

TIMEOUT = 10
STEP = 0.05
#: How long any wait for the simulated workers may take before the test fails.
DEADLINE = 5.0
FAST_CLOCK = {"VASTBUILD_DEV_SERVER_WORKER_STEP": str(STEP)}


@pytest.fixture(scope="module")
def server(start_dev_server: StartDevServer) -> Iterator[RunningDevServer]:
    running = start_dev_server(env=FAST_CLOCK)
    yield running
    running.stop()


def registration(name: str, content: bytes, **fields: Any) -> dict[str, Any]:
    return {"name": name, "image": "vastai/base-image:cuda-12", "cold_workers": 2,
            "file_hash": hashlib.sha256(content).hexdigest(), "file_size": len(content),
            **fields}


def put(server: RunningDevServer, document: dict[str, Any], key: int = 0) -> dict[str, Any]:
    answer = requests.put(f"{server.url}/api/v0/deployments/", json=document,
                          headers=server.auth(key), timeout=TIMEOUT)
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


def upload(answer: dict[str, Any], content: bytes) -> None:
    sent = requests.post(answer["upload_url"], data=answer["upload_fields"],
                         files={"file": ("deployment.tar.gz", content, "application/gzip")},
                         timeout=TIMEOUT)
    assert sent.status_code == 204, sent.text


def deploy(server: RunningDevServer, name: str, content: bytes, key: int = 0,
           **fields: Any) -> dict[str, Any]:
    answer = put(server, registration(name, content, **fields), key)
    if "upload_url" in answer:
        upload(answer, content)
    return answer


def call(server: RunningDevServer, method: str, path: str, key: int = 0,
         **body: Any) -> requests.Response:
    return requests.request(method, server.url + path, json=body, headers=server.auth(key),
                            timeout=TIMEOUT)


def workers(server: RunningDevServer, endpoint_id: int, key: int = 0) -> list[dict[str, Any]]:
    answer = call(server, "POST", "/get_endpoint_workers/", key, id=endpoint_id)
    assert answer.status_code == 200, answer.text
    listed = answer.json()
    assert isinstance(listed, list)
    return listed


def logs(server: RunningDevServer, endpoint_id: int, **body: Any) -> dict[str, str]:
    answer = call(server, "POST", "/get_endpoint_logs/", id=endpoint_id,
                  api_key=server.keys[0], **body)
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


def deployment(server: RunningDevServer, deployment_id: int) -> dict[str, Any]:
    answer = call(server, "GET", f"/api/v0/deployment/{deployment_id}/")
    assert answer.status_code == 200, answer.text
    return answer.json()["deployment"]  # type: ignore[no-any-return]


def wait_for(server: RunningDevServer, endpoint_id: int,
             done: Callable[[list[dict[str, Any]]], bool]) -> list[dict[str, Any]]:
    """Poll the endpoint's workers until ``done`` holds (fail after DEADLINE)."""
    deadline = time.monotonic() + DEADLINE
    while True:
        found = workers(server, endpoint_id)
        if done(found):
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"workers never got there: {found}")
        time.sleep(STEP / 2)


def all_idle_on(version_id: int) -> Callable[[list[dict[str, Any]]], bool]:
    return lambda found: bool(found) and all(
        w["status"] == "idle" and w["version_id"] == version_id for w in found)


def unique_name() -> str:
    return f"life-{uuid.uuid4().hex[:10]}"


def test_a_new_deployments_workers_come_up_idle(server: RunningDevServer) -> None:
    name = unique_name()
    content = name.encode()
    answer = deploy(server, name, content)
    version = deployment(server, answer["deployment_id"])["current_version_id"]
    found = wait_for(server, answer["endpoint_id"], all_idle_on(version))
    assert len(found) == 2
    for worker in found:
        assert {"id", "status", "cur_load", "new_load", "cur_load_rolling_avg", "cur_perf",
                "perf", "measured_perf", "dlperf", "reliability", "reqs_working", "disk_usage",
                "loaded_at", "started_at", "gpu_name", "version_id", "file_hash"} <= set(worker)
        assert worker["file_hash"] == hashlib.sha256(content).hexdigest()
        assert worker["started_at"] <= worker["loaded_at"]
    assert deployment(server, answer["deployment_id"])["worker_count"] == 2
    trace = logs(server, answer["endpoint_id"])["trace"]
    assert "created -> loading" in trace and "loading -> idle" in trace


def test_a_worker_waits_for_the_upload_of_its_version(server: RunningDevServer) -> None:
    name = unique_name()
    answer = put(server, registration(name, name.encode()))
    time.sleep(STEP * 5)  # long past the time it would be idle
    assert {w["status"] for w in workers(server, answer["endpoint_id"])} == {"loading"}
    upload(answer, name.encode())
    version = deployment(server, answer["deployment_id"])["current_version_id"]
    wait_for(server, answer["endpoint_id"], all_idle_on(version))


def test_a_soft_update_rolls_every_worker_through_update_ready(server: RunningDevServer) -> None:
    name = unique_name()
    first = deploy(server, name, name.encode())
    old = deployment(server, first["deployment_id"])["current_version_id"]
    wait_for(server, first["endpoint_id"], all_idle_on(old))
    new_content = name.encode() + b" v2"
    update = put(server, registration(name, new_content))
    assert update["action"] == "soft_update"
    new = deployment(server, first["deployment_id"])["current_version_id"]
    # registered, not rolled: the workers keep serving the old version
    assert all_idle_on(old)(workers(server, first["endpoint_id"]))
    rolled = requests.post(f"{server.url}/update_workers/",
                           json={"workergroup_id": update["workergroup_id"],
                                 "api_key": server.keys[0]}, timeout=TIMEOUT)
    assert rolled.status_code == 200 and rolled.json()["success"] is True
    time.sleep(STEP * 4)  # the new blob is not there yet: nobody can go idle on it
    assert {w["status"] for w in workers(server, first["endpoint_id"])} == {"update_ready"}
    upload(update, new_content)
    found = wait_for(server, first["endpoint_id"], all_idle_on(new))
    assert {w["file_hash"] for w in found} == {hashlib.sha256(new_content).hexdigest()}
    trace = logs(server, first["endpoint_id"])["trace"]
    assert trace.count("idle -> update_ready") == 2 and trace.count("update_ready -> idle") == 2


def test_a_hard_update_reboots_the_workers(server: RunningDevServer) -> None:
    name = unique_name()
    first = deploy(server, name, name.encode())
    old = deployment(server, first["deployment_id"])["current_version_id"]
    wait_for(server, first["endpoint_id"], all_idle_on(old))
    assert put(server, registration(name, name.encode(), image="other:2"))["action"] == \
        "hard_update"
    new = deployment(server, first["deployment_id"])["current_version_id"]
    wait_for(server, first["endpoint_id"], all_idle_on(new))
    trace = logs(server, first["endpoint_id"])["trace"]
    assert trace.count("idle -> rebooting") == 2 and trace.count("rebooting -> loading") == 2


def test_stop_and_start(server: RunningDevServer) -> None:
    name = unique_name()
    answer = deploy(server, name, name.encode())
    endpoint = answer["endpoint_id"]
    version = deployment(server, answer["deployment_id"])["current_version_id"]
    wait_for(server, endpoint, all_idle_on(version))
    stopped = call(server, "PUT", f"/api/v0/endptjobs/{endpoint}/", endpoint_state="stopped",
                   cold_workers=None)
    assert stopped.json() == {"success": True}
    wait_for(server, endpoint, lambda found: {w["status"] for w in found} == {"stopped"})
    assert call(server, "GET", f"/api/v0/endptjobs/{endpoint}/").json()["result"][
        "endpoint_state"] == "stopped"
    started = call(server, "POST", f"/api/v0/deployment/{answer['deployment_id']}/start/")
    assert started.json() == {"success": True, "endpoint_state": "active"}
    wait_for(server, endpoint, all_idle_on(version))
    assert call(server, "PUT", f"/api/v0/endptjobs/{endpoint}/",
                endpoint_state="asleep").status_code == 400


def test_cold_workers_scale_the_workergroup(server: RunningDevServer) -> None:
    name = unique_name()
    answer = deploy(server, name, name.encode())
    endpoint = answer["endpoint_id"]
    assert call(server, "PUT", f"/api/v0/endptjobs/{endpoint}/", cold_workers=3).ok
    wait_for(server, endpoint, lambda found: len(found) == 3 and all(
        w["status"] == "idle" for w in found))
    assert deploy(server, name, name.encode(), cold_workers=1)["action"] == "autoscale_update"
    assert len(workers(server, endpoint)) == 1


def test_deleting_the_endpoint_reports_its_workers(server: RunningDevServer) -> None:
    name = unique_name()
    answer = deploy(server, name, name.encode())
    ids = sorted(w["id"] for w in workers(server, answer["endpoint_id"]))
    gone = call(server, "DELETE", f"/api/v0/endptjobs/{answer['endpoint_id']}/")
    assert gone.status_code == 200
    assert gone.json() == {"success": True, "deleted_workers": ids, "failed_workers": [],
                           "msg": "Deleted endpoint job and 2 workers"}
    assert call(server, "GET", f"/api/v0/deployment/{answer['deployment_id']}/").status_code == 404
    assert answer["workergroup_id"] not in {
        g["id"] for g in call(server, "GET", "/api/v0/autojobs/").json()["results"]}
    assert call(server, "POST", "/get_endpoint_workers/", id=answer["endpoint_id"]
                ).status_code == 404


def test_deleting_the_workergroup_destroys_its_workers(server: RunningDevServer) -> None:
    name = unique_name()
    answer = deploy(server, name, name.encode())
    ids = sorted(w["id"] for w in workers(server, answer["endpoint_id"]))
    gone = call(server, "DELETE", f"/api/v0/autojobs/{answer['workergroup_id']}/")
    assert gone.json()["deleted_workers"] == ids and gone.json()["failed_workers"] == []
    assert workers(server, answer["endpoint_id"]) == []
    again = call(server, "DELETE", f"/api/v0/workergroups/{answer['workergroup_id']}/")
    assert again.status_code == 404 and again.json()["error"] == "no_such_workergroup"


def test_delete_by_name_without_a_tag_deletes_every_tag(server: RunningDevServer) -> None:
    name = unique_name()
    blue = deploy(server, name, name.encode(), tag="blue")
    green = deploy(server, name, name.encode(), tag="green")
    ids = sorted(w["id"] for a in (blue, green) for w in workers(server, a["endpoint_id"]))
    gone = call(server, "DELETE", "/api/v0/deployments/", name=name)
    assert gone.json() == {"success": True, "count": 2, "deleted_workers": ids,
                           "failed_workers": []}
    for answer in (blue, green):
        assert call(server, "GET", f"/api/v0/deployment/{answer['deployment_id']}/"
                    ).status_code == 404
    by_id = deploy(server, name, name.encode())
    ids = sorted(w["id"] for w in workers(server, by_id["endpoint_id"]))
    gone = call(server, "DELETE", f"/api/v0/deployment/{by_id['deployment_id']}/")
    assert gone.json() == {"success": True, "deleted_workers": ids, "failed_workers": []}


_LINE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \[(info0|info1|trace|debug)\] .+")


def test_logs_have_four_levels_and_a_tail(server: RunningDevServer) -> None:
    name = unique_name()
    answer = deploy(server, name, name.encode())
    version = deployment(server, answer["deployment_id"])["current_version_id"]
    wait_for(server, answer["endpoint_id"], all_idle_on(version))
    every = logs(server, answer["endpoint_id"])
    assert set(every) == {"info0", "info1", "trace", "debug"}
    lines = {level: text.splitlines() for level, text in every.items()}
    assert all(_LINE.fullmatch(line) for line in lines["debug"])
    # each level holds its own lines and the terser ones
    assert len(lines["info0"]) < len(lines["info1"]) < len(lines["trace"]) < len(lines["debug"])
    assert set(lines["info0"]) <= set(lines["info1"]) <= set(lines["trace"]) <= set(
        lines["debug"])
    assert any("created" in line for line in lines["info0"])
    tailed = logs(server, answer["endpoint_id"], tail=2)
    assert {level: text.splitlines() for level, text in tailed.items()} == {
        level: found[-2:] for level, found in lines.items()}
    assert logs(server, answer["endpoint_id"], tail=10_000) == every
    assert set(logs(server, answer["endpoint_id"], tail=0).values()) == {""}
    group = call(server, "POST", "/get_autogroup_logs/", id=answer["workergroup_id"], tail=1)
    assert group.status_code == 200 and len(group.json()["trace"].splitlines()) == 1
    assert call(server, "POST", "/get_endpoint_logs/", id=answer["endpoint_id"],
                tail=-1).status_code == 400


def test_account_b_sees_none_of_account_as_workers_or_logs(server: RunningDevServer) -> None:
    name = unique_name()
    answer = deploy(server, name, name.encode())
    before = workers(server, answer["endpoint_id"])
    for path, body in (("/get_endpoint_workers/", {"id": answer["endpoint_id"]}),
                       ("/get_endpoint_logs/", {"id": answer["endpoint_id"]}),
                       ("/get_autogroup_logs/", {"id": answer["workergroup_id"]})):
        refused = call(server, "POST", path, 1, **body)
        assert refused.status_code == 404 and name not in refused.text
    for method, path in (("PUT", f"/api/v0/endptjobs/{answer['endpoint_id']}/"),
                         ("DELETE", f"/api/v0/endptjobs/{answer['endpoint_id']}/"),
                         ("DELETE", f"/api/v0/autojobs/{answer['workergroup_id']}/")):
        assert call(server, method, path, 1, endpoint_state="stopped").status_code == 404
    assert [w["id"] for w in workers(server, answer["endpoint_id"])] == [
        w["id"] for w in before]
    assert requests.post(f"{server.url}/get_endpoint_workers/",
                         json={"id": answer["endpoint_id"], "api_key": "not-a-key"},
                         timeout=TIMEOUT).status_code == 401


def test_a_ttl_without_heartbeats_deletes_the_deployment(server: RunningDevServer) -> None:
    name = unique_name()
    answer = deploy(server, name, name.encode(), ttl=1.0)
    beat = f"/api/v0/deployment/{answer['deployment_id']}/heartbeat/"
    for _ in range(3):  # heartbeats keep it past its TTL
        time.sleep(0.3)
        assert call(server, "POST", beat).status_code == 200
    time.sleep(1.3)
    assert call(server, "GET", f"/api/v0/deployment/{answer['deployment_id']}/").status_code == 404
    assert call(server, "POST", "/get_endpoint_workers/", id=answer["endpoint_id"]
                ).status_code == 404


def test_fail_workers_fails_the_next_rollout_only(start_dev_server: StartDevServer) -> None:
    failing = start_dev_server(env={**FAST_CLOCK, "VASTBUILD_DEV_SERVER_FAIL_WORKERS": "1"})
    try:
        answer = deploy(failing, "broken", b"broken", cold_workers=3)
        found = wait_for(failing, answer["endpoint_id"], lambda found: all(
            w["status"] in ("idle", "error") for w in found))
        errors = [w for w in found if w["status"] == "error"]
        assert len(errors) == 1
        line = f"worker {errors[0]['id']}: model failed to load: CUDA out of memory (simulated)"
        every = logs(failing, answer["endpoint_id"])
        assert line in every["info0"] and line in every["debug"]
        later = deploy(failing, "fine", b"fine", cold_workers=2)
        wait_for(failing, later["endpoint_id"], lambda found: len(found) == 2 and all(
            w["status"] == "idle" for w in found))
    finally:
        failing.stop()
