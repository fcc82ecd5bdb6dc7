"""vastbuild.toml, profiles, the environment and flags: which wins, and the errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from build_helpers import vastbuild, write_tree

from vastbuild.api import DEFAULT_API_URL, DEFAULT_AUTOSCALER_URL, load_settings
from vastbuild.errors import VastbuildError

TOML = """\
# the example team's settings
cache_dir = ".cache/vastbuild"
jobs = 3
tag = "staging"

[profile.dev]
api_url = "http://127.0.0.1:8765"
jobs = 1

[profile.ci]
remote_cache = "http://127.0.0.1:9092/cache"
remote_cache_read_only = true
"""

VASTFILE = "DEPLOYMENT svc\nFROM vastai/base\nCODE app.py\n"
APP = "from vastai.serverless.remote import Deployment\napp = Deployment(name='svc')\n"


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    write_tree(root, {"vastbuild.toml": TOML, "svc/Vastfile": VASTFILE, "svc/app.py": APP,
                      "tagged/Vastfile": VASTFILE.replace("svc", "other") + "TAG prod\n",
                      "tagged/app.py": APP.replace("svc", "other")})
    return root


def sources(root: Path, *args: str, env: dict[str, str | None] | None = None,
            cwd: Path | None = None) -> dict[str, tuple[object, str]]:
    done = vastbuild(*args, "config", "--json", cwd=cwd or root, env=env)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)["settings"]
    return {name: (s["value"], s["source"]) for name, s in found.items()}


def test_flag_over_environment_over_profile_over_file_over_default(workspace: Path) -> None:
    base = sources(workspace, cwd=workspace / "svc")
    # a relative cache_dir is relative to vastbuild.toml's folder, wherever one runs
    assert base["cache_dir"] == ((workspace / ".cache/vastbuild").as_posix(), "vastbuild.toml:2")
    assert base["jobs"] == (3, "vastbuild.toml:3")
    assert base["api_url"] == (DEFAULT_API_URL, "default")
    assert base["autoscaler_url"] == (DEFAULT_AUTOSCALER_URL, "default")
    dev = sources(workspace, "--profile", "dev")
    assert dev["jobs"] == (1, "vastbuild.toml:8 [profile.dev]")
    assert dev["api_url"] == ("http://127.0.0.1:8765", "vastbuild.toml:7 [profile.dev]")
    # the autoscaler follows an API URL that is not Vast's: nothing goes to Vast
    assert dev["autoscaler_url"][0] == "http://127.0.0.1:8765"
    assert dev["tag"] == ("staging", "vastbuild.toml:4")
    env = sources(workspace, env={"VASTBUILD_PROFILE": "dev", "VASTBUILD_JOBS": "5",
                                  "VAST_API_URL": "http://127.0.0.1:9000"})
    assert env["jobs"] == (5, "$VASTBUILD_JOBS")
    assert env["api_url"] == ("http://127.0.0.1:9000", "$VAST_API_URL")
    flag = sources(workspace, "--profile", "dev", "-j", "7",
                   env={"VASTBUILD_JOBS": "5"})
    assert flag["jobs"] == (7, "--jobs")
    ci = sources(workspace, "--profile", "ci")
    assert ci["remote_cache"] == ("http://127.0.0.1:9092/cache", "vastbuild.toml:11 [profile.ci]")
    assert ci["remote_cache_read_only"][0] is True


def test_the_library_reads_the_same_settings(workspace: Path) -> None:
    chosen = load_settings(workspace / "svc", profile="dev", environ={},
                           flags={"jobs": 2})
    assert chosen.jobs == 2 and chosen.api_url == "http://127.0.0.1:8765"
    assert chosen.autoscaler_url == "http://127.0.0.1:8765"
    assert chosen.cache_dir == workspace / ".cache/vastbuild"
    assert chosen.with_flags(autoscaler_url="https://run.vast.ai").autoscaler_url == \
        "https://run.vast.ai"


def test_the_tag_setting_is_the_tag_of_a_vastfile_without_tag(workspace: Path) -> None:
    done = vastbuild("build", "//...", "-o", "out", "--json", cwd=workspace)
    assert done.returncode == 0, done.stderr
    tags = {t["label"]: t["tag"] for t in json.loads(done.stdout)["targets"]}
    assert tags == {"//svc": "staging", "//tagged": "prod"}
    assert (workspace / ".cache/vastbuild").is_dir()  # the cache the file names
    again = vastbuild("--tag", "canary", "build", "//svc", "-o", "out", "--json", cwd=workspace)
    assert [t["tag"] for t in json.loads(again.stdout)["targets"]] == ["canary"]
    body = json.loads((workspace / "out/svc.deployment.json").read_text())
    assert body["tag"] == "canary"


@pytest.mark.parametrize(("text", "message", "hint"), [
    ("cache_dri = 'x'\n", "vastbuild.toml:1:1: unknown setting `cache_dri`",
     "did you mean `cache_dir`?"),
    ("[profile.dev]\napi_ulr = 'http://x'\n",
     "vastbuild.toml:2:1: unknown setting `api_ulr` in [profile.dev]", "did you mean `api_url`?"),
    ("jobs = 0\n", "vastbuild.toml:1:1: `jobs`: 0 is not a whole number",
     "jobs = 4"),
    ("api_url = 'ftp://me:pw@x'\n", "vastbuild.toml:1:1: `api_url`: 'ftp://***@x' is not",
     "api_url = "),
    ("api_key = 'k-123'\n", "`api_key` does not belong in vastbuild.toml", "$VAST_API_KEY"),
    ("jobs = [\n", "vastbuild.toml", "fix the TOML syntax"),
])
def test_a_bad_settings_file_says_where_and_what_to_do(tmp_path: Path, text: str, message: str,
                                                       hint: str) -> None:
    write_tree(tmp_path, {"vastbuild.toml": text})
    done = vastbuild("config", cwd=tmp_path)
    assert done.returncode == 1
    assert message in done.stderr and hint in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and "k-123" not in done.stderr
    assert "pw@" not in done.stderr


def test_an_unknown_profile_lists_the_known_ones(workspace: Path) -> None:
    done = vastbuild("--profile", "deb", "config", cwd=workspace)
    assert done.returncode == 1
    assert "no profile 'deb' (from --profile); profiles: ci, dev" in done.stderr
    assert "did you mean `dev`?" in done.stderr
    env = vastbuild("config", cwd=workspace, env={"VASTBUILD_PROFILE": "prod"})
    assert "(from $VASTBUILD_PROFILE)" in env.stderr and env.returncode == 1


def test_config_never_prints_the_api_key(workspace: Path) -> None:
    done = vastbuild("config", cwd=workspace, env={"VAST_API_KEY": "planted-key-4711"})
    assert done.returncode == 0 and "planted-key-4711" not in done.stdout + done.stderr
    assert "api_key" not in done.stdout


def test_bad_values_in_the_environment_are_usage_errors(workspace: Path) -> None:
    done = vastbuild("config", cwd=workspace, env={"VASTBUILD_JOBS": "many"})
    assert done.returncode == 2
    assert "$VASTBUILD_JOBS: 'many' is not a whole number" in done.stderr


def test_loading_reports_errors_as_library_errors(tmp_path: Path) -> None:
    write_tree(tmp_path, {"vastbuild.toml": "colour = 1\n"})
    with pytest.raises(VastbuildError, match="unknown setting `colour`"):
        load_settings(tmp_path, environ={})
