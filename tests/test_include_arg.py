"""INCLUDE fragments and ARG values: what the checker sees, where errors point,
what hashes, and what a change of a fragment does."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from build_helpers import vastbuild, write_tree

import vastbuild.api as api
from vastbuild.fmt import format_source
from vastbuild.model import SearchTerm

APP = "from vastai.serverless.remote import Deployment\napp = Deployment(name='svc')\n"
FRAGMENT = """\
# what every GPU service of the team asks for
ARG VRAM=24
REQUIRE gpu_ram >= ${VRAM}
AUTOSCALE max_workers=4
ENV MODEL=${MODEL}
PIP transformers==4.44.0
"""
VASTFILE = """\
DEPLOYMENT svc
FROM vastai/base
ARG MODEL=qwen
INCLUDE ../shared/gpu.vast
CODE app.py
RUN echo ${HOME}
"""


def terms(search: tuple[SearchTerm, ...]) -> list[tuple[str, str, object]]:
    return [(t.column, t.op, t.value) for t in search]


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    write_tree(root, {"vastbuild.toml": "", "shared/gpu.vast": FRAGMENT,
                      "svc/Vastfile": VASTFILE, "svc/app.py": APP})
    return root


def test_a_fragment_s_lines_join_the_vastfile_in_place(workspace: Path) -> None:
    model = api.load(workspace / "svc")
    assert ("gpu_ram", "gte", 24) in terms(model.search)
    assert model.envs == (("MODEL", "qwen"),)
    assert dict(model.autoscale)["max_workers"] == 4
    assert model.pip_installs == ("transformers==4.44.0",)
    assert model.fragments == (workspace / "shared/gpu.vast",)
    assert dict(model.args) == {"MODEL": "qwen", "VRAM": "24"}
    # RUN is the shell's: ${HOME} stays for the worker's shell to expand
    assert model.runs == ("echo ${HOME}",)


def test_arg_values_override_defaults_and_are_what_hashes(workspace: Path) -> None:
    model = api.load_all([workspace / "svc"], args={"MODEL": "llama", "VRAM": "48"}).models[0]
    assert model.envs == (("MODEL", "llama"),)
    assert ("gpu_ram", "gte", 48) in terms(model.search)
    first = vastbuild("hash", "svc", cwd=workspace)
    other = vastbuild("--arg", "MODEL=llama", "hash", "svc", cwd=workspace)
    again = vastbuild("hash", "svc", cwd=workspace)
    assert first.returncode == other.returncode == again.returncode == 0, other.stderr
    assert first.stdout != other.stdout and first.stdout == again.stdout
    built = vastbuild("--arg", "MODEL=llama", "build", "svc", "-o", "out", "--json",
                      cwd=workspace)
    assert built.returncode == 0, built.stderr
    config = json.loads(built.stdout)["targets"][0]["deployment_config"]
    assert "gpu_ram>=24" in config["search_params"]
    assert "${" not in json.dumps(config)


def test_an_edit_of_the_fragment_is_an_input_of_the_includer(workspace: Path) -> None:
    first = vastbuild("hash", "svc", cwd=workspace)
    fragment = workspace / "shared/gpu.vast"
    fragment.write_text(FRAGMENT.replace("ENV MODEL=${MODEL}", "ENV MODEL=${MODEL} MORE=1"))
    second = vastbuild("hash", "svc", cwd=workspace)
    assert first.returncode == second.returncode == 0
    assert first.stdout != second.stdout  # the last hash's record did not answer
    deps = vastbuild("deps", "svc", "-o", "svc.d", "--target", "out", cwd=workspace)
    assert deps.returncode == 0, deps.stderr
    assert str(fragment) in (workspace / "svc.d").read_text()


def check_output(workspace: Path, fragment: str) -> str:
    (workspace / "shared/gpu.vast").write_text(fragment)
    done = vastbuild("check", "svc", cwd=workspace)
    assert done.returncode == 1
    return done.stderr + done.stdout


def test_a_diagnostic_in_a_fragment_points_there_and_to_the_include(workspace: Path) -> None:
    text = check_output(workspace, FRAGMENT + "FROM other/image\n")
    assert "shared/gpu.vast:7:1: error[E054]: an included fragment holds only" in text
    assert "note: svc/Vastfile:4:9: included from here" in text
    text = check_output(workspace, FRAGMENT + "REQUIRE gpu_rma >= 4\n")
    assert "shared/gpu.vast:7:9: error[" in text and "svc/Vastfile:4:9" in text


def test_an_include_cycle_is_shown(workspace: Path) -> None:
    write_tree(workspace, {"shared/more.vast": "INCLUDE gpu.vast\n"})
    text = check_output(workspace, FRAGMENT + "INCLUDE more.vast\n")
    assert ("error[E053]: INCLUDE makes a cycle: svc/Vastfile -> shared/gpu.vast -> "
            "shared/more.vast -> shared/gpu.vast") in text
    assert "shared/more.vast:1:9" in text


def test_a_missing_fragment_and_one_outside_the_workspace(workspace: Path) -> None:
    (workspace / "svc/Vastfile").write_text(VASTFILE.replace("gpu.vast", "gpu.vst"))
    done = vastbuild("check", "svc", cwd=workspace)
    assert done.returncode == 1 and "svc/Vastfile:4:9: error[E027]" in done.stderr
    (workspace / "svc/Vastfile").write_text(VASTFILE.replace("../shared", "../../.."))
    done = vastbuild("check", "svc", cwd=workspace)
    assert done.returncode == 1 and "error[E026]" in done.stderr


def test_an_unknown_or_valueless_reference_is_an_error_at_its_place(workspace: Path) -> None:
    text = check_output(workspace, "ENV TOKEN=${HF_TOKEN}\n")
    assert "shared/gpu.vast:1:11: error[E055]: `${HF_TOKEN}` names no ARG declared" in text
    text = check_output(workspace, "ARG REV\nENV REV=${REV}\n")
    assert "shared/gpu.vast:2:9: error[E055]: `${REV}` has no value" in text
    assert "shared/gpu.vast:1:1: declared here" in text and "--arg REV=VALUE" in text
    text = check_output(workspace, "ENV A=${9x}\n")
    assert "shared/gpu.vast:1:7: error[E056]" in text
    given = vastbuild("--arg", "REV=abc", "check", "svc", cwd=workspace)
    assert given.returncode == 1  # E056 still there; REV now has a value
    assert "E055" not in given.stdout + given.stderr


def test_an_arg_no_target_declares_is_a_usage_error(workspace: Path) -> None:
    done = vastbuild("--arg", "MODLE=x", "hash", "svc", cwd=workspace)
    assert done.returncode == 2 and "no target declares ARG MODLE" in done.stderr
    done = vastbuild("--arg", "1x=y", "hash", "svc", cwd=workspace)
    assert done.returncode == 2 and "'1x=y' is not NAME=VALUE" in done.stderr


def test_fmt_keeps_include_and_arg() -> None:
    text = "arg  MODEL=qwen\narg REV\ninclude   ../shared/gpu.vast\n"
    assert format_source(text, "Vastfile") == (
        "ARG MODEL=qwen\nARG REV\nINCLUDE ../shared/gpu.vast\n")
