"""Reading request bodies as a stream: by ``Content-Length`` or ``Transfer-Encoding: chunked``.

``http.server`` leaves the body to the handler and knows nothing of chunked
encoding, which streaming clients use when they do not know the length up
front. Bodies are yielded in pieces so that an upload never sits in memory.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from email.message import Message
from io import BufferedIOBase

CHUNK = 64 * 1024
#: A Content-Length: ASCII digits only (``str.isdigit`` also takes "²", which
#: ``int`` refuses).
_LENGTH = re.compile(r"[0-9]+")
#: More digits than any real body has (and than ``int`` reads without a limit).
_MAX_LENGTH_DIGITS = 18
#: A chunk size: hex digits only (``int(..., 16)`` also takes "-1", "+5" and "1_0";
#: a negative size made the reader wait for the end of the connection).
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]+")


class BodyError(Exception):
    """The body is malformed, cut short or too large; ``status`` is the answer to give."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def iter_body(stream: BufferedIOBase, headers: Message,
              limit: int | None = None) -> Iterator[bytes]:
    """Yield the request body in pieces of at most :data:`CHUNK` bytes.

    With a ``limit``, a body declared larger (by its ``Content-Length`` or by
    the size of its next chunk) is refused with 413 before a byte of it is
    read: a client that declares 10 GB and sends a little would otherwise wait
    for an answer while the server waits for the rest of the body.
    """
    if "chunked" in headers.get("Transfer-Encoding", "").lower():
        yield from _iter_chunked(stream, limit)
        return
    length = _content_length(headers)
    if length is None:
        return
    _check_limit(length, limit)
    yield from _exactly(stream, length, "the body ended before Content-Length bytes")


def _content_length(headers: Message) -> int | None:
    """The declared ``Content-Length`` (None: no header); 400 unless it is a plain number."""
    length_header = headers.get("Content-Length")
    if length_header is None:
        return None
    digits = length_header.strip()
    if not _LENGTH.fullmatch(digits):
        raise BodyError(400, "Content-Length is not a number")
    if len(digits.lstrip("0")) > _MAX_LENGTH_DIGITS:
        raise BodyError(413, "Content-Length is larger than any body this server takes")
    return int(digits)


def read_body(stream: BufferedIOBase, headers: Message, limit: int) -> bytes:
    """The whole body, refused with 413 past ``limit`` bytes (for small JSON bodies)."""
    return b"".join(iter_body(stream, headers, limit))


def _check_limit(size: int, limit: int | None) -> None:
    if limit is not None and size > limit:
        raise BodyError(413, f"the body is larger than {limit} bytes")


def _iter_chunked(stream: BufferedIOBase, limit: int | None) -> Iterator[bytes]:
    total = 0
    while True:
        size_line = stream.readline(1024)
        size_field = size_line.split(b";", 1)[0].strip()
        if not _CHUNK_SIZE.fullmatch(size_field):
            raise BodyError(400, "malformed chunk size in a chunked body")
        size = int(size_field, 16)
        if size == 0:
            while stream.readline(1024).strip():  # trailers, up to the empty line
                pass
            return
        total += size
        _check_limit(total, limit)
        yield from _exactly(stream, size, "the chunked body ended early")
        if stream.readline(1024).strip():
            raise BodyError(400, "a chunk is not followed by CRLF")


def _exactly(stream: BufferedIOBase, size: int, short: str) -> Iterator[bytes]:
    """``size`` bytes of the stream in pieces; a 400 saying ``short`` if it ends first.

    Each piece is what has arrived (``read1``), not a full :data:`CHUNK`: ``read``
    would wait for 64 KiB more, so a form refused by its fields (a bad signature,
    an expired policy) would not be answered until that much more came.
    """
    while size:
        piece = stream.read1(min(CHUNK, size))
        if not piece:
            raise BodyError(400, short)
        size -= len(piece)
        yield piece
