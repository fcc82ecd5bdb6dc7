"""``vastbuild init``: every template checks clean, builds and deploys to a real dev
server as written; existing files are never touched; the wheel carries the
templates. The CLI runs in its own process, as a user runs it."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from build_helpers import vastbuild
from conftest import RunningDevServer

from vastbuild.api import InvalidArgument, format_file, init
from vastbuild.scaffold import TEMPLATES, TEMPLATES_DIR, default_name

ROOT = Path(__file__).resolve().parent.parent


def _env(tmp_path: Path, server: RunningDevServer | None = None) -> dict[str, str | None]:
    """A private cache, and the dev server's first key when there is a server."""
    env: dict[str, str | None] = {"VASTBUILD_CACHE_DIR": str(tmp_path / "cache"),
                                  "VAST_API_URL": None, "VAST_API_KEY": None}
    if server is not None:
        env["VAST_API_KEY"] = server.keys[0]
    return env


def _snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file below ``folder``: its bytes and modification time (ns)."""
    return {path.relative_to(folder).as_posix(): (path.read_bytes(), path.stat().st_mtime_ns)
            for path in sorted(folder.rglob("*")) if path.is_file()}


@pytest.mark.parametrize("template", TEMPLATES)
def test_a_template_checks_clean_builds_and_deploys(
        template: str, tmp_path: Path, dev_server_module: RunningDevServer) -> None:
    folder = tmp_path / f"New {template}"
    scaffold = init(folder, template=template)  # the CLI's own run is tested below
    name = f"new-{template}"  # the folder's name, made valid
    assert (scaffold.name, scaffold.files) == (name, (folder / "Vastfile", folder / "app.py"))
    assert not format_file(folder, write=False)  # already in the canonical layout

    env = _env(tmp_path, dev_server_module)
    checked = vastbuild("-q", "check", cwd=folder, env=env)
    assert (checked.returncode, checked.stdout, checked.stderr) == (0, "", "")
    built = vastbuild("build", "-o", "out", cwd=folder, env=env)
    assert built.returncode == 0, built.stderr
    assert (folder / "out" / f"{name}.tar.gz").is_file()
    url = dev_server_module.url
    deployed = vastbuild("deploy", "--api-url", url, "--autoscaler-url", url, cwd=folder,
                         env=env)
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    assert f"{name}:default  Tier 4 created" in deployed.stdout


def test_init_says_what_it_wrote_and_what_to_run_next(tmp_path: Path) -> None:
    result = vastbuild("init", "New svc", cwd=tmp_path, env=_env(tmp_path))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:3] == ["wrote New svc/Vastfile", "wrote New svc/app.py",
                         "deployment new-svc (blank); next:"]
    assert lines[3:6] == ["  cd 'New svc'", "  vastbuild check", "  vastbuild build -o out"]
    assert "vastbuild dev-server" in lines[6] and "--autoscaler-url" in lines[7]


def test_init_twice_exits_2_and_changes_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "svc"
    first = vastbuild("init", "svc", "-t", "llm", cwd=tmp_path, env=_env(tmp_path))
    assert first.returncode == 0, first.stderr
    before = _snapshot(folder)
    again = vastbuild("init", "svc", "-t", "embed", cwd=tmp_path, env=_env(tmp_path))
    assert again.returncode == 2
    assert "svc/Vastfile" in again.stderr and "svc/app.py" in again.stderr
    assert _snapshot(folder) == before


def test_one_existing_file_keeps_the_other_from_being_written(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("print('mine')\n")
    before = _snapshot(tmp_path)
    result = vastbuild("init", cwd=tmp_path, env=_env(tmp_path))
    assert result.returncode == 2
    assert "app.py already exists" in result.stderr and "Vastfile" not in result.stderr
    assert _snapshot(tmp_path) == before


def test_an_unknown_template_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    result = vastbuild("init", "svc", "--template", "video", cwd=tmp_path, env=_env(tmp_path))
    assert result.returncode == 2 and "video" in result.stderr
    assert not (tmp_path / "svc").exists()
    with pytest.raises(InvalidArgument, match="no template `video`"):
        init(tmp_path / "svc", template="video")
    assert not (tmp_path / "svc").exists()


def test_the_name_flows_into_both_files(tmp_path: Path) -> None:
    result = vastbuild("-q", "init", "folder", "-t", "speech", "--name", "stt.v2",
                       cwd=tmp_path, env=_env(tmp_path))
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    folder = tmp_path / "folder"
    assert "\nDEPLOYMENT stt.v2\n" in (folder / "Vastfile").read_text()
    assert 'Deployment(name="stt.v2")' in (folder / "app.py").read_text()
    checked = vastbuild("check", cwd=folder, env=_env(tmp_path))
    assert (checked.returncode, checked.stdout) == (0, "Vastfile: ok (stt.v2)\n")


def test_a_name_that_cannot_be_written_exits_2(tmp_path: Path) -> None:
    result = vastbuild("init", "svc", "--name", "has space", cwd=tmp_path, env=_env(tmp_path))
    assert result.returncode == 2 and "cannot name a deployment" in result.stderr
    for bad in ('quote"d', "-dash", "x" * 64, "", "a/b"):
        with pytest.raises(InvalidArgument, match="cannot name a deployment"):
            init(tmp_path / "svc", name=bad)
    assert not (tmp_path / "svc").exists()


@pytest.mark.parametrize(("folder", "name"), [
    ("My Model", "my-model"), ("svc_2", "svc-2"), ("---", "app"), ("Ünï", "n")])
def test_the_default_name_is_the_folder_made_valid(folder: str, name: str,
                                                    tmp_path: Path) -> None:
    assert default_name(tmp_path / folder) == name


def test_every_template_folder_is_offered() -> None:
    assert sorted(p.name for p in TEMPLATES_DIR.iterdir() if p.is_dir()) == sorted(TEMPLATES)


def test_the_wheel_carries_the_templates(tmp_path: Path) -> None:
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                            str(tmp_path), str(ROOT)], capture_output=True, text=True,
                           timeout=300)
    assert built.returncode == 0, built.stderr
    [wheel] = tmp_path.glob("vastbuild-*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    sources = {f"vastbuild/templates/{p.relative_to(TEMPLATES_DIR).as_posix()}"
               for p in TEMPLATES_DIR.rglob("*.in")}
    assert len(sources) == 2 * len(TEMPLATES) and sources <= shipped
