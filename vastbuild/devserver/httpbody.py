"""Reading request bodies as a stream: by ``Content-Length`` or ``Transfer-Encoding: chunked``.

``http.server`` leaves the body to the handler and knows nothing of chunked
encoding, which streaming clients use when they do not know the length up
front. Bodies are yielded in pieces so that an upload never sits in memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from email.message import Message
from io import BufferedIOBase

CHUNK = 64 * 1024


class BodyError(Exception):
    """The body is malformed, cut short or too large; ``status`` is the answer to give."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def iter_body(stream: BufferedIOBase, headers: Message) -> Iterator[bytes]:
    """Yield the request body in pieces of at most :data:`CHUNK` bytes."""
    if "chunked" in headers.get("Transfer-Encoding", "").lower():
        yield from _iter_chunked(stream)
        return
    length_header = headers.get("Content-Length")
    if length_header is None:
        return
    if not length_header.strip().isdigit():
        raise BodyError(400, "Content-Length is not a number")
    yield from _exactly(stream, int(length_header), "the body ended before Content-Length bytes")


def read_body(stream: BufferedIOBase, headers: Message, limit: int) -> bytes:
    """The whole body, refused with 413 past ``limit`` bytes (for small JSON bodies)."""
    pieces, size = [], 0
    for piece in iter_body(stream, headers):
        size += len(piece)
        if size > limit:
            raise BodyError(413, f"the body is larger than {limit} bytes")
        pieces.append(piece)
    return b"".join(pieces)


def _iter_chunked(stream: BufferedIOBase) -> Iterator[bytes]:
    while True:
        size_line = stream.readline(1024)
        try:
            size = int(size_line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise BodyError(400, "malformed chunk size in a chunked body") from None
        if size == 0:
            while stream.readline(1024).strip():  # trailers, up to the empty line
                pass
            return
        yield from _exactly(stream, size, "the chunked body ended early")
        if stream.readline(1024).strip():
            raise BodyError(400, "a chunk is not followed by CRLF")


def _exactly(stream: BufferedIOBase, size: int, short: str) -> Iterator[bytes]:
    """``size`` bytes of the stream in pieces; a 400 saying ``short`` if it ends first."""
    while size:
        piece = stream.read(min(CHUNK, size))
        if not piece:
            raise BodyError(400, short)
        size -= len(piece)
        yield piece
