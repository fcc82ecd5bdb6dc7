"""The docs say what the code does: the generated parts are current, the tutorial
runs as written, and every link lands.

The tutorial (docs/tutorial.md) is run the way a reader runs it: its ``console``
blocks, in order, each ``$ `` line a command typed into one shell (so ``cd`` and
``export`` carry over), in a fresh folder, against a real ``vastbuild
dev-server`` process. The one command a reader starts in another terminal,
``vastbuild dev-server ...``, is started as that process instead, on a free port:
the only change made to any command is that port, in place of the 8765 the
tutorial names. The lines the tutorial shows under a command must be among what
the command prints, in order (clock times, durations and step counts aside),
and a command exits 1 exactly when the tutorial shows it printing an error.
The server's simulated workers change state every 0.05 s, so the walk is quick.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from build_helpers import CONSOLE_SCRIPT
from conftest import ROOT, StartDevServer

from vastbuild.api import diagnostic_codes, reference_link

DOCS = ROOT / "docs"
TUTORIAL = DOCS / "tutorial.md"
#: the address the tutorial tells readers the dev server listens on
TUTORIAL_URL = "http://127.0.0.1:8765"
_FENCE = re.compile(r"^(```|~~~)")
_LINK = re.compile(r"(?<!!)\[(?:[^\]\\]|\\.)*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_CODE_SPAN = re.compile(r"`[^`]*`")
#: what differs from run to run: clock times, durations, and how many build steps
#: ran rather than came from the cache (a file written the moment before is not
#: trusted by its timestamp, so whether ``hash`` cached it depends on the clock)
_VOLATILE = ((re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+)?Z?( UTC)?"), "<time>"),
             (re.compile(r"\b\d+(\.\d+)? s\b"), "<n> s"),
             (re.compile(r"\d+ steps run, \d+ cached"), "<n> steps run, <n> cached"))
_ERROR = re.compile(r"\berror\b")
_STEP = "@@tutorial-step"


def _prose_lines(text: str) -> list[str]:
    """The lines of a Markdown page outside fenced code blocks, code spans blanked."""
    lines, fenced = [], False
    for line in text.splitlines():
        if _FENCE.match(line.strip()):
            fenced = not fenced
            continue
        lines.append("" if fenced else _CODE_SPAN.sub("", line))
    return lines


def github_anchors(page: Path) -> set[str]:
    """The anchors GitHub gives the page's headings: lower case, punctuation but ``-``
    and ``_`` dropped, spaces made ``-``, a repeated one numbered ``-1``, ``-2``."""
    anchors: set[str] = set()
    fenced = False
    for line in page.read_text(encoding="utf-8").splitlines():
        if _FENCE.match(line.strip()):
            fenced = not fenced
        heading = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if fenced or heading is None:
            continue
        text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.group(1))
        slug = re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")
        anchor, n = slug, 0
        while anchor in anchors:
            n += 1
            anchor = f"{slug}-{n}"
        anchors.add(anchor)
    return anchors


def broken_links(page: Path) -> list[str]:
    """Each relative link of ``page`` (outside code) whose file or heading is missing."""
    broken = []
    for number, line in enumerate(_prose_lines(page.read_text(encoding="utf-8")), 1):
        for target in _LINK.findall(line):
            if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
                continue
            path_part, _, anchor = target.partition("#")
            linked = (page.parent / path_part).resolve() if path_part else page
            where = f"{page.relative_to(ROOT)}:{number}: {target}"
            if not linked.exists():
                broken.append(f"{where}: no such file")
            elif anchor and linked.suffix == ".md" and anchor not in github_anchors(linked):
                broken.append(f"{where}: no heading #{anchor} in {linked.name}")
    return broken


@pytest.mark.parametrize("page", [ROOT / "README.md", *sorted(DOCS.glob("*.md"))],
                         ids=lambda p: p.name)
def test_every_relative_link_lands(page: Path) -> None:
    assert broken_links(page) == []


def test_the_generated_parts_are_current() -> None:
    """docs/cli.md's command reference and docs/troubleshooting.md's code table."""
    result = subprocess.run([sys.executable, str(ROOT / "scripts/cli_docs.py"), "--check"],
                            capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr


def test_troubleshooting_lists_every_code_at_its_section() -> None:
    """Each code the parser and checker know, linked where SARIF's helpUri points."""
    page = (DOCS / "troubleshooting.md").read_text(encoding="utf-8")
    listed = dict(re.findall(r"^\| \[([EW]\d{3})\]\(([^)]*)\)", page, re.MULTILINE))
    assert listed == {code: os.path.relpath(ROOT / reference_link(code), DOCS)
                      for code in diagnostic_codes()}


@dataclass(frozen=True)
class Command:
    """A ``$ `` line of the tutorial and the lines it shows the command printing."""

    line: str
    shown: tuple[str, ...]


def tutorial_commands() -> list[Command]:
    commands: list[Command] = []
    in_console = False
    for line in TUTORIAL.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            in_console = line == "```console"
            continue
        if not in_console or not line.strip():
            continue
        if line.startswith("$ "):
            commands.append(Command(line[2:], ()))
        else:
            last = commands[-1]
            commands[-1] = Command(last.line, (*last.shown, line))
    return commands


def _normal(lines: str | tuple[str, ...], server_url: str) -> list[str]:
    text = "\n".join(lines) if isinstance(lines, tuple) else lines
    text = text.replace(server_url, TUTORIAL_URL)
    for pattern, placeholder in _VOLATILE:
        text = pattern.sub(placeholder, text)
    return [line.rstrip() for line in text.splitlines() if line.strip()]


def _missing(shown: list[str], printed: list[str]) -> str | None:
    """The first shown line not printed after the ones before it, or None."""
    rest = iter(printed)
    for line in shown:
        if not any(line == candidate for candidate in rest):
            return line
    return None


def test_the_tutorial_runs_as_written(start_dev_server: StartDevServer,
                                      tmp_path: Path) -> None:
    commands = tutorial_commands()
    [server_command] = [c for c in commands if c.line.startswith("vastbuild dev-server")]
    server = start_dev_server(keys=(), args=shlex.split(server_command.line)[2:],
                              env={"VASTBUILD_DEV_SERVER_WORKER_STEP": "0.05"})
    assert _missing(_normal(server_command.shown, server.url),
                    _normal(server.output(), server.url)) is None, server.output()

    typed = [c for c in commands if c is not server_command]
    script = ["set -u"]
    for number, command in enumerate(typed):
        script += [f"printf '\\n{_STEP} {number}\\n'",
                   command.line.replace(TUTORIAL_URL, server.url),
                   f"printf '\\n{_STEP} exit %d\\n' $?"]
    work = tmp_path / "work"
    work.mkdir()
    environment = {name: value for name, value in os.environ.items()
                   if not name.startswith(("VAST_", "VASTBUILD_", "XDG_"))}
    environment.update(PATH=f"{CONSOLE_SCRIPT.parent}{os.pathsep}{environment['PATH']}",
                       PYTHONUNBUFFERED="1", VASTBUILD_CACHE_DIR=str(tmp_path / "cache"),
                       XDG_CONFIG_HOME=str(tmp_path / "config"),
                       XDG_STATE_HOME=str(tmp_path / "state"))
    run = subprocess.run(["bash", "-c", "\n".join(script)], cwd=work, env=environment,
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, timeout=300)
    # stdout and stderr in one pipe, unbuffered: in the order a terminal shows them
    transcript = re.split(rf"^{_STEP} (\d+)\n", run.stdout, flags=re.MULTILINE)
    printed = dict(zip(transcript[1::2], transcript[2::2], strict=True))
    for number, command in enumerate(typed):
        out, _, status = printed[str(number)].rpartition(f"{_STEP} exit ")
        expected = 1 if any(_ERROR.search(line) for line in command.shown) else 0
        context = f"$ {command.line}\n{out}"
        assert int(status) == expected, context
        line = _missing(_normal(command.shown, server.url), _normal(out, server.url))
        assert line is None, f"not printed: {line!r}\n{context}"
