"""Receiving an S3-style form upload: fields first, then the file, streamed to disk.

The form is parsed as it arrives. When the ``file`` part begins, the fields
seen so far must already make a valid signed policy: a field sent after the
file is never considered (S3 ignores everything after the file too), so a form
with the file first is refused before a byte of it is stored. The file goes to
a temporary file and is cut off as soon as it outgrows the policy's limit.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from vastbuild.devserver.signing import S3Error, UploadGrant

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

FILE_FIELD = "file"
_MAX_FIELD_BYTES = 64 * 1024
_MAX_FIELDS = 64


@dataclass(frozen=True)
class ReceivedUpload:
    """A complete upload that its policy allows, waiting in a temporary file."""

    grant: UploadGrant
    path: Path
    size: int


@dataclass
class _Part:
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    name: str | None = None
    value: bytearray = field(default_factory=bytearray)


class _FormReader:
    """The parser's callbacks: collects fields, checks the policy, streams the file."""

    def __init__(self, verify: Callable[[dict[str, str]], UploadGrant], temp_dir: Path):
        self.verify = verify
        self.temp_dir = temp_dir
        self.fields: dict[str, str] = {}
        self.grant: UploadGrant | None = None
        self.file: BinaryIO | None = None
        self.path: Path | None = None
        self.size = 0
        self.file_done = False
        self.ended = False
        self.part = _Part()
        self._header_field = bytearray()
        self._header_value = bytearray()

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self.on_part_begin,
            "on_header_field": lambda data, start, end: self._header_field.extend(
                data[start:end]),
            "on_header_value": lambda data, start, end: self._header_value.extend(
                data[start:end]),
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
            "on_end": self.on_end,
        }

    def on_part_begin(self) -> None:
        self.part = _Part()

    def on_header_end(self) -> None:
        self.part.headers.append((bytes(self._header_field).lower(), bytes(self._header_value)))
        self._header_field.clear()
        self._header_value.clear()

    def on_headers_finished(self) -> None:
        if self.file_done:
            return
        for name, value in self.part.headers:
            if name == b"content-disposition":
                _, options = parse_options_header(value)
                raw_name = options.get(b"name")
                self.part.name = raw_name.decode("utf-8", "replace") if raw_name else None
        if self.part.name is None:
            raise S3Error(400, "MalformedPOSTRequest",
                                 "every part of the form needs a Content-Disposition name")
        if self.part.name == FILE_FIELD:
            self.grant = self.verify(self.fields)
            fd, path = tempfile.mkstemp(dir=self.temp_dir, prefix="upload-")
            self.path = Path(path)
            self.file = os.fdopen(fd, "wb")
        elif len(self.fields) >= _MAX_FIELDS:
            raise S3Error(400, "MalformedPOSTRequest", "the form has too many fields")

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.file_done:
            return
        if self.file is not None:
            assert self.grant is not None
            self.size += end - start
            if self.size > self.grant.max_size:
                raise S3Error(400, "EntityTooLarge",
                                     f"the file is larger than the {self.grant.max_size} bytes "
                                     "the policy allows")
            self.file.write(data[start:end])
            return
        self.part.value.extend(data[start:end])
        if len(self.part.value) > _MAX_FIELD_BYTES:
            raise S3Error(400, "MalformedPOSTRequest",
                                 f"the field '{self.part.name}' is too long")

    def on_part_end(self) -> None:
        if self.file_done:
            return
        if self.file is not None:
            self.file.close()
            self.file_done = True
        else:
            assert self.part.name is not None
            self.fields[self.part.name] = self.part.value.decode("utf-8", "replace")

    def on_end(self) -> None:
        self.ended = True

    def discard(self) -> None:
        if self.file is not None:
            self.file.close()
        if self.path is not None:
            self.path.unlink(missing_ok=True)


def receive_upload(body: Iterable[bytes], content_type: str,
                   verify: Callable[[dict[str, str]], UploadGrant],
                   temp_dir: Path) -> ReceivedUpload:
    """Read a form upload from ``body`` into a temporary file under ``temp_dir``.

    ``verify`` checks the fields (the signed policy) when the file part begins
    and returns what the policy allows. Raises :class:`S3Error` (S3 codes)
    for a form that is malformed, unsigned, or breaks its policy; a temporary
    file is left behind only on success, for the caller to move into place.
    """
    mime, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if mime != b"multipart/form-data" or not boundary:
        raise S3Error(400, "MalformedPOSTRequest",
                             "the upload must be multipart/form-data with a boundary")
    reader = _FormReader(verify, temp_dir)
    try:
        parser = MultipartParser(boundary, reader.callbacks())
        for piece in body:
            parser.write(piece)
        parser.finalize()
        if not reader.ended:
            raise S3Error(400, "IncompleteBody", "the form ended before its last boundary")
        if reader.grant is None or reader.path is None or not reader.file_done:
            raise S3Error(400, "InvalidArgument",
                                 "the form has no complete 'file' part after its fields")
        if reader.size < reader.grant.min_size:
            raise S3Error(400, "EntityTooSmall",
                                 f"the file has {reader.size} bytes, the policy asks for at least "
                                 f"{reader.grant.min_size}")
    except FormParserError as exc:
        reader.discard()
        raise S3Error(400, "MalformedPOSTRequest", "the form cannot be parsed") from exc
    except BaseException:
        reader.discard()
        raise
    return ReceivedUpload(grant=reader.grant, path=reader.path, size=reader.size)
