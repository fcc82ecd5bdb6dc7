"""The Vast API routes: deployments, versions, endpoints, workergroups, the autoscaler.

Every handler acts on ``request.account`` only. An id of another account is
answered exactly like an id that does not exist (404), so that a key learns
nothing about what other keys hold. The run host's routes (logs, workers,
``/update_workers/``) sit on the same port, without ``/api/v0``, as the SDK
calls them on a custom autoscaler URL.
"""

from __future__ import annotations

import math
import time
from urllib.parse import urlencode

from vastbuild.devserver.context import Context
from vastbuild.devserver.database import blob_key
from vastbuild.devserver.faults import EXPIRED_URL
from vastbuild.devserver.market import InvalidQuery
from vastbuild.devserver.messages import Request, Response, api_error, json_response
from vastbuild.devserver.registration import (
    AUTOSCALE_DEFAULTS,
    DEFAULT_TAG,
    RegistrationError,
    parse_registration,
)
from vastbuild.devserver.signing import presign_post, sign_download

#: Where issued upload forms are posted (the object key travels in the form).
UPLOAD_PATH = "/blobs/upload/"
#: What ``PUT /api/v0/endptjobs/{id}/`` may set ``endpoint_state`` to.
ENDPOINT_STATES = ("active", "suspended", "stopped")
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
    destroyed = context.database.delete_deployment(request.account, int(request.params[0]))
    if destroyed is None:
        return _no_deployment(request)
    return json_response(200, {"success": True, **_workers_gone(destroyed)})


def delete_deployment_by_name(context: Context, request: Request) -> Response:
    """By name and tag: that one deployment; by name alone (no ``tag``, or null): every
    tag of it; counted either way (``{"success", "count"}``, as vastai 1.9.1 reads it),
    with the workers that went with them."""
    body = request.json if isinstance(request.json, dict) else {}
    name, tag = body.get("name"), body.get("tag")
    if not isinstance(name, str) or not name or not isinstance(tag, str | None):
        return api_error(400, "invalid_request",
                         "the body must be {\"name\": ..., \"tag\": ...} (tag optional)")
    if tag == "":
        tag = DEFAULT_TAG  # "" is the default tag, as in a registration; never "every tag"
    deleted = context.database.delete_deployments_named(request.account, name, tag)
    if not deleted:
        return api_error(404, "not_found", f"no deployment named {name!r}" + (
            "" if tag is None else f" with tag {tag!r}"))
    destroyed = [worker for _, ids in deleted for worker in ids]
    # with a tag, deployment_id too, which clients of the first form of this route read
    return json_response(200, {"success": True, "count": len(deleted),
                               **({} if tag is None else {"deployment_id": deleted[0][0]}),
                               **_workers_gone(destroyed)})


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
    """Both path families: ``/api/v0/autojobs/`` (the CLI) and ``/api/v0/workergroups/``."""
    return json_response(200, {"success": True,
                               "results": context.database.workergroups(request.account)})


def delete_workergroup(context: Context, request: Request) -> Response:
    workergroup_id = int(request.params[0])
    destroyed = context.database.delete_workergroup(request.account, workergroup_id, time.time())
    if destroyed is None:
        return json_response(404, {"success": False, "error": "no_such_workergroup",
                                   "msg": f"no workergroup {workergroup_id} in this account",
                                   "id": workergroup_id})
    return json_response(200, {"success": True, **_workers_gone(destroyed),
                               "msg": f"Deleted workergroup and {len(destroyed)} workers"})


def list_endpoints(context: Context, request: Request) -> Response:
    return json_response(200, {"success": True,
                               "results": context.database.endpoints(request.account)})


def get_endpoint(context: Context, request: Request) -> Response:
    found = context.database.endpoints(request.account, int(request.params[0]))
    if not found:
        return _no_endpoint(request)
    return json_response(200, {"success": True, "result": found[0]})


def update_endpoint(context: Context, request: Request) -> Response:
    """Change state and settings; a field sent as ``null`` (the CLI sends every field)
    keeps its value, which is a guess at what Vast does."""
    body = request.json if isinstance(request.json, dict) else {}
    state = body.get("endpoint_state")
    if state is not None and state not in ENDPOINT_STATES:
        return api_error(400, "invalid_request",
                         f"field 'endpoint_state': expected one of {', '.join(ENDPOINT_STATES)}")
    settings: dict[str, object] = {}
    for name in AUTOSCALE_DEFAULTS:
        value = body.get(name)
        if value is None:
            continue
        whole = name in ("cold_workers", "max_workers")
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(
                value) or value < 0 or (whole and not float(value).is_integer()):
            return api_error(400, "invalid_request",
                             f"field '{name}': expected a {'whole ' if whole else ''}number >= 0")
        settings[name] = int(value) if whole else float(value)
    if not context.database.update_endpoint(request.account, int(request.params[0]), state,
                                            settings, time.time()):
        return _no_endpoint(request)
    return json_response(200, {"success": True})


def delete_endpoint(context: Context, request: Request) -> Response:
    """The endpoint goes with its workergroups, workers and the deployment on it."""
    destroyed = context.database.delete_endpoint(request.account, int(request.params[0]))
    if destroyed is None:
        return _no_endpoint(request)
    return json_response(200, {"success": True, **_workers_gone(destroyed),
                               "msg": f"Deleted endpoint job and {len(destroyed)} workers"})


def endpoint_logs(context: Context, request: Request) -> Response:
    return _logs(context, request, "endpoints")


def workergroup_logs(context: Context, request: Request) -> Response:
    return _logs(context, request, "workergroups")


def endpoint_workers(context: Context, request: Request) -> Response:
    """A bare list of worker dicts, as ``vastai get endpt-workers`` and the SDK read it."""
    owner = _body_id(request, "id")
    if isinstance(owner, Response):
        return owner
    found = context.database.endpoint_workers(request.account, owner)
    if found is None:
        return api_error(404, "not_found", f"no endpoint {owner} in this account")
    return json_response(200, found)


def update_workers(context: Context, request: Request) -> Response:
    """The autoscaler's rolling update: every running worker of the workergroup moves
    to the deployment's current version (update_ready, then idle); also counted."""
    body = request.json if isinstance(request.json, dict) else {}
    workergroup_id = body.get("workergroup_id")
    if isinstance(workergroup_id, bool) or not isinstance(workergroup_id, int):
        return api_error(400, "invalid_request", "the body must carry an integer 'workergroup_id'")
    if body.get("cancel_update"):
        return api_error(400, "not_simulated",
                         "the dev server rolls all workers at once: there is nothing to cancel")
    record = context.database.rolling_update(request.account, workergroup_id, time.time())
    if record is None:
        return api_error(404, "not_found", f"no workergroup {workergroup_id} in this account")
    return json_response(200, {"success": True, "workergroup_id": workergroup_id,
                               "rolling_updates": record["rolling_updates"]})


def search_offers(context: Context, request: Request) -> Response:
    """``POST /api/v0/bundles/``: the offer search over the server's market."""
    try:
        offers = context.market.search(request.json)
    except InvalidQuery as exc:
        return api_error(400, "invalid_request", str(exc))
    return json_response(200, {"offers": offers})


def _set_state(context: Context, request: Request, state: str) -> Response:
    endpoint_id = context.database.deployment_endpoint(request.account, int(request.params[0]))
    if endpoint_id is None or not context.database.update_endpoint(
            request.account, endpoint_id, state, {}, time.time()):
        return _no_deployment(request)
    return json_response(200, {"success": True, "endpoint_state": state})


def _logs(context: Context, request: Request, table: str) -> Response:
    """``{"info0", "info1", "trace", "debug"}``; ``tail`` keeps the last N lines of each."""
    owner = _body_id(request, "id")
    if isinstance(owner, Response):
        return owner
    body = request.json if isinstance(request.json, dict) else {}
    tail = body.get("tail")
    if tail is not None and (isinstance(tail, bool) or not isinstance(tail, int) or tail < 0):
        return api_error(400, "invalid_request", "field 'tail': expected a whole number >= 0")
    found = context.database.logs(request.account, table, owner, tail)
    if found is None:
        return api_error(404, "not_found", f"no {table[:-1]} {owner} in this account")
    return json_response(200, found)


def _body_id(request: Request, name: str) -> int | Response:
    body = request.json if isinstance(request.json, dict) else {}
    value = body.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        return api_error(400, "invalid_request", f"the body must carry an integer {name!r}")
    return value


def _workers_gone(destroyed: list[int]) -> dict[str, list[int]]:
    """The workers a delete destroyed, in Vast's fields (no simulated destroy fails)."""
    return {"deleted_workers": destroyed, "failed_workers": []}


def _no_endpoint(request: Request) -> Response:
    return api_error(404, "not_found", f"no endpoint {request.params[0]} in this account")


def _expiry(context: Context, request: Request, now: float, ttl: float) -> float:
    """When a URL issued now expires: after ``ttl``, or already, when a fault says so."""
    if context.faults.take(request.method, request.path, (EXPIRED_URL,)):
        return now - _SPOILED_BY_SECONDS
    return now + ttl


def _no_deployment(request: Request) -> Response:
    return api_error(404, "not_found", f"no deployment {request.params[0]} in this account")
