"""A monorepo: many targets sharing folders, built as one graph."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from build_helpers import vastbuild, write_tree

SHARED = ("lib/common", "lib/models", "assets")


def monorepo(root: Path, targets: int = 20) -> Path:
    """``targets`` deployments under services/, each copying two or three of three
    shared folders to the same place, with its own CODE."""
    files: dict[str, bytes | str] = {"vastbuild.toml": ""}
    for i, folder in enumerate(SHARED):
        for j in range(12):
            files[f"{folder}/f{j:02d}.py"] = f"# {folder} {j}\n" + "x = 1\n" * (200 * j + i)
    for t in range(targets):
        name = f"svc-{t:02d}"
        copies = [f"COPY ../../{folder} /app/{folder}" for k, folder in enumerate(SHARED)
                  if (t + k) % 3 != 2 or k == 0]
        files[f"services/{name}/Vastfile"] = "\n".join(
            [f"DEPLOYMENT {name}", "FROM vastai/base", "CODE app.py", *copies]) + "\n"
        files[f"services/{name}/app.py"] = (
            "from vastai.serverless.remote import Deployment\n"
            f"app = Deployment(name='{name}')\n")
    write_tree(root, files)
    os.utime(root, (1_600_000_000, 1_600_000_000))
    return root


def test_twenty_targets_share_their_folders_steps(tmp_path: Path) -> None:
    root = monorepo(tmp_path / "ws")
    listed = vastbuild("targets", "//...", "--json", cwd=root)
    assert len(json.loads(listed.stdout)["targets"]) == 20, listed.stderr
    args = ("--cache-dir", str(tmp_path / "cache"), "build", "//...", "-o",
            str(tmp_path / "out"), "--json")
    first = vastbuild(*args, cwd=root)
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert len(report["targets"]) == 20
    steps = report["steps"]
    shared = [s for s in steps if s["shared"]]
    # each shared folder is collected once and compressed once per format, for all
    collects = [s for s in shared if s["kind"] == "collect"]
    assert sorted(s["label"] for s in collects) == sorted(
        f"copy /app/{folder}" for folder in SHARED)
    assert all(s["ran"] for s in shared)
    assert len({s["id"] for s in steps}) == len(steps)  # each step listed once
    assert max(len(s["targets"]) for s in collects) > 10
    second = vastbuild(*args, cwd=root)
    assert second.returncode == 0, second.stderr
    assert sum(t["built_steps"] for t in json.loads(second.stdout)["targets"]) == 0


def git(root: Path, *args: str) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    subprocess.run(["git", "-C", str(root), *args], check=True, env=env,
                   capture_output=True)


def copying(folder: str, targets: int = 20) -> list[str]:
    """The labels of the targets of :func:`monorepo` that copy ``folder``."""
    k = SHARED.index(folder)
    return [f"//services/svc-{t:02d}" for t in range(targets) if (t + k) % 3 != 2 or k == 0]


def affected(root: Path, *args: str) -> list[str]:
    done = vastbuild("affected", "--since", "HEAD", *args, cwd=root)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_affected_names_exactly_the_targets_that_read_a_changed_file(tmp_path: Path) -> None:
    root = monorepo(tmp_path / "ws")
    write_tree(root, {"lib/models/.vastignore": "*.tmp\n", ".gitignore": "/out/\n"})
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "start")
    assert affected(root) == []
    # a file git does not track yet but .vastignore leaves out: nobody reads it
    (root / "lib/models/scratch.tmp").write_text("notes\n")
    assert affected(root) == []
    # an edit of one shared file: exactly the targets that copy its folder
    (root / "lib/models/f03.py").write_text("x = 2\n")
    assert affected(root) == copying("lib/models") != []
    assert len(copying("lib/models")) < 20
    report = json.loads(vastbuild("affected", "--since", "HEAD", "--json", cwd=root).stdout)
    assert {tuple(t["changed"]) for t in report["targets"]} == {("lib/models/f03.py",)}
    # a pattern narrows the question; a service's own file is its own
    (root / "services/svc-01/app.py").write_text("# changed\n")
    assert "//services/svc-01" not in copying("lib/models")
    assert affected(root, "//services/svc-01", "//services/svc-04") == ["//services/svc-01"]
    git(root, "checkout", "-q", "--", "services")
    # a deleted file: the targets whose trees listed it
    git(root, "checkout", "-q", "--", "lib")
    (root / "assets/f05.py").unlink()
    assert affected(root) == copying("assets")
    assert copying("assets") != copying("lib/models") and len(copying("assets")) < 20


def test_build_affected_since_rebuilds_only_those(tmp_path: Path) -> None:
    root = monorepo(tmp_path / "ws", targets=6)
    (root / ".gitignore").write_text("/out/\n")
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "start")
    args = ("--cache-dir", str(tmp_path / "cache"), "build", "-o", str(root / "out"), "--json")
    assert vastbuild(*args, "//...", cwd=root).returncode == 0
    nothing = vastbuild(*args, "--affected-since", "HEAD", cwd=root)
    assert nothing.returncode == 0, nothing.stderr
    assert json.loads(nothing.stdout)["targets"] == []
    (root / "lib/models/f03.py").write_text("x = 2\n")
    some = vastbuild(*args, "--affected-since", "HEAD", cwd=root)
    assert some.returncode == 0, some.stderr
    built = json.loads(some.stdout)["targets"]
    assert [t["label"] for t in built] == copying("lib/models", 6)
    assert all(t["built_steps"] > 0 for t in built)


def test_affected_outside_git_says_what_to_do(tmp_path: Path) -> None:
    root = monorepo(tmp_path / "ws", targets=1)
    done = vastbuild("affected", "--since", "HEAD", cwd=root)
    assert done.returncode == 1
    assert "error: git rev-parse failed" in done.stderr and "git work tree" in done.stderr
    git(root, "init", "-q")
    done = vastbuild("affected", "--since", "no-such-branch", cwd=root)
    assert done.returncode == 1
    assert "'no-such-branch' is not a commit" in done.stderr, done.stderr


def test_build_writes_a_depfile_per_target_in_the_same_call(tmp_path: Path) -> None:
    root = monorepo(tmp_path / "ws", targets=3)
    args = ("--cache-dir", str(tmp_path / "cache"), "build", "//...", "-o", "out")
    one = vastbuild(*args, "--depfile", "deps.d", cwd=root)
    assert one.returncode == 2
    assert "3 targets would write one depfile deps.d" in one.stderr
    assert "{name}" in one.stderr and "--depfile" in one.stderr
    assert not (root / "out").exists()  # refused before building anything
    done = vastbuild(*args, "--depfile", "deps/{name}.d", cwd=root)
    assert done.returncode == 0, done.stderr
    for t in range(3):
        text = (root / f"deps/svc-{t:02d}.d").read_text()
        assert text.startswith(f"out/svc-{t:02d}.tar.gz: \\\n")
        assert f"{root}/services/svc-{t:02d}/app.py \\\n" in text
        assert f"{root}/lib/common/f00.py" in text


def test_graph_draws_the_merged_graph_with_shared_and_cached_steps(tmp_path: Path) -> None:
    root = monorepo(tmp_path / "ws", targets=6)
    cache = ("--cache-dir", str(tmp_path / "cache"))

    def nodes() -> list[dict[str, object]]:
        done = vastbuild(*cache, "graph", "//...", "--format", "json", cwd=root)
        assert done.returncode == 0, done.stderr
        found: list[dict[str, object]] = json.loads(done.stdout)["nodes"]
        return found

    before = nodes()
    assert not any(n["cached"] for n in before if n["kind"] != "config")
    shared = {n["label"] for n in before if n["shared"] and n["kind"] == "collect"}
    assert shared == {f"copy /app/{folder}" for folder in SHARED}
    assert vastbuild(*cache, "build", "//...", cwd=root).returncode == 0  # into dist, as graph
    assert all(n["cached"] for n in nodes())
    (root / "lib/models/f03.py").write_text("x = 2\n")
    stale = {n["label"] for n in nodes() if not n["cached"] and n["kind"] == "collect"}
    assert stale == {"copy /app/lib/models"}
    text = vastbuild(*cache, "graph", "//...", cwd=root).stdout
    assert "copy /app/lib/common  [shared by 6 targets, cached]" in text
    dot = vastbuild(*cache, "graph", "//...", "--format", "dot", cwd=root).stdout
    assert dot.startswith("digraph vastbuild {") and "penwidth=2" in dot
    svg = vastbuild(*cache, "graph", "//...", "--format", "svg", "-o", "g.svg", cwd=root)
    assert svg.returncode == 0, svg.stderr
    assert b"<svg" in (root / "g.svg").read_bytes()
    png = vastbuild(*cache, "graph", "//...", "--format", "png", cwd=root)
    assert png.returncode == 2 and "-o FILE.png" in png.stderr
    png = vastbuild(*cache, "graph", "//...", "--format", "png", "-o", "g.png", cwd=root)
    assert png.returncode == 0 and (root / "g.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_hash_check_takes_a_file_of_sums_for_many_targets(tmp_path: Path) -> None:
    root = monorepo(tmp_path / "ws", targets=4)
    cache = ("--cache-dir", str(tmp_path / "cache"))
    sums = vastbuild(*cache, "hash", "//...", cwd=root)
    assert sums.returncode == 0 and len(sums.stdout.splitlines()) == 4
    (root / "SUMS").write_text(sums.stdout)
    ok = vastbuild(*cache, "hash", "--check", "SUMS", cwd=root)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.count(": OK") == 4
    (root / "lib/common/f00.py").write_text("changed = True\n")
    failed = vastbuild(*cache, "hash", "--check", "-", cwd=root, stdin=sums.stdout)
    assert failed.returncode == 1 and failed.stdout.count(": FAILED") == 4
    assert "4 of 4 computed hashes did not match" in failed.stderr
    (root / "BAD").write_text("nothash  services/svc-00\n")
    bad = vastbuild(*cache, "hash", "--check", "BAD", cwd=root)
    assert bad.returncode == 2 and "BAD:1: not `HASH  TARGET`" in bad.stderr
