"""The global options every command sees (``ctx.obj``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class GlobalOptions:
    """``--cache-dir``, ``-v``/``-q`` (verbosity: -1 quiet, 0 normal, 1 and up more),
    whether to colour diagnostics, and the remote cache."""

    cache_dir: Path
    verbosity: int
    color: bool
    #: the remote cache's URL (None: none), and whether this run may only read it
    remote_cache: str | None = None
    remote_cache_read_only: bool = False

    @property
    def quiet(self) -> bool:
        return self.verbosity < 0
