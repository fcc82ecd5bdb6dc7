"""How the command line reports: diagnostics, errors, and the exit code contract.

Exit codes: 0 ok, 1 errors in the input or from a server, 2 usage (including a
value the library refused as an argument), 130 interrupted. A Python traceback
is never shown unless ``-vv`` asked for it. The library names the *setting* an
error is about; this is where a setting becomes the flag that changes it.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click

from vastbuild.api import (
    VASTFILE,
    Diagnostic,
    DiagnosticError,
    InvalidArgument,
    Settings,
    VastbuildError,
    affected_targets,
    load_all,
    printable,
    render,
    sort_key,
)
from vastbuild.cli.context import GlobalOptions

if TYPE_CHECKING:
    from vastbuild.api import Deployment

EXIT_OK, EXIT_INPUT, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

#: how a user changes each setting an error may name
SETTING_FLAGS = {
    "api_key": "$VAST_API_KEY or --api-key-file",
    "api_url": "--api-url, $VAST_API_URL or api_url in vastbuild.toml",
    "autoscaler_url": "--autoscaler-url, $VAST_AUTOSCALER_URL or autoscaler_url in "
                      "vastbuild.toml",
    "cache_dir": "--cache-dir, $VASTBUILD_CACHE_DIR or cache_dir in vastbuild.toml",
    "outdir": "-o/--outdir",
    "formats": "--format",
    "max_size": "--max-size",
    "make_target": "--depfile-target, or --target of deps",
    "depfile": "--depfile, or -o of deps",
    "args": "--arg NAME=VALUE",
    "source_date_epoch": "$SOURCE_DATE_EPOCH",
    "data_dir": "--data",
    "dev_server_keys": "--api-key or $VASTBUILD_DEV_SERVER_API_KEYS",
    "host": "--host",
    "port": "--port",
    "remote_cache": "--remote-cache, $VASTBUILD_REMOTE_CACHE or remote_cache in "
                    "vastbuild.toml",
    "secrets": "--secret NAME=@FILE or --secrets-file FILE",
}


def shown(path: Path) -> str:
    """A path as the user would type it: relative to the working folder when below it."""
    relative = os.path.relpath(path)
    return path.as_posix() if relative.startswith("..") else Path(relative).as_posix()


def narrowed(paths: Sequence[str], since: str | None,
             settings: GlobalOptions) -> tuple[str, ...]:
    """``paths`` (default ./Vastfile), or with ``--affected-since REF`` those of them
    whose inputs changed since REF (possibly none, which is said on stderr)."""
    if since is None:
        return tuple(paths) or (VASTFILE,)
    found = tuple(t.vastfile.as_posix()
                  for t in affected_targets(paths or ("//...",), since,
                                            cache_dir=settings.cache_dir))
    if not found and not settings.quiet:
        click.echo(f"no target is affected since {since}: nothing to do", err=True)
    return found


def error_text(exc: VastbuildError) -> str:
    """``error: message`` and ``= help:`` naming the flag of the setting concerned."""
    text = f"error: {printable(exc.message)}"
    if exc.hint:
        flag = SETTING_FLAGS.get(exc.setting or "")
        text += f"\n  = help: {printable(exc.hint)}" + (f" ({flag})" if flag else "")
    return text


def print_error(exc: VastbuildError) -> None:
    click.echo(error_text(exc), err=True)


def print_diagnostics(diagnostics: Iterable[Diagnostic], color: bool = False,
                      unsaved: Mapping[str, list[str]] | None = None) -> None:
    """Print diagnostics to stderr, in file order, each with its source excerpt.
    ``unsaved``: the lines of files checked from elsewhere than the disk (stdin), by
    path, so an excerpt shows what was checked rather than what the disk holds."""
    sources: dict[str, list[str] | None] = dict(unsaved or {})
    for d in sorted(diagnostics, key=sort_key):
        lines = None
        if d.span:
            if d.span.path not in sources:
                sources[d.span.path] = _read_lines(d.span.path)
            lines = sources[d.span.path]
        click.echo(render(d, lines, color=color), err=True, color=color)


def print_warnings(diagnostics: Iterable[Diagnostic], options: GlobalOptions) -> None:
    """Warnings go to stderr unless ``-q``."""
    found = list(diagnostics)
    if found and not options.quiet:
        print_diagnostics(found, options.color)


def load(paths: Sequence[str], options: GlobalOptions) -> list[Deployment]:
    """Every target's checked model, its Vastfile's warnings printed; the library's
    errors (a path naming no Vastfile, diagnostics of any file) propagate to :func:`run`."""
    loaded = load_all(list(paths), tag=options.tag, args=options.args)
    print_warnings(loaded.warnings, options)
    return list(loaded.models)


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
    """Invoke the command line and map every outcome onto the exit code contract."""
    ctx: click.Context | None = None
    try:
        ctx = command.make_context("vastbuild", list(sys.argv[1:] if args is None else args))
        with ctx:
            status = command.invoke(ctx)
    except click.exceptions.Abort:
        click.echo("interrupted", err=True)
        return EXIT_INTERRUPTED
    except click.ClickException as exc:
        exc.show()
        return EXIT_USAGE if isinstance(exc, click.UsageError) else exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except DiagnosticError as exc:
        print_diagnostics(exc.diagnostics, _options(ctx).color)
        return EXIT_INPUT
    except InvalidArgument as exc:
        print_error(exc)
        return EXIT_USAGE
    except VastbuildError as exc:
        print_error(exc)
        return EXIT_INPUT
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_OK
    except Exception as exc:  # a bug: say so plainly, keep the traceback for -vv
        if _options(ctx).verbosity >= 2:
            traceback.print_exc()
        click.echo(f"internal error: {type(exc).__name__}: {printable(str(exc))}\n"
                   "  = help: this is a bug in vastbuild; run again with -vv for details "
                   "and report it", err=True)
        return EXIT_INPUT
    return status if type(status) is int else EXIT_OK


def _options(ctx: click.Context | None) -> GlobalOptions:
    """The global options, or plain defaults when the failure came before they were read."""
    if ctx is not None and isinstance(ctx.obj, GlobalOptions):
        return ctx.obj
    return GlobalOptions(settings=Settings({}, None, None), verbosity=0, color=False)
