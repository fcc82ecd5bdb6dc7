"""The build graph: steps and the edges between them, nothing about how a step runs.

As in Ninja, the graph is data. Each step has a kind, JSON parameters, and the
steps it reads (``deps``, in order); its id is derived from all three, so two
targets that need the same work (the same folder copied to the same place) get
one step. The steps are the nodes of a :class:`networkx.DiGraph` with an edge
from each input to the step that reads it; topological order, the closure of
what a set of steps needs, and cycle detection are networkx's. networkx is
imported here only, and only when a graph is planned: it costs a quarter of a
second, which a warm ``vastbuild hash`` never pays.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from vastbuild.canonical import JsonValue, canonical_json

if TYPE_CHECKING:
    import networkx

A = TypeVar("A")


@dataclass(frozen=True)
class Step:
    """One node: ``kind`` applied to ``params`` and the results of ``deps``.

    ``attachment`` carries planning data the step runs from but that is not part
    of its identity (the stat listing a collect step was planned from); whatever
    in it matters enters the key through the kind's ``key_material``.
    """

    id: str
    kind: str
    params: Mapping[str, JsonValue]
    deps: tuple[str, ...]
    label: str
    attachment: object = field(default=None, compare=False, repr=False)

    def _param(self, name: str, kind: type[A], what: str) -> A:
        value = self.params[name]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise TypeError(f"{self.id}: parameter {name} is not {what}")
        return value

    def int_param(self, name: str) -> int:
        return self._param(name, int, "a whole number")

    def optional_int_param(self, name: str) -> int | None:
        return None if self.params[name] is None else self.int_param(name)

    def str_param(self, name: str) -> str:
        return self._param(name, str, "a string")

    def optional_str_param(self, name: str) -> str | None:
        return None if self.params[name] is None else self.str_param(name)

    def bool_param(self, name: str) -> bool:
        return self._param(name, bool, "true or false")

    def str_list_param(self, name: str) -> list[str]:
        values = self._param(name, list, "a list of strings")
        if not all(isinstance(v, str) for v in values):
            raise TypeError(f"{self.id}: parameter {name} is not a list of strings")
        return [str(v) for v in values]

    def attached(self, kind: type[A]) -> A:
        """The planning data attached to the step, as a ``kind``."""
        if not isinstance(self.attachment, kind):
            raise TypeError(f"{self.id}: no {kind.__name__} attached")
        return self.attachment


def step_id(kind: str, params: Mapping[str, JsonValue], deps: Iterable[str]) -> str:
    digest = hashlib.sha256(canonical_json([kind, dict(params), list(deps)])).hexdigest()
    return f"{kind}:{digest[:16]}"


class GraphCycle(Exception):
    """The graph holds a cycle: a bug in whoever wired it (a planner, a plugin)."""


class BuildGraph:
    """Steps as the nodes of a networkx ``DiGraph``, each edge from an input to its reader."""

    def __init__(self) -> None:
        import networkx

        self._nx = networkx
        self.digraph: networkx.DiGraph[str] = networkx.DiGraph()

    def add(self, kind: str, params: Mapping[str, JsonValue], deps: Iterable[str] = (),
            label: str = "", attachment: object = None) -> Step:
        """Add a step (or find the equal one already there) and return it. Its deps
        must be in the graph already."""
        deps = tuple(deps)
        ident = step_id(kind, params, deps)
        if ident in self.digraph:
            found: Step = self.digraph.nodes[ident]["step"]
            return found
        missing = [dep for dep in deps if dep not in self.digraph]
        if missing:
            raise ValueError(f"{ident} depends on {missing[0]}, which is not in the graph")
        step = Step(ident, kind, dict(params), deps, label or kind, attachment)
        self.digraph.add_node(ident, step=step)
        for position, dep in enumerate(deps):
            self.digraph.add_edge(dep, ident, position=position)
        return step

    def __len__(self) -> int:
        return len(self.digraph)

    def __contains__(self, ident: object) -> bool:
        return ident in self.digraph

    def step(self, ident: str) -> Step:
        found: Step = self.digraph.nodes[ident]["step"]
        return found

    def steps(self) -> Iterator[Step]:
        """Every step, in a topological order."""
        return (self.step(ident) for ident in self.order(self.digraph))

    def dependents(self, ident: str) -> list[str]:
        """The steps that read ``ident``'s result."""
        return list(self.digraph.successors(ident))

    def needed(self, wanted: Iterable[str]) -> list[str]:
        """``wanted`` and every step they depend on, in a topological order."""
        wanted = set(wanted)
        needed = set(wanted)
        for ident in wanted:
            needed |= self._nx.ancestors(self.digraph, ident)
        return self.order(self.digraph.subgraph(needed))

    def order(self, digraph: networkx.DiGraph[str]) -> list[str]:
        """A topological order of ``digraph`` (the graph, or part of it)."""
        try:
            return list(self._nx.topological_sort(digraph))
        except self._nx.NetworkXUnfeasible:
            cycle = self._nx.find_cycle(digraph)
            raise GraphCycle(" -> ".join(str(u) for u, _ in cycle)) from None
