"""The ``pack`` step: one chunk's identity, from its members' headers and digests.

A chunk is a slice ``[start, stop)`` of one source tree's members, cut at
planning time by :func:`vastbuild.archive.plan_chunks`. The step's key covers
only those members (and the mtime every header carries), so editing a file
elsewhere in the tree leaves this chunk a cache hit. Its result names the
chunk's uncompressed bytes (``digest``) and what the content hash sees of them
(``hash_digest``), without reading a file.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from vastbuild.archive import Member, chunk_info
from vastbuild.steps import StepContext


def chunk_rows(step: Any, source: dict[str, Any]) -> list[list[Any]]:
    """The member rows of the chunk ``step`` (a pack or compress step) names."""
    return source["members"][step.params["start"]:step.params["stop"]]


class Pack:
    name = "pack"
    version = 1

    def key_material(self, step: Any, inputs: Sequence[Any]) -> Any:
        return {"mtime": step.params["mtime"], "members": chunk_rows(step, inputs[0])}

    def run(self, step: Any, inputs: Sequence[Any], ctx: StepContext) -> Any:
        members = [Member.from_json(row) for row in chunk_rows(step, inputs[0])]
        info = chunk_info(members, step.params["mtime"])
        return {"digest": info.digest, "size": info.size, "hash_digest": info.hash_digest,
                "hash_size": info.hash_size, "count": len(members)}
