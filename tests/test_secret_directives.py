"""SECRET and LOGIN in the language: parsing, checking, formatting, and what a build
(which needs no value) carries of them: names and the registry user, never a value."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest
from build_helpers import vastbuild
from test_check import APP, at, ok, only
from test_check import run as check_text

from vastbuild.fmt import format_source
from vastbuild.model import RegistryLogin, SecretName
from vastbuild.syntax import parse
from vastbuild.wire import deployment_config, masked_env, split_secrets, with_secrets


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A workspace holding the deployment folder ``svc`` (test_check's layout)."""
    (tmp_path / "vastbuild.toml").write_text("")
    (tmp_path / "svc").mkdir()
    (tmp_path / "svc" / "app.py").write_text(APP)
    return tmp_path / "svc"


def test_secret_names_in_first_mention_order(project: Path) -> None:
    model = ok(project, "SECRET HF_TOKEN WANDB_API_KEY\nSECRET HF_TOKEN OTHER\n")
    assert [s.name for s in model.secrets] == ["HF_TOKEN", "WANDB_API_KEY", "OTHER"]
    assert at_span(model.secrets[0]) == (4, 8)


def at_span(secret: SecretName) -> tuple[int, int]:
    return secret.span.line, secret.span.col


@pytest.mark.parametrize("key", ["HF_TOKEN", "APIKEY", "DB_PASSWORD", "AWS_SECRET_ACCESS_KEY",
                                 "hf_token", "OPENAI_API_KEY"])
def test_an_env_key_that_reads_like_a_secret_is_warned_about(project: Path, key: str) -> None:
    [warned] = only(project, f"ENV {key}=abc\n", "W004")
    assert f"SECRET {key}" in (warned.help or "") and at(warned) == (4, 5)


@pytest.mark.parametrize("key", ["TOKENIZERS_PARALLELISM", "MODEL_NAME", "KEYBOARD", "HF_HOME",
                                 "HF_TOKEN_FILE"])
def test_ordinary_env_keys_are_not(project: Path, key: str) -> None:
    ok(project, f"ENV {key}=1\n")


def test_a_secret_that_env_also_sets_is_an_error_with_a_note(project: Path) -> None:
    [both] = only(project, "ENV HF_TOKEN_FILE=/x\nENV HF_TOKEN=1\nSECRET HF_TOKEN\n", "E057")
    assert at(both) == (6, 8) and both.notes[0].span.line == 5


@pytest.mark.parametrize("text, code", [("SECRET REPORT_ADDR\n", "E057"),
                                        ("SECRET hf-token\n", "E034"),
                                        ("LOGIN u PASSWORD 9X\n", "E034"),
                                        ("LOGIN u PASSWORD ENV_PATH\n", "E057"),
                                        ("LOGIN u PASSWORD A\nLOGIN v PASSWORD B\n", "E021"),
                                        ("LOGIN '' PASSWORD A\n", "E050")])
def test_bad_names_and_repeats(project: Path, text: str, code: str) -> None:
    only(project, text, code)


@pytest.mark.parametrize("image, registry", [
    ("ghcr.io/acme/llm:1.4", "ghcr.io"), ("vastai/pytorch:2", "docker.io"),
    ("pytorch", "docker.io"), ("localhost:5000/x", "localhost:5000"),
    ("registry.example.com:8443/team/img", "registry.example.com:8443"),
    ("localhost/x", "localhost")])
def test_login_is_for_the_images_registry_unless_told(project: Path, image: str,
                                                      registry: str) -> None:
    base = f"DEPLOYMENT svc\nFROM {image}\nCODE app.py\n"
    model = ok(project, "LOGIN bot PASSWORD TOKEN\n", base=base)
    assert model.login is not None
    assert (model.login.user, model.login.registry, model.login.password.name) == \
        ("bot", registry, "TOKEN")
    told = ok(project, "LOGIN bot PASSWORD TOKEN REGISTRY quay.io\n", base=base)
    assert told.login is not None and told.login.registry == "quay.io"


def test_a_password_written_in_place_of_password_is_not_quoted_back() -> None:
    _, [wrong] = parse("LOGIN acme hunter2-secret\n", "Vastfile")
    assert wrong.code == "E010" and "hunter2" not in wrong.message + (wrong.help or "")


def test_fmt_writes_them_canonically() -> None:
    source = "secret  HF_TOKEN   OTHER\nlogin bot password TOKEN registry ghcr.io\n"
    assert format_source(source, "Vastfile") == (
        "SECRET HF_TOKEN OTHER\nLOGIN bot PASSWORD TOKEN REGISTRY ghcr.io\n")


def test_a_fragment_may_share_a_secret(project: Path) -> None:
    (project / "team.vastfile").write_text("SECRET HF_TOKEN\n")
    model = ok(project, "INCLUDE team.vastfile\n")
    assert [s.name for s in model.secrets] == ["HF_TOKEN"]


def test_the_body_gets_values_only_when_sent(project: Path) -> None:
    model = ok(project, "SECRET HF_TOKEN\nLOGIN bot PASSWORD GHCR\n")
    body = deployment_config(model, file_hash="h", file_size=1,
                             api_url="https://console.vast.ai",
                             autoscaler_url="https://run.vast.ai")
    assert "docker_login_pass" not in body and "HF_TOKEN" not in str(body)
    sent = with_secrets(body, model, {"HF_TOKEN": "hf_v", "GHCR": "pw"})
    keys = list(sent)
    assert keys[keys.index("docker_login_user") + 1] == "docker_login_pass"
    assert sent["docker_login_pass"] == "pw" and str(sent["env"]).endswith(" -e HF_TOKEN=hf_v")
    assert split_secrets(str(sent["env"]))[1] == {"HF_TOKEN": "hf_v"}
    assert masked_env(str(sent["env"])).endswith("-e HF_TOKEN=***")
    assert model.login == RegistryLogin("bot", "docker.io", model.login.password)


def test_build_and_hash_need_no_value_and_carry_none(project: Path, tmp_path: Path) -> None:
    (project / "Vastfile").write_text(
        "DEPLOYMENT svc\nFROM ghcr.io/acme/svc:1\nCODE app.py\nSECRET HF_TOKEN\n"
        "LOGIN bot PASSWORD GHCR\n")
    out = tmp_path / "out"
    env = {"HF_TOKEN": "hf_planted_value_123", "GHCR": "ghcr_planted_value_456"}
    built = vastbuild("--cache-dir", str(tmp_path / "cache"), "build", "-o", str(out),
                      cwd=project, env=env)
    assert built.returncode == 0, built.stderr
    hashed = vastbuild("--cache-dir", str(tmp_path / "cache"), "hash", cwd=project,
                       env={"HF_TOKEN": None, "GHCR": None})
    assert hashed.returncode == 0, hashed.stderr
    registration = json.loads((out / "svc.deployment.json").read_text())
    assert (registration["docker_login_user"], registration["docker_login_repo"]) == \
        ("bot", "ghcr.io")
    assert "docker_login_pass" not in registration
    with tarfile.open(out / "svc.tar.gz") as archive:
        config = archive.extractfile("./config.json")
        assert config is not None and b"HF_TOKEN" not in config.read()
    for path in [*out.rglob("*"), *(tmp_path / "cache").rglob("*")]:
        if path.is_file():
            data = path.read_bytes()
            assert b"planted_value" not in data, path


def test_a_value_on_the_command_line_is_refused(project: Path) -> None:
    (project / "Vastfile").write_text("DEPLOYMENT svc\nFROM x\nCODE app.py\nSECRET T\n")
    result = vastbuild("deploy", "--secret", "T=hunter2", "--dry-run", cwd=project,
                       env={"VAST_API_KEY": "k3y"})
    assert result.returncode == 2 and "--secret T=@FILE" in result.stderr
    assert "hunter2" not in result.stderr


def test_check_reports_positions_for_the_model(project: Path) -> None:
    model, diagnostics = check_text(project, "SECRET A\n")
    assert model is not None and not diagnostics
