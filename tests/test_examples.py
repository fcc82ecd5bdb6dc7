"""Every example Vastfile of the repository checks clean, and means what it says."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from vastbuild.cli import cli
from vastbuild.loader import check_path, load
from vastbuild.model import SearchTerm

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = sorted(REPO.glob("examples/*/Vastfile")) + [REPO / "Vastfile.example"]


@pytest.mark.parametrize("vastfile", EXAMPLES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_example_checks_clean(vastfile: Path) -> None:
    model, diagnostics = check_path(vastfile)
    assert diagnostics == [] and model is not None


def test_examples_are_the_expected_set() -> None:
    names = {p.parent.name for p in EXAMPLES}
    assert {"llm", "whisper", "imagegen", "embed"} <= names


def test_check_all_examples_in_one_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    paths = [p.relative_to(REPO).as_posix() for p in EXAMPLES]
    result = CliRunner().invoke(cli, ["check", *paths], catch_exceptions=False)
    assert result.exit_code == 0 and result.stderr == ""
    assert result.stdout.splitlines() == [
        f"{path}: ok ({load(REPO / path).name})" for path in paths]


def test_monorepo_example_meaning() -> None:
    examples = REPO / "examples"
    embed = load(examples / "embed")
    assert embed.root == examples and embed.code.kind == "package"
    assert embed.copies[0].src == examples / "lib" and embed.copies[0].dst == "/app/lib"
    assert embed.search[:2] == (SearchTerm("rentable", "eq", True),
                                SearchTerm("rented", "eq", False))
    whisper = load(examples / "whisper" / "Vastfile")
    assert whisper.venv == "" and whisper.ttl == 7200 and whisper.tag == "prod"
    assert whisper.pip_installs == ("faster-whisper==1.0.3", "soundfile>=0.12", "numpy<2")
    imagegen = load(examples / "imagegen")
    assert imagegen.storage == 100 and imagegen.version_label == "v3"
    llm = load(examples / "llm")
    assert ("gpu_name", "in", ("RTX 4090", "RTX 5090", "L40S")) in [
        (t.column, t.op, t.value) for t in llm.search]


def test_vastfile_example_uses_the_repository_as_workspace() -> None:
    model = load(REPO / "Vastfile.example")
    assert model.root == REPO and model.label == "Vastfile.example"
    assert model.name == model.config_name == "qwen-chat"
    assert model.requirements_files[0].path == REPO / "examples" / "whisper" / "requirements.txt"
