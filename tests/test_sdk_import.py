"""``vastbuild import``: a vastai SDK program becomes a Vastfile that registers the same.

Each case is an SDK program in a style its users write (one chained builder, one
statement at a time, an ``Image`` built on its own, a package), in a workspace with
the files it copies. ``vastbuild import`` translates it as a user runs it (a
process); the test then runs the program itself with the SDK, offline, and checks
that the registration body vastbuild computes for the Vastfile is the SDK's, field
for field, but for the differences docs/wire.md documents (RAM units, port order,
file_hash/file_size) and the registry password, which vastbuild adds only when it
deploys. The translation itself never runs the program: the tests below check that
too, and what it refuses to guess.
"""

from __future__ import annotations

import importlib
import json
import re
import runpy
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

pytest.importorskip("vastai", reason="the vastai SDK (in the test extra) is not installed")

from build_helpers import vastbuild, write_tree
from test_sdk_compat import (
    FAKE_KEY,
    LOOPBACK_API,
    LOOPBACK_AUTOSCALER,
    assert_search_equal_but_units,
    bind,
    ports_sorted,
    sdk_tar_files,
)
from vastai.serverless.remote.deploy import Deployment as SdkDeployment

from vastbuild import sdk_import, urls, wire
from vastbuild.api import DiagnosticError, format_source, import_sdk, load
from vastbuild.model import Deployment

SHARED = {"vastbuild.toml": "", "lib/common/__init__.py": "", "lib/common/timing.py": "T = 1\n",
          "lib/prompts.json": "{}\n"}


@dataclass(frozen=True)
class Case:
    name: str
    files: dict[str, str]
    #: the SDK program, relative to the workspace; the module the SDK binds it as
    program: str
    module: str
    #: where `vastbuild import` writes by default, and what
    vastfile: str
    expected: str
    api_url: str = urls.DEFAULT_API_URL
    autoscaler_url: str = urls.DEFAULT_AUTOSCALER_URL


CHAINED = Case("chained", {"llm/app.py": '''\
"""A chat server, configured in one chain of builder calls."""
from vastai.data.query import L40S, RTX_4090, RTX_5090, gpu_name, gpu_ram, num_gpus, reliability
from vastai.serverless.remote import Deployment

app = Deployment(name="qwen-chat", tag="default")
(app.image("vastai/vllm:@vastai-automatic-tag", 80)
    .pip_install("vllm==0.6.3", "transformers")
    .env(MODEL_NAME="Qwen/Qwen3-0.6B", HF_HOME="/data/hf")
    .run_script("mkdir -p /data/hf")
    .copy("../lib/common", "/app/lib/common")
    .copy("../lib/prompts.json", "/app/prompts.json")
    .venv("/venv/main")
    .publish_port(8000, "tcp")
    .require(gpu_ram >= 24, gpu_name.in_([RTX_4090, RTX_5090, L40S]))
    .require(reliability > 0.98, num_gpus == 1))
app.configure_autoscaling(cold_workers=1, max_workers=4, target_util=0.8)
app.configure_autoscaling(inactivity_timeout=600, max_workers=5)


@app.remote
async def generate(prompt: str) -> str:
    return prompt
'''}, "llm/app.py", "app", "llm/Vastfile", """\
# Translated from app.py by `vastbuild import`.
DEPLOYMENT qwen-chat
TAG default
FROM vastai/vllm:@vastai-automatic-tag STORAGE 80
CODE app.py
PIP vllm==0.6.3 transformers
ENV MODEL_NAME=Qwen/Qwen3-0.6B HF_HOME=/data/hf
RUN mkdir -p /data/hf
COPY ../lib/common /app/lib/common
COPY ../lib/prompts.json /app/prompts.json
VENV /venv/main
PORT 8000/tcp
REQUIRE gpu_ram >= 24 AND gpu_name IN [RTX_4090, RTX_5090, L40S]
REQUIRE reliability > 0.98 AND num_gpus == 1
AUTOSCALE cold_workers=1 target_util=0.8
AUTOSCALE inactivity_timeout=600 max_workers=5
""")

STATEMENTS = Case("statements", {"whisper/worker.py": '''\
"""Speech to text, configured one statement at a time, with module-level constants."""
from vastai.data import query as q
from vastai.serverless.remote import Deployment

PACKAGES = ["faster-whisper==1.0.3", "soundfile>=0.12", "numpy<2"]
GREETING = 'say "hi" # twice'

app = Deployment(name="whisper-stt", tag="prod", ttl=7200,
                 webserver_url="http://127.0.0.1:18080", autoscaler_url="http://127.0.0.1:18081")
image = app.image("vastai/pytorch:@vastai-automatic-tag", 50)
image.pip_install(*PACKAGES)
image.apt_get("ffmpeg", "libsndfile1")
image.env(GREETING=GREETING, MODELS="C:\\\\models\\\\whisper", EMPTY="")
image.run_cmd("python", "-c", "print('ready')")
image.run_script("test -d /data || mkdir /data")
image.run_script("echo one  # a comment the shell sees\\necho two")
image.copy("../lib/common", "/app/lib/common")
image.use_system_python()
image.publish_port(5353, "udp")
image.require(8 <= q.gpu_ram, q.gpu_name.notin_([q.RTX_3060]))
image.require(q.geolocation.in_(["US", "CA"]))
app.configure_autoscaling(cold_workers=0, max_workers=8)


@app.remote
async def transcribe(audio: bytes) -> str:
    return ""


if __name__ == "__main__":
    app.configure_autoscaling(min_load=10)
'''}, "whisper/worker.py", "worker", "whisper/Vastfile",
    "# Translated from worker.py by `vastbuild import`.\n" + r"""DEPLOYMENT whisper-stt
TAG prod
TTL 7200
FROM vastai/pytorch:@vastai-automatic-tag STORAGE 50
CODE worker.py
PIP faster-whisper==1.0.3 soundfile>=0.12 numpy<2
APT ffmpeg libsndfile1
ENV GREETING="say \"hi\" # twice" MODELS="C:\\models\\whisper" EMPTY=""
RUN ["python", "-c", "print('ready')"]
RUN test -d /data || mkdir /data
RUN ["sh", "-c", "echo one  # a comment the shell sees\necho two"]
COPY ../lib/common /app/lib/common
SYSTEM_PYTHON
PORT 5353/udp
REQUIRE gpu_ram >= 8 AND gpu_name NOTIN [RTX_3060]
REQUIRE geolocation IN [US, CA]
AUTOSCALE cold_workers=0 max_workers=8
AUTOSCALE min_load=10
""", LOOPBACK_API, LOOPBACK_AUTOSCALER)

IMAGE = Case("image", {"imagegen/imagegen.py": '''\
"""Images from text: the Image is built on its own, from a private registry."""
import os

import vastai
from vastai.data.query import Column, dph_total
from vastai.serverless.remote import Image

image = Image("ghcr.io/acme/sdxl:1.4", 100, docker_login_user="acme-bot",
              docker_login_pass=os.environ["GHCR_TOKEN"], docker_login_repo="ghcr.io")
image.pip_install("diffusers==0.30.0", "accelerate")
image.run_cmd("python", "-c", "import torch; print(torch.cuda.is_available())")
image.run_script("pip cache purge || true")
image.copy("../lib/common", "lib/common")
image.require(Column("gpu_ram") >= 16, Column("cpu_ram") >= 32)
image.require(dph_total < 1.5)

app = vastai.Deployment(version_label="v3", autoscaler_url="http://127.0.0.1:18081")
app._image = image  # the SDK has no public way to hand a Deployment an Image
app.configure_autoscaling(cold_workers=1, max_workers=6, target_queue_time=5.0,
                          max_queue_time=30)


@app.remote
async def draw(prompt: str) -> bytes:
    return b""
'''}, "imagegen/imagegen.py", "imagegen", "imagegen/Vastfile", """\
# Translated from imagegen.py by `vastbuild import`.
VERSION v3
FROM ghcr.io/acme/sdxl:1.4 STORAGE 100
# The registry password is the secret GHCR_TOKEN: give it at deploy time (the environment, \
--secret NAME=@FILE or --secrets-file FILE).
LOGIN acme-bot PASSWORD GHCR_TOKEN REGISTRY ghcr.io
CODE imagegen.py
PIP diffusers==0.30.0 accelerate
RUN ["python", "-c", "import torch; print(torch.cuda.is_available())"]
RUN pip cache purge || true
COPY ../lib/common lib/common
REQUIRE gpu_ram >= 16 AND cpu_ram >= 32
REQUIRE dph_total < 1.5
AUTOSCALE cold_workers=1 max_workers=6 target_queue_time=5.0 max_queue_time=30
""", urls.DEFAULT_API_URL, LOOPBACK_AUTOSCALER)

PACKAGE = Case("package", {"embedder/__init__.py": '''\
"""Embeddings, deployed as a package; the search starts without its `verified` default."""
import os

from vastai import Deployment
from vastai.data.query import *  # noqa: F403

app = Deployment(name="embeddings", webserver_url="http://127.0.0.1:18080")
image = (app.image("vastai/pytorch:@vastai-automatic-tag", 40)
         .pip_install("sentence-transformers==3.0.1")
         .env(TOKENIZERS_PARALLELISM="false", HF_TOKEN=os.environ.get("HF_TOKEN", ""))
         .copy("../lib", "/app/lib")
         .publish_port(8080))
image._requires = Query.search_defaults(verified=None)  # noqa: F405
image.require(gpu_ram >= 8, num_gpus == 1).require(verified == True)  # noqa: E712, F405
app.configure_autoscaling(cold_workers=2, max_workers=16)
app.configure_autoscaling(min_load=50, cold_mult=2.0)

from . import handlers  # noqa: E402, F401
''', "embedder/handlers.py": '''\
from . import app


@app.remote
async def embed(text: str) -> list[float]:
    return []
'''}, "embedder/__init__.py", "embedder", "Vastfile", """\
# Translated from embedder/__init__.py by `vastbuild import`.
DEPLOYMENT embeddings
FROM vastai/pytorch:@vastai-automatic-tag STORAGE 40
CODE embedder
PIP sentence-transformers==3.0.1
ENV TOKENIZERS_PARALLELISM=false
# Secrets: each value is given at deploy time, never written here.
SECRET HF_TOKEN
COPY lib /app/lib
PORT 8080/tcp
REQUIRE gpu_ram >= 8 AND num_gpus == 1
REQUIRE verified == true
AUTOSCALE cold_workers=2 max_workers=16
AUTOSCALE min_load=50 cold_mult=2.0
""", LOOPBACK_API)

CASES = [CHAINED, STATEMENTS, IMAGE, PACKAGE]


@pytest.fixture(autouse=True)
def sdk_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the SDK programs read when the tests run them; nothing is sent anywhere."""
    monkeypatch.delenv("IS_DEPLOYMENT", raising=False)
    monkeypatch.delenv("VAST_API_URL", raising=False)
    monkeypatch.setenv("VAST_API_KEY", FAKE_KEY)
    monkeypatch.setenv("GHCR_TOKEN", "ghcr-token-for-the-sdk")


def workspace(tmp_path: Path, files: dict[str, str]) -> Path:
    ws = tmp_path / "ws"
    write_tree(ws, {**SHARED, **files})
    return ws


def run_program(ws: Path, case: Case, monkeypatch: pytest.MonkeyPatch) -> SdkDeployment:
    """Run the SDK program as its user would (``python worker.py`` in its folder, or
    importing the package), and bind the Deployment as ``@app.remote`` does."""
    program = ws / case.program
    monkeypatch.chdir(program.parent)  # the folder relative COPY sources are read from
    if program.name == "__init__.py":
        monkeypatch.syspath_prepend(str(program.parent.parent))
        try:
            namespace = vars(importlib.import_module(case.module))
        finally:
            for name in [m for m in sys.modules if m.split(".")[0] == case.module]:
                del sys.modules[name]
        code = program.parent
    else:
        namespace = runpy.run_path(str(program), run_name="__main__")
        code = program
    [app] = [value for value in namespace.values() if isinstance(value, SdkDeployment)]
    return bind(app, code, case.module)


def assert_registers_the_same(model: Deployment, sdk_body: dict[str, object],
                              case: Case) -> None:
    """The test_sdk_compat comparison; the SDK's docker_login_pass is the one field
    vastbuild sends only at deploy time (wire.with_secrets)."""
    sdk_body = {key: value for key, value in sdk_body.items() if key != "docker_login_pass"}
    file_hash, file_size = sdk_body["file_hash"], sdk_body["file_size"]
    assert isinstance(file_hash, str) and isinstance(file_size, int)
    ours = wire.deployment_config(model, file_hash=file_hash, file_size=file_size,
                                  api_url=case.api_url, autoscaler_url=case.autoscaler_url)
    assert list(ours) == list(sdk_body)  # same fields, same order
    assert ours["env"] == ports_sorted(str(sdk_body["env"]))
    assert_search_equal_but_units(str(ours["search_params"]), str(sdk_body["search_params"]))
    rest = [key for key in ours if key not in ("env", "search_params")]
    assert {key: ours[key] for key in rest} == {key: sdk_body[key] for key in rest}


def assert_same_config(model: Deployment, sdk_tarball: Path) -> None:
    """config.json says the same, but for the variables that became SECRETs (the worker
    gets those from the registration, at deploy time) and a script written as
    ``["sh", "-c", script]``, which the worker runs exactly as it runs ``script``."""
    sdk = json.loads(sdk_tar_files(sdk_tarball)["config.json"])
    ours = json.loads(wire.config_json(model))
    secrets = {secret.name for secret in model.secrets}
    sdk["envs"] = [pair for pair in sdk["envs"] if pair[0] not in secrets]
    ours["runs"] = [run[2] if isinstance(run, list) and run[:2] == ["sh", "-c"] else run
                    for run in ours["runs"]]
    assert ours == sdk


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_an_sdk_program_becomes_a_vastfile_that_registers_the_same(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: Case) -> None:
    ws = workspace(tmp_path, case.files)
    run = vastbuild("import", case.program, cwd=ws)
    assert run.returncode == 0, run.stderr
    vastfile = ws / case.vastfile
    assert run.stdout == f"wrote {case.vastfile}\n"
    text = vastfile.read_text("utf-8")
    assert text == case.expected
    assert format_source(text, case.vastfile) == text  # fmt-clean
    model = load(vastfile)  # and it checks

    app = run_program(ws, case, monkeypatch)
    sdk_tarball = tmp_path / "sdk.tar.gz"
    sdk_body = app._into_deployment_config_and_tarball(str(sdk_tarball)).to_dict()
    assert_registers_the_same(model, sdk_body, case)
    assert_same_config(model, sdk_tarball)


def test_the_warnings_say_what_the_vastfile_says_differently(tmp_path: Path) -> None:
    ws = workspace(tmp_path, {"svc/app.py": '''\
import os
from vastai.data.query import verified
from vastai.serverless.remote import Deployment

app = Deployment(name="svc", autoscaler_url="http://127.0.0.1:18081")
image = app.image("registry.example.com/svc:1", 20, docker_login_user="bot",
                  docker_login_pass=os.getenv("REGISTRY_TOKEN"))
image.env(HF_TOKEN=os.environ["HF_TOKEN"])
image.run_script("set -e\\nmake")
image.require(verified == False)  # noqa: E712
app.configure_autoscaling(max_workers=2, autoscaler_instance="prod")
'''})
    run = vastbuild("import", "svc/app.py", "-o", "-", cwd=ws)
    assert run.returncode == 0, run.stderr
    assert not (ws / "svc" / "Vastfile").exists()  # -o - writes nothing
    assert run.stdout == """\
# Translated from app.py by `vastbuild import`.
DEPLOYMENT svc
FROM registry.example.com/svc:1 STORAGE 20
# The registry password is the secret REGISTRY_TOKEN: give it at deploy time (the \
environment, --secret NAME=@FILE or --secrets-file FILE).
LOGIN bot PASSWORD REGISTRY_TOKEN
CODE app.py
# Secrets: each value is given at deploy time, never written here.
SECRET HF_TOKEN
RUN ["sh", "-c", "set -e\\nmake"]
REQUIRE verified == false
AUTOSCALE max_workers=2
"""
    assert re.findall(r"(\S+): warning\[(I\d+)\]", run.stderr) == [
        ("svc/app.py:5:45", "I101"),   # autoscaler_url: a setting
        ("svc/app.py:8:11", "I102"),   # HF_TOKEN: a SECRET
        ("svc/app.py:9:7", "I105"),    # a two-line script: exec form
        ("svc/app.py:10:15", "I104"),  # verified: replaces the default
        ("svc/app.py:11:42", "I101"),  # autoscaler_instance: a setting
    ]


def test_numbers_in_the_sdks_own_units_become_gb_and_days(tmp_path: Path) -> None:
    """``gpu_ram >= 24000`` is what the SDK's query holds for 24 GB; ``gpu_ram >= 24`` is
    what Vast's example writes for 24 GB: both become ``REQUIRE gpu_ram >= 24``."""
    ws = workspace(tmp_path, {"svc/app.py": '''\
from vastai.data.query import cpu_ram, duration, gpu_ram, gpu_total_ram
from vastai.serverless.remote import Deployment

app = Deployment(name="svc")
image = app.image("vastai/base", 20)
image.require(gpu_ram >= 24000, cpu_ram >= 64000, gpu_total_ram <= 2000, duration > 604800)
image.require(gpu_ram <= 80)
'''})
    run = vastbuild("import", "svc/app.py", "-o", "-", cwd=ws)
    assert run.returncode == 0, run.stderr
    assert "REQUIRE gpu_ram >= 24 AND cpu_ram >= 64 AND gpu_total_ram <= 2000 AND " \
        "duration > 7\nREQUIRE gpu_ram <= 80\n" in run.stdout
    assert re.findall(r"(\S+): warning\[(I\d+)\]", run.stderr) == [
        ("svc/app.py:6:26", "I106"), ("svc/app.py:6:44", "I106"), ("svc/app.py:6:85", "I106")]


def test_a_value_that_is_not_a_literal_is_an_error_at_its_place(tmp_path: Path) -> None:
    ws = workspace(tmp_path, {"svc/sdk.py": '''\
import os
from vastai.serverless.remote import Deployment

MODEL = os.environ.get("MODEL", "Qwen/Qwen3-0.6B")
VERSION = "2.5.1"
app = Deployment(name="svc")
image = app.image("vastai/base", 50)
image.env(MODEL_NAME=MODEL)
image.pip_install(f"torch=={VERSION}", "numpy==" + VERSION, "requests")
'''})
    run = vastbuild("import", "svc/sdk.py", cwd=ws)
    assert run.returncode == 1
    assert re.findall(r"^(\S+): error\[(\w+)\]: (.*)$", run.stderr, re.MULTILINE) == [
        ("svc/sdk.py:8:22", "I004",
         "cannot translate the value of MODEL_NAME `MODEL`: `MODEL` is a variable, "
         "not a literal"),
        ("svc/sdk.py:9:19", "I004", "cannot translate the argument of pip_install "
         "`f'torch=={VERSION}'`: it is an f-string, not a literal"),
        ("svc/sdk.py:9:40", "I004", "cannot translate the argument of pip_install "
         "`'numpy==' + VERSION`: it is an expression, not a literal"),
    ]
    assert "Traceback" not in run.stderr
    assert not (ws / "svc" / "Vastfile").exists()


def test_an_existing_vastfile_is_replaced_only_with_force(tmp_path: Path) -> None:
    ws = workspace(tmp_path, CHAINED.files)
    (ws / "llm" / "Vastfile").write_text("# mine\n")
    run = vastbuild("import", "llm/app.py", cwd=ws)
    assert run.returncode == 2
    assert "llm/Vastfile already exists" in run.stderr and "(--force)" in run.stderr
    assert (ws / "llm" / "Vastfile").read_text() == "# mine\n"
    other = vastbuild("import", "llm/app.py", "-o", "elsewhere.vast", cwd=ws)
    assert other.returncode == 0, other.stderr
    assert "CODE llm/app.py\n" in (ws / "elsewhere.vast").read_text()  # relative to it
    forced = vastbuild("import", "llm/app.py", "--force", cwd=ws)
    assert forced.returncode == 0, forced.stderr
    assert (ws / "llm" / "Vastfile").read_text() == CHAINED.expected


def test_only_a_file_can_be_imported(tmp_path: Path) -> None:
    ws = workspace(tmp_path, CHAINED.files)
    for name in ("llm", "missing.py"):
        run = vastbuild("import", name, cwd=ws)
        assert run.returncode == 2, run.stderr
        assert f"error: {name} is not a file" in run.stderr


def test_the_program_is_read_never_run(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    ws = workspace(tmp_path, {"svc/app.py": f'''\
from vastai.serverless.remote import Deployment

open({str(marker)!r}, "w").write("the program ran")
raise SystemExit("executed!")

app = Deployment(name="svc")
app.image("vastai/base", 20).pip_install("requests")
'''})
    run = vastbuild("import", "svc/app.py", cwd=ws)
    assert run.returncode == 0, run.stderr
    assert "executed!" not in run.stdout + run.stderr
    assert not marker.exists()
    assert "PIP requests\n" in (ws / "svc" / "Vastfile").read_text()


def test_secrets_never_reach_the_vastfile_or_the_terminal(tmp_path: Path) -> None:
    ws = workspace(tmp_path, {"svc/app.py": '''\
from vastai.serverless.remote import Deployment

app = Deployment(name="svc", api_key="vast-key-literal")
image = app.image("registry.example.com/svc:1", 20, docker_login_user="bot",
                  docker_login_pass="hunter2-literal")
image.env(OPENAI_API_KEY="sk-literal", MODE="prod")
'''})
    run = vastbuild("import", "svc/app.py", "-o", "-", cwd=ws)
    assert run.returncode == 0, run.stderr
    assert "LOGIN bot PASSWORD REGISTRY_PASSWORD\n" in run.stdout
    assert "ENV MODE=prod\n" in run.stdout and "SECRET OPENAI_API_KEY\n" in run.stdout
    for literal in ("vast-key-literal", "hunter2-literal", "sk-literal"):
        assert literal not in run.stdout + run.stderr
    assert "the registry password is the secret REGISTRY_PASSWORD" in run.stderr
    assert "svc/app.py:5:37" in run.stderr  # where, without quoting the line


def codes(program: str, tmp_path: Path) -> list[tuple[str, str]]:
    """(code, line:col) of the errors importing ``program`` gives, through the library."""
    ws = workspace(tmp_path, {"svc/app.py": program})
    with pytest.raises(DiagnosticError) as raised:
        import_sdk(ws / "svc" / "app.py")
    assert not (ws / "svc" / "Vastfile").exists()
    return [(d.code, f"{d.span.line}:{d.span.col}") for d in raised.value.diagnostics
            if d.is_error and d.span is not None]


def test_what_the_import_will_not_guess(tmp_path: Path) -> None:
    assert codes('''\
from vastai.data import query as q
from vastai.serverless.remote import Deployment

app = Deployment(name="svc")
image = app.image("vastai/base", 20)
image.pip_instal("x")
image.require(8 <= q.gpu_ram <= 48, q.gpu_rma >= 3)
image.require(q.num_gpus == 1, q.num_gpus == 2)
for package in ["a", "b"]:
    image.apt_get(package)


def later():
    image.copy("a", "/b")


image.env(SHELL_HOME="${HOME}")
app2 = Deployment(name="other")
''', tmp_path) == [
        ("I006", "6:7"),    # Image has no method pip_instal (did you mean pip_install?)
        ("I009", "7:15"),   # a chained comparison keeps only its last part
        ("I008", "7:37"),   # vastai.data.query has no column gpu_rma
        ("I009", "8:32"),   # a second `==` on num_gpus: the SDK raises ValueError
        ("I007", "10:5"),   # inside a for loop
        ("I007", "14:5"),   # inside the function later
        ("I008", "17:22"),  # ${ would be an ARG reference
        ("I003", "18:8"),   # one Deployment per file
    ]


def test_a_problem_of_the_translation_is_reported_in_the_program(tmp_path: Path) -> None:
    """The checker's errors point at the SDK code the line came from: the Vastfile is
    not written, and the program is what the user edits."""
    assert codes('''\
from vastai.serverless.remote import Deployment

app = Deployment(name="svc")
app.image("vastai/base", 20).copy("missing.txt", "/app/x")
app.configure_autoscaling(target_util=1.5)
''', tmp_path) == [("E027", "4:30"), ("E040", "5:5")]


def test_every_import_code_is_emitted_and_documented() -> None:
    source = Path(sdk_import.__file__).read_text("utf-8")
    emitted = set(re.findall(r"""(?:error|warn)\(\s*"(I\d{3})\"""", source))
    reference = (Path(__file__).resolve().parent.parent / "docs" / "import.md").read_text()
    documented = set(re.findall(r"^\| (I\d{3})\b", reference, re.MULTILINE))
    assert emitted == set(sdk_import.IMPORT_CODES) == documented


def test_the_readme_example_imports_as_written() -> None:
    """`vastbuild import examples/sdk/deployment.py -o -`, run from the checkout."""
    root = Path(__file__).resolve().parent.parent
    result = vastbuild("import", "examples/sdk/deployment.py", "-o", "-", cwd=root)
    assert result.returncode == 0, result.stderr
    assert "DEPLOYMENT sdk-echo" in result.stdout and "CODE deployment.py" in result.stdout
    assert not (root / "examples/sdk/Vastfile").exists()
