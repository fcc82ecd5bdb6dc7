"""The build commands as a user runs them: graph, hash, build, deps, cache."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from build_helpers import members, vastbuild, write_tree

from vastbuild.archive import LEVELS, compressor_version
from vastbuild.depfile import render
from vastbuild.hashing import COMPONENTS

APP = "from vastai.serverless.remote import Deployment\n\napp = Deployment(name='demo')\n"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    write_tree(root, {
        "vastbuild.toml": "",
        "app.py": APP,
        "data/a.txt": "a", "data/b b$.txt": "b",
        "requirements.txt": "numpy==2.0\n",
        "Vastfile": "DEPLOYMENT demo\nFROM vastai/pytorch\nCODE app.py\nPIP -r requirements.txt\n"
                    "COPY data /app/data\nREQUIRE gpu_ram >= 48\nPORT 8080/tcp\n",
    })
    return root


def run(project: Path, *args: str):
    return vastbuild("--cache-dir", str(project.parent / "cache"), *args, cwd=project)


def test_hash_prints_hash_and_path(project: Path) -> None:
    result = run(project, "hash")
    assert result.returncode == 0, result.stderr
    digest, path = result.stdout.strip().split("  ")
    assert len(digest) == 64 and path == "Vastfile"
    again = run(project, "hash", str(project))
    assert again.stdout.split()[0] == digest


def test_hash_json_lists_the_components(project: Path) -> None:
    result = run(project, "hash", "--json")
    (target,) = json.loads(result.stdout)["targets"]
    assert tuple(target["components"]) == COMPONENTS
    assert target["name"] == "demo" and len(target["hash"]) == 64


def test_hash_check_exit_codes(project: Path) -> None:
    digest = run(project, "hash").stdout.split()[0]
    ok = run(project, "hash", "--check", digest.upper())
    assert ok.returncode == 0 and ok.stdout.strip() == "Vastfile: OK"
    bad = run(project, "hash", "--check", "0" * 64)
    assert bad.returncode == 1 and "FAILED" in bad.stdout
    assert run(project, "-q", "hash", "--check", "0" * 64).stdout == ""
    malformed = run(project, "hash", "--check", "abc")
    assert malformed.returncode == 2 and "not a content hash" in malformed.stderr
    assert "Traceback" not in malformed.stderr


def test_build_json_describes_every_target(project: Path) -> None:
    result = run(project, "build", "-o", "dist", "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    (target,) = document["targets"]
    assert set(target) == {"label", "name", "tag", "hash", "artifacts", "sizes",
                           "deployment_config", "cached_steps", "built_steps",
                           "registration_reasons"}
    assert target["artifacts"] == {"gz": "dist/demo.tar.gz", "zst": "dist/demo.tar.zst"}
    config = target["deployment_config"]
    assert config["file_hash"] == target["hash"]
    assert config["file_size"] == (project / "dist" / "demo.tar.gz").stat().st_size
    assert config["search_params"].endswith("gpu_ram>=48")
    assert config["env"].startswith("-p 3000:3000/tcp -p 8080:8080/tcp ")
    assert json.loads((project / "dist" / "demo.deployment.json").read_text()) == config
    assert document["compression"] == {
        fmt: {"level": LEVELS[fmt], "compressor": compressor_version(fmt)} for fmt in ("gz", "zst")}
    gz = document["compression"]["gz"]
    assert gz["level"] == 2 and gz["compressor"].startswith("isal ")  # docs/build.md
    assert "/app/data/b b$.txt" in members(project / "dist" / "demo.tar.gz")
    again = json.loads(run(project, "build", "-o", "dist", "--json").stdout)["targets"][0]
    assert again["built_steps"] == 0 and again["hash"] == target["hash"]


def test_build_format_and_urls(project: Path) -> None:
    result = run(project, "build", "-o", "out", "--format", "zst", "--api-url",
                 "https://api.example", "--json")
    (target,) = json.loads(result.stdout)["targets"]
    assert set(target["artifacts"]) == {"zst"} and not (project / "out" / "demo.tar.gz").exists()
    assert target["deployment_config"] is None  # it describes a .tar.gz, which was not built
    result = run(project, "build", "-o", "out", "--api-url", "https://api.example", "--json")
    (target,) = json.loads(result.stdout)["targets"]
    assert "-e VAST_API_URL=https://api.example" in target["deployment_config"]["env"]


def test_build_text_output(project: Path) -> None:
    result = run(project, "build", "-o", "dist")
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert lines[0].split()[1] == "//" and "dist/demo.tar.gz" in result.stdout
    assert result.stderr == ""  # no progress bar when stderr is not a terminal


def test_graph_in_three_formats(project: Path) -> None:
    text = run(project, "graph")
    assert text.returncode == 0 and "collect:" in text.stdout and "<- " in text.stdout
    dot = run(project, "graph", "--format", "dot").stdout
    assert dot.startswith("digraph vastbuild {") and "->" in dot
    document = json.loads(run(project, "graph", "--format", "json").stdout)
    kinds = {node["kind"] for node in document["nodes"]}
    assert kinds == {"config", "collect", "compress", "assemble"}
    ids = {node["id"] for node in document["nodes"]}
    assert all(e["from"] in ids and e["to"] in ids for e in document["edges"])


def test_deps_lists_every_input(project: Path) -> None:
    result = run(project, "deps", ".", "-o", "demo.d", "--target", "dist/demo.tar.gz")
    assert result.returncode == 0, result.stderr
    text = (project / "demo.d").read_text()
    rule, phony = text.split("\n\n")
    head, *prerequisites = rule.splitlines()
    assert head == "dist/demo.tar.gz: \\"
    listed = {line.strip().removesuffix("\\").strip() for line in prerequisites}
    assert listed == {f"{project}/{name}" for name in (
        "Vastfile", "app.py", "requirements.txt", "data", "data/a.txt", "data/b\\ b$$.txt")}
    assert f"{project}/app.py:" in phony.splitlines()


def test_deps_keeps_names_that_are_not_utf8_as_their_bytes(project: Path) -> None:
    (project / "data" / os.fsdecode(b"caf\xe9.txt")).write_text("c")
    result = run(project, "deps", ".", "-o", "demo.d", "--target", "dist/demo.tar.gz")
    assert result.returncode == 0, result.stderr
    assert f"{project}/data/caf\xe9.txt \\".encode("latin-1") in (project / "demo.d").read_bytes()


def test_deps_needs_a_target(project: Path) -> None:
    result = run(project, "deps", ".", "-o", "demo.d", "--target", "")
    assert result.returncode == 2 and "the make target is empty" in result.stderr
    assert "--target of deps" in result.stderr
    assert not (project / "demo.d").exists()


def test_depfile_escaping() -> None:
    assert render("out.tgz", ["a b", "c$d", "e#f", "a b"]) == (
        "out.tgz: \\\n  a\\ b \\\n  c$$d \\\n  e\\#f\n\na\\ b:\nc$$d:\ne\\#f:\n")


def test_cache_commands(project: Path) -> None:
    run(project, "build", "-o", "dist")
    stats = json.loads(run(project, "cache", "stats", "--json").stdout)
    assert stats["entries"]["compressed chunks"] > 0 and stats["bytes"] > 0
    assert "compressed chunks" in run(project, "cache", "stats").stdout
    assert run(project, "cache", "gc", "--max-size", "10M").returncode == 0
    assert run(project, "cache", "gc", "--max-size", "lots").returncode == 2
    for huge in ("99999999999T", "9" * 400):  # more than SQLite's integers hold
        too_large = run(project, "cache", "gc", "--max-size", huge)
        assert too_large.returncode == 2 and "too large" in too_large.stderr
    assert run(project, "cache", "clear").returncode == 0
    stats = json.loads(run(project, "cache", "stats", "--json").stdout)
    assert sum(stats["entries"].values()) == 0


def test_output_into_the_very_folder_a_copy_reads_is_refused(project: Path) -> None:
    """The artifacts would travel in the next build, which would grow without end."""
    result = run(project, "build", "-o", "data")
    assert result.returncode == 2
    assert "Vastfile:5:1: the output folder data is the folder this reads" in result.stderr
    assert "(-o/--outdir)" in result.stderr
    assert not (project / "data" / "demo.tar.gz").exists()
    cache = vastbuild("--cache-dir", "data", "hash", cwd=project)
    assert cache.returncode == 2 and "the cache folder data is the folder" in cache.stderr
    assert "(--cache-dir, $VASTBUILD_CACHE_DIR or cache_dir in vastbuild.toml)" in cache.stderr


def test_a_missing_path_is_a_usage_error(project: Path) -> None:
    for command in ("hash", "build", "graph"):
        result = run(project, command, "nowhere")
        assert result.returncode == 2 and "nowhere" in result.stderr, command


def test_input_errors_exit_1_without_a_traceback(project: Path) -> None:
    (project / "data" / "escape").symlink_to("/etc/hostname")
    result = run(project, "build", "-o", "dist")
    assert result.returncode == 1
    assert "data/escape is a symbolic link" in result.stderr and "help:" in result.stderr
    assert "Traceback" not in result.stderr


def test_progress_is_silent_off_a_terminal_and_draws_on_one() -> None:
    from types import SimpleNamespace

    from vastbuild.progress import LiveReporter, Reporter, reporter

    assert type(reporter(True)) is Reporter  # pytest's stderr is not a terminal
    assert type(reporter(False)) is Reporter
    live = LiveReporter()
    live._show()  # what the timer does once the build has run for a moment
    step = SimpleNamespace(kind="compress", label="gz ./data")
    live.started(step)
    live.advance(5_000_000)
    live.finished(step, cached=False)
    assert live._progress is not None
    live.close()
    assert live._progress is None
