"""Drawing a build plan: as text, as Graphviz's DOT (and, through Graphviz, SVG or
PNG), as JSON.

Steps shared by several targets (the same folder copied to the same place)
appear once, since the graph holds them once; with marks (see
:func:`vastbuild.builder.graph_marks`) a drawing also says how many targets
share each step and whether the step cache holds its result (a build that was
answered from its last record or patched does not fill the step cache).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Mapping

from vastbuild.canonical import JsonValue
from vastbuild.errors import VastbuildError
from vastbuild.plan import BuildPlan
from vastbuild.results import StepMark

Marks = Mapping[str, StepMark]
#: the formats Graphviz's ``dot`` renders the DOT text into
IMAGE_FORMATS = ("svg", "png")
#: fill colours: a step whose result the cache holds, one a build would run
CACHED_FILL, RUNS_FILL = "#d8f0d8", "#fde0c5"


def _notes(mark: StepMark | None) -> list[str]:
    if mark is None:
        return []
    notes = [f"shared by {mark.targets} targets"] if mark.targets > 1 else []
    return [*notes, "cached" if mark.cached else "not cached"]


def as_text(the_plan: BuildPlan, marks: Marks | None = None) -> str:
    """Each step, its label (and marks), and the steps it reads, in a topological order."""
    lines = []
    for step in the_plan.graph.steps():
        notes = _notes(marks.get(step.id) if marks else None)
        lines.append(f"{step.id}  {step.label}" + (f"  [{', '.join(notes)}]" if notes else ""))
        lines.extend(f"    <- {dep}" for dep in step.deps)
    return "\n".join(lines)


def as_json(the_plan: BuildPlan, marks: Marks | None = None) -> str:
    """Nodes (id, kind, label, params; with marks: targets, cached), edges (from, to,
    input position), targets."""
    digraph = the_plan.graph.digraph
    steps = list(the_plan.graph.steps())

    def node(step_id: str, kind: str, label: str, params: dict[str, JsonValue]
             ) -> dict[str, JsonValue]:
        found: dict[str, JsonValue] = {"id": step_id, "kind": kind, "label": label,
                                       "params": params}
        mark = marks.get(step_id) if marks else None
        if mark is not None:
            found.update(targets=mark.targets, shared=mark.targets > 1, cached=mark.cached)
        return found

    document: JsonValue = {
        "nodes": [node(s.id, s.kind, s.label, dict(s.params)) for s in steps],
        "edges": [{"from": dep, "to": s.id, "position": digraph.edges[dep, s.id]["position"]}
                  for s in steps for dep in s.deps],
        "targets": [{"label": t.deployment.label, "assemble": dict(t.assemble)}
                    for t in the_plan.targets],
    }
    return json.dumps(document, indent=2)


def as_dot(the_plan: BuildPlan, marks: Marks | None = None) -> str:
    """A Graphviz digraph, left to right, each node labelled with its kind and label;
    with marks, shared steps drawn bold and filled by whether they are cached."""
    def quote(text: str) -> str:
        escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'"{escaped}"'

    lines = ["digraph vastbuild {", "  rankdir=LR;", "  node [shape=box, fontname=monospace];"]
    steps = list(the_plan.graph.steps())
    for step in steps:
        mark = marks.get(step.id) if marks else None
        label = "\n".join([step.kind, step.label, *_notes(mark)])
        style = ""
        if mark is not None:
            fill = CACHED_FILL if mark.cached else RUNS_FILL
            style = f', style="filled{",bold" if mark.targets > 1 else ""}", fillcolor="{fill}"'
            style += ", penwidth=2" if mark.targets > 1 else ""
        lines.append(f"  {quote(step.id)} [label={quote(label)}{style}];")
    for step in steps:
        lines.extend(f"  {quote(dep)} -> {quote(step.id)};" for dep in step.deps)
    if marks:
        lines += ["  subgraph cluster_legend {", '    label="legend"; fontname=monospace;',
                  f'    legend_cached [label="cached", style=filled, fillcolor="{CACHED_FILL}"];',
                  f'    legend_runs [label="not cached", style=filled, '
                  f'fillcolor="{RUNS_FILL}"];',
                  '    legend_shared [label="shared by targets", style=bold, penwidth=2];',
                  "  }"]
    lines.append("}")
    return "\n".join(lines)


def render_image(dot_text: str, image_format: str) -> bytes:
    """The DOT text rendered by Graphviz's ``dot`` as ``svg`` or ``png``."""
    dot = shutil.which("dot")
    if dot is None:
        raise VastbuildError(f"drawing {image_format} needs Graphviz's `dot`, which is not "
                             "installed", "install Graphviz (apt-get install graphviz), or "
                             "draw DOT text and render it elsewhere")
    done = subprocess.run([dot, f"-T{image_format}"], input=dot_text.encode("utf-8"),
                          capture_output=True, check=False)
    if done.returncode != 0:
        said = done.stderr.decode("utf-8", "replace").strip()
        raise VastbuildError(f"Graphviz's dot failed: {said or done.returncode}",
                             "draw DOT text instead, and report this")
    return done.stdout
