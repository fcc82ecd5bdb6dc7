"""The ``config`` step: ``./config.json``, the file the worker bootstrap reads first.

Its bytes come from :func:`vastbuild.wire.config_json` at planning time and are
the step's only parameter, so the step's key changes exactly when they do.
"""

from __future__ import annotations

from collections.abc import Sequence

from vastbuild.graph import Step
from vastbuild.steps.base import SourceKind, StepContext, StepResult, generated_tree

ARCNAME = "./config.json"


class Config(SourceKind):
    name = "config"
    version = 1

    def run(self, step: Step, inputs: Sequence[StepResult], ctx: StepContext) -> StepResult:
        data = step.str_param("json").encode("utf-8")
        return generated_tree(ctx, [(ARCNAME, data, 0o644)])
