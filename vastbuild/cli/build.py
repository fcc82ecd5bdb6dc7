"""``vastbuild graph``, ``hash``, ``build``, ``deps`` and ``cache``: the build commands.

Each takes Vastfiles or folders holding one (default ./Vastfile). Exit codes:
0 ok, 1 an error in the input (diagnostics, an unreadable file, a hash that
does not match), 2 usage (a PATH that is not there, a malformed hash).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from vastbuild.api import (
    ARTIFACT_SUFFIXES,
    GRAPH_STYLES,
    VASTFILE,
    BuildResult,
    build_graph,
    cache_clear,
    cache_gc,
    cache_stats,
    cache_verify,
    check_depfile,
    compressors,
    format_bytes,
    hash_targets,
    is_content_hash,
    parse_bytes,
    resolve_targets,
    write_depfiles,
)
from vastbuild.api import build as build_targets
from vastbuild.cli import options
from vastbuild.cli.context import GlobalOptions
from vastbuild.cli.report import load, narrowed, print_warnings, shown


@click.command()
@options.paths
@click.option("--format", "style", type=click.Choice(GRAPH_STYLES), default="text",
              show_default=True,
              help="How to draw the graph (svg and png need Graphviz's dot).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the drawing to this file (default: stdout; png needs a file).")
@click.option("--outdir", type=click.Path(file_okay=False, path_type=Path), default=Path("dist"),
              show_default=True, help="The folder `build -o` would write the artifacts into.")
@click.option("--no-marks", is_flag=True,
              help="Leave out what the cache holds and which steps targets share.")
@click.pass_obj
def graph(settings: GlobalOptions, paths: tuple[str, ...], style: str, output: Path | None,
          outdir: Path, no_marks: bool) -> None:
    """Draw the build graph of TARGETs merged into one: every step, its kind, and the
    steps it reads.

    A step several targets share (the same folder copied to the same place) is
    drawn once and says by how many; each step says whether the step cache holds
    its result (read from the cache; nothing runs).
    """
    if style == "png" and output is None:
        raise click.UsageError("a PNG goes to a file: add -o FILE.png")
    drawn = build_graph(paths or (VASTFILE,), cache_dir=settings.cache_dir, style=style,
                        marks=not no_marks, tag=settings.tag, args=settings.args,
                        output=output, outdir=outdir)
    if output is None:
        click.echo(drawn)


@click.command("hash")
@options.paths
@options.affected_since
@options.as_json
@click.option("--check", "expected", metavar="HASH|FILE",
              help="Exit 0 when the (single) target's hash is HASH, 1 when it is not; or "
                   "check every `HASH  TARGET` line of FILE (as hash prints them; - for "
                   "stdin), as `sha256sum -c` does.")
@options.urls
@click.pass_obj
def hash_(settings: GlobalOptions, paths: tuple[str, ...], affected_since: str | None,
          as_json: bool, expected: str | None, api_url: str | None,
          autoscaler_url: str | None) -> None:
    """Print each target's content hash, as `sha256sum` prints digests.

    The hash names the tarball's contents (not its compression): equal inputs give
    the same hash on every machine. When nothing changed since the last hash or
    build, it is known from a stat of every input, without reading a file.
    """
    if expected is not None and not is_content_hash(expected):
        if expected != "-" and not os.path.isfile(expected):
            raise click.BadParameter(
                f"{expected!r} is not a content hash (64 hexadecimal digits), nor a file of "
                "`HASH  TARGET` lines", param_hint="--check")
        if paths or affected_since:
            raise click.UsageError("--check FILE names its own targets: name none besides")
        _check_sums(settings, expected, as_json, api_url, autoscaler_url)
        return
    targets = narrowed(paths, affected_since, settings)
    if not targets:
        if as_json:
            click.echo(json.dumps({"targets": []}))
        return
    api_url, autoscaler_url = settings.urls(api_url, autoscaler_url)
    results = hash_targets(targets, cache_dir=settings.cache_dir,
                           api_url=api_url, autoscaler_url=autoscaler_url,
                           jobs=settings.jobs, tag=settings.tag,
                           args=settings.args,
                           remote_cache=settings.remote_cache,
                           remote_cache_read_only=settings.remote_cache_read_only)
    if expected is not None and len(results) != 1:
        raise click.UsageError("--check compares one target's hash: name exactly one Vastfile")
    print_warnings((w for r in results for w in r.warnings), settings)
    if as_json:
        click.echo(json.dumps({"targets": [
            {"label": r.label, "path": shown(r.vastfile), "name": r.name, "tag": r.tag,
             "hash": r.hash, "components": r.components}
            for r in results]}, indent=2))
    if expected is not None:
        (result,) = results
        matched = result.hash == expected.lower()
        if not as_json and not settings.quiet:
            click.echo(f"{shown(result.vastfile)}: {'OK' if matched else 'FAILED'}")
        raise click.exceptions.Exit(0 if matched else 1)
    if not as_json:
        for result in results:
            click.echo(f"{result.hash}  {shown(result.vastfile)}")


def _check_sums(settings: GlobalOptions, sums: str, as_json: bool, api_url: str | None,
                autoscaler_url: str | None) -> None:
    """``hash --check FILE``: every target of FILE hashed in one run and compared."""
    try:
        text = sys.stdin.read() if sums == "-" else Path(sums).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise click.BadParameter(f"{sums!r} is not a content hash (64 hexadecimal digits), "
                                 f"nor a readable file of `HASH  TARGET` lines ({reason})",
                                 param_hint="--check") from None
    wanted: list[tuple[str, str]] = []
    for number, line in enumerate(text.splitlines(), 1):
        digest, _, target = line.strip().partition(" ")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not is_content_hash(digest) or not target.strip():
            raise click.BadParameter(f"{sums}:{number}: not `HASH  TARGET`, as "
                                     "`vastbuild hash` prints", param_hint="--check")
        wanted.append((digest.lower(), target.strip()))
    if not wanted:
        raise click.BadParameter(f"{sums} holds no `HASH  TARGET` line", param_hint="--check")
    api_url, autoscaler_url = settings.urls(api_url, autoscaler_url)
    results = hash_targets([target for _, target in wanted], cache_dir=settings.cache_dir,
                           api_url=api_url, autoscaler_url=autoscaler_url,
                           jobs=settings.jobs, tag=settings.tag, args=settings.args,
                           remote_cache=settings.remote_cache,
                           remote_cache_read_only=settings.remote_cache_read_only)
    print_warnings((w for r in results for w in r.warnings), settings)
    by_vastfile = {os.path.realpath(r.vastfile): r for r in results}
    checked = []
    for digest, target in wanted:
        (vastfile,) = resolve_targets([target])
        assert isinstance(vastfile, Path)
        result = by_vastfile[os.path.realpath(vastfile)]
        checked.append((target, result, result.hash == digest))
    failed = sum(1 for _, _, ok in checked if not ok)
    if as_json:
        click.echo(json.dumps({"targets": [
            {"target": target, "label": r.label, "hash": r.hash, "ok": ok}
            for target, r, ok in checked]}, indent=2))
    elif not settings.quiet:
        for target, _, ok in checked:
            click.echo(f"{target}: {'OK' if ok else 'FAILED'}")
        if failed:
            click.echo(f"warning: {failed} of {len(checked)} computed hashes did not match",
                       err=True)
    raise click.exceptions.Exit(1 if failed else 0)


def _steps(results: list[BuildResult]) -> list[dict[str, object]]:
    """Every step the build needed, once, with the targets that needed it: a step
    several targets share ran (or came from the cache) once for all. With
    ``--explain``, each step that ran has its reasons."""
    steps: dict[str, dict[str, object]] = {}
    for r in results:
        for step in r.steps:
            entry = steps.setdefault(step.id, {
                "id": step.id, "kind": step.kind, "label": step.label, "ran": step.ran,
                "seconds": round(step.seconds, 6),
                "reasons": [reason.to_json(_shown_path) for reason in step.reasons],
                "shared": step.targets > 1, "targets": []})
            targets = entry["targets"]
            assert isinstance(targets, list)
            targets.append(r.label)
    return list(steps.values())


@click.command()
@options.paths
@options.affected_since
@options.outdir
@options.artifact_format
@click.option("--depfile", metavar="FILE",
              help="Also write a make depfile: every input of the target. With several "
                   "targets, put {name} in FILE (dist/{name}.d): one per deployment.")
@click.option("--depfile-target", metavar="OUT",
              help="The make target the depfile's inputs belong to, {name} replaced "
                   "(default: the first artifact, OUTDIR/{name}.tar.gz).")
@click.option("--explain", is_flag=True,
              help="Say why each step that ran ran: which file or Vastfile line changed, a "
                   "new compressor, a missing cache entry (plans the build in full).")
@options.as_json
@options.urls
@click.pass_obj
def build(settings: GlobalOptions, paths: tuple[str, ...], affected_since: str | None,
          outdir: Path, artifact_format: str, depfile: str | None, depfile_target: str | None,
          explain: bool, as_json: bool, api_url: str | None,
          autoscaler_url: str | None) -> None:
    """Build each target's tarball into OUTDIR, with its registration request.

    Writes OUTDIR/NAME.tar.gz and/or NAME.tar.zst and NAME.deployment.json (the
    body of PUT /api/v0/deployments/). A file whose bytes would not change is
    left alone, mtime included. -v lists every step with its time; --explain says
    why each step that ran ran.
    """
    formats = options.FORMAT_CHOICES[artifact_format]
    targets = narrowed(paths, affected_since, settings)
    default_rule = (outdir / ("{name}" + ARTIFACT_SUFFIXES[formats[0]])).as_posix()
    if depfile is not None and targets:
        check_depfile(targets, depfile, depfile_target or default_rule)
    if not targets:
        if as_json:
            click.echo(json.dumps({"targets": [], "steps": [],
                                   "compression": compressors(formats)}))
        return
    api_url, autoscaler_url = settings.urls(api_url, autoscaler_url)
    results = build_targets(targets, cache_dir=settings.cache_dir,
                            outdir=outdir, formats=formats, api_url=api_url,
                            autoscaler_url=autoscaler_url, jobs=settings.jobs,
                            tag=settings.tag, args=settings.args,
                            progress=not settings.quiet and not as_json,
                            remote_cache=settings.remote_cache,
                            remote_cache_read_only=settings.remote_cache_read_only,
                            explain=explain)
    print_warnings((w for r in results for w in r.warnings), settings)
    if depfile is not None:
        write_depfiles(targets, cache_dir=settings.cache_dir, output=depfile,
                       make_target=depfile_target or default_rule)
    if as_json:
        click.echo(json.dumps({
            "targets": [{
                "label": r.label, "name": r.name, "tag": r.tag, "hash": r.hash,
                "artifacts": {fmt: str(path) for fmt, path in r.artifacts.items()},
                "sizes": r.sizes, "deployment_config": r.deployment_config,
                "cached_steps": r.cached_steps, "built_steps": r.built_steps,
                "registration_reasons": [reason.to_json(_shown_path)
                                         for reason in r.registration_reasons],
            } for r in results],
            "steps": _steps(results),
            "compression": compressors(formats),
        }, indent=2))
        return
    if settings.quiet:
        return
    for r in results:
        steps = "step" if r.built_steps == 1 else "steps"
        click.echo(f"{r.hash}  {r.label} ({r.name}): {r.built_steps} {steps} run, "
                   f"{r.cached_steps} cached")
        for fmt, path in r.artifacts.items():
            click.echo(f"  {shown(path)}  {r.sizes[fmt]:,} bytes")
        if r.deployment_json is not None:
            click.echo(f"  {shown(r.deployment_json)}")
        if explain or settings.verbosity > 0:
            _print_steps(r, every=settings.verbosity > 0)


def _print_steps(result: BuildResult, every: bool) -> None:
    """The steps of ``result`` that ran (``every``: and those that came from the cache),
    each with its time and, after ``--explain``, its reasons; and why the registration
    body changed, which no step writes."""
    if result.registration_reasons and result.deployment_json is not None:
        click.echo(f"  {'rewritten':>12}  {shown(result.deployment_json)}")
        for reason in result.registration_reasons:
            click.echo(f"{'':16}{reason.describe(_shown_path)}")
    if not result.steps:
        click.echo("  nothing planned: " + (
            "the last build's record holds" if result.built_steps == 0 else
            f"the changed files were patched in ({result.built_steps} steps' work)"))
        return
    if not any(step.ran for step in result.steps) and not every:
        click.echo("  nothing ran: every step's result came from the cache")
    for step in result.steps:
        if not step.ran and not every:
            continue
        took = f"ran {step.seconds:.3f} s" if step.ran else "cached"
        click.echo(f"  {took:>12}  {step.label}")
        for reason in step.reasons:
            click.echo(f"{'':16}{reason.describe(_shown_path)}")


def _shown_path(path: str) -> str:
    return shown(Path(path))


@click.command()
@click.argument("path", metavar="[TARGET]", default=VASTFILE)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The depfile to write (FILE.d).")
@click.option("--target", "make_target", required=True, metavar="OUT",
              help="The make target the inputs belong to (e.g. dist/app.tar.gz).")
@click.pass_obj
def deps(settings: GlobalOptions, path: str, output: Path, make_target: str) -> None:
    """Write a make depfile: every input file and folder of TARGET."""
    models = load((path,), settings)
    if len(models) != 1:
        raise click.UsageError(f"{path} names {len(models)} targets; a depfile belongs to one")
    write_depfiles(models, cache_dir=settings.cache_dir, output=str(output),
                   make_target=make_target)


@click.group()
def cache() -> None:
    """Inspect and trim the build cache (--cache-dir, $VASTBUILD_CACHE_DIR)."""


@cache.command()
@options.as_json
@click.pass_obj
def stats(settings: GlobalOptions, as_json: bool) -> None:
    """Show what the cache holds and how big it is."""
    s = cache_stats(settings.cache_dir)
    if as_json:
        click.echo(json.dumps({"directory": str(s.directory), "entries": s.entries,
                               "bytes": s.volume, "size_limit": s.size_limit,
                               "artifacts": s.artifacts, "artifact_bytes": s.artifact_bytes},
                              indent=2))
        return
    click.echo(f"cache: {s.directory}")
    for label, count in s.entries.items():
        click.echo(f"  {label}: {count}")
    click.echo(f"  size: {format_bytes(s.volume)} of {format_bytes(s.size_limit)}")
    click.echo(f"  artifacts: {s.artifacts} ({format_bytes(s.artifact_bytes)})")


def _size(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return parse_bytes(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@cache.command()
@click.option("--max-size", metavar="SIZE", callback=_size,
              help="Evict least recently used entries down to SIZE (500MB, 2GB, 2GiB).")
@click.pass_obj
def gc(settings: GlobalOptions, max_size: int | None) -> None:
    """Evict old entries and delete cached artifacts unused for a week."""
    evicted, deleted = cache_gc(settings.cache_dir, max_size)
    if not settings.quiet:
        click.echo(f"evicted {evicted} entries, deleted {deleted} artifacts")


@cache.command()
@click.pass_obj
def clear(settings: GlobalOptions) -> None:
    """Delete everything the cache holds."""
    count = cache_clear(settings.cache_dir)
    if not settings.quiet:
        click.echo(f"cleared {count} entries from {settings.cache_dir}")


@cache.command()
@options.as_json
@click.pass_obj
def verify(settings: GlobalOptions, as_json: bool) -> None:
    """Re-hash every entry and drop the damaged ones; the next build rebuilds them.

    Step results, generated files and file indexes are checked against their
    SHA-256; compressed chunks against the stat they were written with and the
    checksums of their gzip members or zstd frames; cached artifacts against those
    checksums. Exit codes: 0 the cache is sound, 1 damaged entries were found and
    dropped (each is listed).
    """
    report = cache_verify(settings.cache_dir)
    if as_json:
        click.echo(json.dumps({"directory": str(report.directory), "checked": report.checked,
                               "damaged": [{"kind": d.kind, "name": d.name, "reason": d.reason}
                                           for d in report.damaged]}, indent=2))
    elif report.damaged:
        for d in report.damaged:
            click.echo(f"damaged {d.kind}: {d.name}: {d.reason}")
        click.echo(f"dropped {len(report.damaged)} damaged of {sum(report.checked.values())} "
                   f"entries in {report.directory}; the next build rebuilds them")
    elif not settings.quiet:
        click.echo(f"checked {sum(report.checked.values())} entries in {report.directory}: "
                   "none damaged")
    if report.damaged:
        raise click.exceptions.Exit(1)
