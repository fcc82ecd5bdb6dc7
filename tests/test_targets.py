"""Naming targets in a workspace: labels, patterns, deployment names, `vastbuild targets`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from build_helpers import vastbuild, write_tree

from vastbuild.api import NoVastfile, list_targets, resolve_targets

VASTFILE = "DEPLOYMENT {name}\nFROM vastai/base\nCODE app.py\n{extra}"
APP = "from vastai.serverless.remote import Deployment\napp = Deployment(name='{name}')\n"


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A workspace (vastbuild.toml) of three targets, one with tag prod, and a hidden
    folder and a virtual environment that patterns do not enter."""
    root = tmp_path / "ws"
    files: dict[str, str] = {"vastbuild.toml": ""}
    for folder, name, extra in (("services/llm", "qwen-chat", ""),
                                ("services/embed", "embeddings", "TAG prod\n"),
                                ("tools/whisper", "whisper-stt", "")):
        files[f"{folder}/Vastfile"] = VASTFILE.format(name=name, extra=extra)
        files[f"{folder}/app.py"] = APP.format(name=name)
    files[".hidden/Vastfile"] = "not even a Vastfile"
    files["services/venv/pyvenv.cfg"] = ""
    files["services/venv/Vastfile"] = "not one either"
    write_tree(root, files)
    return root


def _labels(found: list[Path | object], root: Path) -> list[str]:
    return ["//" + Path(str(p)).resolve().parent.relative_to(root).as_posix() for p in found]


def test_labels_patterns_and_names(workspace: Path) -> None:
    inner = workspace / "services"
    assert _labels(resolve_targets(["//..."], cwd=inner), workspace) == [
        "//services/embed", "//services/llm", "//tools/whisper"]
    assert _labels(resolve_targets(["//services/..."], cwd=workspace), workspace) == [
        "//services/embed", "//services/llm"]
    assert _labels(resolve_targets(["./..."], cwd=inner), workspace) == [
        "//services/embed", "//services/llm"]
    assert _labels(resolve_targets(["//tools/whisper", "llm"], cwd=inner), workspace) == [
        "//tools/whisper", "//services/llm"]
    assert _labels(resolve_targets(["qwen-chat", "embeddings:prod"], cwd=workspace),
                   workspace) == ["//services/llm", "//services/embed"]
    with pytest.raises(NoVastfile, match="embeddings:default does not exist"):
        resolve_targets(["embeddings:default"], cwd=workspace)
    with pytest.raises(NoVastfile, match="3 below it"):
        resolve_targets(["."], cwd=workspace)


def test_a_label_that_names_nothing_suggests_the_labels_it_ends(workspace: Path) -> None:
    with pytest.raises(NoVastfile) as missing:
        resolve_targets(["//llm"], cwd=workspace)
    assert missing.value.hint is not None and "did you mean //services/llm?" in missing.value.hint
    with pytest.raises(NoVastfile) as nothing:
        resolve_targets(["//nowhere"], cwd=workspace)
    assert nothing.value.hint is not None and "vastbuild targets" in nothing.value.hint


def test_targets_lists_the_workspace(workspace: Path) -> None:
    result = vastbuild("targets", "--json", cwd=workspace / "tools")
    assert result.returncode == 0, result.stderr
    listed = json.loads(result.stdout)["targets"]
    assert [(t["label"], t["name"], t["tag"]) for t in listed] == [
        ("//services/embed", "embeddings", "prod"), ("//services/llm", "qwen-chat", "default"),
        ("//tools/whisper", "whisper-stt", "default")]
    text = vastbuild("targets", "//services/...", cwd=workspace).stdout
    assert text.splitlines() == ["//services/embed  embeddings:prod",
                                 "//services/llm    qwen-chat:default"]


def test_every_command_takes_labels(workspace: Path, tmp_path: Path) -> None:
    checked = vastbuild("check", "//...", cwd=workspace / "services")
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.count(": ok") == 3
    hashed = vastbuild("--cache-dir", str(tmp_path / "c"), "hash", "//services/...",
                       "whisper-stt", cwd=workspace)
    assert hashed.returncode == 0 and len(hashed.stdout.splitlines()) == 3, hashed.stderr
    folder = vastbuild("check", ".", cwd=workspace)
    assert folder.returncode == 2
    assert "3 below it" in folder.stderr and "`./...`" in folder.stderr


def test_list_targets_marks_a_vastfile_with_errors(workspace: Path) -> None:
    (workspace / "services/llm/Vastfile").write_text("FROM\n")
    found = {t.label: t.name for t in list_targets(["//..."], cwd=workspace)}
    assert found == {"//services/embed": "embeddings", "//services/llm": None,
                     "//tools/whisper": "whisper-stt"}
