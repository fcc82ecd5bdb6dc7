"""vastbuild: a compiler-style build tool for Vast.ai serverless deployments.

The library API is :mod:`vastbuild.api`; its most used names are reachable
from the package itself (``vastbuild.load``, ``vastbuild.build``), imported on
first use so that ``import vastbuild`` stays cheap. A name that is also a module
of the package (``check``, ``deploy``) is only in :mod:`vastbuild.api`.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

#: names re-exported from vastbuild.api, plus the model of a checked Vastfile
_FROM_API = (
    "load", "load_all", "build", "hash_targets", "plan_build", "plan_deploy",
    "default_cache_dir", "load_settings", "find_vastfile", "format_file", "format_source",
    "BuildResult", "HashResult", "CheckReport", "Diagnostic", "DiagnosticError",
    "VastbuildError", "InvalidArgument",
)

__all__ = ["__version__", "Deployment", *_FROM_API]


def __getattr__(name: str) -> object:
    if name in _FROM_API:
        return getattr(importlib.import_module("vastbuild.api"), name)
    if name == "Deployment":
        return importlib.import_module("vastbuild.model").Deployment
    raise AttributeError(f"module 'vastbuild' has no attribute {name!r}")
