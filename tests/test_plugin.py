"""The example plugin (examples/plugins/vastbuild-template), installed as a user installs it.

vastbuild runs as its own process here: entry points and the editable install's
import hook are read when a Python process starts, so a plugin installed by
this test is only visible to processes started after it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from build_helpers import OLD, age
from build_helpers import vastbuild as run_vastbuild

PLUGIN = Path(__file__).resolve().parent.parent / "examples" / "plugins" / "vastbuild-template"

#: vastbuild with the plugin's distribution hidden from the entry point scan: the
#: same installation as seen by someone who never installed the plugin
WITHOUT_PLUGIN = """
import importlib.metadata as metadata
import sys

every_entry_point = metadata.entry_points


def entry_points(**selection):
    return metadata.EntryPoints(
        point for point in every_entry_point(**selection)
        if point.dist is None or point.dist.name != "vastbuild-template")


metadata.entry_points = entry_points
from vastbuild.cli import main

sys.argv[0] = "vastbuild"
main()
"""


@pytest.fixture(scope="module")
def plugin_installed() -> None:
    """Install the plugin into this venv unless it is there (``make`` installs it)."""
    probe = subprocess.run([sys.executable, "-c", "import vastbuild_template.step"],
                           capture_output=True)
    if probe.returncode == 0:
        return
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "-e", str(PLUGIN)],
        capture_output=True, text=True)
    if install.returncode != 0:
        pytest.fail(f"cannot install {PLUGIN}:\n{install.stdout}{install.stderr}")


def vastbuild(*args: str, without_plugin: bool = False) -> subprocess.CompletedProcess[str]:
    program = [sys.executable, "-c", WITHOUT_PLUGIN] if without_plugin else None
    return run_vastbuild(*args, program=program)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "vastbuild.toml").write_text("")
    (ws / "app.py").write_text(
        "from vastai.serverless.remote import Deployment\n\n"
        'app = Deployment(name="templated")\n\n\n'
        "@app.remote\nasync def ping() -> str:\n    return 'pong'\n")
    (ws / "templates").mkdir()
    (ws / "templates" / "settings.ini.in").write_text(
        "[model]\nname = $MODEL\nport = ${PORT}\nprice = $$0.40\n")
    (ws / "templates" / "start.sh.in").write_text("#!/bin/sh\nexec serve --model '$MODEL'\n")
    (ws / "templates" / "start.sh.in").chmod(0o755)
    return ws


def write_vastfile(ws: Path, *template_lines: str) -> Path:
    vastfile = ws / "Vastfile"
    vastfile.write_text(
        "DEPLOYMENT templated\n"
        "FROM vastai/pytorch:@vastai-automatic-tag\n"
        "CODE app.py\n" + "".join(line + "\n" for line in template_lines))
    return vastfile


TEMPLATES = (
    'TEMPLATE templates/settings.ini.in /app/settings.ini MODEL="Qwen/Qwen3 0.6B" PORT=8000',
    "TEMPLATE templates/start.sh.in bin/start.sh MODEL=qwen",
)


def tar_members(path: Path) -> dict[str, tuple[int, bytes]]:
    """Regular files of a tarball: name -> (mode, bytes)."""
    found: dict[str, tuple[int, bytes]] = {}
    with tarfile.open(path, "r:gz") as archive:
        for member in archive.getmembers():
            if member.isfile():
                data = archive.extractfile(member)
                assert data is not None
                found[member.name] = (member.mode, data.read())
    return found


def build(ws: Path, tmp_path: Path) -> dict[str, tuple[int, bytes]]:
    out = tmp_path / "out"
    result = vastbuild("--cache-dir", str(tmp_path / "cache"), "build", str(ws), "-o", str(out))
    assert result.returncode == 0, result.stderr
    return tar_members(out / "templated.tar.gz")


def test_template_renders_into_the_tarball(plugin_installed: None, workspace: Path,
                                           tmp_path: Path) -> None:
    write_vastfile(workspace, *TEMPLATES)
    checked = vastbuild("check", str(workspace / "Vastfile"))
    assert checked.returncode == 0, checked.stderr

    files = build(workspace, tmp_path)
    assert files["/app/settings.ini"] == (
        0o644, b"[model]\nname = Qwen/Qwen3 0.6B\nport = 8000\nprice = $0.40\n")
    assert files["./bin/start.sh"] == (0o755, b"#!/bin/sh\nexec serve --model 'qwen'\n")
    assert "./deployment.py" in files and "./config.json" in files


def test_editing_the_template_or_a_value_renders_again(plugin_installed: None,
                                                       workspace: Path, tmp_path: Path) -> None:
    write_vastfile(workspace, *TEMPLATES)
    build(workspace, tmp_path)
    (workspace / "templates" / "settings.ini.in").write_text("name = $MODEL\nport = $PORT\n")
    assert build(workspace, tmp_path)["/app/settings.ini"][1] == \
        b"name = Qwen/Qwen3 0.6B\nport = 8000\n"
    write_vastfile(workspace, TEMPLATES[0].replace("PORT=8000", "PORT=9000"), TEMPLATES[1])
    assert build(workspace, tmp_path)["/app/settings.ini"][1] == \
        b"name = Qwen/Qwen3 0.6B\nport = 9000\n"


def test_template_mistakes_are_diagnostics(plugin_installed: None, workspace: Path) -> None:
    vastfile = write_vastfile(
        workspace,
        "TEMPLATE templates/settings.ini.in /app/settings.ini MODEL=qwen",
        "TEMPLATE templates/start.sh.in ../start.sh MODEL=qwen",
        "TEMPLATE templates/missing.in x.ini")
    result = vastbuild("check", str(vastfile))
    assert result.returncode == 1
    assert f"{vastfile}:4:1: error[TPL007]: `templates/settings.ini.in` needs a value for $PORT" \
        in result.stderr
    assert "add PORT=... to this line" in result.stderr
    assert f"{vastfile}:5:32: error[TPL002]: `../start.sh` must not contain `..`" in result.stderr
    assert f"{vastfile}:6:10: error[E027]" in result.stderr
    assert "Traceback" not in result.stderr


def test_without_the_plugin_template_is_an_unknown_directive(plugin_installed: None,
                                                             workspace: Path) -> None:
    vastfile = write_vastfile(workspace, TEMPLATES[0])
    result = vastbuild("check", str(vastfile), without_plugin=True)
    assert result.returncode == 1
    assert f"{vastfile}:4:1: error[E022]: unknown directive `TEMPLATE`" in result.stderr
    assert "Traceback" not in result.stderr


def test_explain_names_the_template_a_plugin_step_reads(plugin_installed: None,
                                                       workspace: Path, tmp_path: Path) -> None:
    """A plugin's step that ran because a file it declares (``input_files``) changed is
    explained by that file, as a built-in step is by its tree's."""
    write_vastfile(workspace, *TEMPLATES)
    age(workspace)
    build(workspace, tmp_path)
    template = workspace / "templates" / "settings.ini.in"
    template.write_text("name = $MODEL\nport = $PORT\n")
    os.utime(template, (OLD + 60, OLD + 60))
    done = vastbuild("--cache-dir", str(tmp_path / "cache"), "build", "--explain", "--json",
                     str(workspace), "-o", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    reasons = {(r["kind"], r["path"]) for step in json.loads(done.stdout)["steps"]
               for r in step["reasons"]}
    assert reasons == {("changed", str(template))}
