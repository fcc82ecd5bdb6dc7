"""``build --explain`` and ``build -v``: why each step ran, compared with the last build."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from build_helpers import OLD, age, vastbuild, write_tree

from vastbuild import api
from vastbuild.results import BuildResult, Reason

APP = "def handler(x):\n    return x\n"
VASTFILE = ("DEPLOYMENT demo\nFROM vastai/pytorch\nCODE app.py\nPIP -r requirements.txt\n"
            "ENV MODE=fast\nCOPY data /app/data\nREQUIRE gpu_ram >= 48\n")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    write_tree(root, {"vastbuild.toml": "", "Vastfile": VASTFILE, "app.py": APP,
                      "requirements.txt": "numpy==2.0\n",
                      "data/a.txt": "a" * 3000, "data/b.bin": bytes(range(256)) * 40})
    return root


def build(project: Path) -> BuildResult:
    (result,) = api.build([str(project)], cache_dir=project.parent / "cache",
                          outdir=project.parent / "out", explain=True)
    return result


def reasons(result: BuildResult) -> dict[str, tuple[Reason, ...]]:
    """Label -> reasons, for the steps that ran."""
    return {step.label: step.reasons for step in result.steps if step.ran}


def edit(path: Path, text: str) -> None:
    """Write ``text`` and date it in the past, as an edit made a while before the build
    (a file changed within the last moments is read again anyway, racy)."""
    path.write_text(text)
    os.utime(path, (OLD + 3600, OLD + 3600))


def test_the_first_build_says_none_is_recorded(project: Path) -> None:
    ran = reasons(build(project))
    assert ran and all(why == (Reason("no-record"),) for why in ran.values())


def test_editing_one_file_names_that_file_and_nothing_else(project: Path) -> None:
    build(project)
    edit(project / "app.py", APP + "# tuned\n")
    ran = reasons(build(project))
    app = str(project / "app.py")
    assert ran, "the edit made nothing run"
    assert {why for found in ran.values() for why in found} == {Reason("changed", app)}
    # the steps of the code tree and the artifacts ran; the COPY's and config's did not
    assert any(label.startswith("code ") for label in ran)
    assert not any("copy" in label or "config" in label for label in ran)


def test_the_text_output_names_the_edited_file(project: Path) -> None:
    cache = str(project.parent / "cache")
    assert vastbuild("--cache-dir", cache, "build", "-o", "../out", cwd=project).returncode == 0
    edit(project / "data" / "a.txt", "b" * 3000)
    done = vastbuild("--cache-dir", cache, "build", "--explain", "-o", "../out", cwd=project)
    assert done.returncode == 0, done.stderr
    explained = [line.strip() for line in done.stdout.splitlines() if line.startswith(" " * 16)]
    assert explained and set(explained) == {"data/a.txt changed"}
    again = vastbuild("--cache-dir", cache, "build", "--explain", "--json", "-o", "../out",
                      cwd=project)
    steps = json.loads(again.stdout)["steps"]
    assert steps and not any(step["ran"] for step in steps)
    assert "nothing ran" in vastbuild("--cache-dir", cache, "build", "--explain", "-o",
                                      "../out", cwd=project).stdout


def test_a_vastfile_line_is_named_with_its_text(project: Path) -> None:
    build(project)
    edit(project / "Vastfile", VASTFILE.replace("MODE=fast", "MODE=slow"))
    ran = reasons(build(project))
    vastfile = str(project / "Vastfile")
    assert ran["./config.json"] == (Reason("line", vastfile, 5, "ENV MODE=slow"),)
    assert {why for found in ran.values() for why in found} == {
        Reason("line", vastfile, 5, "ENV MODE=slow")}


def test_touched_added_and_removed_files(project: Path) -> None:
    build(project)
    (project / "data" / "b.bin").unlink()
    (project / "data" / "c.txt").write_text("c")
    age(project, OLD + 7200)  # touches a.txt too: same content, new stat
    found = {why for whys in reasons(build(project)).values() for why in whys}
    data = project / "data"
    assert found == {Reason("removed", str(data / "b.bin")), Reason("added", str(data / "c.txt")),
                     Reason("touched", str(data / "a.txt")),
                     Reason("touched", str(project / "app.py")),
                     Reason("touched", str(project / "requirements.txt"))}


def test_a_new_compressor_is_named(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    build(project)
    import vastbuild.explain
    import vastbuild.steps.compress

    def newer(fmt: str) -> str:
        return f"{fmt} compressor 99"
    monkeypatch.setattr(vastbuild.steps.compress, "compressor_version", newer)
    monkeypatch.setattr(vastbuild.explain, "compressor_version", newer)
    ran = reasons(build(project))
    compress = {label: why for label, why in ran.items()
                if label.startswith(("gz ", "zst "))}
    assert compress and all(
        len(why) == 1 and why[0].kind == "compressor" and why[0].detail.endswith("compressor 99")
        for why in compress.values())


def test_a_missing_cache_entry_is_named(project: Path) -> None:
    build(project)
    shutil.rmtree(project.parent / "cache" / "blobs-v1")
    ran = reasons(build(project))
    assert ran and {why for found in ran.values() for why in found} == {Reason("cache-miss")}


def test_verbose_lists_every_step_with_its_time(project: Path) -> None:
    cache = str(project.parent / "cache")
    first = vastbuild("--cache-dir", cache, "-v", "build", "-o", "../out", cwd=project)
    lines = [line for line in first.stdout.splitlines() if " s  " in line]
    assert lines and all(line.split()[0] == "ran" for line in lines)
    second = vastbuild("--cache-dir", cache, "-v", "build", "-o", "../out", cwd=project)
    assert "nothing planned: the last build's record holds" in second.stdout


def test_a_change_only_the_registration_sees_is_named(project: Path) -> None:
    """AUTOSCALE and REQUIRE reach the registration body, which no step writes: the
    result says which line changed it and which of its fields changed."""
    build(project)
    edit(project / "Vastfile", VASTFILE + "AUTOSCALE max_workers=6\n")
    result = build(project)
    vastfile = str(project / "Vastfile")
    assert result.registration_reasons == (
        Reason("line", vastfile, 8, "AUTOSCALE max_workers=6"),
        Reason("registration", detail="max_workers"))
    assert not any(step.ran for step in result.steps)
