"""``vastbuild init``: start a deployment from a template.

Exit codes: 0 written, 2 usage: an unknown template, a name that cannot be used, or
the Vastfile or its code file exists (then nothing is written).
"""

from __future__ import annotations

import os
import shlex

import click

from vastbuild.api import DEFAULT_DEV_SERVER_PORT, init, init_templates
from vastbuild.cli.context import GlobalOptions
from vastbuild.cli.report import shown

#: the key the suggested dev server accepts; it guards nothing but a local toy
DEV_KEY = "dev-key"


@click.command("init")
@click.argument("folder", metavar="[DIR]", default=".",
                type=click.Path(file_okay=False, dir_okay=True))
@click.option("-t", "--template", type=click.Choice(init_templates()),
              default=init_templates()[0],
              show_default=True, help="What the deployment starts as.")
@click.option("--name", metavar="NAME",
              help="DEPLOYMENT and the code's Deployment(name=...) (default: DIR's name, "
                   "made a valid name).")
@click.pass_obj
def init_(settings: GlobalOptions, folder: str, template: str, name: str | None) -> None:
    """Write a Vastfile and its code file into DIR (default: here; made when missing).

    blank is the smallest deployment, with comments on what to change; llm (a vLLM
    chat server), speech (Whisper), image (diffusers) and embed
    (sentence-transformers) are working starting points. Each checks clean, builds
    and deploys as written. Existing files are never replaced. No vastbuild.toml is
    written: the files reach nothing outside DIR.
    """
    result = init(folder, template=template, name=name)
    if settings.quiet:
        return
    for path in result.files:
        click.echo(f"wrote {shown(path)}")
    url = f"http://127.0.0.1:{DEFAULT_DEV_SERVER_PORT}"
    steps = [] if os.path.samefile(folder, ".") else [f"cd {shlex.quote(folder)}"]
    steps += ["vastbuild check", "vastbuild build -o out",
              f"vastbuild dev-server --api-key {DEV_KEY} &",
              f"VAST_API_KEY={DEV_KEY} vastbuild deploy --api-url {url} --autoscaler-url {url}"]
    click.echo(f"deployment {result.name} ({result.template}); next:")
    for step in steps:
        click.echo(f"  {step}")
