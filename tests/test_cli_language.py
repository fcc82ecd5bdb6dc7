"""``vastbuild check`` and ``vastbuild fmt``: output, exit codes 0/1/2, no traceback ever."""

from __future__ import annotations

import re
import stat
import subprocess
from pathlib import Path

import pytest
from build_helpers import vastbuild
from click.testing import CliRunner, Result

from vastbuild.cli import cli

REPO = Path(__file__).resolve().parent.parent
APP = 'from vastai.serverless.remote import Deployment\n\napp = Deployment(name="svc")\n'
CLEAN = "DEPLOYMENT svc\nFROM vastai/base:1\nCODE app.py\n"
FIVE_MISTAKES = """\
DEPLOYMENT svc
FORM vastai/base:1
FROM vastai/base:1 STORAGE 80XB
CODE app.py
PORT 8080/tcp 99999
REQUIRE gpu_rams >= 48
AUTOSCALE cold_workers=4 max_workers=2
"""
FIVE_EXPECTED = [(2, 1, "E022"), (3, 28, "E025"), (5, 15, "E035"), (6, 9, "E042"),
                 (7, 11, "E041")]


@pytest.fixture
def svc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A workspace with a deployment folder ``svc`` (clean Vastfile), as the cwd."""
    (tmp_path / "vastbuild.toml").write_text("")
    folder = tmp_path / "svc"
    folder.mkdir()
    (folder / "app.py").write_text(APP)
    (folder / "Vastfile").write_text(CLEAN)
    monkeypatch.chdir(tmp_path)
    return folder


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def console(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the installed console script, as a user would."""
    result = vastbuild(*args, cwd=cwd, console_script=True, timeout=60)
    assert "Traceback" not in result.stdout + result.stderr
    assert "internal error" not in result.stderr
    return result


def error_lines(stderr: str) -> list[tuple[str, int, int, str]]:
    return [(m[1], int(m[2]), int(m[3]), m[4]) for m in re.finditer(
        r"^(\S+):(\d+):(\d+): error\[(E\d{3})\]: ", stderr, re.MULTILINE)]


# --- check ----------------------------------------------------------------------------------

def test_check_clean_file(svc: Path) -> None:
    result = invoke("check", "svc/Vastfile")
    assert result.exit_code == 0 and result.stderr == ""
    assert result.stdout == "svc/Vastfile: ok (svc)\n"


def test_check_folder_and_default_path(svc: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert invoke("check", "svc").stdout == "svc/Vastfile: ok (svc)\n"
    monkeypatch.chdir(svc)
    result = invoke("check")
    assert result.exit_code == 0 and result.stdout == "Vastfile: ok (svc)\n"


def test_check_warnings_do_not_fail(svc: Path) -> None:
    (svc / "Vastfile").write_text(CLEAN + "REQUIRE gpu_name == RTX4090\n")
    result = invoke("check", "svc")
    assert result.exit_code == 0
    assert "svc/Vastfile:4:21: warning[W001]: `RTX4090` is not a known GPU name" in result.stderr
    assert "= help: did you mean `RTX_4090`?" in result.stderr
    assert result.stdout == "svc/Vastfile: 1 warning (svc)\n"


def test_check_five_mistakes_all_reported_by_the_console_script(svc: Path) -> None:
    (svc / "Vastfile").write_text(FIVE_MISTAKES)
    result = console("check", "svc/Vastfile", cwd=svc.parent)
    assert result.returncode == 1
    assert error_lines(result.stderr) == [("svc/Vastfile", line, col, code)
                                          for line, col, code in FIVE_EXPECTED]
    assert "2 | FORM vastai/base:1" in result.stderr and "  | ^^^^" in result.stderr
    assert result.stdout == "svc/Vastfile: 5 errors\n"


def test_check_reports_syntax_and_semantic_errors_together(svc: Path) -> None:
    (svc / "Vastfile").write_text(CLEAN + "ENV A=\"open\nPORT 0\nTTL 5 6\n")
    result = invoke("check", "svc")
    assert result.exit_code == 1
    assert [(line, code) for _, line, _, code in error_lines(result.stderr)] == [
        (4, "E005"), (5, "E035"), (6, "E010")]


def test_check_does_not_report_what_a_broken_line_would_have_said(svc: Path) -> None:
    (svc / "Vastfile").write_text("DEPLOYMENT 'svc\nFROM img STORAGE\nCODE app.py\n")
    result = invoke("check", "svc")
    assert result.exit_code == 1
    assert [code for *_, code in error_lines(result.stderr)] == ["E005", "E009"]


def test_check_several_paths_in_one_run(svc: Path) -> None:
    other = svc.parent / "other"
    other.mkdir()
    (other / "Vastfile").write_text("FROM img\n")
    result = invoke("check", "svc", "other/Vastfile")
    assert result.exit_code == 1
    assert result.stdout == "svc/Vastfile: ok (svc)\nother/Vastfile: 1 error\n"
    assert "other/Vastfile:1:1: error[E020]: the Vastfile has no CODE" in result.stderr


def test_check_missing_path_is_a_usage_error_and_the_rest_is_checked(svc: Path) -> None:
    result = invoke("check", "nowhere/Vastfile", "svc")
    assert result.exit_code == 2
    assert "error: nowhere/Vastfile does not exist" in result.stderr
    assert result.stdout == "svc/Vastfile: ok (svc)\n"
    (svc.parent / "empty").mkdir()
    result = invoke("check", "empty")
    assert result.exit_code == 2 and "error: no Vastfile in empty" in result.stderr


def test_check_usage_error_wins_over_input_error(svc: Path) -> None:
    (svc / "Vastfile").write_text("FROM img\n")
    assert invoke("check", "svc", "nowhere").exit_code == 2


def test_check_quiet_prints_only_diagnostics(svc: Path) -> None:
    assert invoke("-q", "check", "svc").stdout == ""
    (svc / "Vastfile").write_text(CLEAN + "PORT 0\n")
    result = invoke("-q", "check", "svc")
    assert result.exit_code == 1 and result.stdout == "" and "error[E035]" in result.stderr


def test_check_invalid_utf8_is_a_diagnostic(svc: Path) -> None:
    (svc / "Vastfile").write_bytes(CLEAN.encode() + b"ENV CITY=caf\xe9\n")
    result = invoke("check", "svc")
    assert result.exit_code == 1
    assert error_lines(result.stderr) == [("svc/Vastfile", 4, 13, "E001")]


def test_check_unreadable_file_is_a_diagnostic(svc: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "read_bytes", refuse)
    result = invoke("check", "svc")
    assert result.exit_code == 1
    assert "svc/Vastfile:1:1: error[E033]: cannot read svc/Vastfile: Permission denied" in (
        result.stderr)


def test_console_script_exit_codes(svc: Path) -> None:
    root = svc.parent
    assert console("check", "svc", cwd=root).returncode == 0
    (svc / "Vastfile").write_text(CLEAN + "TTL soon\n")
    assert console("check", "svc", cwd=root).returncode == 1
    missing = console("check", "missing", cwd=root)
    assert missing.returncode == 2 and "error: missing does not exist" in missing.stderr
    assert console("check", "--no-such-option", cwd=root).returncode == 2
    binary = root / "binary"
    binary.mkdir()
    (binary / "Vastfile").write_bytes(bytes(range(256)))
    assert console("check", "binary", cwd=root).returncode == 1


# --- fmt ------------------------------------------------------------------------------------

UNFORMATTED = "deployment svc\nfrom vastai/base:1\ncode app.py\n"


def test_fmt_check_lists_files_that_would_change(svc: Path) -> None:
    (svc / "Vastfile").write_text(UNFORMATTED)
    result = invoke("fmt", "--check", "svc")
    assert result.exit_code == 1 and result.stdout == "would reformat svc/Vastfile\n"
    assert (svc / "Vastfile").read_text() == UNFORMATTED


def test_fmt_rewrites_only_when_bytes_change(svc: Path) -> None:
    vastfile = svc / "Vastfile"
    vastfile.write_text(UNFORMATTED)
    vastfile.chmod(0o640)
    result = invoke("fmt", "svc")
    assert result.exit_code == 0 and result.stdout == "reformatted svc/Vastfile\n"
    assert vastfile.read_text() == CLEAN
    assert stat.S_IMODE(vastfile.stat().st_mode) == 0o640
    assert not [p for p in svc.iterdir() if p.name.endswith(".tmp")]
    before = vastfile.stat()
    result = invoke("fmt", "svc/Vastfile")
    assert result.exit_code == 0 and result.stdout == ""
    after = vastfile.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert invoke("fmt", "--check", "svc").exit_code == 0


def test_fmt_leaves_a_broken_file_alone(svc: Path) -> None:
    vastfile = svc / "Vastfile"
    vastfile.write_text("from img\nENV A=\"open\n")
    result = invoke("fmt", "svc")
    assert result.exit_code == 1
    assert error_lines(result.stderr) == [("svc/Vastfile", 2, 7, "E005")]
    assert vastfile.read_text() == "from img\nENV A=\"open\n"
    vastfile.write_bytes(b"from caf\xe9\n")
    result = invoke("fmt", "svc")
    assert result.exit_code == 1 and error_lines(result.stderr) == [
        ("svc/Vastfile", 1, 9, "E001")]


def test_fmt_missing_path_is_a_usage_error(svc: Path) -> None:
    (svc / "Vastfile").write_text(UNFORMATTED)
    result = invoke("fmt", "nowhere", "svc")
    assert result.exit_code == 2 and "error: nowhere does not exist" in result.stderr
    assert (svc / "Vastfile").read_text() == CLEAN


def test_fmt_console_script(svc: Path) -> None:
    (svc / "Vastfile").write_text(UNFORMATTED)
    assert console("fmt", "--check", "svc", cwd=svc.parent).returncode == 1
    assert console("fmt", "svc", cwd=svc.parent).returncode == 0
    assert console("fmt", "--check", "svc", cwd=svc.parent).returncode == 0


@pytest.mark.parametrize(("flag", "coloured"), [("always", True), ("never", False),
                                                ("auto", False)])
def test_color_option_decides_escapes_off_a_terminal(svc: Path, flag: str,
                                                     coloured: bool) -> None:
    (svc / "Vastfile").write_text(CLEAN + "REQUIRE gpu_rams >= 48\n")
    run = vastbuild("check", "svc", color=flag, console_script=True, env={"NO_COLOR": ""})
    assert run.returncode == 1
    assert "error[E042]" in run.stderr.replace("\x1b[31m", "").replace("\x1b[0m", "")
    assert ("\x1b[" in run.stderr) is coloured
