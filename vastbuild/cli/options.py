"""Options and arguments that several commands share, each defined once with its check.

A value the library refuses (:class:`~vastbuild.api.InvalidArgument`) becomes
click's usage error here, so every command reports a bad URL or size the same
way, with exit status 2, before it does anything.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import click

from vastbuild.api import (
    ARTIFACT_FORMATS,
    DEFAULT_API_URL,
    DEFAULT_AUTOSCALER_URL,
    VASTFILE,
    InvalidArgument,
    check_url,
    parse_secret_option,
    secret_sources,
    target_labels,
)

if TYPE_CHECKING:
    from click.shell_completion import CompletionItem

    from vastbuild.api import SecretSources

F = TypeVar("F", bound=Callable[..., object])


def _url(setting: str) -> Callable[[click.Context, click.Parameter, str | None], str | None]:
    def callback(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return check_url(value, setting)
        except InvalidArgument as exc:
            raise click.BadParameter(f"{exc.message}; {exc.hint}") from None
    return callback


#: targets: Vastfiles or folders holding one, labels (//services/llm), patterns
#: (//services/..., ./...), deployment names (default ./Vastfile)
def _complete_targets(ctx: click.Context, param: click.Parameter,
                      incomplete: str) -> list[CompletionItem]:
    """A TARGET at TAB: the workspace's labels once it starts with ``//`` (only then, as
    finding them walks the workspace), else the shell's own completion of paths."""
    from click.shell_completion import CompletionItem  # only when a shell asks

    if incomplete.startswith("//"):
        return [CompletionItem(label) for label in target_labels()
                if label.startswith(incomplete)]
    return [CompletionItem(incomplete, type="file")]


paths = click.argument("paths", nargs=-1, metavar="[TARGET]...",
                       shell_complete=_complete_targets)
#: the one TARGET of a command that operates a deployment (logs, stop...): by default the
#: working folder's Vastfile, as for the commands that take several
target = click.argument("target", metavar="[TARGET]", default=VASTFILE,
                        shell_complete=_complete_targets)
#: where positions and relative paths of a Vastfile read from stdin (TARGET ``-``) point
stdin_filename = click.option(
    "--stdin-filename", metavar="PATH",
    help="With TARGET `-` (read the Vastfile from stdin): the path it stands for, which "
         "messages name and CODE, COPY and INCLUDE are relative to (default: <stdin> in "
         "the working folder).")
affected_since = click.option(
    "--affected-since", metavar="REF",
    help="Only the targets whose inputs changed since the git commit REF "
         "(see `vastbuild affected`).")
as_json = click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
#: plan, deploy and check --online reuse a market answer of the last minutes unless
refresh_market = click.option(
    "--refresh-market", is_flag=True,
    help="Search Vast's market again rather than reuse an answer of the last minutes.")
api_url = click.option(
    "--api-url", default=None, callback=_url("api_url"),
    help=f"The Vast web API (env: VAST_API_URL; default: {DEFAULT_API_URL}).")
autoscaler_url = click.option(
    "--autoscaler-url", default=None, callback=_url("autoscaler_url"),
    help="The autoscaler workers report to (env: VAST_AUTOSCALER_URL; default: "
         f"{DEFAULT_AUTOSCALER_URL}, or the API URL when that is not Vast's).")
api_key_file = click.option(
    "--api-key-file", type=click.Path(dir_okay=False, path_type=Path),
    help="Read the API key from this file (default: $VAST_API_KEY).")
outdir = click.option(
    "-o", "--outdir", type=click.Path(file_okay=False, path_type=Path), default=Path("dist"),
    show_default=True, help="Folder for the artifacts.")

#: --format of build: which artifacts to write
FORMAT_CHOICES: dict[str, tuple[str, ...]] = {
    **{fmt: (fmt,) for fmt in ARTIFACT_FORMATS}, "both": ARTIFACT_FORMATS}
artifact_format = click.option(
    "--format", "artifact_format", type=click.Choice(sorted(FORMAT_CHOICES)), default="both",
    show_default=True, help="gz: what Vast's workers take; zst: vastbuild's own; both.")


def _secret_files(ctx: click.Context, param: click.Parameter,
                  value: tuple[str, ...]) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for option in value:
        try:
            name, path = parse_secret_option(option)
        except InvalidArgument as exc:
            raise click.BadParameter(f"{exc.message}; {exc.hint}") from None
        found[name] = path
    return found


secret = click.option(
    "--secret", "secret_files", multiple=True, metavar="NAME=@FILE", callback=_secret_files,
    help="Read the value of SECRET NAME (or of LOGIN's PASSWORD NAME) from FILE; "
         "repeatable. Default: the environment.")
secrets_file = click.option(
    "--secrets-file", type=click.Path(dir_okay=False, path_type=Path),
    help="Read secret values from a dotenv file (NAME=value lines); the environment fills "
         "in the rest.")


def secrets(command: F) -> F:
    """``--secret NAME=@FILE`` and ``--secrets-file``: where secret values come from."""
    return secret(secrets_file(command))


def sources_of(secret_files: dict[str, Path], secrets_file: Path | None) -> SecretSources:
    """What the two options said, as the library takes it (the environment fills in)."""
    return secret_sources(secret_files, secrets_file)


def urls(command: F) -> F:
    """``--api-url`` and ``--autoscaler-url``: where the workers are told to report."""
    return api_url(autoscaler_url(command))


def server(command: F) -> F:
    """What a command that talks to Vast takes: JSON output, the URLs, the key file."""
    return as_json(api_url(autoscaler_url(api_key_file(command))))
