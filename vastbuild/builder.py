"""Building and hashing targets: plan their graph, run what it needs, describe the result.

:func:`hash_targets` runs the steps the content hash needs (collect and pack:
file digests and chunk identities, no compression); :func:`build_targets` runs
the whole graph and writes the artifacts and each target's registration body.
Both describe each target by its content hash, its component hashes (what
``plan`` compares to name an update tier) and its manifest.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from vastbuild import wire
from vastbuild.archive import LEVELS, ChunkInfo, end_of_archive, tree_chunks
from vastbuild.cache import BuildCache
from vastbuild.canonical import JsonValue
from vastbuild.errors import InvalidArgument, VastbuildError
from vastbuild.execute import Executor, StepOutcome, cache_status
from vastbuild.files import write_if_changed
from vastbuild.graph import BuildGraph
from vastbuild.hashing import code_and_copies, component_hashes, content_hash, manifest
from vastbuild.model import Deployment
from vastbuild.patch import TargetState, TreeState
from vastbuild.plan import BuildPlan, PlannedTarget, check_plugin_trees, plan
from vastbuild.progress import Reporter
from vastbuild.results import BuildResult, HashResult, StepMark, StepReport, registration_file
from vastbuild.stats import CONTENT, Input
from vastbuild.steps.base import (
    ArtifactResult,
    CompressedTree,
    StepContext,
    TreeResult,
    expect,
)
from vastbuild.urls import DEFAULT_API_URL, DEFAULT_AUTOSCALER_URL

R = TypeVar("R", bound=HashResult)


@dataclass(frozen=True)
class Finished(Generic[R]):
    """What running a plan gave: each target's result and, for its up-to-date record
    (:mod:`vastbuild.uptodate`), every input it was made from."""

    plan: BuildPlan
    results: list[R]
    inputs: list[list[Input]]
    #: each target's state, which a later build patches (:mod:`vastbuild.patch`)
    states: list[TargetState]
    #: every step's outcome, which ``build --explain`` reads (:mod:`vastbuild.explain`)
    outcomes: Mapping[str, StepOutcome]


def _counts(graph: BuildGraph, wanted: Iterable[str],
            outcomes: Mapping[str, StepOutcome]) -> tuple[int, int]:
    """(cached, built) among the steps ``wanted`` needed."""
    needed = graph.needed(wanted)
    cached = sum(1 for i in needed if outcomes[i].cached)
    return cached, len(needed) - cached


def _reports(graph: BuildGraph, wanted: Sequence[list[str]],
             outcomes: Mapping[str, StepOutcome]) -> list[tuple[StepReport, ...]]:
    """Each target's steps (``wanted``: what each target asked for), with how many
    targets needed each."""
    needed = [graph.needed(w) for w in wanted]
    users: dict[str, int] = {}
    for steps in needed:
        for ident in steps:
            users[ident] = users.get(ident, 0) + 1
    return [tuple(StepReport(i, graph.step(i).kind, graph.step(i).label,
                             not outcomes[i].cached, users[i], outcomes[i].seconds)
                  for i in steps)
            for steps in needed]


def _tree(outcomes: Mapping[str, StepOutcome], step: str) -> TreeResult:
    return expect(outcomes[step].result, TreeResult)


def _chunks(target: PlannedTarget, outcomes: Mapping[str, StepOutcome],
            mtime: int) -> list[ChunkInfo]:
    """Every chunk of the target's tarball, in order (from the trees' results: nothing
    is read)."""
    return [info for tree in target.trees
            for _, _, info in tree_chunks(_tree(outcomes, tree.step).members, mtime,
                                          whole=tree.whole)]


def _describe(target: PlannedTarget, outcomes: Mapping[str, StepOutcome],
              chunks: Sequence[ChunkInfo], api_url: str,
              autoscaler_url: str) -> tuple[str, dict[str, str], dict[str, str]]:
    """The content hash, component hashes and manifest of a planned target."""
    d = target.deployment
    members = {tree.step: _tree(outcomes, tree.step).members for tree in target.trees}
    code, copies = code_and_copies((t.role, t.arcroot, members[t.step]) for t in target.trees)
    requirement_files: list[JsonValue] = []
    for _, step in target.requirements:
        (member,) = _tree(outcomes, step).members
        requirement_files.append([member.name, member.sha256])
    components = component_hashes(
        config=target.config,
        code=code,
        copies=copies,
        requirements={"pip": list(d.pip_installs), "apt": list(d.apt_gets),
                      "files": requirement_files},
        image={"image": d.image, "storage": d.storage,
               "env": wire.docker_env(d, api_url, autoscaler_url)},
        search=wire.search_params(d),
        autoscale={"settings": dict(d.autoscale), "ttl": d.ttl,
                   "version_label": d.version_label},
        tag={"name": d.name, "tag": d.tag},
    )
    files = manifest(m for t in target.trees for m in members[t.step])
    return content_hash(chunks), components, files


def _inputs(target: PlannedTarget, outcomes: Mapping[str, StepOutcome]) -> list[Input]:
    """What the target was made from: the planner's stats, and every file its trees
    read, with the content it had then (which checks a file changed too recently for
    its stat to vouch for it)."""
    found = list(target.stats)
    for step in target.collect_steps:
        tree = _tree(outcomes, step)
        if tree.root is not None:
            found.extend((os.path.join(tree.root, rel) if rel else tree.root, key,
                          CONTENT + member.sha256)
                         for member, rel, key in zip(tree.members, tree.rels, tree.keys,
                                                     strict=True)
                         if rel is not None and key is not None)
    return found


def _state(the_plan: BuildPlan, target: PlannedTarget, outcomes: Mapping[str, StepOutcome],
           mtime: int) -> TargetState:
    """What :mod:`vastbuild.patch` needs of the target: every tree's members, chunks and
    blobs per format built."""
    trees = []
    for position, tree in enumerate(target.trees):
        result = _tree(outcomes, tree.step)
        step = the_plan.graph.step(tree.step)
        blobs = {fmt: expect(outcomes[steps[position]].result, CompressedTree).chunks
                 for fmt, steps in target.compress.items() if steps[position] in outcomes}
        trees.append(TreeState(tree.role, tree.arcroot, tree.whole,
                               step.kind == "collect" and step.bool_param("filter"), result,
                               tuple(tree_chunks(result.members, mtime, whole=tree.whole)),
                               blobs))
    return TargetState(mtime, tuple(trees))


def _executor(the_plan: BuildPlan, ctx: StepContext, jobs: int | None) -> Executor:
    """An executor that checks each target's plugin files as soon as the last of them
    is known, before the steps that use it start: neither the content hash nor an
    artifact is ever made from an archive with two members at one path."""
    waiting = {index: set(target.plugin_steps)
               for index, target in enumerate(the_plan.targets) if target.plugin_steps}

    def finished(step_id: str) -> None:
        for index, steps in waiting.items():
            if step_id in steps:
                steps.discard(step_id)
                if not steps:
                    target = the_plan.targets[index]
                    check_plugin_trees(target, {s: executor.outcomes[s].result
                                                for s in target.plugin_steps})

    executor = Executor(the_plan.graph, ctx, jobs=jobs, on_finished=finished)
    return executor


def _wanted_for_hash(target: PlannedTarget) -> list[str]:
    return [*(tree.step for tree in target.trees), *(step for _, step in target.requirements)]


@contextmanager
def _context(cache: BuildCache, reporter: Reporter, mtime: int,
             formats: Sequence[str] = ()) -> Iterator[StepContext]:
    """The context steps run in, with a pool as wide as the machine for their work."""
    with ThreadPoolExecutor(os.cpu_count() or 2, thread_name_prefix="vastbuild-work") as pool:
        yield StepContext(cache=cache, reporter=reporter, pool=pool, mtime=mtime,
                          formats=tuple((fmt, LEVELS[fmt]) for fmt in formats))


def _wanted_for_build(target: PlannedTarget) -> list[str]:
    return [*target.assemble.values(), *(step for _, step in target.requirements)]


def graph_marks(the_plan: BuildPlan, cache: BuildCache, mtime: int,
                formats: Sequence[str]) -> dict[str, StepMark]:
    """How many targets need each step of a build of ``the_plan``, and whether the
    cache holds its result (nothing runs)."""
    wanted = [_wanted_for_build(t) for t in the_plan.targets]
    users: dict[str, int] = {}
    for steps in wanted:
        for ident in the_plan.graph.needed(steps):
            users[ident] = users.get(ident, 0) + 1
    with _context(cache, Reporter(), mtime, formats) as ctx:
        status = cache_status(the_plan.graph, ctx, (i for steps in wanted for i in steps))
    return {ident: StepMark(users.get(ident, 0), status.get(ident, False))
            for ident in users}


def hash_targets(models: Sequence[Deployment], *, cache: BuildCache, mtime: int,
                 api_url: str = DEFAULT_API_URL,
                 autoscaler_url: str = DEFAULT_AUTOSCALER_URL,
                 jobs: int | None = None) -> Finished[HashResult]:
    """The content hash, component hashes and manifest of each model, without
    compressing or writing anything but the cache. Warm, it reads no source file."""
    the_plan = plan(models, cache_dir=cache.directory, mtime=mtime)
    with _context(cache, Reporter(), mtime) as ctx:
        executor = _executor(the_plan, ctx, jobs)
        outcomes = executor.run(i for t in the_plan.targets for i in _wanted_for_hash(t))
    results = []
    reports = _reports(the_plan.graph, [_wanted_for_hash(t) for t in the_plan.targets],
                       outcomes)
    for target, steps in zip(the_plan.targets, reports, strict=True):
        d = target.deployment
        digest, components, files = _describe(target, outcomes,
                                              _chunks(target, outcomes, mtime), api_url,
                                              autoscaler_url)
        cached, built = _counts(the_plan.graph, _wanted_for_hash(target), outcomes)
        results.append(HashResult(d.label, d.vastfile, d.name, d.tag, digest, components,
                                  files, cached, built, steps=steps))
    return Finished(the_plan, results, [_inputs(t, outcomes) for t in the_plan.targets],
                    [_state(the_plan, t, outcomes, mtime) for t in the_plan.targets], outcomes)


def build_targets(models: Sequence[Deployment], *, cache: BuildCache, outdir: Path | None,
                  formats: Sequence[str], mtime: int, reporter: Reporter,
                  api_url: str = DEFAULT_API_URL,
                  autoscaler_url: str = DEFAULT_AUTOSCALER_URL,
                  jobs: int | None = None) -> Finished[BuildResult]:
    """Build each model's artifacts in ``formats`` into ``outdir`` (or, when None, a
    folder of the cache), with ``<name>.deployment.json`` (the registration body)
    beside them in ``outdir`` when ``gz`` is built (its length is the registration's
    ``file_size``)."""
    formats = tuple(dict.fromkeys(formats))
    unknown = [f for f in formats if f not in LEVELS]
    if unknown or not formats:
        raise InvalidArgument(f"unknown artifact format {unknown[0]!r}" if unknown
                              else "no artifact format", "use gz, zst or both",
                              setting="formats")
    the_plan = plan(models, cache_dir=cache.directory, outdir=outdir, formats=formats,
                    mtime=mtime)
    with _context(cache, reporter, mtime, formats) as ctx:
        executor = _executor(the_plan, ctx, jobs)
        outcomes = executor.run(i for t in the_plan.targets for i in _wanted_for_build(t))
        for index in ctx.outputs.values():
            index.save(prune=False)
    reports = _reports(the_plan.graph, [_wanted_for_build(t) for t in the_plan.targets],
                       outcomes)
    return Finished(the_plan,
                    [_build_result(target, the_plan, outcomes, outdir, mtime, api_url,
                                   autoscaler_url, steps)
                     for target, steps in zip(the_plan.targets, reports, strict=True)],
                    [_inputs(t, outcomes) for t in the_plan.targets],
                    [_state(the_plan, t, outcomes, mtime) for t in the_plan.targets], outcomes)


def _build_result(target: PlannedTarget, the_plan: BuildPlan,
                  outcomes: Mapping[str, StepOutcome], outdir: Path | None, mtime: int,
                  api_url: str, autoscaler_url: str,
                  steps: tuple[StepReport, ...]) -> BuildResult:
    d = target.deployment
    chunks = _chunks(target, outcomes, mtime)
    digest, components, files = _describe(target, outcomes, chunks, api_url, autoscaler_url)
    tar_size = sum(info.size for info in chunks)
    sizes = {"tar": tar_size + len(end_of_archive(tar_size))}
    artifacts = {}
    for fmt, step in target.assemble.items():
        artifact = expect(outcomes[step].result, ArtifactResult)
        artifacts[fmt] = Path(artifact.path)
        sizes[fmt] = artifact.length
    path = config = None
    if "gz" in sizes:  # the registration describes the .tar.gz Vast's workers take
        config = wire.deployment_config(d, file_hash=digest, file_size=sizes["gz"],
                                        api_url=api_url, autoscaler_url=autoscaler_url)
    if outdir is not None and config is not None:
        path = outdir / f"{d.name}.deployment.json"
        try:
            write_if_changed(path, registration_file(config))
        except OSError as exc:
            raise VastbuildError(f"cannot write {path}: {exc.strerror or exc}",
                                 "free some space, or choose another output folder",
                                 setting="outdir") from None
    cached, built = _counts(the_plan.graph, _wanted_for_build(target), outcomes)
    return BuildResult(label=d.label, vastfile=d.vastfile, name=d.name, tag=d.tag, hash=digest,
                       components=components, manifest=files, cached_steps=cached,
                       built_steps=built, artifacts=artifacts, sizes=sizes,
                       deployment_config=config, deployment_json=path, steps=steps)

