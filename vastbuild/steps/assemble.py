"""The ``assemble`` step: the artifact file, the compressed chunks end to end.

gzip members concatenate into one gzip file and zstd frames into one zstd
stream, so the artifact is the chunks' blobs in order, then the end-of-archive
blocks as a member (frame) of their own, so that a size change in one chunk
does not recompress the last one. The file is written beside its destination
and renamed over it, and only when its bytes differ from what is there: an
unchanged artifact keeps its mtime, and ``make`` sees nothing new.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from collections.abc import Sequence
from typing import Any

from vastbuild.archive import SUFFIXES, compress_bytes, end_of_archive
from vastbuild.cache import CorruptEntry
from vastbuild.errors import VastbuildError
from vastbuild.filestate import FileDigest, FileIndex, now_ns, read_file, stat_key
from vastbuild.graph import canonical_json
from vastbuild.steps import StaleInput, StepContext


class Assemble:
    name = "assemble"
    version = 1

    def key_material(self, step: Any, inputs: Sequence[Any]) -> Any:
        return {"format": step.params["format"], "level": step.params["level"],
                "folder": step.params["folder"], "file": step.params["file"],
                "chunks": [c["sha256"] for c in inputs], "size": sum(c["size"] for c in inputs)}

    def is_fresh(self, step: Any, result: Any, ctx: StepContext) -> bool:
        folder, file = os.path.split(result["path"])
        return matches(ctx.output_index(folder), folder, file, result["sha256"], result["length"])

    def run(self, step: Any, inputs: Sequence[Any], ctx: StepContext) -> Any:
        fmt, level = step.params["format"], step.params["level"]
        folder = step.params["folder"]
        file = step.params["file"] or (
            hashlib.sha256(canonical_json(self.key_material(step, inputs))).hexdigest()[:40]
            + SUFFIXES[fmt])
        path = os.path.join(folder, file)
        tail = io.BytesIO()
        compress_bytes(fmt, level, end_of_archive(sum(c["size"] for c in inputs)), tail)
        try:
            os.makedirs(folder, exist_ok=True)
            handle = tempfile.NamedTemporaryFile(dir=folder, prefix=f".{file}.", delete=False)
        except OSError as exc:
            raise VastbuildError(f"cannot write to {folder}: {exc.strerror or exc}",
                                 "choose another output folder with -o") from None
        h = hashlib.sha256()
        try:
            with handle:
                for dep, chunk in zip(step.deps, inputs, strict=True):
                    try:
                        ctx.store.copy_blob(chunk["blob"], handle, h)
                    except (KeyError, CorruptEntry):
                        raise StaleInput(dep) from None
                handle.write(tail.getvalue())
                h.update(tail.getvalue())
            length = os.stat(handle.name).st_size
            digest = h.hexdigest()
            index = ctx.output_index(folder)
            if matches(index, folder, file, digest, length):
                os.unlink(handle.name)
            else:
                os.chmod(handle.name, 0o644)
                os.replace(handle.name, path)
                index.remember(file, stat_key(os.stat(path)), FileDigest(digest, length),
                               now_ns())
        except BaseException as exc:
            if os.path.exists(handle.name):
                os.unlink(handle.name)
            if isinstance(exc, OSError):  # the cache reports its own failures otherwise
                raise VastbuildError(f"cannot write {path}: {exc.strerror or exc}",
                                     "free some space, or choose another output folder "
                                     "with -o") from None
            raise
        return {"path": path, "sha256": digest, "length": length}


def matches(index: FileIndex, folder: str, file: str, sha256: str, length: int) -> bool:
    """Whether ``folder/file`` holds exactly the bytes with ``sha256`` (read only when
    the index does not know its stat)."""
    path = os.path.join(folder, file)
    try:
        st = os.stat(path)
    except OSError:
        return False
    if st.st_size != length:
        return False
    key = stat_key(st)
    known = index.lookup(file, key)
    if known is None:
        try:
            digest, _ = read_file(path, key, keep=False)
        except VastbuildError:
            return False
        known = FileDigest(digest, length)
        index.remember(file, key, known, now_ns())
    return known.sha256 == sha256
