"""``vastbuild targets``: the workspace's targets, by label."""

from __future__ import annotations

import json

import click

from vastbuild.api import list_targets
from vastbuild.cli import options
from vastbuild.cli.context import GlobalOptions


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
