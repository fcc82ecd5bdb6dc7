"""Which targets a change since a git revision touches, from the planned inputs.

git says which files differ between ``REF`` and the working tree (staged or not,
plus untracked files it does not ignore); the plan says which files each
target reads: its Vastfile, the fragments it includes, its requirements files,
every file and ``.vastignore`` of its CODE and COPY trees (after ``.vastignore``
and the built-in exclusions) and what plugins read. A target is affected when a
changed file is one of its inputs, or when a file that is gone would have been
one (its tree's walk would have listed it). A file git ignores is invisible to
git, so a change to it is not seen here: ``vastbuild hash`` sees every byte.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from vastbuild.errors import VastbuildError
from vastbuild.ignore import rules_for
from vastbuild.plan import BuildPlan, PlannedTarget
from vastbuild.steps.collect import Scan, would_collect


@dataclass(frozen=True)
class AffectedTarget:
    """A target a change touches: its Vastfile and the changed inputs (absolute)."""

    vastfile: Path
    changed: tuple[str, ...]


def _git(folder: Path, *args: str) -> str:
    """The output of ``git -C folder args``, or :class:`VastbuildError` with git's
    own complaint."""
    try:
        done = subprocess.run(["git", "-C", os.fspath(folder), *args], capture_output=True,
                              check=False)
    except FileNotFoundError:
        raise VastbuildError("git is not installed; affected targets are computed from git",
                             "install git") from None
    if done.returncode != 0:
        said = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise VastbuildError(f"git {args[0]} failed in {folder}: "
                             f"{said[-1] if said else 'exit status ' + str(done.returncode)}",
                             "run it in a git work tree, and name a commit that exists there")
    return os.fsdecode(done.stdout)


def changed_files(folder: Path, since: str) -> set[str]:
    """The files (absolute, links resolved in their folders) that differ between
    ``since`` and the work tree of the repository holding ``folder``: modified,
    added, deleted, and untracked but not ignored."""
    top = Path(_git(folder, "rev-parse", "--show-toplevel").strip())
    try:
        _git(top, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{since}^{{commit}}")
    except VastbuildError:
        raise VastbuildError(f"{since!r} is not a commit of the repository {top}",
                             "name a branch, tag or commit (`git log` lists them), e.g. "
                             "HEAD or origin/main") from None
    listed = _git(top, "diff", "--name-only", "-z", "--no-renames", since, "--")
    listed += _git(top, "ls-files", "-z", "--others", "--exclude-standard")
    return {os.path.join(top, name) for name in listed.split("\0") if name}


@cache
def _real_folder(folder: str) -> str:
    return os.path.realpath(folder)


def _real(path: str) -> str:
    """``path`` with its folder's links resolved (the file itself may be a link, or gone)."""
    folder, name = os.path.split(path)
    return os.path.join(_real_folder(folder), name)


def affected(the_plan: BuildPlan, changed: set[str]) -> list[AffectedTarget]:
    """The targets of ``the_plan`` that ``changed`` (see :func:`changed_files`)
    touches, in plan order."""
    changed = {_real(p) for p in changed}
    gone = sorted(p for p in changed if not os.path.lexists(p))
    found = []
    for target in the_plan.targets:
        hit = {p for p in map(_real, target.inputs) if p in changed}
        hit.update(p for p in gone if _would_read(the_plan, target, p))
        if hit:
            found.append(AffectedTarget(target.deployment.vastfile, tuple(sorted(hit))))
    return found


def _would_read(the_plan: BuildPlan, target: PlannedTarget, path: str) -> bool:
    """Whether a tree of ``target`` would have listed ``path``, which is gone."""
    for step_id in target.collect_steps:
        scan = the_plan.graph.step(step_id).attachment
        if not isinstance(scan, Scan) or not os.path.isdir(scan.root):
            continue
        root = _real_folder(scan.root)
        rules = rules_for(Path(root), target.deployment.vastfile.parent)
        if would_collect(root, path, rules):
            return True
    return False
