"""``vastbuild import``: write the Vastfile equivalent to a vastai SDK program.

Exit codes: 0 written (warnings allowed), 1 the program cannot be translated (every
diagnostic printed, nothing written), 2 usage: SDK_FILE is not a file, or the
Vastfile exists and --force was not given.
"""

from __future__ import annotations

import click

from vastbuild.api import VastfileExists, import_sdk
from vastbuild.cli.context import GlobalOptions
from vastbuild.cli.report import EXIT_USAGE, error_text, print_warnings, shown


@click.command("import")
@click.argument("sdk_file", metavar="SDK_FILE")
@click.option("-o", "--output", metavar="VASTFILE",
              help="Where to write the Vastfile: a path, a folder (its Vastfile), or - to "
                   "print it. Default: Vastfile beside SDK_FILE (beside the package for "
                   "a package's __init__.py).")
@click.option("--force", is_flag=True, help="Replace the Vastfile if it exists.")
@click.pass_obj
def import_(settings: GlobalOptions, sdk_file: str, output: str | None, force: bool) -> None:
    """Translate a Python file that uses the vastai SDK into a Vastfile.

    The file is read, never imported or run. Deployment(...), app.image(...) and its
    builder calls, and configure_autoscaling(...) become Vastfile directives; CODE
    is the file itself. A value that is not a literal is an error at its line and
    column. Warnings say where the Vastfile deliberately differs (secrets, settings).
    """
    to_stdout = output == "-"
    try:
        result = import_sdk(sdk_file, None if to_stdout else output, write=not to_stdout,
                            force=force)
    except VastfileExists as exc:
        click.echo(f"{error_text(exc)} (--force)", err=True)
        raise click.exceptions.Exit(EXIT_USAGE) from None
    print_warnings(result.warnings, settings)
    if to_stdout:
        click.echo(result.text, nl=False)
    elif not settings.quiet:
        click.echo(f"wrote {shown(result.vastfile)}")
