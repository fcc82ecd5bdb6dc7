"""The ``config`` step: ``./config.json``, the file the worker bootstrap reads first.

Its bytes come from :func:`vastbuild.wire.config_json` at planning time and are
the step's only parameter, so the step's key changes exactly when they do.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from vastbuild.steps import StepContext, generated_tree

ARCNAME = "./config.json"


class Config:
    name = "config"
    version = 1

    def run(self, step: Any, inputs: Sequence[Any], ctx: StepContext) -> Any:
        data = step.params["json"].encode("utf-8")
        return generated_tree(ctx, [(ARCNAME, data, 0o644)])
