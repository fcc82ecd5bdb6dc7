"""``vastbuild graph``, ``hash``, ``build``, ``deps`` and ``cache``: the build commands.

Each takes Vastfiles or folders holding one (default ./Vastfile). Exit codes:
0 ok, 1 an error in the input (diagnostics, an unreadable file, a hash that
does not match), 2 usage (a PATH that is not there, a malformed hash).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from vastbuild.cli import Settings
from vastbuild.cli.output import load_targets
from vastbuild.errors import UsageError
from vastbuild.wire import DEFAULT_API_URL, DEFAULT_AUTOSCALER_URL

PATHS = click.argument("paths", nargs=-1, type=click.Path(path_type=Path))


def _url_options(command: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--api-url", envvar="VAST_API_URL", default=DEFAULT_API_URL,
                     show_default=True, help="The Vast web API the workers are told of "
                     "(env: VAST_API_URL)."),
        click.option("--autoscaler-url", default=DEFAULT_AUTOSCALER_URL, show_default=True,
                     help="The Vast autoscaler the workers report to."),
    ]
    for option in reversed(options):
        command = option(command)
    return command



def _shown(path: Path) -> str:
    """A path as the user would type it: relative to the working folder when below it."""
    relative = os.path.relpath(path)
    return path.as_posix() if relative.startswith("..") else Path(relative).as_posix()


@click.command()
@PATHS
@click.option("--format", "style", type=click.Choice(["text", "dot", "json"]), default="text",
              show_default=True, help="How to print the graph.")
@click.pass_obj
def graph(settings: Settings, paths: tuple[Path, ...], style: str) -> None:
    """Print the build graph: every step, its kind, and the steps it reads.

    Steps shared by several targets (the same folder copied to the same place)
    appear once.
    """
    from vastbuild.archive import FORMATS, source_date_epoch
    from vastbuild.plan import plan

    models = load_targets(paths, settings)
    the_plan = plan(models, cache_dir=settings.cache_dir, formats=FORMATS, compress=("gz",),
                    mtime=source_date_epoch())
    g = the_plan.graph.to_networkx()
    if style == "json":
        document = {
            "nodes": [{"id": n, "kind": a["kind"], "label": a["label"], "params": a["params"]}
                      for n, a in g.nodes(data=True)],
            "edges": [{"from": u, "to": v, "position": a["position"]}
                      for u, v, a in g.edges(data=True)],
            "targets": [{"label": t.deployment.label, "assemble": t.assemble}
                        for t in the_plan.targets],
        }
        click.echo(json.dumps(document, indent=2))
    elif style == "dot":
        click.echo(_dot(g))
    else:
        for node in the_plan.graph.steps.values():
            click.echo(f"{node.id}  {node.label}")
            for dep in node.deps:
                click.echo(f"    <- {dep}")


def _dot(g: Any) -> str:
    def quote(text: str) -> str:
        escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'"{escaped}"'

    lines = ["digraph vastbuild {", "  rankdir=LR;", "  node [shape=box, fontname=monospace];"]
    for node, attrs in g.nodes(data=True):
        label = quote(attrs["kind"] + "\n" + attrs["label"])
        lines.append(f"  {quote(node)} [label={label}];")
    for u, v in g.edges():
        lines.append(f"  {quote(u)} -> {quote(v)};")
    lines.append("}")
    return "\n".join(lines)


@click.command("hash")
@PATHS
@click.option("--json", "as_json", is_flag=True, help="Print JSON with the component hashes.")
@click.option("--check", "expected", metavar="HASH",
              help="Exit 0 when the (single) target's hash is HASH, 1 when it is not.")
@_url_options
@click.pass_obj
def hash_(settings: Settings, paths: tuple[Path, ...], as_json: bool, expected: str | None,
          api_url: str, autoscaler_url: str) -> None:
    """Print each target's content hash, as `sha256sum` prints digests.

    The hash names the tarball's contents (not its compression): equal inputs give
    the same hash on every machine. A warm cache computes it without reading a file.
    """
    from vastbuild.hashing import is_content_hash

    if expected is not None and not is_content_hash(expected):
        raise UsageError(f"--check {expected!r} is not a content hash",
                         "a content hash is 64 hexadecimal digits, as `vastbuild hash` prints")
    from vastbuild.builder import hash_targets

    models = load_targets(paths, settings)
    if expected is not None and len(models) != 1:
        raise UsageError("--check compares one target's hash", "name exactly one Vastfile")
    results = hash_targets(models, cache_dir=settings.cache_dir, api_url=api_url,
                           autoscaler_url=autoscaler_url)
    if as_json:
        click.echo(json.dumps({"targets": [
            {"label": r.label, "path": _shown(m.vastfile), "name": r.name, "tag": r.tag,
             "hash": r.hash, "components": r.components}
            for r, m in zip(results, models, strict=True)]}, indent=2))
    if expected is not None:
        (result,), (model,) = results, models
        matched = result.hash == expected.lower()
        if not as_json and settings.verbosity >= 0:
            click.echo(f"{_shown(model.vastfile)}: {'OK' if matched else 'FAILED'}")
        raise click.exceptions.Exit(0 if matched else 1)
    if not as_json:
        for result, model in zip(results, models, strict=True):
            click.echo(f"{result.hash}  {_shown(model.vastfile)}")


FORMAT_CHOICES = {"gz": ("gz",), "zst": ("zst",), "both": ("gz", "zst")}


@click.command()
@PATHS
@click.option("-o", "--outdir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("dist"), show_default=True, help="Folder for the artifacts.")
@click.option("--format", "artifact_format", type=click.Choice(sorted(FORMAT_CHOICES)),
              default="both", show_default=True,
              help="gz: what Vast's workers take; zst: vastbuild's own; both.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON describing every target.")
@_url_options
@click.pass_obj
def build(settings: Settings, paths: tuple[Path, ...], outdir: Path, artifact_format: str,
          as_json: bool, api_url: str, autoscaler_url: str) -> None:
    """Build each target's tarball into OUTDIR, with its registration request.

    Writes OUTDIR/NAME.tar.gz and/or NAME.tar.zst and NAME.deployment.json (the
    body of PUT /api/v0/deployments/). A file whose bytes would not change is
    left alone, mtime included.
    """
    from vastbuild.archive import LEVELS, compressor_version
    from vastbuild.builder import build as run_build

    models = load_targets(paths, settings)
    formats = FORMAT_CHOICES[artifact_format]
    results = run_build(models, cache_dir=settings.cache_dir, outdir=outdir, formats=formats,
                        api_url=api_url, autoscaler_url=autoscaler_url,
                        progress=settings.verbosity >= 0 and not as_json)
    if as_json:
        click.echo(json.dumps({
            "targets": [{
                "label": r.label, "name": r.name, "tag": r.tag, "hash": r.hash,
                "artifacts": {fmt: str(path) for fmt, path in r.artifacts.items()},
                "sizes": r.sizes, "deployment_config": r.deployment_config,
                "cached_steps": r.cached_steps, "built_steps": r.built_steps,
            } for r in results],
            "compression": {fmt: {"level": LEVELS[fmt], "compressor": compressor_version(fmt)}
                            for fmt in formats},
        }, indent=2))
        return
    for r in results:
        steps = "step" if r.built_steps == 1 else "steps"
        click.echo(f"{r.hash}  {r.label} ({r.name}): {r.built_steps} {steps} run, "
                   f"{r.cached_steps} cached")
        if settings.verbosity >= 0:
            for fmt, path in r.artifacts.items():
                click.echo(f"  {_shown(path)}  {r.sizes[fmt]:,} bytes")
            click.echo(f"  {_shown(outdir / (r.name + '.deployment.json'))}")


@click.command()
@click.argument("path", type=click.Path(path_type=Path), default=Path("Vastfile"))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The depfile to write (FILE.d).")
@click.option("--target", "make_target", required=True, metavar="OUT",
              help="The make target the inputs belong to (e.g. dist/app.tar.gz).")
@click.pass_obj
def deps(settings: Settings, path: Path, output: Path, make_target: str) -> None:
    """Write a make depfile: every input file and folder of PATH's target."""
    from vastbuild.builder import write_if_changed
    from vastbuild.depfile import render
    from vastbuild.plan import plan

    if not make_target.strip():
        raise UsageError("--target is empty", "name the file make builds, e.g. dist/app.tar.gz")
    (model,) = load_targets((path,), settings)
    outdir = Path(make_target).parent.resolve()
    (target,) = plan([model], cache_dir=settings.cache_dir, outdir=outdir).targets
    # file names that are not UTF-8 go back to the bytes they are on disk, which make reads
    write_if_changed(output, os.fsencode(render(make_target, target.inputs)))


@click.group()
def cache() -> None:
    """Inspect and trim the build cache (--cache-dir, $VASTBUILD_CACHE_DIR)."""


@cache.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def stats(settings: Settings, as_json: bool) -> None:
    """Show what the cache holds and how big it is."""
    from vastbuild.cache import Store

    store = Store(settings.cache_dir)
    try:
        s = store.stats()
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps({"directory": str(s.directory), "entries": s.entries,
                               "bytes": s.volume, "size_limit": s.size_limit,
                               "artifacts": s.artifacts, "artifact_bytes": s.artifact_bytes},
                              indent=2))
        return
    click.echo(f"cache: {s.directory}")
    for label, count in s.entries.items():
        click.echo(f"  {label}: {count}")
    click.echo(f"  size: {_bytes(s.volume)} of {_bytes(s.size_limit)}")
    click.echo(f"  artifacts: {s.artifacts} ({_bytes(s.artifact_bytes)})")


@cache.command()
@click.option("--max-size", metavar="SIZE", help="Evict least recently used entries down to "
              "SIZE (e.g. 500M, 2G).")
@click.pass_obj
def gc(settings: Settings, max_size: str | None) -> None:
    """Evict old entries and delete cached artifacts unused for a week."""
    from vastbuild.cache import Store

    limit = _parse_size(max_size) if max_size is not None else None
    store = Store(settings.cache_dir)
    try:
        evicted, deleted = store.gc(limit)
    finally:
        store.close()
    if settings.verbosity >= 0:
        click.echo(f"evicted {evicted} entries, deleted {deleted} artifacts")


@cache.command()
@click.pass_obj
def clear(settings: Settings) -> None:
    """Delete everything the cache holds."""
    from vastbuild.cache import Store

    store = Store(settings.cache_dir)
    try:
        count = store.clear()
    finally:
        store.close()
    if settings.verbosity >= 0:
        click.echo(f"cleared {count} entries from {settings.cache_dir}")


_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def _parse_size(text: str) -> int:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?\s*", text, re.IGNORECASE)
    if not match:
        raise UsageError(f"--max-size {text!r} is not a size", "write e.g. 500M or 2G")
    size = float(match.group(1)) * _UNITS[match.group(2).upper()]
    if size >= 1 << 63:  # the cache keeps its limit as a 64-bit SQLite integer
        raise UsageError(f"--max-size {text!r} is too large", "write e.g. 500M or 2G")
    return int(size)


def _bytes(count: int) -> str:
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{count} B"
