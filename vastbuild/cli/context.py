"""The global options every command sees (``ctx.obj``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class GlobalOptions:
    """``--cache-dir``, ``-v``/``-q`` (verbosity: -1 quiet, 0 normal, 1 and up more) and
    whether to colour diagnostics."""

    cache_dir: Path
    verbosity: int
    color: bool

    @property
    def quiet(self) -> bool:
        return self.verbosity < 0
