"""The console script against hostile input and a hostile machine: named pipes where
files belong, a full disk, file names that are not UTF-8, escape sequences in files,
a Ctrl-C halfway. Every run ends with a message that says where and what to do and
the documented exit code, never a traceback, a hang or a half-written file."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from build_helpers import CONSOLE_SCRIPT, write_tree
from build_helpers import vastbuild as run_vastbuild

APP = "from vastai.serverless.remote import Deployment\n\napp = Deployment(name='svc')\n"
VASTFILE = "DEPLOYMENT svc\nFROM img\nCODE app.py\nCOPY data /app/data\n"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A workspace whose Vastfile copies 2 MB that do not compress."""
    root = tmp_path / "ws"
    write_tree(root, {"vastbuild.toml": "", "app.py": APP, "Vastfile": VASTFILE,
                      "data/noise.bin": os.urandom(2 << 20)})
    return root


def vastbuild(*args: str, cwd: Path, limit: int | None = None,
              env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The console script; ``limit`` caps the size of any file it writes (RLIMIT_FSIZE),
    which fails a write the way a full disk does (Python ignores SIGXFSZ)."""
    result = run_vastbuild(*args, cwd=cwd, env=env, console_script=True, timeout=60,
                           file_size_limit=limit, errors="surrogateescape")
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr, \
        result.stderr
    return result


def leftovers(folder: Path) -> list[str]:
    """Temporary files a failed write left behind."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".")) \
        if folder.is_dir() else []


@pytest.mark.parametrize("command", [("check",), ("fmt",), ("hash",), ("build", "-o", "out")])
def test_a_vastfile_that_is_a_named_pipe_is_refused_not_waited_on(tmp_path: Path,
                                                                   command: tuple[str, ...]
                                                                   ) -> None:
    os.mkfifo(tmp_path / "Vastfile")
    result = vastbuild(*command, "Vastfile", cwd=tmp_path)
    assert result.returncode == 2
    assert "Vastfile is not a regular file" in result.stderr and "help:" in result.stderr


def test_a_vastfile_link_that_leads_nowhere_says_so(tmp_path: Path) -> None:
    (tmp_path / "gone").symlink_to("missing")
    (tmp_path / "loop").symlink_to("loop")
    result = vastbuild("check", "gone", "loop", cwd=tmp_path)
    assert result.returncode == 2
    assert "gone is a symbolic link to missing, which does not exist" in result.stderr
    assert "loop is a symbolic link to loop" in result.stderr


def test_code_that_is_a_named_pipe_is_reported_with_its_path(project: Path) -> None:
    (project / "app.py").unlink()
    os.mkfifo(project / "app.py")
    result = vastbuild("check", cwd=project)
    assert result.returncode == 1
    assert "app.py:1:1: error[E033]: app.py is not a regular file" in result.stderr


def test_a_full_disk_under_the_cache_is_an_error_naming_the_folder(project: Path) -> None:
    result = vastbuild("--cache-dir", "cache", "build", "-o", "out", cwd=project,
                       limit=256 << 10)
    assert result.returncode == 1
    assert "cannot use the cache folder cache" in result.stderr
    assert "free some space" in result.stderr
    assert leftovers(project / "out") == []


def test_a_full_disk_under_the_output_leaves_no_half_written_artifact(project: Path) -> None:
    assert vastbuild("--cache-dir", "cache", "build", "-o", "warm", cwd=project).returncode == 0
    result = vastbuild("--cache-dir", "cache", "build", "-o", "out", cwd=project,
                       limit=256 << 10)
    assert result.returncode == 1
    assert "cannot write out/svc.tar" in result.stderr and "-o" in result.stderr
    assert leftovers(project / "out") == [] and not list((project / "out").glob("*.tar.*"))


def test_fmt_on_a_full_disk_leaves_the_file_as_it_was(tmp_path: Path) -> None:
    original = b"deployment svc\nfrom img\ncode app.py\n" + b"# padding\n" * 10
    (tmp_path / "Vastfile").write_bytes(original)
    result = vastbuild("fmt", cwd=tmp_path, limit=len(original) // 2)
    assert result.returncode == 1
    assert "cannot rewrite" in result.stderr and "help:" in result.stderr
    assert (tmp_path / "Vastfile").read_bytes() == original
    assert leftovers(tmp_path) == []


def test_names_that_are_not_utf8_build_hash_and_list(project: Path) -> None:
    folder = project / os.fsdecode(b"d\xe9ploy")
    folder.mkdir()
    (folder / "Vastfile").write_text("DEPLOYMENT svc\nFROM img\nCODE ../app.py\n"
                                     "COPY ../data /app/data\n")
    (project / "data" / os.fsdecode(b"caf\xe9.txt")).write_text("c")
    for command in (("hash",), ("hash", "--json"), ("build", "--json", "-o", "out"),
                    ("graph", "--format", "json"), ("deps", "-o", "x.d", "--target", "x")):
        result = vastbuild("--cache-dir", "cache", *command, folder.name, cwd=project)
        assert result.returncode == 0, (command, result.stderr)


def test_control_characters_from_files_never_reach_the_terminal(project: Path) -> None:
    (project / "Vastfile").write_text("DEPLOYMENT svc\x1b]0;pwned\x07\nFROM img\nCODE app.py\n")
    checked = vastbuild("check", cwd=project)
    assert checked.returncode == 1 and "E002" in checked.stderr
    (project / "Vastfile").write_text(VASTFILE)
    os.mkfifo(project / "data" / "\x1b[2J")  # a file name that clears the screen
    built = vastbuild("--cache-dir", "cache", "hash", cwd=project)
    assert built.returncode == 1 and "is a named pipe" in built.stderr
    for output in (checked.stderr, built.stderr):
        assert "\x1b" not in output and "\x07" not in output


def test_an_api_key_file_saved_with_a_byte_order_mark_gives_the_key(tmp_path: Path) -> None:
    from vastbuild.api import read_api_key

    (tmp_path / "key").write_bytes(b"\xef\xbb\xbfabc123\r\n")
    assert read_api_key(tmp_path / "key") == "abc123"


@pytest.mark.parametrize("point", ["collect", "compress", "assemble"])
def test_ctrl_c_during_a_build_exits_130_and_leaves_nothing_half_written(
        project: Path, point: str) -> None:
    """Interrupted at a known point of a cold build ($VASTBUILD_PAUSE_AT holds the build
    there until the interrupt: while files are hashed, while a chunk is compressed,
    while an artifact is half written), the build says so and exits 130; the output
    folder holds whole files only, and the next build from that cache makes exactly
    the reference bytes."""
    (project / "data" / "more.bin").write_bytes(os.urandom(4 << 20))
    reference = vastbuild("--cache-dir", "ref-cache", "build", "-o", "ref", cwd=project)
    assert reference.returncode == 0
    expected = {p.name: p.read_bytes() for p in (project / "ref").iterdir()}
    out, cache = project / "out", project / "cache"
    process = subprocess.Popen([str(CONSOLE_SCRIPT), "--cache-dir", str(cache), "build",
                                "-o", str(out)], cwd=project, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "VASTBUILD_PAUSE_AT": point})
    cue = (lambda: leftovers(out) != []) if point == "assemble" else \
        (lambda: (cache / "store-v1").is_dir())
    deadline = time.monotonic() + 60
    while not cue() and time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        time.sleep(0.01)
    time.sleep(0.5)  # the cue comes just before the checkpoint: let the build reach it
    assert process.poll() is None, "the build did not wait at its checkpoint"
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130 and stderr.strip() == "interrupted", stderr
    assert leftovers(out) == []
    for artifact in out.iterdir() if out.is_dir() else ():
        assert artifact.read_bytes() == expected[artifact.name]
    again = vastbuild("--cache-dir", str(cache), "build", "-o", str(out), cwd=project)
    assert again.returncode == 0
    assert {p.name: p.read_bytes() for p in out.iterdir()} == expected


@pytest.mark.parametrize("url", ["http://[::1", "http://127.0.0.1:99999", "http://h:port",
                                 "http://" + "a" * 300 + ".com", "http://a..b",
                                 "http://127.0.0.1:1#fragment"])
def test_an_api_url_that_cannot_be_one_is_a_usage_error(project: Path, url: str) -> None:
    for command in ("plan", "deploy"):
        result = vastbuild(command, "--api-url", url, cwd=project,
                           env={"VAST_API_KEY": "k3y-never-used"})
        assert result.returncode == 2 and "--api-url" in result.stderr, result.stderr


@pytest.mark.parametrize("folder", ["/proc/vastbuild-cannot-be-made", "app.py/cache"])
def test_a_cache_folder_that_cannot_be_made_is_a_usage_error_not_a_full_disk(
        project: Path, folder: str) -> None:
    result = vastbuild("--cache-dir", folder, "build", "-o", "out", cwd=project)
    assert result.returncode == 2, result.stderr
    assert "cannot use the cache folder" in result.stderr
    assert "free some space" not in result.stderr and "--cache-dir" in result.stderr


def test_a_folder_named_vastfile_is_called_that(project: Path) -> None:
    (project / "svc2" / "Vastfile").mkdir(parents=True)
    result = vastbuild("check", "svc2/Vastfile", cwd=project)
    assert result.returncode == 2
    assert "svc2/Vastfile is a folder named Vastfile, holding no Vastfile" in result.stderr


def test_quiet_commands_print_nothing_when_they_succeed(project: Path) -> None:
    for command in (("build", "-o", "out"), ("check",), ("fmt",), ("cache", "gc")):
        result = vastbuild("-q", "--cache-dir", "cache", *command, cwd=project)
        assert (result.returncode, result.stdout, result.stderr) == (0, "", ""), command
