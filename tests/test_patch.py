"""Patched builds: when only the contents of tree files changed since the last build,
the build is worked out from the last one's state (no parsing, no planning) -- and
gives exactly the bytes a full build from an empty cache gives."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from build_helpers import CONSOLE_SCRIPT, vastbuild, write_tree
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from vastbuild import builder
from vastbuild.api import build, hash_targets

VASTFILE = ("DEPLOYMENT demo\nFROM vastai/base\nCODE src\nCOPY data /app/data\n"
            "COPY data/models /models\n")


def _project(root: Path) -> Path:
    files: dict[str, bytes | str] = {
        "Vastfile": VASTFILE,
        "src/__init__.py": "from vastai.serverless.remote import Deployment\n"
                           "app = Deployment(name='demo')\n",
        "src/app.py": "print('serving')\n",
        "src/util.py": "X = 1  # !VAST_IGNORE_CHANGES\nY = 2\n",
    }
    for i in range(60):
        files[f"data/d{i % 7}/f{i:03d}.txt"] = f"line {i}\n" * (50 * i + 1)
        files[f"data/models/m{i:03d}.bin"] = os.urandom(3000 + 997 * i)
    write_tree(root, files)
    return root


def _outputs(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _fresh(project: Path, where: Path) -> tuple[dict[str, bytes], str]:
    """What a full build from an empty cache gives: the outputs and the content hash."""
    shutil.rmtree(where, ignore_errors=True)
    (result,) = build([project], cache_dir=where / "cache", outdir=where / "out")
    return _outputs(where / "out"), result.hash


@contextmanager
def patched_only() -> Iterator[None]:
    """Fail if a build or a hash plans a graph: the patched path must answer."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(builder, "build_targets", _refuse)
        patch.setattr(builder, "hash_targets", _refuse)
        yield


def _refuse(*args: object, **kwargs: object) -> object:
    raise AssertionError("the full build ran")


EDIT = st.tuples(
    st.sampled_from(["src/app.py", "src/util.py", "data/d3/f010.txt", "data/d0/f000.txt",
                     "data/models/m005.bin", "data/models/m059.bin", "data/d6/f055.txt"]),
    st.sampled_from(["append", "shrink", "same size", "grow a lot", "executable",
                     "ignored line"]))


def _edit(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "append":
        path.write_bytes(data + b"# one more line\n")
    elif how == "shrink":
        path.write_bytes(data[: len(data) // 2])
    elif how == "same size":
        path.write_bytes(bytes(reversed(data)))
    elif how == "grow a lot":
        path.write_bytes(data + os.urandom(5 << 20))
    elif how == "executable":
        path.chmod(0o755)
    else:  # a line the content hash does not see, in CODE only
        path.write_bytes(data + b"Z = 3  # !VAST_IGNORE_CHANGES\n")


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rounds=st.lists(st.lists(EDIT, min_size=1, max_size=3), min_size=1, max_size=2))
@example(rounds=[[("data/models/m005.bin", "grow a lot")], [("data/models/m005.bin", "shrink")]])
@example(rounds=[[("src/util.py", "ignored line"), ("data/d0/f000.txt", "executable")]])
def test_a_patched_build_makes_the_bytes_a_full_build_makes(
        tmp_path_factory: pytest.TempPathFactory, rounds: list[list[tuple[str, str]]]) -> None:
    work = tmp_path_factory.mktemp("patch")
    project = _project(work / "project")
    cache, out = work / "cache", work / "out"
    build([project], cache_dir=cache, outdir=out)
    for edits in rounds:
        for rel, how in edits:
            _edit(project / rel, how)
        with patched_only():
            (patched,) = build([project], cache_dir=cache, outdir=out)
            (hashed,) = hash_targets([project], cache_dir=cache)
        expected, digest = _fresh(project, work / "fresh")
        assert _outputs(out) == expected
        assert patched.hash == hashed.hash == digest
        assert patched.sizes["gz"] == len(expected["demo.tar.gz"])


def test_a_hash_after_an_edit_is_patched_too(tmp_path: Path) -> None:
    project = _project(tmp_path / "project")
    vastbuild_args = ("--cache-dir", str(tmp_path / "cache"))
    assert vastbuild(*vastbuild_args, "hash", str(project)).returncode == 0  # full, recorded
    _edit(project / "data/d3/f010.txt", "append")
    with patched_only():
        (patched,) = hash_targets([project], cache_dir=tmp_path / "cache")
    assert patched.hash == _fresh(project, tmp_path / "fresh")[1]


@pytest.mark.parametrize("change", ["add a file", "remove a file", "a file becomes a link",
                                    "edit the Vastfile", "tamper with the artifact",
                                    "lose the blobs", "lose the state"])
def test_what_a_patch_cannot_answer_takes_the_full_build(tmp_path: Path, change: str) -> None:
    project = _project(tmp_path / "project")
    cache, out = tmp_path / "cache", tmp_path / "out"
    build([project], cache_dir=cache, outdir=out)
    _edit(project / "data/d3/f010.txt", "append")  # and a change a patch could answer
    if change == "add a file":
        (project / "data/d3/new.txt").write_text("new\n")
    elif change == "remove a file":
        (project / "data/d4/f004.txt").unlink()
    elif change == "a file becomes a link":
        (project / "data/d4/f004.txt").unlink()
        (project / "data/d4/f004.txt").symlink_to("f011.txt")
    elif change == "edit the Vastfile":
        (project / "Vastfile").write_text(VASTFILE + "ENV A=1\n")
    elif change == "tamper with the artifact":
        (out / "demo.tar.gz").write_bytes(b"tampered")
    elif change == "lose the blobs":
        shutil.rmtree(cache / "blobs-v1")
    else:
        for state in (cache / "uptodate-v2").glob("*.state"):
            state.unlink()
    (result,) = build([project], cache_dir=cache, outdir=out)
    expected, digest = _fresh(project, tmp_path / "fresh")
    assert _outputs(out) == expected and result.hash == digest


def test_a_patched_build_leaves_an_unchanged_artifact_alone(tmp_path: Path) -> None:
    """An edit the archive does not see (a file's mtime alone) writes nothing."""
    project = _project(tmp_path / "project")
    cache, out = tmp_path / "cache", tmp_path / "out"
    build([project], cache_dir=cache, outdir=out)
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    os.utime(project / "data/d3/f010.txt")
    with patched_only():
        build([project], cache_dir=cache, outdir=out)
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before


@pytest.mark.parametrize("point", ["compress", "assemble"])
def test_ctrl_c_during_a_patched_build_leaves_whole_files(tmp_path: Path, point: str) -> None:
    project = _project(tmp_path / "project")
    cache, out = tmp_path / "cache", tmp_path / "out"
    build([project], cache_dir=cache, outdir=out)
    _edit(project / "data/models/m005.bin", "grow a lot")
    expected, _ = _fresh(project, tmp_path / "fresh")
    process = subprocess.Popen([str(CONSOLE_SCRIPT), "--cache-dir", str(cache), "build",
                                str(project), "-o", str(out)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "VASTBUILD_PAUSE_AT": point})
    # the cue: the blob being written (compress), the artifact being written (assemble)
    cue = (lambda: any(cache.glob("blobs-v1/*/.*"))) if point == "compress" else \
        (lambda: any(p.name.startswith(".") for p in out.iterdir()))
    deadline = time.monotonic() + 60
    while not cue() and time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        time.sleep(0.01)
    time.sleep(0.5)  # the cue comes just before the checkpoint: let the build reach it
    assert process.poll() is None, "the build did not wait at its checkpoint"
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130 and stderr.strip() == "interrupted", stderr
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []
    again = vastbuild("--cache-dir", str(cache), "build", str(project), "-o", str(out))
    assert again.returncode == 0, again.stderr
    assert _outputs(out) == expected
