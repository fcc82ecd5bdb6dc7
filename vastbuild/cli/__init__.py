"""The ``vastbuild`` command line: a thin layer over :mod:`vastbuild.api`.

Commands live in their own modules and are imported only when invoked, so that
``vastbuild hash`` does not pay for the HTTP client or the dev server at start-up.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

import click

from vastbuild.api import VERSION, InvalidArgument, check_setting, load_settings, parse_arg
from vastbuild.cli.context import COMPLETE_VAR, PROG_NAME, GlobalOptions
from vastbuild.cli.report import run

#: command name -> "module:attribute"; the module is imported on first use
COMMANDS = {
    "check": "vastbuild.cli.language:check",
    "fmt": "vastbuild.cli.language:fmt",
    "graph": "vastbuild.cli.build:graph",
    "hash": "vastbuild.cli.build:hash_",
    "build": "vastbuild.cli.build:build",
    "deps": "vastbuild.cli.build:deps",
    "cache": "vastbuild.cli.build:cache",
    "plan": "vastbuild.cli.deploy:plan",
    "deploy": "vastbuild.cli.deploy:deploy",
    "dev-server": "vastbuild.cli.devserver:dev_server",
    "targets": "vastbuild.cli.workspace:targets",
    "affected": "vastbuild.cli.workspace:affected",
    "config": "vastbuild.cli.workspace:config",
    "import": "vastbuild.cli.sdkimport:import_",
    "init": "vastbuild.cli.init:init_",
    "status": "vastbuild.cli.operate:status",
    "logs": "vastbuild.cli.operate:logs",
    "wait": "vastbuild.cli.operate:wait",
    "stop": "vastbuild.cli.operate:stop",
    "start": "vastbuild.cli.operate:start",
    "down": "vastbuild.cli.operate:down",
    "history": "vastbuild.cli.operate:history",
    "rollback": "vastbuild.cli.operate:rollback",
    "completion": "vastbuild.cli.completion:completion",
    "lsp": "vastbuild.cli.lsp:lsp",
    "offers": "vastbuild.cli.market:offers",
}


class LazyGroup(click.Group):
    """A group that imports a command's module only when the command is run."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, attr = target.split(":")
        command = getattr(importlib.import_module(module), attr)
        assert isinstance(command, click.Command)
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Cache folder (env: VASTBUILD_CACHE_DIR; default ~/.cache/vastbuild).")
@click.option("--remote-cache", metavar="URL",
              help="Share steps and compressed chunks with other machines through this "
                   "HTTP cache (Bazel's protocol; env: VASTBUILD_REMOTE_CACHE).")
@click.option("--remote-cache-read-only", is_flag=True, default=None,
              help="Read the remote cache, never write it (for untrusted jobs; env: "
                   "VASTBUILD_REMOTE_CACHE_READ_ONLY).")
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=None,
              help="Steps to run at once (env: VASTBUILD_JOBS; default: the cores).")
@click.option("--tag", default=None,
              help="The tag of a Vastfile without TAG (env: VASTBUILD_TAG; default: default).")
@click.option("--arg", "args", metavar="NAME=VALUE", multiple=True,
              help="The value of the Vastfiles' ARG NAME (repeat for more).")
@click.option("--profile", metavar="NAME",
              help="Use [profile.NAME] of vastbuild.toml (env: VASTBUILD_PROFILE).")
@click.option("-v", "--verbose", count=True, help="Say more (repeat for more).")
@click.option("-q", "--quiet", is_flag=True, help="Print only results and errors.")
@click.option("--color", type=click.Choice(["auto", "always", "never"]), default="auto",
              show_default=True, help="Colour diagnostics.")
@click.version_option(VERSION, prog_name="vastbuild")
@click.pass_context
def cli(ctx: click.Context, cache_dir: Path | None, remote_cache: str | None,
        remote_cache_read_only: bool | None, jobs: int | None, tag: str | None,
        args: tuple[str, ...], profile: str | None, verbose: int, quiet: bool,
        color: str) -> None:
    """Build, hash and deploy Vast.ai serverless deployments described by Vastfiles.

    Settings come from flags, then the environment, then vastbuild.toml at the
    workspace root (its [profile.NAME] first); `vastbuild config` shows them.
    """
    use_color = color == "always" or (
        color == "auto" and sys.stderr.isatty() and "NO_COLOR" not in os.environ)
    flags: dict[str, str | int | bool | Path | None] = {
        "cache_dir": cache_dir, "remote_cache_read_only": remote_cache_read_only, "jobs": jobs}
    for flag, value, name in (("--remote-cache", remote_cache, "remote_cache"),
                              ("--tag", tag, "tag")):
        try:
            flags[name] = None if value is None else check_setting(name, value)
        except InvalidArgument as exc:
            raise click.BadParameter(f"{exc.message}; {exc.hint}", param_hint=flag) from None
    settings = load_settings(profile=profile, flags=flags)
    given: dict[str, str] = {}
    for arg in args:
        try:
            name, value = parse_arg(arg)
        except InvalidArgument as exc:
            raise click.BadParameter(f"{exc.message}; {exc.hint}", param_hint="--arg") from None
        given[name] = value
    ctx.obj = GlobalOptions(settings=settings, verbosity=-1 if quiet else verbose,
                            color=use_color, args=given)


def main() -> None:
    """Console entry point: run the CLI and turn every failure into a message and an exit code.

    A shell's completion script calls the program back with ``_VASTBUILD_COMPLETE``
    set; click's ``Command.main`` would answer that, but :func:`run` makes the context
    itself (for the exit code contract), so the request is answered here first.
    """
    instruction = os.environ.get(COMPLETE_VAR)
    if instruction:
        from click.shell_completion import shell_complete

        sys.exit(shell_complete(cli, {}, PROG_NAME, COMPLETE_VAR, instruction))
    sys.exit(run(cli))
