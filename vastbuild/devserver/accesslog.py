"""The access log, with every credential a request can carry blanked out.

The SDK puts the API key in the query string (``?api_key=``), so a plain access
log would write keys to the terminal. Every line the server logs goes through
:func:`redact` first: query values of ``api_key`` and of signatures, and
``Bearer`` tokens, become ``REDACTED``.
"""

from __future__ import annotations

import re
import sys
import threading
from typing import TextIO

_SECRET_QUERY = re.compile(r"(?i)\b(api_key|signature|x-amz-signature)=[^&\s\"'#]*")
_BEARER = re.compile(r"(?i)\b(bearer\s+)[^\s\"',]+")


def redact(text: str) -> str:
    return _BEARER.sub(r"\1REDACTED", _SECRET_QUERY.sub(r"\1=REDACTED", text))


class AccessLog:
    """Writes redacted lines to a stream (stderr by default), one thread at a time."""

    def __init__(self, stream: TextIO | None = None):
        self._stream = stream or sys.stderr
        self._lock = threading.Lock()

    def write(self, line: str) -> None:
        with self._lock:
            self._stream.write(redact(line) + "\n")
            self._stream.flush()
