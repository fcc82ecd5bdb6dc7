"""The short ways through ``hash`` and ``build``: answer from the last run's record.

Each target's last result is recorded with its inputs (:mod:`vastbuild.uptodate`).
When none of them changed, the record is the answer: nothing is parsed, planned,
read or written. When only files of its trees changed, the target's state is
patched (:mod:`vastbuild.patch`): the changed files are hashed, their chunks
compressed, the artifacts assembled, with no parsing and no planning. Anything
else, or anything the state cannot answer, returns None, and the caller runs the
full build -- which then records its result here (:func:`remember`).

Only :mod:`os`-light modules are imported at the top: a warm ``hash`` imports
this module and little else.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from vastbuild import uptodate
from vastbuild.results import (
    BuildResult,
    HashResult,
    build_from_record,
    build_record,
    hash_from_record,
    hash_record,
    registration_file,
)
from vastbuild.stats import IDENTITY, WRITTEN, stat_paths

if TYPE_CHECKING:
    from vastbuild.builder import Finished
    from vastbuild.patch import Patched
    from vastbuild.steps.base import StepContext

R = TypeVar("R", bound=HashResult)

#: the purpose of hash records
HASH = "hash"


def hash_settings(cache_dir: str | os.PathLike[str], api_url: str, autoscaler_url: str,
                  tag: str | None = None,
                  args: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """What a hash result depends on besides its inputs (``tag``: the tag of a
    Vastfile without TAG, None for the default; ``args``: the ``--arg`` values)."""
    given = "\0".join(f"{name}={value}" for name, value in sorted((args or {}).items()))
    return (HASH, os.path.realpath(cache_dir), api_url, autoscaler_url, tag or "", given)


def build_purpose(outdir: Path, formats: Sequence[str]) -> str:
    """The purpose a build's record is kept under: its output folder and formats."""
    return f"build\0{os.path.abspath(outdir)}\0{','.join(formats)}"


def recorded_hashes(cache_dir: str | os.PathLike[str], vastfiles: Sequence[Path],
                    settings: Sequence[str]) -> list[HashResult] | None:
    """Each target's hash from its record, patched where only tree files changed;
    None when one of them needs the full run."""
    env = uptodate.environment(settings)
    found = _lookup(cache_dir, vastfiles, HASH, env)
    if found is None:
        return None
    if not any(record.changed for record in found):
        return [hash_from_record(record.payload) for record in found]
    return _patched(cache_dir, vastfiles, found, HASH, env, None)


def recorded_builds(cache_dir: str | os.PathLike[str], vastfiles: Sequence[Path],
                    purpose: str, settings: Sequence[str],
                    settings_of_hash: Sequence[str]) -> list[BuildResult] | None:
    """Each target's build from its record, rebuilt by patching where only tree files
    changed; None when one of them needs the full build."""
    env = uptodate.environment(settings)
    found = _lookup(cache_dir, vastfiles, purpose, env)
    if found is None:
        return None
    if not any(record.changed for record in found):
        return [build_from_record(record.payload) for record in found]
    patched = _patched(cache_dir, vastfiles, found, purpose, env,
                       uptodate.environment(settings_of_hash))
    if patched is None:
        return None
    built = [result for result in patched if isinstance(result, BuildResult)]
    return built if len(built) == len(patched) else None


def _lookup(cache_dir: str | os.PathLike[str], vastfiles: Sequence[Path], purpose: str,
            env: str) -> list[uptodate.Found] | None:
    found = []
    for vastfile in vastfiles:
        record = uptodate.lookup(cache_dir, str(vastfile), purpose, env)
        if record is None:
            return None
        found.append(record)
    return found


def _patched(cache_dir: str | os.PathLike[str], vastfiles: Sequence[Path],
             found: Sequence[uptodate.Found], purpose: str, env: str,
             hash_env: str | None) -> list[HashResult] | None:
    """Patch each target whose record names changes (a build when ``hash_env`` is
    given: its hash record is written too); None when one cannot be patched."""
    from concurrent.futures import ThreadPoolExecutor

    from vastbuild.cache import BuildCache
    from vastbuild.progress import Reporter
    from vastbuild.steps.base import StepContext

    started = time.time_ns()
    cache = BuildCache(Path(cache_dir))
    try:
        with ThreadPoolExecutor(os.cpu_count() or 2, thread_name_prefix="vastbuild-work") as pool:
            ctx = StepContext(cache=cache, reporter=Reporter(), pool=pool, started_ns=started)
            try:
                return _patch_each(cache_dir, vastfiles, found, purpose, env, hash_env,
                                   started, ctx)
            except BaseException:
                ctx.cancelled.set()  # work on the pool stops at its next checkpoint
                raise
    finally:
        cache.close()


def _patch_each(cache_dir: str | os.PathLike[str], vastfiles: Sequence[Path],
                found: Sequence[uptodate.Found], purpose: str, env: str, hash_env: str | None,
                started: int, ctx: StepContext) -> list[HashResult] | None:
    """Each target's result, patched where its record names changes; None as soon as
    one cannot be patched."""
    from vastbuild.patch import NotPatchable, TargetState, patch

    results: list[HashResult] = []
    for vastfile, record in zip(vastfiles, found, strict=True):
        before = hash_from_record(record.payload) if hash_env is None else \
            build_from_record(record.payload)
        if not record.changed:
            results.append(before)
            continue
        data = uptodate.load_state(cache_dir, record.payload)
        artifacts = _artifacts(before)
        if data is None or set(record.changed) & _outputs(before):
            return None  # no state, or an output was touched: the full build judges
        try:
            done = patch(TargetState.from_bytes(data), record.changed, ctx,
                         artifacts=artifacts)
            after = _result(before, done)
            _write_registration(after)
        except NotPatchable:
            return None
        _save(cache_dir, str(vastfile), purpose, env, hash_env, started, record, done,
              after)
        results.append(after)
    for index in ctx.outputs.values():
        index.save(prune=False)
    return results


def _artifacts(result: HashResult) -> dict[str, str]:
    """Format -> the artifact's path, for a build."""
    if isinstance(result, BuildResult):
        return {fmt: str(path) for fmt, path in result.artifacts.items()}
    return {}


def _outputs(result: HashResult) -> set[str]:
    """Every file a build wrote."""
    found = set(_artifacts(result).values())
    if isinstance(result, BuildResult) and result.deployment_json is not None:
        found.add(str(result.deployment_json))
    return found


def _result(before: HashResult, done: Patched) -> HashResult:
    """The result ``before`` described, brought up to date by ``done``."""
    steps = before.cached_steps + before.built_steps
    built = min(done.built_steps, steps)
    after = replace(before, hash=done.hash, components={**before.components, **done.components},
                    manifest={}, cached_steps=steps - built, built_steps=built)
    if not isinstance(after, BuildResult):
        return after
    config = after.deployment_config
    if config is not None:  # it describes the .tar.gz: its hash and length
        config = {**config, "file_hash": done.hash, "file_size": done.sizes["gz"]}
    return replace(after, sizes={**after.sizes, **done.sizes}, deployment_config=config)


def _write_registration(result: HashResult) -> None:
    """Write a build's ``<name>.deployment.json`` again (unless its bytes are the same)."""
    if not isinstance(result, BuildResult) or result.deployment_json is None \
            or result.deployment_config is None:
        return
    from vastbuild.files import write_if_changed
    from vastbuild.patch import NotPatchable

    try:
        write_if_changed(result.deployment_json, registration_file(result.deployment_config))
    except OSError:
        raise NotPatchable("the registration body cannot be written") from None


def _save(cache_dir: str | os.PathLike[str], vastfile: str, purpose: str, env: str,
          hash_env: str | None, started: int, record: uptodate.Found, done: Patched,
          after: HashResult) -> None:
    """Record a patched result (a build's, and then its hash too) with its state."""
    envs = [(purpose, env)] if hash_env is None else [(purpose, env), (HASH, hash_env)]
    uptodate.save(cache_dir, vastfile,
                  _records(envs, after, record.payload.get(uptodate.FACTS)), root=record.root,
                  started_ns=started,
                  inputs=[*(i for i in record.inputs() if i[2] != WRITTEN), *done.inputs],
                  state=uptodate.save_state(cache_dir, vastfile, purpose,
                                            done.state.to_bytes()))


def _records(envs: Sequence[tuple[str, str]], result: HashResult,
             facts: object = None) -> list[uptodate.NewRecord]:
    """The records of ``result`` for each (purpose, environment): a build's with the
    files it wrote and the ``facts`` kept for ``--explain``, a hash's with its result
    alone."""
    found = []
    for purpose, env in envs:
        if purpose != HASH and isinstance(result, BuildResult):
            payload = build_record(result)
            if facts is not None:
                payload[uptodate.FACTS] = facts
            found.append(uptodate.NewRecord(purpose, env, payload,
                                            stat_paths(sorted(_outputs(result)), WRITTEN)))
        else:
            found.append(uptodate.NewRecord(purpose, env, hash_record(result)))
    return found


def remember(cache_dir: str | os.PathLike[str], purposes: Sequence[tuple[str, Sequence[str]]],
             started: int, finished: Finished[R], results: Sequence[HashResult]) -> None:
    """Record each target's result of a full run (``finished``) for each purpose (with
    its settings), with its inputs and state, for the next run's lookup; a build's
    record keeps what ``build --explain`` will compare with."""
    from vastbuild.explain import facts
    from vastbuild.plugins import registry
    from vastbuild.workspace import folders_between

    plugin_files = stat_paths(registry().loaded_plugin_files())
    envs = [(purpose, uptodate.environment(settings)) for purpose, settings in purposes]
    for target, result, read, state in zip(finished.plan.targets, results, finished.inputs,
                                           finished.states, strict=True):
        d = target.deployment
        vastfile = os.path.realpath(d.vastfile)
        kept = facts(target, finished.outcomes) if isinstance(result, BuildResult) else None
        uptodate.save(
            cache_dir, vastfile, _records(envs, result, kept), root=os.fspath(d.root),
            started_ns=started,
            inputs=[*stat_paths(folders_between(vastfile, d.root), IDENTITY),
                    *stat_paths([vastfile, *map(str, d.fragments)]), *read, *plugin_files],
            state=uptodate.save_state(cache_dir, vastfile, purposes[0][0], state.to_bytes()))
