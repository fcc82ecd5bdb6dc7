"""Why each step of a build ran: the answers of ``build --explain``.

As ``ninja -d explain`` compares a target with its log, a build is compared with
what the last build of the same target (same output folder and formats) left in
its up-to-date record (:mod:`vastbuild.uptodate`): the state of every tree (each
file's content digest and stat), the registration it sent, and the facts kept for
this module (:func:`facts`: a digest of each line of the Vastfile and its
fragments, the compressors' versions). The graph is content-addressed, so a step
runs only when its key is new or its result is gone; what changed is found by
comparing, not by guessing from keys:

- a step that reads files names each file whose content changed, that is new,
  that is gone, or that was only touched;
- the step of the registration names the Vastfile lines that changed, or else
  the fields of the registration that did;
- a step that ran because a step it reads ran carries that step's reasons, so
  every line of an explanation names the edit that started it;
- a compress step with no such cause names a new compressor version, an
  artifact one that was missing or modified on disk, a plugin's step the files
  it declares it reads that changed (or the Vastfile lines that did);
- what is left ran because its result was not in the cache (cleared, evicted,
  built elsewhere), because the last build ran under other settings, or because
  no earlier build is recorded.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from difflib import SequenceMatcher
from pathlib import Path

from vastbuild import uptodate
from vastbuild.archive import LEVELS, Member, compressor_version
from vastbuild.builder import Finished
from vastbuild.execute import StepOutcome
from vastbuild.graph import BuildGraph
from vastbuild.model import Deployment
from vastbuild.patch import NotPatchable, TargetState
from vastbuild.plan import PlannedTarget
from vastbuild.plugins import registry
from vastbuild.results import BuildResult, Reason
from vastbuild.steps.base import TreeResult

#: fields of the registration that change with every content change (not a cause)
_CONTENT_FIELDS = frozenset({"file_hash", "file_size"})


def facts(target: PlannedTarget, outcomes: Mapping[str, StepOutcome]) -> dict[str, object]:
    """What the record of ``target``'s build keeps for the next ``--explain``: a digest
    of each line of its Vastfile and fragments (the lines themselves are not kept),
    the content digest of each requirements file (which no tree holds), and the
    version of each compressor."""
    d = target.deployment
    sources: dict[str, list[str]] = {}
    for path in (d.vastfile, *d.fragments):
        real = os.path.realpath(path)
        try:
            sources[real] = [_line_digest(line) for line in Path(real).read_bytes().splitlines()]
        except OSError:
            continue
    requirements = {}
    for path, step in target.requirements:
        tree = outcomes[step].result
        if isinstance(tree, TreeResult) and len(tree.members) == 1:
            requirements[os.fspath(path)] = tree.members[0].sha256
    return {"sources": sources, "requirements": requirements,
            "compressors": {fmt: compressor_version(fmt) for fmt in LEVELS}}


def _line_digest(line: bytes) -> str:
    return hashlib.sha256(line).hexdigest()[:16]


@dataclass(frozen=True)
class Previous:
    """What the last build of a target left to compare with."""

    #: whether it ran under the same settings (its record's environment is this one's)
    same_settings: bool
    #: the inputs whose stat changed since it ran
    changed: frozenset[str]
    #: what :func:`facts` kept (empty for a record written before it existed)
    kept: Mapping[str, object]
    state: TargetState | None
    #: the registration it built
    registration: Mapping[str, object] | None


def previous(cache_dir: str | os.PathLike[str], vastfile: str | os.PathLike[str],
             purpose: str, env: str) -> Previous | None:
    """The last build of ``vastfile`` for ``purpose`` (see :mod:`vastbuild.fastpath`);
    None when none is recorded."""
    found = uptodate.peek(cache_dir, os.path.realpath(vastfile), purpose)
    if found is None:
        return None
    recorded_env, record = found
    state = None
    data = uptodate.load_state(cache_dir, record.payload)
    if data is not None:
        try:
            state = TargetState.from_bytes(data)
        except NotPatchable:
            state = None
    kept = record.payload.get(uptodate.FACTS)
    registration = record.payload.get("deployment_config")
    return Previous(recorded_env == env, frozenset(record.changed),
                    kept if isinstance(kept, dict) else {}, state,
                    registration if isinstance(registration, dict) else None)


def explained(finished: Finished[BuildResult],
              before: Sequence[Previous | None]) -> list[BuildResult]:
    """Each result of ``finished`` with the reasons of every step that ran, and of a
    registration body that differs from the last build's."""
    annotated = []
    for target, result, prev in zip(finished.plan.targets, finished.results, before,
                                    strict=True):
        lines = [] if prev is None else _line_changes(prev.kept.get("sources"),
                                                      target.deployment)
        fields = [] if prev is None else _registration_changes(prev.registration,
                                                               result.deployment_config)
        why = _reasons(target, finished.plan.graph, finished.outcomes, prev,
                       [step.id for step in result.steps], lines, fields)
        annotated.append(replace(result, steps=tuple(
            replace(step, reasons=why.get(step.id, ())) for step in result.steps),
            registration_reasons=tuple(lines + fields) if fields else ()))
    return annotated


def _reasons(target: PlannedTarget, graph: BuildGraph, outcomes: Mapping[str, StepOutcome],
             prev: Previous | None, order: Sequence[str], lines: Sequence[Reason],
             fields: Sequence[Reason]) -> dict[str, tuple[Reason, ...]]:
    """Step id -> why it ran, for the steps of ``target`` that ran (``order``: its
    steps, each after the steps it reads; ``lines``: the Vastfile lines that changed;
    ``fields``: the registration's fields that did)."""
    if prev is None:
        fallback = Reason("no-record")
    else:
        fallback = Reason("cache-miss") if prev.same_settings else Reason("settings")
    old_trees = {} if prev is None or prev.state is None else {
        (tree.role, tree.arcroot): tree.tree for tree in prev.state.trees}
    trees = {tree.step: (tree.role, tree.arcroot) for tree in target.trees}
    requirements = {step: os.fspath(path) for path, step in target.requirements}
    artifacts = {step: fmt for fmt, step in target.assemble.items()}
    found: dict[str, tuple[Reason, ...]] = {}
    for ident in order:
        if outcomes[ident].cached:
            continue
        step = graph.step(ident)
        own: list[Reason] = []
        if step.kind == "collect" and ident in trees and trees[ident] in old_trees:
            result = outcomes[ident].result
            if isinstance(result, TreeResult):
                own = _tree_changes(old_trees[trees[ident]], result)
        elif step.kind == "collect" and ident in requirements and prev is not None:
            own = _requirement_change(prev.kept.get("requirements"), requirements[ident],
                                      outcomes[ident].result)
        elif step.kind in ("collect", "config"):
            own = list(lines) or (list(fields) if step.kind == "config" else [])
        elif step.kind == "compress" and prev is not None:
            own = _compressor_change(prev.kept.get("compressors"), step.str_param("format"))
        elif step.kind == "assemble" and prev is not None and ident in artifacts:
            path = os.path.join(step.str_param("folder"), step.optional_str_param("file") or "")
            if path in prev.changed:
                own = [Reason("output", path)]
        elif prev is not None:  # a plugin's step: the files it declares it reads
            own = [Reason("changed" if os.path.exists(path) else "removed", path)
                   for path in map(os.fspath, registry().step_kind(step.kind).input_files(step))
                   if path in prev.changed] + list(lines)
        upstream = [reason for dep in step.deps for reason in found.get(dep, ())]
        found[ident] = _unique([*upstream, *own]) or (fallback,)
    return found


def _unique(reasons: Iterable[Reason]) -> tuple[Reason, ...]:
    return tuple(dict.fromkeys(reasons))


def _files(tree: TreeResult) -> dict[str, tuple[Member, object, str | None]]:
    """Member name -> (member, its stat, the file it was read from)."""
    return {member.name: (member, key, tree.path(index))
            for index, (member, key) in enumerate(zip(tree.members, tree.keys, strict=True))}


def _tree_changes(old: TreeResult, new: TreeResult) -> list[Reason]:
    """What differs between two results of a tree's collect step, file by file."""
    before, after = _files(old), _files(new)
    reasons = []
    for name, (member, key, path) in after.items():
        shown = path or name
        if name not in before:
            reasons.append(Reason("added", shown))
            continue
        was, was_key, _ = before[name]
        if (member.sha256, member.size) != (was.sha256, was.size):
            reasons.append(Reason("changed", shown))
        elif (member.mode, member.type, member.linkname) != (was.mode, was.type, was.linkname):
            reasons.append(Reason("mode", shown))
        elif key != was_key:
            reasons.append(Reason("touched", shown))
    reasons.extend(Reason("removed", path or name) for name, (_, _, path) in before.items()
                   if name not in after)
    return reasons


def _line_changes(sources: object, d: Deployment) -> list[Reason]:
    """The lines of ``d``'s Vastfile and fragments that differ from what ``sources``
    (:func:`facts`) kept of them: each new or changed line with its text, and where
    lines were removed."""
    if not isinstance(sources, dict):
        return []
    reasons: list[Reason] = []
    for path in (d.vastfile, *d.fragments):
        real = os.path.realpath(path)
        old = sources.get(real)
        if not isinstance(old, list):
            continue
        try:
            lines = Path(real).read_bytes().splitlines()
        except OSError:
            continue
        new = [_line_digest(line) for line in lines]
        for tag, i1, i2, j1, j2 in SequenceMatcher(None, old, new, autojunk=False).get_opcodes():
            if tag == "equal":
                continue
            reasons.extend(Reason("line", real, j + 1,
                                  lines[j].decode("utf-8", "replace").strip())
                           for j in range(j1, j2))
            if i2 > i1 and j2 == j1:
                reasons.append(Reason("line-removed", real, min(j1 + 1, max(len(new), 1))))
    return reasons


def _registration_changes(old: Mapping[str, object] | None,
                          new: Mapping[str, object] | None) -> list[Reason]:
    """The fields of the registration that changed, but the content's hash and size."""
    if old is None or new is None:
        return []
    return [Reason("registration", detail=name) for name in sorted(set(old) | set(new))
            if name not in _CONTENT_FIELDS and old.get(name) != new.get(name)]


def _compressor_change(kept: object, fmt: str) -> list[Reason]:
    """A reason when ``fmt``'s compressor is not the one the last build recorded."""
    if not isinstance(kept, dict) or not isinstance(kept.get(fmt), str):
        return []
    now = compressor_version(fmt)
    return [] if kept[fmt] == now else [Reason("compressor", detail=f"{kept[fmt]} -> {now}")]


def _requirement_change(kept: object, path: str, result: object) -> list[Reason]:
    """Whether a requirements file changed since the last build, or was only touched."""
    if not isinstance(kept, dict) or not isinstance(result, TreeResult) \
            or len(result.members) != 1 or path not in kept:
        return []
    return [Reason("touched" if kept[path] == result.members[0].sha256 else "changed", path)]
