"""The Vast API routes: deployments, versions, endpoints, workergroups, the autoscaler.

Every handler acts on ``request.account`` only. An id of another account is
answered exactly like an id that does not exist (404), so that a key learns
nothing about what other keys hold.
"""

from __future__ import annotations

import time
from urllib.parse import urlencode

from vastbuild.devserver.context import Context
from vastbuild.devserver.database import blob_key
from vastbuild.devserver.faults import EXPIRED_URL
from vastbuild.devserver.messages import Request, Response, api_error, json_response
from vastbuild.devserver.registration import DEFAULT_TAG, RegistrationError, parse_registration
from vastbuild.devserver.signing import presign_post, sign_download

#: Where issued upload forms are posted (the object key travels in the form).
UPLOAD_PATH = "/blobs/upload/"
#: How far in the past an ``expired_url`` fault dates the URLs it spoils.
_SPOILED_BY_SECONDS = 60


def put_deployment(context: Context, request: Request) -> Response:
    try:
        registration = parse_registration(request.json, context.secret)
    except RegistrationError as exc:
        return api_error(400, "invalid_request", str(exc))
    now = time.time()
    registered = context.database.register(request.account, registration, now)
    answer: dict[str, object] = {
        "success": True,
        "action": registered.decision.action,
        "deployment_id": registered.deployment_id,
        "endpoint_id": registered.endpoint_id,
    }
    if not context.options.omit_workergroup_id:
        answer["workergroup_id"] = registered.workergroup_id
    if not registered.has_blob:
        expires_at = _expiry(context, request, now, context.options.upload_ttl)
        answer["upload_url"] = request.base_url + UPLOAD_PATH
        answer["upload_fields"] = presign_post(
            context.secret, blob_key(request.account, registration.file_hash),
            registration.file_size, expires_at, now)
    return json_response(200, answer)


def list_deployments(context: Context, request: Request) -> Response:
    return json_response(200, {"success": True,
                               "deployments": context.database.deployments(request.account)})


def get_deployment(context: Context, request: Request) -> Response:
    record = context.database.deployment(request.account, int(request.params[0]))
    if record is None:
        return _no_deployment(request)
    return json_response(200, {"success": True, "deployment": record})


def delete_deployment(context: Context, request: Request) -> Response:
    if not context.database.delete_deployment(request.account, int(request.params[0])):
        return _no_deployment(request)
    return json_response(200, {"success": True})


def delete_deployment_by_name(context: Context, request: Request) -> Response:
    body = request.json if isinstance(request.json, dict) else {}
    name, tag = body.get("name"), body.get("tag") or DEFAULT_TAG
    if not isinstance(name, str) or not name or not isinstance(tag, str):
        return api_error(400, "invalid_request",
                         "the body must be {\"name\": ..., \"tag\": ...} (tag optional)")
    deployment_id = context.database.find_deployment(request.account, name, tag)
    if deployment_id is None:
        return api_error(404, "not_found", f"no deployment named {name!r} with tag {tag!r}")
    context.database.delete_deployment(request.account, deployment_id)
    return json_response(200, {"success": True, "deployment_id": deployment_id})


def list_versions(context: Context, request: Request) -> Response:
    deployment_id = int(request.params[0])
    if context.database.deployment(request.account, deployment_id) is None:
        return _no_deployment(request)
    versions = context.database.versions(request.account, deployment_id)
    return json_response(200, {"success": True, "versions": versions})


def download_url(context: Context, request: Request) -> Response:
    record = context.database.deployment(request.account, int(request.params[0]))
    if record is None:
        return _no_deployment(request)
    if not context.database.has_blob(request.account, record["file_hash"]):
        return api_error(404, "no_blob",
                         f"the tarball {record['file_hash']} of deployment {record['id']} has "
                         "not been uploaded yet")
    expires = int(_expiry(context, request, time.time(), context.options.download_ttl))
    key = record["s3_key"]
    signature = sign_download(context.secret, key, expires)
    query = urlencode({"expires": expires, "signature": signature})
    return json_response(200, {"success": True,
                               "download_url": f"{request.base_url}/blobs/{key}?{query}"})


def heartbeat(context: Context, request: Request) -> Response:
    if not context.database.heartbeat(request.account, int(request.params[0]), time.time()):
        return _no_deployment(request)
    return json_response(200, {"success": True})


def stop_deployment(context: Context, request: Request) -> Response:
    return _set_state(context, request, "stopped")


def start_deployment(context: Context, request: Request) -> Response:
    return _set_state(context, request, "active")


def list_workergroups(context: Context, request: Request) -> Response:
    return json_response(200, {"success": True,
                               "results": context.database.workergroups(request.account)})


def list_endpoints(context: Context, request: Request) -> Response:
    return json_response(200, {"success": True,
                               "results": context.database.endpoints(request.account)})


def get_endpoint(context: Context, request: Request) -> Response:
    found = context.database.endpoints(request.account, int(request.params[0]))
    if not found:
        return api_error(404, "not_found", f"no endpoint {request.params[0]} in this account")
    return json_response(200, {"success": True, "result": found[0]})


def update_workers(context: Context, request: Request) -> Response:
    """The autoscaler's rolling update: recorded on the workergroup, since there are no workers."""
    body = request.json if isinstance(request.json, dict) else {}
    workergroup_id = body.get("workergroup_id")
    if isinstance(workergroup_id, bool) or not isinstance(workergroup_id, int):
        return api_error(400, "invalid_request", "the body must carry an integer 'workergroup_id'")
    record = context.database.rolling_update(request.account, workergroup_id, time.time())
    if record is None:
        return api_error(404, "not_found", f"no workergroup {workergroup_id} in this account")
    return json_response(200, {"success": True, "workergroup_id": workergroup_id,
                               "rolling_updates": record["rolling_updates"]})


def _set_state(context: Context, request: Request, state: str) -> Response:
    if not context.database.set_endpoint_state(request.account, int(request.params[0]), state):
        return _no_deployment(request)
    return json_response(200, {"success": True, "endpoint_state": state})


def _expiry(context: Context, request: Request, now: float, ttl: float) -> float:
    """When a URL issued now expires: after ``ttl``, or already, when a fault says so."""
    if context.faults.take(request.method, request.path, (EXPIRED_URL,)):
        return now - _SPOILED_BY_SECONDS
    return now + ttl


def _no_deployment(request: Request) -> Response:
    return api_error(404, "not_found", f"no deployment {request.params[0]} in this account")
