"""vastbuild: a compiler-style build tool for Vast.ai serverless deployments.

The library API below is what the CLI itself uses. Names are imported on first
use, so that ``import vastbuild`` (and ``vastbuild hash``) stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

#: public name -> module that defines it
_EXPORTS = {
    "load": "vastbuild.loader",
    "check_path": "vastbuild.loader",
    "find_vastfile": "vastbuild.loader",
    "build": "vastbuild.builder",
    "hash_targets": "vastbuild.builder",
    "BuildResult": "vastbuild.builder",
    "Deployment": "vastbuild.model",
    "Diagnostic": "vastbuild.diagnostics",
    "DiagnosticError": "vastbuild.diagnostics",
    "VastbuildError": "vastbuild.errors",
    "default_cache_dir": "vastbuild.cache",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'vastbuild' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
