"""How the CLI reports: diagnostics, user errors, and the exit code contract.

Exit codes: 0 ok, 1 errors in the input or from a server, 2 usage. A Python
traceback is never shown unless ``-vv`` asked for it.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click

from vastbuild.diagnostics import Diagnostic, DiagnosticError, printable, render, sort_key
from vastbuild.errors import UsageError, VastbuildError

if TYPE_CHECKING:
    from vastbuild.cli import Settings
    from vastbuild.model import Deployment


def print_diagnostics(diagnostics: Iterable[Diagnostic], color: bool = False) -> None:
    """Print diagnostics to stderr, in file order, each with its source excerpt."""
    sources: dict[str, list[str] | None] = {}
    for d in sorted(diagnostics, key=sort_key):
        lines = None
        if d.span:
            if d.span.path not in sources:
                sources[d.span.path] = _read_lines(d.span.path)
            lines = sources[d.span.path]
        click.echo(render(d, lines, color=color), err=True, color=color)


def load_targets(paths: Sequence[Path], settings: Settings) -> list[Deployment]:
    """Every target's checked model (default ./Vastfile). Every file's diagnostics are
    reported before failing; a PATH that names no Vastfile is a usage error."""
    from vastbuild.diagnostics import has_errors
    from vastbuild.loader import check_path, find_vastfile

    models, problems = [], []
    for path in paths or (Path("Vastfile"),):
        try:
            find_vastfile(path)
        except VastbuildError as exc:
            raise UsageError(exc.message, exc.hint) from None
        model, diagnostics = check_path(path)
        problems.extend(diagnostics)
        if model is not None and not has_errors(diagnostics):
            models.append(model)
    if has_errors(problems):
        raise DiagnosticError(problems)
    if problems and settings.verbosity >= 0:  # warnings only
        print_diagnostics(problems, settings.color)
    return models


def _read_lines(path: str) -> list[str] | None:
    """The file's lines for source excerpts; None when it cannot be shown (reading a
    named pipe or a device could wait forever)."""
    try:
        if not Path(path).is_file():
            return None
        return Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None


def run(command: click.Command, args: Sequence[str] | None = None) -> int:
    """Invoke the CLI and map every outcome onto the exit code contract."""
    ctx: click.Context | None = None
    try:
        ctx = command.make_context("vastbuild", list(sys.argv[1:] if args is None else args))
        with ctx:
            status = command.invoke(ctx)
    except click.exceptions.Abort:
        click.echo("interrupted", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return 2 if isinstance(exc, click.UsageError) else exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except DiagnosticError as exc:
        print_diagnostics(exc.diagnostics, _settings(ctx).color)
        return 1
    except UsageError as exc:
        click.echo(f"error: {printable(str(exc))}", err=True)
        return 2
    except VastbuildError as exc:
        click.echo(f"error: {printable(str(exc))}", err=True)
        return 1
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # a bug: say so plainly, keep the traceback for -vv
        if _settings(ctx).verbosity >= 2:
            traceback.print_exc()
        click.echo(f"internal error: {type(exc).__name__}: {exc}\n"
                   "  = help: this is a bug in vastbuild; run again with -vv for details "
                   "and report it", err=True)
        return 1
    return status if type(status) is int else 0


def _settings(ctx: click.Context | None) -> Settings:
    """The global options, or plain defaults when the failure came before they were read."""
    from vastbuild.cli import Settings

    if ctx is not None and isinstance(ctx.obj, Settings):
        return ctx.obj
    return Settings(cache_dir=Path(), verbosity=0, color=False)
