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

from vastbuild.archive import Member, chunk_info
from vastbuild.canonical import JsonValue
from vastbuild.graph import Step
from vastbuild.steps.base import (
    ChunkResult,
    StepContext,
    StepKindBase,
    StepResult,
    TreeResult,
    expect,
)


def chunk_members(step: Step, source: TreeResult) -> tuple[Member, ...]:
    """The members of the chunk ``step`` (a pack or compress step) names."""
    return source.members[step.int_param("start"):step.optional_int_param("stop")]


class Pack(StepKindBase):
    name = "pack"
    version = 1

    def key_material(self, step: Step, inputs: Sequence[StepResult]) -> JsonValue:
        members = chunk_members(step, expect(inputs[0], TreeResult))
        return {"mtime": step.int_param("mtime"), "members": [m.to_json() for m in members]}

    def result_from_json(self, value: JsonValue) -> StepResult:
        return ChunkResult.from_json(value)

    def run(self, step: Step, inputs: Sequence[StepResult], ctx: StepContext) -> StepResult:
        members = chunk_members(step, expect(inputs[0], TreeResult))
        info = chunk_info(members, step.int_param("mtime"))
        return ChunkResult(info.digest, info.size, info.hash_digest, info.hash_size,
                           len(members))
