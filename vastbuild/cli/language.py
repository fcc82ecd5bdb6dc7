"""``vastbuild check`` and ``vastbuild fmt``: the commands about the language itself.

Both take several paths in one process (a monorepo checks all its Vastfiles at
once) and carry on past a bad file, so one run reports everything. Exit codes:
0 clean (warnings allowed), 1 a file has errors (or would change, for
``fmt --check``), 2 usage -- which includes a PATH that does not exist or a
folder without a Vastfile: the command line named something that is not
there, as click reports for a missing file argument.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import click

from vastbuild.cli import Settings
from vastbuild.cli.output import print_diagnostics
from vastbuild.diagnostics import Diagnostic, DiagnosticError, has_errors, printable
from vastbuild.errors import VastbuildError

EXIT_OK, EXIT_INPUT, EXIT_USAGE = 0, 1, 2

PATHS = click.argument("paths", nargs=-1, type=click.Path(path_type=Path))


def _targets(paths: tuple[Path, ...]) -> tuple[Path, ...]:
    return paths or (Path("Vastfile"),)


def _summary(diagnostics: list[Diagnostic]) -> str:
    errors = sum(d.is_error for d in diagnostics)
    warnings = len(diagnostics) - errors
    parts = [f"{errors} error{'s' * (errors != 1)}"] if errors else []
    if warnings:
        parts.append(f"{warnings} warning{'s' * (warnings != 1)}")
    return ", ".join(parts) if parts else "ok"


@click.command()
@PATHS
@click.pass_obj
def check(settings: Settings, paths: tuple[Path, ...]) -> None:
    """Check Vastfiles (default: ./Vastfile) and report every error and warning.

    PATH is a Vastfile or a folder holding one. Exit status: 0 clean (warnings
    allowed), 1 errors in a file, 2 a PATH that does not exist.
    """
    from vastbuild.loader import check_path

    status = EXIT_OK
    for path in _targets(paths):
        try:
            model, diagnostics = check_path(path)
        except VastbuildError as exc:
            click.echo(f"error: {printable(str(exc))}", err=True)
            status = max(status, EXIT_USAGE)
            continue
        print_diagnostics(diagnostics, settings.color)
        if has_errors(diagnostics):
            status = max(status, EXIT_INPUT)
        if settings.verbosity >= 0:
            shown = path / "Vastfile" if path.is_dir() else path
            name = f" ({model.name})" if model is not None else ""
            click.echo(f"{shown.as_posix()}: {_summary(diagnostics)}{name}")
    raise click.exceptions.Exit(status)


@click.command()
@click.option("--check", "check_only", is_flag=True,
              help="Change nothing; list the files that would change and exit 1 if any would.")
@PATHS
@click.pass_obj
def fmt(settings: Settings, check_only: bool, paths: tuple[Path, ...]) -> None:
    """Rewrite Vastfiles (default: ./Vastfile) in the canonical layout.

    A file is written only when its bytes change, atomically (a crash leaves the
    old or the new file, never half of one). With --check nothing is written.
    """
    from vastbuild.loader import find_vastfile

    status = EXIT_OK
    for path in _targets(paths):
        try:
            vastfile = find_vastfile(path)
        except VastbuildError as exc:
            click.echo(f"error: {printable(str(exc))}", err=True)
            status = max(status, EXIT_USAGE)
            continue
        try:
            changed = _format_file(vastfile, write=not check_only)
        except DiagnosticError as exc:
            print_diagnostics(exc.diagnostics, settings.color)
            status = max(status, EXIT_INPUT)
            continue
        except OSError as exc:
            click.echo(f"error: cannot rewrite {printable(str(vastfile))}: "
                       f"{exc.strerror or exc}\n  = help: the file is unchanged; make its "
                       "folder writable or free some space, then run fmt again", err=True)
            status = max(status, EXIT_INPUT)
            continue
        if changed and check_only:
            click.echo(f"would reformat {vastfile.as_posix()}")
            status = max(status, EXIT_INPUT)
        elif changed and settings.verbosity >= 0:
            click.echo(f"reformatted {vastfile.as_posix()}")
    raise click.exceptions.Exit(status)


def _format_file(vastfile: Path, write: bool) -> bool:
    """Format one file; whether its bytes would change. Raises DiagnosticError when
    the file does not parse (or is not UTF-8: the parser says where)."""
    from vastbuild.fmt import format_source
    from vastbuild.syntax import parse

    shown = vastfile.as_posix()
    data = vastfile.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        _, diagnostics = parse(data, shown)
        raise DiagnosticError(diagnostics) from None
    formatted = format_source(text, shown).encode("utf-8")
    if formatted == data:
        return False
    if write:
        _replace(vastfile.resolve(), formatted)
    return True


def _replace(target: Path, data: bytes) -> None:
    """Write ``data`` over ``target`` atomically, keeping its permission bits."""
    mode = target.stat().st_mode & 0o7777
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.",
                                         suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, target)
    except BaseException:
        os.unlink(temporary)
        raise
