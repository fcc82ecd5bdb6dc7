"""Drawing a build plan: as text, as Graphviz's DOT, as JSON.

Steps shared by several targets (the same folder copied to the same place)
appear once, since the graph holds them once.
"""

from __future__ import annotations

import json

from vastbuild.canonical import JsonValue
from vastbuild.plan import BuildPlan


def as_text(the_plan: BuildPlan) -> str:
    """Each step, its label, and the steps it reads, in a topological order."""
    lines = []
    for step in the_plan.graph.steps():
        lines.append(f"{step.id}  {step.label}")
        lines.extend(f"    <- {dep}" for dep in step.deps)
    return "\n".join(lines)


def as_json(the_plan: BuildPlan) -> str:
    """Nodes (id, kind, label, params), edges (from, to, input position), targets."""
    digraph = the_plan.graph.digraph
    steps = list(the_plan.graph.steps())
    document: JsonValue = {
        "nodes": [{"id": s.id, "kind": s.kind, "label": s.label, "params": dict(s.params)}
                  for s in steps],
        "edges": [{"from": dep, "to": s.id, "position": digraph.edges[dep, s.id]["position"]}
                  for s in steps for dep in s.deps],
        "targets": [{"label": t.deployment.label, "assemble": dict(t.assemble)}
                    for t in the_plan.targets],
    }
    return json.dumps(document, indent=2)


def as_dot(the_plan: BuildPlan) -> str:
    """A Graphviz digraph, left to right, each node labelled with its kind and label."""
    def quote(text: str) -> str:
        escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'"{escaped}"'

    lines = ["digraph vastbuild {", "  rankdir=LR;", "  node [shape=box, fontname=monospace];"]
    steps = list(the_plan.graph.steps())
    for step in steps:
        lines.append(f"  {quote(step.id)} [label={quote(step.kind + chr(10) + step.label)}];")
    for step in steps:
        lines.extend(f"  {quote(dep)} -> {quote(step.id)};" for dep in step.deps)
    lines.append("}")
    return "\n".join(lines)
