"""``vastbuild lsp``: the Vastfile language server, for editors (docs/lsp.md).

The editor starts it and speaks the Language Server Protocol on its stdin and
stdout, so the command prints nothing of its own; it needs the ``lsp`` extra
(pygls), and says how to install it when it is missing.
"""

from __future__ import annotations

import click

from vastbuild.api import serve_language_server
from vastbuild.cli.context import GlobalOptions


@click.command()
@click.pass_obj
def lsp(options: GlobalOptions) -> None:
    """Serve the Language Server Protocol on stdin/stdout, for editors.

    Diagnostics, formatting, hover, completion, go to definition, document
    symbols and quick fixes for Vastfiles; see docs/lsp.md for editor set-up.
    Vastfiles are checked with the global --tag and --arg values, as `check`
    does; -vv logs the traceback of a problem of the server.
    """
    serve_language_server(tag=options.tag, args=options.args,
                          tracebacks=options.verbosity >= 2)
