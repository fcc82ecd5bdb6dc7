"""Step kinds: what a node of the build graph does when it runs.

The protocol every kind implements, the results steps pass along and the
helpers a plugin's kind uses are in :mod:`vastbuild.steps.base`, re-exported
here for plugins. vastbuild's own kinds are the other modules of this package
(collect, config, compress, assemble), registered in
:mod:`vastbuild.plugins` the way a plugin's are.
"""

from vastbuild.steps.base import (
    ArtifactResult,
    ChunkBlob,
    CompressedTree,
    Params,
    SourceKind,
    StepContext,
    StepKind,
    StepKindBase,
    StepResult,
    TreeResult,
    expect,
    generated_tree,
)

__all__ = [
    "ArtifactResult", "ChunkBlob", "CompressedTree", "Params", "SourceKind", "StepContext",
    "StepKind", "StepKindBase", "StepResult", "TreeResult", "expect", "generated_tree",
]
