"""The ``template`` step kind: renders each TEMPLATE line into one file of the bundle.

vastbuild asks every installed step kind for its contributions (``plan``); this
one contributes a step per TEMPLATE line. As a kind that produces files it
subclasses :class:`vastbuild.steps.SourceKind`, which gives the hooks it does
not need their defaults. The step's key covers its parameters (source,
destination, values) and the template's bytes, so editing the template, or a
value in the Vastfile, renders the file again, and nothing else does.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import string
from collections.abc import Sequence

from vastbuild.canonical import JsonValue
from vastbuild.errors import VastbuildError
from vastbuild.graph import Step
from vastbuild.model import Deployment
from vastbuild.steps import Params, SourceKind, StepContext, StepResult, generated_tree
from vastbuild_template.directive import KEYWORD, TemplateSpec


def archive_name(dst: str) -> str:
    """Where ``dst`` lands in the tarball, as vastbuild places a COPY: an absolute
    dst keeps its leading ``/``, a relative one is under ``./``."""
    normal = posixpath.normpath(dst)
    return "/" + normal.lstrip("/") if normal.startswith("/") else f"./{normal}"


class TemplateStep(SourceKind):
    name = "template"
    version = 1

    def plan(self, deployment: Deployment) -> list[Params]:
        """One step's parameters per TEMPLATE line, in source order."""
        params: list[Params] = []
        for directive in deployment.plugins:
            if directive.keyword != KEYWORD:
                continue
            spec = directive.value
            assert isinstance(spec, TemplateSpec)
            params.append({"src": os.fspath(spec.src), "arcname": archive_name(spec.dst),
                           "values": [list(pair) for pair in spec.values]})
        return params

    def key_material(self, step: Step, inputs: Sequence[StepResult]) -> JsonValue:
        """The parameters and the template's content: the rendered bytes depend on nothing else."""
        data, _ = _read(step.str_param("src"))
        return {"params": dict(step.params), "template": hashlib.sha256(data).hexdigest()}

    def input_files(self, step: Step) -> list[str]:
        """The template: ``vastbuild deps`` lists it, and a change to it is seen."""
        return [step.str_param("src")]

    def run(self, step: Step, inputs: Sequence[StepResult], ctx: StepContext) -> StepResult:
        src = step.str_param("src")
        data, mode = _read(src)
        values = _values(step)
        try:
            rendered = string.Template(data.decode("utf-8")).substitute(values)
        except UnicodeDecodeError:
            raise VastbuildError(f"the template {src} is not UTF-8 text",
                                 "save it as UTF-8") from None
        except KeyError as exc:
            raise VastbuildError(f"the template {src} now uses ${exc.args[0]}, which its "
                                 "TEMPLATE line gives no value",
                                 f"add {exc.args[0]}=... to the TEMPLATE line") from None
        except ValueError as exc:
            raise VastbuildError(f"the template {src} has a bad placeholder: {exc}",
                                 "placeholders are $NAME or ${NAME}; write $$ for a "
                                 "literal $") from None
        return generated_tree(ctx, [(step.str_param("arcname"), rendered.encode("utf-8"), mode)])


def _values(step: Step) -> dict[str, str]:
    """The placeholder values of a step, as ``plan`` wrote them: [[KEY, VALUE], ...]."""
    pairs = step.params["values"]
    assert isinstance(pairs, list)
    return {str(pair[0]): str(pair[1]) for pair in pairs if isinstance(pair, list)}


def _read(src: str) -> tuple[bytes, int]:
    """The template's bytes and mode (an executable template renders executable)."""
    try:
        with open(src, "rb") as handle:
            return handle.read(), os.fstat(handle.fileno()).st_mode
    except OSError as exc:
        raise VastbuildError(f"cannot read the template {src}: {exc.strerror or exc}",
                             "restore the file, or remove its TEMPLATE line") from None
