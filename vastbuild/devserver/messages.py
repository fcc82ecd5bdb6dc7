"""The messages route handlers take and give: the request, the response, error bodies.

Handlers are plain functions ``(context, request) -> Response``; the HTTP
plumbing (reading, routing, auth, writing) lives in :mod:`vastbuild.devserver.routing`,
the state they share in :mod:`vastbuild.devserver.context`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from email.message import Message
from io import BufferedIOBase
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: Message
    body_stream: BufferedIOBase
    #: the scheme and authority clients reached us by, for the URLs we hand out
    base_url: str
    #: the groups the route's pattern captured (ids, keys)
    params: tuple[str, ...] = ()
    #: the decoded JSON body of API routes ({} when there is none)
    json: Any = None
    #: the account of the API key, on routes that take one
    account: int = 0


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str | None = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    #: a file to stream as the body instead of ``body``
    file: Path | None = None
    #: close the connection after answering (the request body may be unread)
    close: bool = False


def json_response(status: int, document: Any) -> Response:
    return Response(status, json.dumps(document).encode())


def api_error(status: int, error: str, message: str) -> Response:
    """An API error in the shape the Vast API uses: ``success``, ``error``, ``msg``."""
    return json_response(status, {"success": False, "error": error, "msg": message})


def s3_error(status: int, code: str, message: str, close: bool = False) -> Response:
    """A blob route error as S3 writes it: an XML document with Code and Message."""
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{escape(code)}</Code>'
            f"<Message>{escape(message)}</Message></Error>")
    return Response(status, body.encode(), content_type="application/xml", close=close)
