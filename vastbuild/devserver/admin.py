"""The admin routes under ``/_dev/``: arm, list and clear faults.

They exist only when the server was given ``--admin-token``, and answer only
requests carrying it in the ``X-Dev-Admin-Token`` header: the API keys of the
accounts have no power here, and the admin token none over the accounts.
"""

from __future__ import annotations

from vastbuild.devserver.context import Context
from vastbuild.devserver.faults import parse_fault
from vastbuild.devserver.messages import Request, Response, api_error, json_response

ADMIN_TOKEN_HEADER = "X-Dev-Admin-Token"


def list_faults(context: Context, request: Request) -> Response:
    return json_response(200, {"faults": [fault.to_json() for fault in context.faults.armed()]})


def arm_fault(context: Context, request: Request) -> Response:
    try:
        fault = parse_fault(request.json)
    except ValueError as exc:
        return api_error(400, "invalid_request", str(exc))
    context.faults.arm(fault)
    return json_response(201, {"success": True, "fault": fault.to_json()})


def clear_faults(context: Context, request: Request) -> Response:
    context.faults.clear()
    return json_response(200, {"success": True})
