"""Running a build graph: each step looked up in the cache by key, run only on a miss.

Steps run in topological order on a thread pool, as many at once as the graph
and the cores allow (hashing, zlib/isal and zstd release the GIL). A step's key
is computed when its inputs are known: SHA-256 over its kind, the kind's
version and its key material (by default its params and every input's digest).
A cached result is used when the kind agrees it still holds (``is_fresh``: a
blob still in the cache, an artifact file unchanged); otherwise the step runs
and its result is stored. This module is also the library API other commands
build on: :func:`build` and :func:`hash_targets`.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import queue
import tempfile
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vastbuild import wire
from vastbuild.archive import (
    LEVELS,
    ChunkInfo,
    Member,
    compress_bytes,
    end_of_archive,
    source_date_epoch,
)
from vastbuild.cache import Store
from vastbuild.errors import UsageError, VastbuildError
from vastbuild.graph import BuildGraph, Step, canonical_json
from vastbuild.hashing import component_hashes, content_hash, manifest
from vastbuild.model import Deployment
from vastbuild.plan import Plan, TargetPlan, check_plugin_trees, plan
from vastbuild.progress import Reporter, reporter
from vastbuild.steps import ContentBuffer, StaleInput, StepContext, Volatile, kind

KEY_TAG = b"vastbuild step v1\n"
#: how many times a step is retried after an upstream result proved unusable
STALE_RETRIES = 2


@dataclass(frozen=True)
class HashResult:
    """A target's content hash, its component hashes (for tier planning) and its
    manifest (archive name -> what the member is), and how many steps ran."""

    label: str
    name: str
    tag: str
    hash: str
    components: dict[str, str]
    manifest: dict[str, str]
    cached_steps: int
    built_steps: int


@dataclass(frozen=True, kw_only=True)
class BuildResult(HashResult):
    """A built target: its hash, and the artifacts, their sizes and the registration body."""

    artifacts: dict[str, Path]
    sizes: dict[str, int]
    deployment_config: dict[str, Any]


@dataclass(frozen=True)
class Outcome:
    """A step's result, its digest, its key, and whether it came from the cache."""

    value: Any
    digest: str
    key: str
    cached: bool


def step_key(step: Step, inputs: Sequence[Outcome]) -> str:
    """The key of ``step`` given its inputs: equal keys mean equal results."""
    k = kind(step.kind)
    if hasattr(k, "key_material"):
        material = k.key_material(step, [o.value for o in inputs])
    else:
        material = {"params": step.params, "inputs": [o.digest for o in inputs]}
    return hashlib.sha256(KEY_TAG + canonical_json([k.name, k.version, material])).hexdigest()


class Executor:
    """Runs the steps a set of wanted steps needs, each at most once.

    ``on_finished(step_id)`` is called for each step as it finishes, before any
    step that depends on it is started: a check there (an exception) stops the
    build before the step's result is used.
    """

    def __init__(self, graph: BuildGraph, ctx: StepContext, jobs: int | None = None,
                 on_finished: Callable[[str], None] | None = None):
        self.graph = graph
        self.ctx = ctx
        self.jobs = jobs or os.cpu_count() or 2
        self.on_finished = on_finished
        self.outcomes: dict[str, Outcome] = {}

    def run(self, wanted: Iterable[str]) -> dict[str, Outcome]:
        order = [i for i in self.graph.closure(wanted) if i not in self.outcomes]
        waiting = {i: sum(1 for d in self.graph.steps[i].deps if d not in self.outcomes)
                   for i in order}
        self.ctx.reporter.begin(len(order))
        finished: queue.SimpleQueue[tuple[str, Future[Outcome]]] = queue.SimpleQueue()
        with ThreadPoolExecutor(self.jobs, thread_name_prefix="vastbuild") as pool:
            running: set[Future[Outcome]] = set()

            def submit(ident: str) -> None:
                future = pool.submit(self._execute, self.graph.steps[ident])
                running.add(future)
                future.add_done_callback(lambda f: finished.put((ident, f)))

            for ident in order:
                if waiting[ident] == 0:
                    submit(ident)
            try:
                while running:
                    ident, future = finished.get()
                    running.discard(future)
                    self.outcomes[ident] = future.result()
                    if self.on_finished is not None:
                        self.on_finished(ident)
                    for dependent in self.graph.dependents(ident):
                        if dependent in waiting:
                            waiting[dependent] -= 1
                            if waiting[dependent] == 0:
                                submit(dependent)
            except BaseException:
                for future in running:
                    future.cancel()
                raise
        return self.outcomes

    def _execute(self, step: Step, force: bool = False) -> Outcome:
        k = kind(step.kind)
        for attempt in range(STALE_RETRIES + 1):
            inputs = [self.outcomes[d] for d in step.deps]
            values = [o.value for o in inputs]
            key = step_key(step, inputs)
            if not force:
                raw = self.ctx.store.get_result(step.kind, key)
                if raw is not None:
                    value = json.loads(raw)
                    if not hasattr(k, "is_fresh") or k.is_fresh(step, value, self.ctx):
                        self.ctx.reporter.finished(step, cached=True)
                        return Outcome(value, hashlib.sha256(raw).hexdigest(), key, True)
            self.ctx.reporter.started(step)
            try:
                out = k.run(step, values, self.ctx)
            except StaleInput as stale:
                if stale.step_id not in step.deps:
                    raise
                if attempt == STALE_RETRIES:
                    raise VastbuildError(
                        f"the cached result of {stale.step_id} keeps failing its check",
                        "the cache folder may be damaged: run `vastbuild cache clear`") from None
                self.ctx.store.drop_result(self.graph.steps[stale.step_id].kind,
                                           self.outcomes[stale.step_id].key)
                self.outcomes[stale.step_id] = self._execute(self.graph.steps[stale.step_id],
                                                             force=True)
                continue
            volatile = isinstance(out, Volatile)
            raw = canonical_json(out.value if volatile else out)
            if not volatile:
                self.ctx.store.put_result(step.kind, key, raw)
            self.ctx.reporter.finished(step, cached=False)
            return Outcome(json.loads(raw), hashlib.sha256(raw).hexdigest(), key, False)
        raise AssertionError("unreachable")


def _counts(graph: BuildGraph, wanted: Iterable[str],
            outcomes: dict[str, Outcome]) -> tuple[int, int]:
    """(cached, built) among the steps ``wanted`` needed."""
    needed = graph.closure(wanted)
    cached = sum(1 for i in needed if outcomes[i].cached)
    return cached, len(needed) - cached


def _tree_members(target: TargetPlan, outcomes: dict[str, Outcome]) -> dict[str, list[Member]]:
    return {tree.step: [Member.from_json(row) for row in outcomes[tree.step].value["members"]]
            for tree in target.trees}


def _describe(target: TargetPlan, outcomes: dict[str, Outcome], api_url: str,
              autoscaler_url: str) -> tuple[str, dict[str, str], dict[str, str]]:
    """The content hash, component hashes and manifest of a planned target."""
    d = target.deployment
    chunks = [ChunkInfo(v["digest"], v["size"], v["hash_digest"], v["hash_size"])
              for v in (outcomes[p].value for p in target.packs)]
    members = _tree_members(target, outcomes)
    by_role = {role: [(t.arcroot, members[t.step]) for t in target.trees if t.role == role]
               for role in ("code", "copy", "plugin")}
    requirement_files = []
    for _, step in target.requirements:
        (row,) = outcomes[step].value["members"]
        requirement_files.append([Member.from_json(row).name, row[4]])
    components = component_hashes(
        config=target.config,
        code=[m for _, tree in by_role["code"] for m in tree],
        copies=by_role["copy"] + [(f"plugin {root}", tree) for root, tree in by_role["plugin"]],
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


def _executor(the_plan: Plan, ctx: StepContext) -> Executor:
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
                    check_plugin_trees(target, {s: executor.outcomes[s].value
                                                for s in target.plugin_steps})

    executor = Executor(the_plan.graph, ctx, on_finished=finished)
    return executor


def _context(store: Store, progress: Reporter, uses: int) -> StepContext:
    return StepContext(store=store, reporter=progress, content=ContentBuffer(uses))


def _wanted_for_hash(target: TargetPlan) -> list[str]:
    return [*target.packs, *(step for _, step in target.requirements)]


def _wanted_for_build(target: TargetPlan) -> list[str]:
    return [*target.assemble.values(), *target.compress["gz"],
            *(step for _, step in target.requirements)]


def hash_targets(models: Sequence[Deployment], *, cache_dir: str | os.PathLike[str],
                 api_url: str = wire.DEFAULT_API_URL,
                 autoscaler_url: str = wire.DEFAULT_AUTOSCALER_URL) -> list[HashResult]:
    """The content hash, component hashes and manifest of each model, without
    compressing or writing anything but the cache. Warm, it reads no source file."""
    cache_dir = Path(cache_dir)
    store = Store(cache_dir)
    try:
        the_plan = plan(models, cache_dir=cache_dir, mtime=source_date_epoch())
        executor = _executor(the_plan, _context(store, Reporter(), uses=0))
        outcomes = executor.run(i for t in the_plan.targets for i in _wanted_for_hash(t))
        results = []
        for target in the_plan.targets:
            d = target.deployment
            digest, components, files = _describe(target, outcomes, api_url, autoscaler_url)
            cached, built = _counts(the_plan.graph, _wanted_for_hash(target), outcomes)
            results.append(HashResult(d.label, d.name, d.tag, digest, components, files,
                                      cached, built))
        return results
    finally:
        store.close()


def build(models: Sequence[Deployment], *, cache_dir: str | os.PathLike[str],
          outdir: str | os.PathLike[str] | None,
          formats: tuple[str, ...] = ("gz", "zst"), api_url: str = wire.DEFAULT_API_URL,
          autoscaler_url: str = wire.DEFAULT_AUTOSCALER_URL,
          progress: bool = False) -> list[BuildResult]:
    """Build each model's artifacts in ``formats`` into ``outdir`` (or, when None, a
    folder of the cache), with ``<name>.deployment.json`` (the registration body)
    beside them in ``outdir``. The gzip chunks are always compressed: their size is
    the registration's ``file_size``."""
    cache_dir, outdir = Path(cache_dir), None if outdir is None else Path(outdir)
    formats = tuple(dict.fromkeys(formats))
    unknown = [f for f in formats if f not in LEVELS]
    if unknown:
        raise UsageError(f"unknown artifact format {unknown[0]!r}", "use gz, zst or both")
    store = Store(cache_dir)
    shown = reporter(progress)
    try:
        the_plan = plan(models, cache_dir=cache_dir, outdir=outdir, formats=formats,
                        compress=("gz",), mtime=source_date_epoch())
        ctx = _context(store, shown, uses=len({"gz", *formats}))
        executor = _executor(the_plan, ctx)
        outcomes = executor.run(i for t in the_plan.targets for i in _wanted_for_build(t))
        for index in ctx.outputs.values():
            index.save(prune=False)
        return [_build_result(target, the_plan, outcomes, outdir, api_url, autoscaler_url)
                for target in the_plan.targets]
    finally:
        shown.close()
        store.close()


def _build_result(target: TargetPlan, the_plan: Plan, outcomes: dict[str, Outcome],
                  outdir: Path | None, api_url: str, autoscaler_url: str) -> BuildResult:
    d = target.deployment
    digest, components, files = _describe(target, outcomes, api_url, autoscaler_url)
    tar_size = sum(outcomes[p].value["size"] for p in target.packs)
    tail = end_of_archive(tar_size)
    gz_size = sum(outcomes[c].value["length"] for c in target.compress["gz"]) + \
        compress_bytes("gz", LEVELS["gz"], tail, io.BytesIO()).written
    sizes = {"tar": tar_size + len(tail), "gz": gz_size}
    artifacts = {}
    for fmt, step in target.assemble.items():
        artifacts[fmt] = Path(outcomes[step].value["path"])
        sizes[fmt] = outcomes[step].value["length"]
    config = wire.deployment_config(d, file_hash=digest, file_size=gz_size, api_url=api_url,
                                    autoscaler_url=autoscaler_url)
    if outdir is not None:
        write_if_changed(outdir / f"{d.name}.deployment.json",
                         (json.dumps(config, indent=2) + "\n").encode())
    cached, built = _counts(the_plan.graph, _wanted_for_build(target), outcomes)
    return BuildResult(label=d.label, name=d.name, tag=d.tag, hash=digest,
                       components=components, manifest=files, cached_steps=cached,
                       built_steps=built, artifacts=artifacts, sizes=sizes,
                       deployment_config=config)


def write_if_changed(path: Path, data: bytes) -> None:
    """Write ``path`` atomically, unless it already holds ``data`` (its mtime is kept)."""
    try:
        if path.stat().st_size == len(data) and path.read_bytes() == data:
            return
    except OSError:
        pass
    temporary = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.",
                                         delete=False) as handle:
            temporary = handle.name
            handle.write(data)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException as exc:
        if temporary is not None and os.path.exists(temporary):
            os.unlink(temporary)  # a full disk or Ctrl-C leaves no half-written file
        if not isinstance(exc, OSError):
            raise
        raise VastbuildError(f"cannot write {path}: {exc.strerror or exc}",
                             "free some space, or choose another output folder with -o") \
            from None
