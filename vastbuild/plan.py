"""Planning: checked deployments become one build graph.

For each target: a ``config`` step (./config.json), a ``collect`` step per
source tree (CODE, each COPY, each ``PIP -r`` file), one source step per
plugin contribution, then the archive in order — config.json, the deployment
module or package, each COPY at its destination, plugin files — a
``compress`` step per tree and format (which cuts the tree into chunks), and an
``assemble`` step per artifact. Planning stats every source file (the collect
keys need the listing) and reads none.

Planning also proves that no two members of an archive take one path on the
worker (:class:`~vastbuild.archive.ArchivePaths`): CODE's and the COPYs' members
are known from the listing, plugin files once their steps have run
(:func:`check_plugin_trees`, called by the builder as soon as a target's last
plugin step has finished, before anything is assembled or hashed).
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from vastbuild import wire
from vastbuild.archive import LEVELS, ArchivePaths, Origin, arcname_join
from vastbuild.canonical import JsonValue
from vastbuild.errors import InvalidArgument, VastbuildError
from vastbuild.formats import SUFFIXES
from vastbuild.graph import BuildGraph
from vastbuild.ignore import IgnoreRules, rules_for
from vastbuild.model import Deployment
from vastbuild.plugins import LOAD_FAILED, PluginError, registry
from vastbuild.stats import IDENTITY, Input, stat_paths
from vastbuild.steps.base import StepResult, TreeResult
from vastbuild.steps.collect import ALWAYS_EXCLUDED_NAMES, Scan, member_type, scan_tree, travels
from vastbuild.steps.config import ARCNAME as CONFIG_ARCNAME
from vastbuild.workspace import folders_between

DEPLOYMENT_MODULE = "./deployment.py"
DEPLOYMENT_PACKAGE = "./deployment"
CONFIG_ORIGIN = Origin("config", "the config.json vastbuild writes for the worker")


@dataclass(frozen=True)
class PlannedTree:
    """One source tree of a target, in archive order: the step whose result it is, and
    whether it travels as one chunk (generated files) or cut by name."""

    role: str  # config, code, copy, plugin, requirements (which does not travel)
    arcroot: str
    step: str
    whole: bool = False


@dataclass(frozen=True)
class PlannedTarget:
    """What one target's build consists of: the steps of its trees and artifacts."""

    deployment: Deployment
    config: bytes
    #: the trees that travel, in archive order
    trees: tuple[PlannedTree, ...]
    #: (requirements file, its collect step)
    requirements: tuple[tuple[Path, str], ...]
    #: every input file and folder (for depfiles)
    inputs: tuple[str, ...]
    #: the archive paths of config.json, CODE and the COPYs (plugin files join later)
    paths: ArchivePaths
    #: the stat of every folder and link the trees and requirements files were listed
    #: from and of every file plugins read, taken before reading (the files of trees:
    #: see ``collect_steps``)
    stats: tuple[Input, ...]
    #: format -> the compress steps of every chunk, in archive order
    compress: Mapping[str, tuple[str, ...]]
    #: format -> the assemble step of the artifact
    assemble: Mapping[str, str]

    @property
    def collect_steps(self) -> list[str]:
        """The steps that read source files: the trees' and the requirements files'."""
        return [*(tree.step for tree in self.trees if tree.role in ("code", "copy")),
                *(step for _, step in self.requirements)]

    @property
    def plugin_steps(self) -> list[str]:
        return [tree.step for tree in self.trees if tree.role == "plugin"]


@dataclass(frozen=True)
class BuildPlan:
    """The graph of every target's steps, and each target's part of it."""

    graph: BuildGraph
    targets: tuple[PlannedTarget, ...]


def copy_arcroot(dst: str) -> str:
    """Where a COPY lands in the archive: an absolute dst keeps its ``/``, a relative
    one is written ``./dst`` like the SDK's own members."""
    normal = posixpath.normpath(dst)
    if normal.startswith("/"):
        return "/" + normal.lstrip("/")
    return "." if normal == "." else f"./{normal}"


class _Planner:
    def __init__(self, *, cache_dir: Path, outdir: Path | None, mtime: int) -> None:
        self.graph = BuildGraph()
        self.mtime = mtime
        self.cache_dir = cache_dir
        self.outdir = outdir
        self._excluded_everywhere = {os.path.realpath(cache_dir)}
        self._scans: dict[tuple[str, str, tuple[str, ...]], Scan] = {}
        self._plugins = registry().plugin_step_kinds()

    def target(self, d: Deployment, formats: Sequence[str],
               compress: Sequence[str]) -> PlannedTarget:
        rules = d.vastfile.parent
        exclude = set(self._excluded_everywhere) | {os.path.realpath(d.vastfile)}
        inputs = [str(d.vastfile), *map(str, d.fragments)]
        stats: list[Input] = []

        config = wire.config_json(d)
        code = _shown(d, d.code.path)
        code_origin = Origin("code", f"CODE {code} at {d.code.span}", root=code)
        paths = ArchivePaths({CONFIG_ARCNAME: CONFIG_ORIGIN, DEPLOYMENT_MODULE: code_origin,
                              DEPLOYMENT_PACKAGE: code_origin})
        paths.add(CONFIG_ARCNAME, "file", CONFIG_ORIGIN)
        trees = [self._config(config)]
        code_root = DEPLOYMENT_PACKAGE if d.code.kind == "package" else DEPLOYMENT_MODULE
        trees.append(self._collect("code", d.code.path, code_root, True, rules, exclude, inputs,
                                   str(d.code.span), paths, code_origin))
        for copy in d.copies:
            src = _shown(d, copy.src)
            origin = Origin("copy", f"COPY {src} {copy.dst} at {copy.span}", root=src,
                            folder=copy.src.is_dir())
            trees.append(self._collect("copy", copy.src, copy_arcroot(copy.dst), False, rules,
                                       exclude, inputs, str(copy.span), paths, origin))
        requirements = []
        for req in d.requirements_files:
            tree = self._collect("requirements", req.path, _label(d, req.path), False, None,
                                 exclude, inputs, str(req.span))
            requirements.append((req.path, tree.step))
        for kind in self._plugins:
            for params in kind.plan(d):
                label = f"{kind.name} {_label(d, d.vastfile)}"
                step = self.graph.add(kind.name, params, label=label)
                files = [os.fspath(p) for p in kind.input_files(step)]
                inputs.extend(files)
                stats.extend(stat_paths(files))
                trees.append(PlannedTree("plugin", kind.name, step.id, whole=True))

        compressed: dict[str, tuple[str, ...]] = {}
        for fmt in dict.fromkeys([*compress, *formats]):
            compressed[fmt] = tuple(self.graph.add(
                "compress", {"format": fmt, "level": LEVELS[fmt], "mtime": self.mtime,
                             "whole": tree.whole},
                (tree.step,), label=f"{fmt} {self.graph.step(tree.step).label}").id
                for tree in trees)
        assembled: dict[str, str] = {}
        for fmt in formats:
            folder: str
            file: str | None
            if self.outdir is None:
                folder, file = str(self.cache_dir / "artifacts"), None
            else:
                folder, file = str(self.outdir), d.name + SUFFIXES[fmt]
            assembled[fmt] = self.graph.add(
                "assemble", {"format": fmt, "level": LEVELS[fmt], "folder": folder, "file": file},
                compressed[fmt], label=file or f"{d.name}{SUFFIXES[fmt]} (cache)").id
        for step_id in [*(tree.step for tree in trees), *(step for _, step in requirements)]:
            step = self.graph.step(step_id)
            if isinstance(step.attachment, Scan):
                stats.extend(stat_paths(step.attachment.rule_files))
                stats.extend(step.attachment.stats())
                stats.extend(stat_paths(folders_between(step.attachment.root, d.root),
                                        IDENTITY))
        return PlannedTarget(d, config, tuple(trees), tuple(requirements), tuple(inputs), paths,
                             tuple(stats), compressed, assembled)

    def _config(self, config: bytes) -> PlannedTree:
        step = self.graph.add("config", {"json": config.decode("utf-8")}, label="./config.json")
        return PlannedTree("config", CONFIG_ARCNAME, step.id, whole=True)

    def _collect(self, role: str, src: Path, arcroot: str, filter_python: bool,
                 rules: Path | None, exclude: set[str], inputs: list[str],
                 where: str, paths: ArchivePaths | None = None,
                 origin: Origin | None = None) -> PlannedTree:
        """The collect step of one tree; with ``paths`` (a tree that travels), its
        members are recorded there and folders already in the archive are left out of
        the tree. ``where`` is the directive that reads the tree (``path:line:col``),
        which an error in the tree names."""
        root = os.fspath(src)
        if os.path.realpath(self.cache_dir) == os.path.realpath(root):
            raise InvalidArgument(
                f"{where}: the cache folder {self.cache_dir} is the folder this reads, so "
                "each build would carry the cache of the last one",
                "choose a cache folder outside it, or one inside it (which is left out)",
                setting="cache_dir")
        applied = rules_for(src, rules) if rules is not None and os.path.isdir(root) else None
        if self.outdir is not None and _would_travel(self.outdir, root, applied):
            same = os.path.realpath(self.outdir) == os.path.realpath(root)
            raise InvalidArgument(
                f"{where}: the output folder {self.outdir} is "
                f"{'the folder this reads' if same else 'inside the tree this reads'}: each "
                "build would carry the artifacts of the last one, and `vastbuild hash` "
                "would not see what the build saw",
                "build into a folder outside the tree" if same else
                "name the folder in .vastignore, or build into a folder outside the tree",
                setting="outdir")
        inside = tuple(sorted(e for e in exclude if e.startswith(root.rstrip("/") + "/")))
        rules_digest = applied.digest if applied else ""
        cache_key = (root, rules_digest, inside)
        scan = self._scans.get(cache_key)
        if scan is None:
            try:
                scan = self._scans[cache_key] = scan_tree(src, rules=applied, exclude=inside)
            except VastbuildError as exc:
                raise VastbuildError(f"{where}: {exc.message}", exc.hint) from None
        inputs.extend(scan.files())
        skip: list[JsonValue] = []
        params: dict[str, JsonValue] = {
            "path": root, "arcroot": arcroot, "filter": filter_python, "rules": rules_digest,
            "exclude": list(inside), "skip": skip}
        if paths is None:
            step = self.graph.add("collect", params, label=f"{role} {arcroot}", attachment=scan)
            return PlannedTree(role, arcroot, step.id)
        assert origin is not None
        for e in scan.entries:
            if travels(e, arcroot) and not paths.add(arcname_join(arcroot, e.rel),
                                                     member_type(e), origin, e.rel):
                skip.append(e.rel)
        step = self.graph.add("collect", params, label=f"{role} {arcroot}", attachment=scan)
        return PlannedTree(role, arcroot, step.id)


def _would_travel(folder: Path, root: str, rules: IgnoreRules | None) -> bool:
    """Whether ``folder`` is the tree at ``root`` or inside it and not left out by a
    built-in exclusion or ``.vastignore``."""
    real, top = os.path.realpath(folder), os.path.realpath(root)
    if real == top:
        return True
    if not real.startswith(top.rstrip("/") + "/") or not os.path.isdir(top):
        return False
    rules = (rules or IgnoreRules()).with_folder(top)
    below = top
    for name in os.path.relpath(real, top).split(os.sep):
        below = os.path.join(below, name)
        if name in ALWAYS_EXCLUDED_NAMES or rules.excludes(below, True):
            return False
        rules = rules.with_folder(below)
    return True


def _label(d: Deployment, path: Path) -> str:
    try:
        return path.relative_to(d.root).as_posix()
    except ValueError:
        return path.as_posix()


def _shown(d: Deployment, path: Path) -> str:
    """``path`` as the Vastfile names it: relative to the Vastfile's folder."""
    return Path(os.path.relpath(path, d.vastfile.parent)).as_posix()


def check_plugin_trees(target: PlannedTarget, results: Mapping[str, StepResult]) -> None:
    """Prove that the files plugin steps contributed (``results``: each plugin step's
    result, by step id) take no path another member of ``target``'s archive takes.
    Raises :class:`VastbuildError` naming both sources. A plugin contributes files
    (:func:`~vastbuild.steps.generated_tree`); a folder entry already in the archive
    cannot be left out of its result after the fact, so that is an error too."""
    paths = target.paths.copy()
    plugin_trees = [tree for tree in target.trees if tree.role == "plugin"]
    for number, tree in enumerate(plugin_trees, 1):
        origin = Origin("plugin", f"the `{tree.arcroot}` plugin (contribution {number} of "
                        f"{len(plugin_trees)} to {target.deployment.label})")
        result = results[tree.step]
        if not isinstance(result, TreeResult):
            raise PluginError(LOAD_FAILED, f"{origin.label} returned a "
                              f"{type(result).__name__}, not a tree of files",
                              "a plugin's step that contributes files returns "
                              "vastbuild.steps.generated_tree(...)")
        for member in result.members:
            if not paths.add(member.name, member.type, origin):
                raise VastbuildError(
                    f"{origin.label} holds a folder entry {member.name}, which the archive "
                    "already has", "a plugin contributes files: leave folder entries out of "
                    "its result (vastbuild.steps.generated_tree writes files only)")


def plan(models: Sequence[Deployment], *, cache_dir: Path, outdir: Path | None = None,
         formats: Sequence[str] = (), compress: Sequence[str] = (), mtime: int = 0) -> BuildPlan:
    """The build graph of ``models``: artifacts in ``formats`` (assembled), chunks
    compressed in ``compress`` as well (the gzip size the registration needs), or
    only the steps the content hash needs when both are empty."""
    planner = _Planner(cache_dir=cache_dir, outdir=outdir, mtime=mtime)
    targets = tuple(planner.target(d, formats, compress) for d in models)
    if outdir is not None:
        seen: dict[str, str] = {}
        for t in targets:
            for fmt in formats:
                file = t.deployment.name + SUFFIXES[fmt]
                if file in seen and seen[file] != t.deployment.label:
                    raise InvalidArgument(
                        f"{seen[file]} and {t.deployment.label} would both write "
                        f"{outdir / file}", "build them into different output folders",
                        setting="outdir")
                seen[file] = t.deployment.label
    return BuildPlan(planner.graph, targets)
