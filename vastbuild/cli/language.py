"""``vastbuild check`` and ``vastbuild fmt``: the commands about the language itself.

Both take several paths in one process (a monorepo checks all its Vastfiles at
once) and carry on past a bad file, so one run reports everything. Exit codes:
0 clean (warnings allowed), 1 a file has errors (or would change, for
``fmt --check``), 2 usage -- which includes a PATH that does not exist or a
folder without a Vastfile: the command line named something that is not
there, as click reports for a missing file argument.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import click

from vastbuild.api import (
    Diagnostic,
    DiagnosticError,
    NoVastfile,
    VastbuildError,
    format_file,
    resolve_targets,
)
from vastbuild.api import (
    check as check_vastfile,
)
from vastbuild.cli import options
from vastbuild.cli.context import GlobalOptions
from vastbuild.cli.report import (
    EXIT_INPUT,
    EXIT_OK,
    EXIT_USAGE,
    print_diagnostics,
    print_error,
)


def _summary(diagnostics: tuple[Diagnostic, ...]) -> str:
    errors = sum(d.is_error for d in diagnostics)
    warnings = len(diagnostics) - errors
    parts = [f"{errors} error{'s' * (errors != 1)}"] if errors else []
    if warnings:
        parts.append(f"{warnings} warning{'s' * (warnings != 1)}")
    return ", ".join(parts) if parts else "ok"


def _each(names: tuple[str, ...]) -> Iterator[Path | NoVastfile]:
    """Each Vastfile the names name, or the error of a name that names none: the
    commands go on past it, so that one run reports every file."""
    for name in names or ("Vastfile",):
        try:
            yield from (t for t in resolve_targets([name]) if isinstance(t, Path))
        except NoVastfile as exc:
            yield exc


@click.command()
@options.paths
@click.pass_obj
def check(settings: GlobalOptions, paths: tuple[str, ...]) -> None:
    """Check Vastfiles (default: ./Vastfile) and report every error and warning.

    TARGET is a Vastfile, a folder holding one, a label (//services/llm), a
    pattern (//services/..., ./...) or a deployment name. Exit status: 0 clean
    (warnings allowed), 1 errors in a file, 2 a TARGET that names no Vastfile.
    """
    status = EXIT_OK
    for path in _each(paths):
        if isinstance(path, NoVastfile):
            print_error(path)
            status = max(status, EXIT_USAGE)
            continue
        report = check_vastfile(path, tag=settings.tag, args=settings.args)
        print_diagnostics(report.diagnostics, settings.color)
        if not report.ok:
            status = max(status, EXIT_INPUT)
        if not settings.quiet:
            name = f" ({report.model.name})" if report.model is not None else ""
            click.echo(f"{report.vastfile.as_posix()}: {_summary(report.diagnostics)}{name}")
    raise click.exceptions.Exit(status)


@click.command()
@click.option("--check", "check_only", is_flag=True,
              help="Change nothing; list the files that would change and exit 1 if any would.")
@options.paths
@click.pass_obj
def fmt(settings: GlobalOptions, check_only: bool, paths: tuple[str, ...]) -> None:
    """Rewrite Vastfiles (default: ./Vastfile) in the canonical layout.

    A file is written only when its bytes change, atomically (a crash leaves the
    old or the new file, never half of one). With --check nothing is written.
    """
    status = EXIT_OK
    for vastfile in _each(paths):
        if isinstance(vastfile, NoVastfile):
            print_error(vastfile)
            status = max(status, EXIT_USAGE)
            continue
        try:
            changed = format_file(vastfile, write=not check_only)
        except DiagnosticError as exc:
            print_diagnostics(exc.diagnostics, settings.color)
            status = max(status, EXIT_INPUT)
            continue
        except VastbuildError as exc:
            print_error(exc)
            status = max(status, EXIT_INPUT)
            continue
        if changed and check_only:
            click.echo(f"would reformat {vastfile.as_posix()}")
            status = max(status, EXIT_INPUT)
        elif changed and not settings.quiet:
            click.echo(f"reformatted {vastfile.as_posix()}")
    raise click.exceptions.Exit(status)
