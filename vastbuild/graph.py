"""The build graph: steps and the edges between them, nothing about how a step runs.

As in Ninja, the graph is data: each step has a kind, JSON parameters, and the
steps it reads (``deps``, in order). A step's id is derived from its kind,
parameters and deps, so two targets that need the same work (the same folder
copied to the same place) get one step. Steps are added after their deps, so
insertion order is a topological order; :meth:`BuildGraph.to_networkx` hands the
graph to networkx for display and analysis (imported only then: it costs a
quarter of a second, which ``vastbuild hash`` does not pay).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import networkx


def canonical_json(value: Any) -> bytes:
    """The one byte spelling of a JSON value that keys and digests are taken over."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


@dataclass(frozen=True)
class Step:
    """One node: ``kind`` applied to ``params`` and the results of ``deps``.

    ``attachment`` carries planning data the step runs from but that is not
    part of its identity (the stat listing a collect step was planned from);
    whatever in it matters enters the key through the kind's ``key_material``.
    """

    id: str
    kind: str
    params: Mapping[str, Any]
    deps: tuple[str, ...]
    label: str
    attachment: Any = field(default=None, compare=False, repr=False)


def step_id(kind: str, params: Mapping[str, Any], deps: Iterable[str]) -> str:
    digest = hashlib.sha256(canonical_json([kind, params, list(deps)])).hexdigest()
    return f"{kind}:{digest[:16]}"


class BuildGraph:
    """Steps by id, in a topological order."""

    def __init__(self) -> None:
        self.steps: dict[str, Step] = {}
        self._dependents: dict[str, list[str]] = {}

    def add(self, kind: str, params: Mapping[str, Any], deps: Iterable[str] = (),
            label: str = "", attachment: Any = None) -> Step:
        """Add a step (or find the equal one already there) and return it."""
        deps = tuple(deps)
        ident = step_id(kind, params, deps)
        found = self.steps.get(ident)
        if found is not None:
            return found
        for dep in deps:
            if dep not in self.steps:
                raise ValueError(f"{ident} depends on {dep}, which is not in the graph")
        step = Step(ident, kind, dict(params), deps, label or kind, attachment)
        self.steps[ident] = step
        self._dependents[ident] = []
        for dep in deps:
            self._dependents[dep].append(ident)
        return step

    def __len__(self) -> int:
        return len(self.steps)

    def dependents(self, ident: str) -> list[str]:
        return self._dependents[ident]

    def closure(self, wanted: Iterable[str]) -> list[str]:
        """``wanted`` and everything they depend on, in topological order."""
        needed: set[str] = set()
        stack = list(wanted)
        while stack:
            ident = stack.pop()
            if ident not in needed:
                needed.add(ident)
                stack.extend(self.steps[ident].deps)
        return [ident for ident in self.steps if ident in needed]

    def to_networkx(self) -> networkx.DiGraph:
        """The graph as a networkx ``DiGraph``: nodes carry kind, label and params,
        edges carry the position of the input they feed."""
        import networkx

        g = networkx.DiGraph()
        for step in self.steps.values():
            g.add_node(step.id, kind=step.kind, label=step.label, params=dict(step.params))
            for position, dep in enumerate(step.deps):
                g.add_edge(dep, step.id, position=position)
        return g
