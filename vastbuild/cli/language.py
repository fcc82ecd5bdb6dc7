"""``vastbuild check`` and ``vastbuild fmt``: the commands about the language itself.

Both take several paths in one process (a monorepo checks all its Vastfiles at
once) and carry on past a bad file, so one run reports everything. Exit codes:
0 clean (warnings allowed), 1 a file has errors (or would change, for
``fmt --check`` or ``--diff``), 2 usage -- which includes a PATH that does not
exist or a folder without a Vastfile: the command line named something that is
not there, as click reports for a missing file argument.

TARGET ``-`` reads one Vastfile from stdin, so an editor can check or format a
buffer it has not saved; ``--stdin-filename`` says which file the buffer is.
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import nullcontext
from pathlib import Path

import click

from vastbuild.api import (
    VASTFILE,
    CheckReport,
    Diagnostic,
    DiagnosticError,
    NoVastfile,
    VastbuildError,
    check_source,
    format_file,
    format_source,
    formatted_file,
    has_errors,
    market_check,
    resolve_targets,
    sort_key,
)
from vastbuild.api import (
    check as check_vastfile,
)
from vastbuild.cli import options
from vastbuild.cli.context import GlobalOptions
from vastbuild.cli.deploy import _client
from vastbuild.cli.report import (
    EXIT_INPUT,
    EXIT_OK,
    EXIT_USAGE,
    print_diagnostics,
    print_error,
)
from vastbuild.cli.structured import diagnostics_json, diagnostics_sarif

#: the TARGET that means "the Vastfile on stdin"
STDIN = "-"


def _summary(diagnostics: Sequence[Diagnostic]) -> str:
    errors = sum(d.is_error for d in diagnostics)
    warnings = len(diagnostics) - errors
    parts = [f"{errors} error{'s' * (errors != 1)}"] if errors else []
    if warnings:
        parts.append(f"{warnings} warning{'s' * (warnings != 1)}")
    return ", ".join(parts) if parts else "ok"


def _each(names: tuple[str, ...]) -> Iterator[Path | NoVastfile]:
    """Each Vastfile the names name, or the error of a name that names none: the
    commands go on past it, so that one run reports every file."""
    for name in names or (VASTFILE,):
        try:
            yield from (t for t in resolve_targets([name]) if isinstance(t, Path))
        except NoVastfile as exc:
            yield exc


def _stdin_name(paths: tuple[str, ...], stdin_filename: str | None) -> str | None:
    """The path the Vastfile on stdin stands for, None when the targets are files; a
    usage error for ``-`` among other targets (stdin holds one file) or a
    ``--stdin-filename`` without ``-`` (it would silently name nothing)."""
    if STDIN not in paths:
        if stdin_filename is not None:
            raise click.UsageError("--stdin-filename goes with TARGET `-` (read stdin)")
        return None
    if len(paths) > 1:
        raise click.UsageError("TARGET `-` (read stdin) cannot go with other targets")
    return Path(stdin_filename or "<stdin>").as_posix()  # as diagnostics spell a path


def _read_stdin() -> bytes:
    """stdin's bytes: the parser, not the terminal's encoding, judges whether they are
    UTF-8, and says where they are not (E001) as it does for a file."""
    return sys.stdin.buffer.read()


def _unsaved(name: str, source: bytes) -> dict[str, list[str]]:
    """The lines of a Vastfile read from stdin, by the path its diagnostics name, for
    their excerpts: the file of that name may not exist or may hold other text."""
    return {name: source.decode("utf-8", errors="replace").splitlines()}


def _reports(paths: tuple[str, ...], stdin_name: str | None, settings: GlobalOptions
             ) -> Iterator[tuple[CheckReport, dict[str, list[str]]] | NoVastfile]:
    """Each target's report, with the text of a file that is not on disk (stdin) for
    the source excerpts, or the error of a name that names no Vastfile."""
    if stdin_name is not None:
        source = _read_stdin()
        yield (check_source(source, stdin_name, tag=settings.tag, args=settings.args),
               _unsaved(stdin_name, source))
        return
    for path in _each(paths):
        yield path if isinstance(path, NoVastfile) else (
            check_vastfile(path, tag=settings.tag, args=settings.args), {})


@click.command()
@click.option("--format", "output", type=click.Choice(["text", "json", "sarif"]),
              default="text", show_default=True,
              help="text: for people, on stderr; json: a list of diagnostics on stdout; "
                   "sarif: SARIF 2.1.0 on stdout, for code scanning.")
@options.stdin_filename
@click.option("--online", is_flag=True,
              help="Also search Vast's market with each target's REQUIRE (needs the API "
                   "key): a target no offer matches is an error.")
@options.refresh_market
@options.api_url
@options.api_key_file
@options.paths
@click.pass_obj
def check(settings: GlobalOptions, output: str, stdin_filename: str | None, online: bool,
          refresh_market: bool, api_url: str | None, api_key_file: Path | None,
          paths: tuple[str, ...]) -> None:
    """Check Vastfiles (default: ./Vastfile) and report every error and warning.

    TARGET is a Vastfile, a folder holding one, a label (//services/llm), a
    pattern (//services/..., ./...), a deployment name, or `-` for stdin. Exit
    status: 0 clean (warnings allowed), 1 errors in a file (or, with --online, no
    offer on the market for a target, or a failed search), 2 a TARGET that names
    no Vastfile.
    """
    status = EXIT_OK
    found: list[Diagnostic] = []
    with (_client(settings, api_url, None, api_key_file) if online
          else nullcontext(None)) as client:
        for item in _reports(paths, _stdin_name(paths, stdin_filename), settings):
            if isinstance(item, NoVastfile):
                print_error(item)
                status = max(status, EXIT_USAGE)
                continue
            report, sources = item
            diagnostics = list(report.diagnostics)
            market = None
            if client is not None and report.ok and report.model is not None:
                [market] = market_check([report.model], client=client,
                                        cache_dir=settings.cache_dir, refresh=refresh_market)
                diagnostics += market.diagnostics()
            if has_errors(diagnostics):
                status = max(status, EXIT_INPUT)
            if output != "text":
                found.extend(sorted(diagnostics, key=sort_key))
                continue
            print_diagnostics(diagnostics, settings.color, sources)
            if not settings.quiet:
                name = f" ({report.model.name})" if report.model is not None else ""
                click.echo(f"{report.vastfile.as_posix()}: {_summary(diagnostics)}{name}")
                if market is not None and market.prices is not None:
                    click.echo(f"  market  {market.count_text()}, "
                               f"{market.prices.range_text()}")
    if output == "json":
        click.echo(diagnostics_json(found))
    elif output == "sarif":
        click.echo(diagnostics_sarif(found))
    raise click.exceptions.Exit(status)


def _diff(name: str, old: str, new: str) -> str:
    """A unified diff from ``old`` to ``new``, marking a last line without a newline
    the way git and patch expect, so the diff applies."""
    lines = difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True),
                                 f"a/{name}", f"b/{name}")
    return "".join(line if line.endswith("\n") else f"{line}\n\\ No newline at end of file\n"
                   for line in lines)


def _format_one(target: Path | tuple[str, bytes], check_only: bool,
                show_diff: bool) -> tuple[str, bool]:
    """Format one Vastfile -- a file, or the (name, text) of the one on stdin -- as the
    flags say; its name and whether its layout is not the canonical one."""
    if isinstance(target, tuple):
        name, source = target
        new = format_source(source, name)
        old = source.decode("utf-8")  # format_source has refused what is not UTF-8
        if not (check_only or show_diff):
            click.echo(new, nl=False)
    elif show_diff:
        found, old, new = formatted_file(target)
        name = found.as_posix()
    else:
        return target.as_posix(), format_file(target, write=not check_only)
    if show_diff and new != old:
        click.echo(_diff(name, old, new), nl=False)
    return name, new != old


@click.command()
@click.option("--check", "check_only", is_flag=True,
              help="Change nothing; list the files that would change and exit 1 if any would.")
@click.option("--diff", "show_diff", is_flag=True,
              help="Change nothing; print a unified diff of what would change and exit 1 "
                   "if anything would.")
@options.stdin_filename
@options.paths
@click.pass_obj
def fmt(settings: GlobalOptions, check_only: bool, show_diff: bool,
        stdin_filename: str | None, paths: tuple[str, ...]) -> None:
    """Rewrite Vastfiles (default: ./Vastfile) in the canonical layout.

    A file is written only when its bytes change, atomically (a crash leaves the
    old or the new file, never half of one). With --check or --diff nothing is
    written. TARGET `-` formats stdin onto stdout.
    """
    status = EXIT_OK
    stdin_name = _stdin_name(paths, stdin_filename)
    targets: Iterable[Path | NoVastfile | tuple[str, bytes]] = (
        [(stdin_name, _read_stdin())] if stdin_name is not None else _each(paths))
    for target in targets:
        if isinstance(target, NoVastfile):
            print_error(target)
            status = max(status, EXIT_USAGE)
            continue
        try:
            name, changed = _format_one(target, check_only, show_diff)
        except DiagnosticError as exc:
            print_diagnostics(exc.diagnostics, settings.color,
                              _unsaved(*target) if isinstance(target, tuple) else None)
            status = max(status, EXIT_INPUT)
            continue
        except VastbuildError as exc:
            print_error(exc)
            status = max(status, EXIT_INPUT)
            continue
        if changed and (check_only or show_diff):
            if not show_diff:
                click.echo(f"would reformat {name}")
            status = max(status, EXIT_INPUT)
        elif changed and isinstance(target, Path) and not settings.quiet:
            click.echo(f"reformatted {name}")
    raise click.exceptions.Exit(status)
