"""The dev server over real HTTP: every API route, the tiers, uploads, downloads, isolation.

One server process serves the whole module; each test registers deployments
under its own name, so tests do not see each other's records except where a
test lists everything an account holds (those use the second key's fresh view
or compare ids, never counts).
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
import requests

if TYPE_CHECKING:
    from conftest import RunningDevServer

TIMEOUT = 10


@pytest.fixture
def server(dev_server_module: RunningDevServer) -> RunningDevServer:
    return dev_server_module


def unique_name() -> str:
    return f"app-{uuid.uuid4().hex[:10]}"


def body(name: str, content: bytes | None = None, **fields: Any) -> dict[str, Any]:
    """A registration; the content defaults to one of the name's own, so no other test has it."""
    content = code_of(name) if content is None else content
    return {"name": name, "image": "vastai/base-image:cuda-12", "tag": "default",
            "file_hash": hashlib.sha256(content).hexdigest(), "file_size": len(content),
            "env": "-p 3000:3000/tcp -e REPORT_ADDR=https://run.vast.ai",
            "search_params": "verified=true rentable=true rented=false", "storage": 50,
            **fields}


def code_of(name: str) -> bytes:
    return f"code of {name}".encode()


def put(server: RunningDevServer, document: dict[str, Any], key: int = 0) -> dict[str, Any]:
    answer = requests.put(f"{server.url}/api/v0/deployments/", json=document,
                          headers=server.auth(key), timeout=TIMEOUT)
    assert answer.status_code == 200, answer.text
    return answer.json()


def upload(answer: dict[str, Any], content: bytes) -> requests.Response:
    """The SDK's upload: every field first, then the file part."""
    return requests.post(answer["upload_url"], data=answer["upload_fields"],
                         files={"file": ("deployment.tar.gz", content, "application/gzip")},
                         timeout=TIMEOUT)


def deploy(server: RunningDevServer, name: str, content: bytes | None = None, key: int = 0,
           **fields: Any) -> dict[str, Any]:
    content = code_of(name) if content is None else content
    answer = put(server, body(name, content, **fields), key)
    if "upload_url" in answer:
        assert upload(answer, content).status_code == 204
    return answer


def get(server: RunningDevServer, path: str, key: int = 0) -> requests.Response:
    return requests.get(server.url + path, headers=server.auth(key), timeout=TIMEOUT)


# registration and the tier table


def test_a_new_deployment_is_created_and_asks_for_its_upload(server: RunningDevServer) -> None:
    answer = put(server, body(unique_name()))
    assert answer["success"] is True and answer["action"] == "created"
    assert {"deployment_id", "endpoint_id", "workergroup_id"} <= set(answer)
    assert len({answer["deployment_id"], answer["endpoint_id"], answer["workergroup_id"]}) == 3
    assert answer["upload_url"].startswith(server.url + "/")
    assert {"key", "policy", "x-amz-signature"} <= set(answer["upload_fields"])


@pytest.mark.parametrize(("change", "action", "wants_upload"), [
    ({}, "exists", False),
    ({"max_workers": 4, "cold_workers": 1}, "autoscale_update", False),
    ({"ttl": 900}, "autoscale_update", False),
    ({"version_label": "v2"}, "autoscale_update", False),
    ({"new_code": True}, "soft_update", True),
    ({"image": "vastai/base-image:cuda-13"}, "hard_update", False),
    ({"env": "-p 3000:3000/tcp -p 8000:8000/tcp"}, "hard_update", False),
    ({"search_params": "verified=true gpu_ram>=48"}, "hard_update", False),
    ({"storage": 100}, "hard_update", False),
    ({"image": "vastai/base-image:cuda-13", "new_code": True}, "hard_update", True),
])
def test_each_tier_gets_its_action(server: RunningDevServer, change: dict[str, Any], action: str,
                                   wants_upload: bool) -> None:
    name = unique_name()
    first = deploy(server, name)
    change = dict(change)
    content = code_of(name) + b" v2" if change.pop("new_code", False) else None
    again = put(server, body(name, content, **change))
    assert again["action"] == action
    assert ("upload_url" in again) is wants_upload
    assert (again["deployment_id"], again["endpoint_id"], again["workergroup_id"]) == (
        first["deployment_id"], first["endpoint_id"], first["workergroup_id"])


def test_a_new_tag_is_a_new_deployment_with_its_own_endpoint(server: RunningDevServer) -> None:
    name = unique_name()
    first = deploy(server, name)
    other = put(server, body(name, tag="canary"))
    assert other["action"] == "created"
    assert "upload_url" not in other  # the account already has this blob
    assert other["deployment_id"] != first["deployment_id"]
    assert other["endpoint_id"] != first["endpoint_id"]


def test_an_upload_is_asked_for_until_the_blob_arrives(server: RunningDevServer) -> None:
    name = unique_name()
    first = put(server, body(name))
    again = put(server, body(name))
    assert again["action"] == "exists" and "upload_url" in again
    assert upload(again, code_of(name)).status_code == 204
    assert "upload_url" not in put(server, body(name))
    assert first["deployment_id"] == again["deployment_id"]


def test_every_change_adds_a_version(server: RunningDevServer) -> None:
    name = unique_name()
    deployment_id = deploy(server, name)["deployment_id"]
    put(server, body(name))  # exists: no version
    deploy(server, name, name.encode() + b" v2", version_label="second")
    put(server, body(name, name.encode() + b" v2", version_label="second", image="other:1"))
    answer = get(server, f"/api/v0/deployment/{deployment_id}/versions/")
    assert answer.status_code == 200 and answer.json()["success"] is True
    versions = answer.json()["versions"]
    assert [v["action"] for v in versions] == ["created", "soft_update", "hard_update"]
    assert [v["version"] for v in versions] == [1, 2, 3]
    assert versions[1]["file_hash"] == hashlib.sha256(name.encode() + b" v2").hexdigest()
    assert versions[1]["changed"] == ["file_hash", "version_label"]
    assert versions[2]["version_label"] == "second" and versions[2]["image"] == "other:1"
    record = get(server, f"/api/v0/deployment/{deployment_id}/").json()["deployment"]
    assert record["current_version_id"] == versions[-1]["id"]
    assert record["last_healthy_version_id"] == versions[-1]["id"]  # v2's blob is there


@pytest.mark.parametrize("document", [
    {"image": "x"},
    {"name": "x", "image": "x", "file_hash": "ab", "file_size": "big"},
    {"name": "x", "image": "x", "file_hash": "a/b", "file_size": 1},
])
def test_a_bad_registration_is_a_400_naming_the_field(server: RunningDevServer,
                                                      document: dict[str, Any]) -> None:
    answer = requests.put(f"{server.url}/api/v0/deployments/", json=document,
                          headers=server.auth(), timeout=TIMEOUT)
    assert answer.status_code == 400
    assert answer.json()["success"] is False and "field" in answer.json()["msg"]


def test_malformed_json_is_a_400(server: RunningDevServer) -> None:
    answer = requests.put(f"{server.url}/api/v0/deployments/", data=b"{nope",
                          headers=server.auth(), timeout=TIMEOUT)
    assert answer.status_code == 400


# reading back and managing


def test_the_record_has_the_fields_the_sdk_reads(server: RunningDevServer) -> None:
    name = unique_name()
    answer = deploy(server, name, ttl=120)
    for path in (f"/api/v0/deployment/{answer['deployment_id']}/",
                 f"/api/v0/deployment/{answer['deployment_id']}"):
        record = get(server, path).json()["deployment"]
        assert {"id", "name", "tag", "endpoint_id", "endpoint_state", "worker_count", "s3_key",
                "env", "image", "storage", "search_params", "file_hash", "current_version_id",
                "last_healthy_version_id", "ttl", "last_client_heartbeat", "created_at",
                "updated_at"} <= set(record)
        assert (record["name"], record["tag"], record["ttl"]) == (name, "default", 120)
    listed = [get(server, path).json()["deployments"]
              for path in ("/api/v0/deployments", "/api/v0/deployments/")]
    assert all(answer["deployment_id"] in {d["id"] for d in found} for found in listed)


def test_heartbeat_stop_and_start(server: RunningDevServer) -> None:
    deployment_id = deploy(server, unique_name(), ttl=60)["deployment_id"]
    base = f"{server.url}/api/v0/deployment/{deployment_id}"
    assert requests.post(f"{base}/heartbeat/", headers=server.auth(), timeout=TIMEOUT).json() == {
        "success": True}
    record = get(server, f"/api/v0/deployment/{deployment_id}/").json()["deployment"]
    assert record["last_client_heartbeat"] is not None
    assert requests.post(f"{base}/stop/", headers=server.auth(), timeout=TIMEOUT).ok
    assert get(server, f"/api/v0/deployment/{deployment_id}/").json()["deployment"][
        "endpoint_state"] == "stopped"
    assert requests.post(f"{base}/start", headers=server.auth(), timeout=TIMEOUT).ok
    assert get(server, f"/api/v0/deployment/{deployment_id}/").json()["deployment"][
        "endpoint_state"] == "active"


def test_delete_by_id_and_by_name(server: RunningDevServer) -> None:
    first, second = unique_name(), unique_name()
    first_id = deploy(server, first)["deployment_id"]
    second_id = deploy(server, second, tag="blue")["deployment_id"]
    gone = requests.delete(f"{server.url}/api/v0/deployment/{first_id}/", headers=server.auth(),
                           timeout=TIMEOUT)
    assert gone.status_code == 200
    assert get(server, f"/api/v0/deployment/{first_id}/").status_code == 404
    wrong_tag = requests.delete(f"{server.url}/api/v0/deployments/", headers=server.auth(),
                                json={"name": second, "tag": "green"}, timeout=TIMEOUT)
    assert wrong_tag.status_code == 404
    by_name = requests.delete(f"{server.url}/api/v0/deployments/", headers=server.auth(),
                              json={"name": second, "tag": "blue"}, timeout=TIMEOUT)
    answer = by_name.json()
    assert answer.pop("deleted_workers")  # its simulated workers went with it
    assert answer == {"success": True, "count": 1, "deployment_id": second_id,
                      "failed_workers": []}
    assert get(server, f"/api/v0/deployment/{second_id}/").status_code == 404
    assert put(server, body(first))["action"] == "created"  # the name is free again


def test_workergroups_endpoints_and_a_rolling_update(server: RunningDevServer) -> None:
    name = unique_name()
    answer = deploy(server, name, max_workers=7)
    groups = get(server, "/api/v0/workergroups/").json()["results"]
    group = next(g for g in groups if g["endpoint_id"] == answer["endpoint_id"])
    assert group["id"] == answer["workergroup_id"] and group["rolling_updates"] == 0
    endpoints = get(server, "/api/v0/endptjobs/").json()["results"]
    endpoint = next(e for e in endpoints if e["id"] == answer["endpoint_id"])
    assert endpoint["max_workers"] == 7 and endpoint["cold_workers"] == 5
    assert {"endpoint_name", "api_key", "user_id", "created_at"} <= set(endpoint)
    assert get(server, f"/api/v0/endptjobs/{answer['endpoint_id']}/").json()["result"] == endpoint
    # the SDK's update_workers: key in the query and again in the body
    rolled = requests.post(f"{server.url}/update_workers/",
                           params={"api_key": server.keys[0]},
                           json={"workergroup_id": answer["workergroup_id"],
                                 "api_key": server.keys[0]}, timeout=TIMEOUT)
    assert rolled.json() == {"success": True, "workergroup_id": answer["workergroup_id"],
                             "rolling_updates": 1}
    record = get(server, f"/api/v0/deployment/{answer['deployment_id']}/").json()["deployment"]
    assert record["rolling_updates"] == 1


def test_the_health_route_needs_no_key(server: RunningDevServer) -> None:
    assert requests.get(f"{server.url}/healthz", timeout=TIMEOUT).json() == {"ok": True}


def test_routes_that_do_not_exist(server: RunningDevServer) -> None:
    assert get(server, "/api/v0/nothing/").status_code == 404
    assert get(server, "/api/v0/deployment/not-a-number/").status_code == 404
    wrong_method = requests.post(f"{server.url}/api/v0/deployments/", headers=server.auth(),
                                 json={}, timeout=TIMEOUT)
    assert wrong_method.status_code == 405 and "PUT" in wrong_method.headers["Allow"]
    assert get(server, "/_dev/faults").status_code == 401  # an API key is no admin token


# authentication and isolation


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer not-a-key"},
                                     {"Authorization": "Basic abc"}])
def test_no_key_or_an_unknown_key_is_401(server: RunningDevServer,
                                         headers: dict[str, str]) -> None:
    for method, path in (("GET", "/api/v0/deployments/"), ("PUT", "/api/v0/deployments/"),
                         ("GET", "/api/v0/workergroups/"), ("GET", "/api/v0/endptjobs/"),
                         ("POST", "/update_workers/"), ("GET", "/api/v0/deployment/1/")):
        answer = requests.request(method, server.url + path, headers=headers, json={},
                                  timeout=TIMEOUT)
        assert answer.status_code == 401, (method, path)
        assert answer.json()["success"] is False


def test_the_sdk_query_parameter_key_is_accepted(server: RunningDevServer) -> None:
    answer = requests.put(f"{server.url}/api/v0/deployments/", json=body(unique_name()),
                          params={"api_key": server.keys[0]}, timeout=TIMEOUT)
    assert answer.status_code == 200 and answer.json()["action"] == "created"


@pytest.fixture
def first_account_deployment(server: RunningDevServer) -> Iterator[dict[str, Any]]:
    content = f"first account's code {uuid.uuid4()}".encode()
    answer = deploy(server, unique_name(), content)
    url = get(server, f"/api/v0/deployment/{answer['deployment_id']}/download_url/")
    yield {**answer, "download_url": url.json()["download_url"], "content": content}


def test_a_second_key_sees_nothing_of_the_first(server: RunningDevServer,
                                                first_account_deployment: dict[str, Any]) -> None:
    ids = first_account_deployment
    assert ids["deployment_id"] not in {d["id"] for d in get(
        server, "/api/v0/deployments/", key=1).json()["deployments"]}
    assert ids["workergroup_id"] not in {g["id"] for g in get(
        server, "/api/v0/workergroups/", key=1).json()["results"]}
    assert ids["endpoint_id"] not in {e["id"] for e in get(
        server, "/api/v0/endptjobs/", key=1).json()["results"]}
    deployment = f"{server.url}/api/v0/deployment/{ids['deployment_id']}"
    for method, url in (("GET", f"{deployment}/"), ("GET", f"{deployment}/versions/"),
                        ("GET", f"{deployment}/download_url/"), ("POST", f"{deployment}/stop/"),
                        ("POST", f"{deployment}/start/"), ("POST", f"{deployment}/heartbeat/"),
                        ("DELETE", f"{deployment}/"),
                        ("GET", f"{server.url}/api/v0/endptjobs/{ids['endpoint_id']}/")):
        answer = requests.request(method, url, headers=server.auth(1), timeout=TIMEOUT)
        assert answer.status_code == 404, (method, url)
    rolled = requests.post(f"{server.url}/update_workers/", headers=server.auth(1),
                           json={"workergroup_id": ids["workergroup_id"]}, timeout=TIMEOUT)
    assert rolled.status_code == 404
    # the first account's deployment is untouched
    record = get(server, f"/api/v0/deployment/{ids['deployment_id']}/").json()["deployment"]
    assert record["endpoint_state"] == "active" and record["rolling_updates"] == 0
    assert record["last_client_heartbeat"] is None


def test_a_second_key_cannot_reach_the_first_keys_blob(
        server: RunningDevServer, first_account_deployment: dict[str, Any]) -> None:
    signed = first_account_deployment["download_url"]
    unsigned = signed.split("?")[0]
    assert requests.get(unsigned, headers=server.auth(1), timeout=TIMEOUT).status_code == 403
    assert requests.get(unsigned, params={"api_key": server.keys[1]},
                        timeout=TIMEOUT).status_code == 403
    # B's own registration of A's content must upload B's own copy
    name = unique_name()
    content = first_account_deployment["content"]
    mine = put(server, body(name, content), key=1)
    assert "upload_url" in mine
    assert mine["upload_fields"]["key"] not in signed
    assert get(server, f"/api/v0/deployment/{mine['deployment_id']}/download_url/",
               key=1).status_code == 404  # not uploaded yet: A's copy does not count
    # B's upload form cannot be bent to A's key
    forged = dict(mine["upload_fields"], key=signed.split("/blobs/")[1].split("?")[0])
    answer = requests.post(mine["upload_url"], data=forged,
                           files={"file": ("x", content)}, timeout=TIMEOUT)
    assert answer.status_code == 403


def test_the_same_name_in_two_accounts_is_two_deployments(server: RunningDevServer) -> None:
    name = unique_name()
    mine, theirs = deploy(server, name), deploy(server, name, key=1)
    assert theirs["action"] == "created"
    assert mine["deployment_id"] != theirs["deployment_id"]


# blobs


def test_upload_then_download_through_the_signed_url(server: RunningDevServer) -> None:
    content = os.urandom(300_000)
    answer = deploy(server, unique_name(), content)
    url = get(server, f"/api/v0/deployment/{answer['deployment_id']}/download_url/")
    assert url.json()["success"] is True
    fetched = requests.get(url.json()["download_url"], timeout=TIMEOUT)
    assert fetched.status_code == 200 and fetched.content == content
    assert fetched.headers["Content-Type"] == "application/gzip"


def test_download_url_before_the_upload_is_404(server: RunningDevServer) -> None:
    answer = put(server, body(unique_name(), b"never uploaded"))
    missing = get(server, f"/api/v0/deployment/{answer['deployment_id']}/download_url/")
    assert missing.status_code == 404 and missing.json()["success"] is False


def test_a_tampered_download_url_is_403(server: RunningDevServer,
                                        first_account_deployment: dict[str, Any]) -> None:
    url = first_account_deployment["download_url"]
    later = url.replace("expires=", "expires=9")
    assert requests.get(later, timeout=TIMEOUT).status_code == 403
    other_signature = url[:-4] + ("0000" if not url.endswith("0000") else "1111")
    assert requests.get(other_signature, timeout=TIMEOUT).status_code == 403


def multipart(parts: list[tuple[str, bytes]], boundary: str = "vbtestboundary") -> bytes:
    chunks = []
    for name, value in parts:
        filename = '; filename="deployment.tar.gz"' if name == "file" else ""
        chunks.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"'
                      f"{filename}\r\n\r\n".encode() + value + b"\r\n")
    return b"".join(chunks) + f"--{boundary}--\r\n".encode()


FORM_TYPE = {"Content-Type": "multipart/form-data; boundary=vbtestboundary"}


def test_a_streamed_chunked_upload_is_accepted(server: RunningDevServer) -> None:
    content = os.urandom(1_000_000)
    name = unique_name()
    answer = put(server, body(name, content))
    form = multipart([*((k, v.encode()) for k, v in answer["upload_fields"].items()),
                      ("file", content)])

    def pieces() -> Iterator[bytes]:  # no length: requests sends it chunked
        for start in range(0, len(form), 65_536):
            yield form[start:start + 65_536]

    sent = requests.post(answer["upload_url"], data=pieces(), headers=FORM_TYPE, timeout=TIMEOUT)
    assert sent.status_code == 204, sent.text
    assert "upload_url" not in put(server, body(name, content))


@pytest.mark.parametrize(("mangle", "status", "code"), [
    ("file_first", 400, "InvalidArgument"),
    ("too_small", 400, "EntityTooSmall"),
    ("too_large", 400, "EntityTooLarge"),
    ("bad_signature", 403, "SignatureDoesNotMatch"),
    ("no_file", 400, "InvalidArgument"),
    ("truncated", 400, "IncompleteBody"),
])
def test_a_bad_upload_is_refused_and_stores_nothing(server: RunningDevServer, mangle: str,
                                                    status: int, code: str) -> None:
    content = b"the right size"
    name = unique_name()
    answer = put(server, body(name, content))
    fields = [(k, v.encode()) for k, v in answer["upload_fields"].items()]
    if mangle == "bad_signature":
        fields = [(k, b"0" * 64 if k == "x-amz-signature" else v) for k, v in fields]
    parts = {
        "file_first": [("file", content), *fields],
        "too_small": [*fields, ("file", content[:-1])],
        "too_large": [*fields, ("file", content + b"!")],
        "no_file": fields,
    }.get(mangle, [*fields, ("file", content)])
    form = multipart(parts)
    if mangle == "truncated":
        form = form[:-10]
    refused = requests.post(answer["upload_url"], data=form, headers=FORM_TYPE, timeout=TIMEOUT)
    assert refused.status_code == status, refused.text
    assert f"<Code>{code}</Code>" in refused.text
    assert "upload_url" in put(server, body(name, content))  # still no blob
    assert list((server.data_dir / "tmp").iterdir()) == []


def test_an_upload_that_is_not_a_form_is_refused(server: RunningDevServer) -> None:
    answer = put(server, body(unique_name(), b"abc"))
    refused = requests.post(answer["upload_url"], data=b"abc", timeout=TIMEOUT,
                            headers={"Content-Type": "application/octet-stream"})
    assert refused.status_code == 400
