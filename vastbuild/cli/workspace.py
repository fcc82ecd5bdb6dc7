"""``vastbuild targets``, ``affected`` and ``config``: the workspace, its targets and settings."""

from __future__ import annotations

import json
from pathlib import Path

import click

from vastbuild.api import affected_targets, list_targets
from vastbuild.cli import options
from vastbuild.cli.context import GlobalOptions
from vastbuild.cli.report import shown


@click.command()
@click.argument("patterns", nargs=-1, metavar="[PATTERN]...")
@options.as_json
@click.pass_obj
def targets(settings: GlobalOptions, patterns: tuple[str, ...], as_json: bool) -> None:
    """List targets: label, deployment name and tag (default: //..., the workspace).

    A PATTERN is anything a TARGET may be: //services/..., ./..., a label, a path
    or a deployment name. A Vastfile with errors is listed without a name.
    """
    found = list_targets(patterns or ("//...",))
    if as_json:
        click.echo(json.dumps({"targets": [
            {"label": t.label, "vastfile": t.vastfile.as_posix(), "name": t.name, "tag": t.tag}
            for t in found]}, indent=2))
        return
    width = max((len(t.label) for t in found), default=0)
    for t in found:
        named = f"{t.name}:{t.tag}" if t.name is not None else "(has errors: vastbuild check)"
        click.echo(f"{t.label:<{width}}  {named}")


@click.command()
@click.argument("patterns", nargs=-1, metavar="[PATTERN]...")
@click.option("--since", required=True, metavar="REF",
              help="The git commit to compare with: a branch, tag or commit (HEAD, main).")
@options.as_json
@click.pass_obj
def affected(settings: GlobalOptions, patterns: tuple[str, ...], since: str,
             as_json: bool) -> None:
    """List the targets whose inputs changed since the git commit REF.

    Among PATTERNs (default //..., the workspace), a target is affected when a file
    it reads (its Vastfile, requirements files, CODE and COPY trees after
    .vastignore) differs between REF and the work tree, staged or not, or is new and
    not ignored by git. Prints one label per line, for `xargs vastbuild build`.
    """
    found = affected_targets(patterns or ("//...",), since, cache_dir=settings.cache_dir)
    if as_json:
        click.echo(json.dumps({"since": since, "targets": [
            {"label": t.label, "vastfile": t.vastfile.as_posix(), "name": t.name, "tag": t.tag,
             "changed": [shown(p) for p in t.changed]}
            for t in found]}, indent=2))
        return
    for t in found:
        click.echo(t.label)
        if settings.verbosity > 0:
            for path in t.changed:
                click.echo(f"  {shown(path)}", err=True)
    if not found and not settings.quiet:
        click.echo(f"no target is affected since {since}", err=True)


@click.command()
@options.as_json
@click.pass_obj
def config(settings: GlobalOptions, as_json: bool) -> None:
    """Print the effective settings and where each came from.

    Flags win over the environment, which wins over the chosen profile of
    vastbuild.toml ([profile.NAME], --profile or $VASTBUILD_PROFILE), then its top,
    then the defaults. The API key is never a setting, and never printed.
    """
    chosen = settings.settings
    rows = [(s.name, "" if s.value is None else str(s.value), s.source)
            for s in chosen.values.values()]
    if as_json:
        click.echo(json.dumps({
            "file": None if chosen.file is None else chosen.file.as_posix(),
            "profile": chosen.profile,
            "settings": {s.name: {"value": s.value.as_posix() if isinstance(s.value, Path)
                                   else s.value, "source": s.source}
                         for s in chosen.values.values()}}, indent=2))
        return
    click.echo(f"# {chosen.file if chosen.file else 'no vastbuild.toml'}"
               + (f", profile {chosen.profile}" if chosen.profile else ""))
    width = max(len(name) for name, _, _ in rows)
    value_width = max(len(value) for _, value, _ in rows)
    for name, value, source in rows:
        click.echo(f"{name:<{width}}  {value or '-':<{value_width}}  {source}")
