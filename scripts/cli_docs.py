"""Write the parts of the docs that the code knows: the command reference of
docs/cli.md, from the click commands, and the table of diagnostic codes of
docs/troubleshooting.md, from the parser's and checker's codes.

A reference written by hand drifts: an option is added, renamed or given a new
default and the page keeps the old one. This script walks the commands the CLI
registers (``COMMANDS`` in vastbuild/cli/__init__.py, each imported the way
``vastbuild COMMAND`` imports it, groups such as ``cache`` down to their
subcommands) and writes each one's usage, help, arguments and options (their
metavar, help and default, as ``--help`` states them, every default shown)
between two marker lines of docs/cli.md. Everything outside the markers is
written by hand and kept as it is; when the markers are missing the reference
is appended with them. A new command or option needs nothing but a run of this
script; ``tests/test_docs.py`` runs ``--check``, which fails while the page is
stale. The table of codes is made the same way from ``diagnostic_codes()``, each
code linked to its section of docs/vastfile.md, the one SARIF's ``helpUri`` names.

    python scripts/cli_docs.py           # rewrite the parts
    python scripts/cli_docs.py --check   # exit 1 if it would change
"""

from __future__ import annotations

import argparse
import inspect
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import click

from vastbuild.api import diagnostic_codes, reference_link
from vastbuild.cli import cli

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def _help_text(command: click.Command) -> str:
    """The command's help as Markdown paragraphs: click's ``\\b`` (keep these lines) is
    kept as a line break, and the part after ``\\f`` (for Python readers only) is dropped."""
    text = inspect.cleandoc(command.help or "").split("\f")[0]
    paragraphs = []
    for paragraph in text.split("\n\n"):
        lines = paragraph.splitlines()
        if lines and lines[0].strip() == "\b":
            paragraphs.append("  \n".join(line.strip() for line in lines[1:]))
        else:
            paragraphs.append(" ".join(line.strip() for line in lines))
    return "\n\n".join(p for p in paragraphs if p)


def _prose(text: str) -> str:
    """Help text as Markdown shows it: ``<stdin>`` would be an HTML tag, hidden."""
    return text.replace("<", "&lt;")


def _cell(text: str) -> str:
    """Text that stays in one Markdown table cell."""
    return " ".join(text.split()).replace("|", "\\|")


def _options_table(command: click.Command, ctx: click.Context) -> list[str]:
    rows = []
    for param in command.get_params(ctx):
        if not isinstance(param, click.Option):
            continue
        record = param.get_help_record(ctx)
        if record is None:  # hidden
            continue
        names, described = record
        rows.append(f"| `{_cell(names)}` | {_prose(_cell(described))} |")
    if not rows:
        return []
    return ["| option | meaning |", "| --- | --- |", *rows, ""]


def _arguments(command: click.Command, ctx: click.Context) -> list[str]:
    arguments = [p for p in command.get_params(ctx) if isinstance(p, click.Argument)]
    if not arguments:
        return []
    described = []
    for argument in arguments:
        how = ("optional" if not argument.required else "required") + (
            ", repeatable" if argument.nargs == -1 else "")
        choices = (f", one of {', '.join(f'`{c}`' for c in argument.type.choices)}"
                   if isinstance(argument.type, click.Choice) else "")
        described.append(f"`{argument.make_metavar(ctx)}` ({how}{choices})")
    return [f"Arguments: {'; '.join(described)}.", ""]


def _walk(command: click.Command, ctx: click.Context) -> Iterator[tuple[click.Command,
                                                                        click.Context]]:
    """Each command below ``command`` (itself excluded), in name order, subcommands
    right after their group."""
    if not isinstance(command, click.Group):
        return
    for name in command.list_commands(ctx):
        sub = command.get_command(ctx, name)
        if sub is None or sub.hidden:
            continue
        sub_ctx = click.Context(sub, info_name=name, parent=ctx, show_default=True)
        yield sub, sub_ctx
        yield from _walk(sub, sub_ctx)


def _section(command: click.Command, ctx: click.Context) -> list[str]:
    usage = " ".join([ctx.command_path, *command.collect_usage_pieces(ctx)])
    return [f"### `{ctx.command_path}`", "", "```text", usage, "```", "",
            _prose(_help_text(command)), "",
            *_arguments(command, ctx), *_options_table(command, ctx)]


def command_reference() -> list[str]:
    """Every command's section, after a table of them all."""
    root = click.Context(cli, info_name="vastbuild", show_default=True, **cli.context_settings)
    commands = list(_walk(cli, root))
    lines = ["## Command reference", "",
             "Every command with its arguments and options, as `vastbuild COMMAND --help` "
             "states them. The global options go before the command "
             "(`vastbuild -q build`).", "",
             "| command | what it does |", "| --- | --- |"]
    for command, ctx in commands:
        anchor = ctx.command_path.replace(" ", "-")
        lines.append(f"| [`{ctx.command_path}`](#{anchor}) | "
                     f"{_prose(_cell(command.get_short_help_str(limit=300)))} |")
    lines.append("")
    lines += _section(cli, root)
    for command, ctx in commands:
        lines += _section(command, ctx)
    return lines


def code_table() -> list[str]:
    """Every diagnostic code the parser and checker know, each linked to its section,
    the section SARIF's ``helpUri`` names."""
    rows = [f"| [{code}]({os.path.relpath(ROOT / reference_link(code), DOCS)}) | "
            f"{_prose(_cell(what))} |"
            for code, what in diagnostic_codes().items()]
    return ["| code | what it means |", "| --- | --- |", *rows, ""]


@dataclass(frozen=True)
class GeneratedPart:
    """A part of a page this script writes, between two marker lines."""

    path: Path
    title: str
    #: what to edit instead of the part
    source: str
    make: Callable[[], list[str]]

    @property
    def begin(self) -> str:
        return (f"<!-- BEGIN {self.title}: written by scripts/cli_docs.py from {self.source}; "
                "edit the source, not this part -->")

    @property
    def end(self) -> str:
        return f"<!-- END {self.title} -->"

    def regenerated(self, page: str) -> str:
        """``page`` with the part replaced (or appended, markers and all)."""
        part = "\n".join([self.begin, "", *self.make(), self.end]) + "\n"
        start, end = page.find(self.begin), page.find(self.end)
        if start == -1 or end == -1:
            return page.rstrip("\n") + "\n\n" + part
        epilogue = page[end + len(self.end):].lstrip("\n")
        return page[:start] + part + ("\n" + epilogue if epilogue else "")


PARTS = (
    GeneratedPart(DOCS / "cli.md", "command reference", "the commands' help",
                  command_reference),
    GeneratedPart(DOCS / "troubleshooting.md", "diagnostic codes",
                  "the codes of vastbuild/syntax.py and vastbuild/check.py", code_table),
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 when a page is stale")
    options = parser.parse_args()
    stale = []
    for part in PARTS:
        page = part.path.read_text(encoding="utf-8")
        new = part.regenerated(page)
        if new == page:
            continue
        stale.append(part.path)
        if not options.check:
            part.path.write_text(new, encoding="utf-8")
    if options.check and stale:
        for path in stale:
            print(f"{path.relative_to(ROOT)} is stale: run python scripts/cli_docs.py",
                  file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
