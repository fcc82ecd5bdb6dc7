"""Every example Vastfile of the repository checks clean, and means what it says."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from vastbuild.api import check, hash_targets, load
from vastbuild.cli import cli
from vastbuild.model import SearchTerm

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = sorted(REPO.glob("examples/*/Vastfile")) + [REPO / "Vastfile.example"]


@pytest.mark.parametrize("vastfile", EXAMPLES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_example_checks_clean(vastfile: Path) -> None:
    report = check(vastfile)
    assert report.diagnostics == () and report.model is not None


#: The content hash of every example. The hash's definition is versioned
#: (vastbuild.hashing.CONTENT_TAG, vastbuild.archive.CHUNK_TAG): a change that moves
#: these must bump a tag, and change them here in the same commit, saying why.
#: v2 (content hash v2): chunks are cut by name hash weighted by size, to about 4 MB.
GOLDEN_HASHES = {
    "examples/llm/Vastfile": "64046306b550f0c696e5a62bad58dc691700924416d6643e791fe7aedf09d45a",
    "examples/embed/Vastfile": "eb4b01631873f2b2cffd079c3cb69359583b7f0fc81dc21707f9d0cbc987f98d",
    "examples/imagegen/Vastfile":
        "e2fa16c50601720c415b8f5b85edbd71d6e52cb0c2aa27692dc4104128187f48",
    "examples/whisper/Vastfile":
        "03b99bcd5e801a80b813ebe88f072cd1a6c584de2e0ba9882160659b76dbbbb3",
    "Vastfile.example": "192461434a0ef5bddef5294c97ee4be665033ae5f606b980b13846c68d14abbb",
}


def test_example_hashes_are_pinned(tmp_path: Path) -> None:
    results = hash_targets([REPO / name for name in GOLDEN_HASHES], cache_dir=tmp_path)
    assert {r.vastfile.relative_to(REPO).as_posix(): r.hash for r in results} == GOLDEN_HASHES


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
    assert model.root == REPO and model.label == "//"
    assert model.name == model.config_name == "qwen-chat"
    assert model.requirements_files[0].path == REPO / "examples" / "whisper" / "requirements.txt"
