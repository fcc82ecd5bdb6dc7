"""``vastbuild completion SHELL``: the script that teaches a shell to complete vastbuild.

The script is click's own; it calls ``vastbuild`` back with ``_VASTBUILD_COMPLETE``
set, which :func:`vastbuild.cli.main` answers before anything else runs.
"""

from __future__ import annotations

import click
from click.shell_completion import get_completion_class

from vastbuild.cli.context import COMPLETE_VAR, PROG_NAME

#: the shells click writes a completion script for
SHELLS = ("bash", "zsh", "fish")


@click.command()
@click.argument("shell", type=click.Choice(SHELLS))
@click.pass_context
def completion(ctx: click.Context, shell: str) -> None:
    """Print the shell completion script for SHELL.

    Load it with `eval "$(vastbuild completion bash)"` in ~/.bashrc (zsh: the same
    in ~/.zshrc; fish: `vastbuild completion fish | source` in
    ~/.config/fish/completions/vastbuild.fish).
    """
    complete = get_completion_class(shell)
    assert complete is not None  # click ships all three SHELLS
    root = ctx.find_root().command
    click.echo(complete(root, {}, PROG_NAME, COMPLETE_VAR).source(), nl=False)
