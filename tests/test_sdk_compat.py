"""vastbuild against the vastai SDK: the same deployment, built by both, goes out the same.

Each example Vastfile is also written as the SDK program a user would write for
it (``Deployment`` + ``image(...)`` + ``configure_autoscaling``), and the SDK's
own packaging runs offline on it. Our ``config.json`` must be byte-identical to
the SDK's, and the registration body equal field for field, except for the
differences docs/wire.md documents (RAM units in ``search_params``, port order
in ``env``; ``file_hash``/``file_size`` describe different tarballs by design).

Everything here runs in the project's Python 3.11: the SDK's packaging and its
worker bootstrap helpers do; only its ``ensure_ready`` needs 3.12, and nothing
here calls it or makes a request.
"""

from __future__ import annotations

import re
import shutil
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

pytest.importorskip("vastai", reason="the vastai SDK (in the test extra) is not installed")

from vastai.data.query import (
    L40S,
    RTX_3060,
    RTX_4090,
    RTX_5090,
    Query,
    cpu_ram,
    dph_total,
    duration,
    geolocation,
    gpu_name,
    gpu_ram,
    num_gpus,
    reliability,
    verified,
)
from vastai.serverless.remote import serve_deployment
from vastai.serverless.remote.base import Config
from vastai.serverless.remote.deploy import Deployment as SdkDeployment
from vastai.serverless.remote.utils import serialize_config

from vastbuild import urls, wire
from vastbuild.api import build, load
from vastbuild.catalog import catalog
from vastbuild.model import Deployment, SearchTerm

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
#: a made-up key: the SDK refuses to start without one, and nothing here is sent anywhere
FAKE_KEY = "test-key-not-a-secret"
LOOPBACK_API = "http://127.0.0.1:18080"
LOOPBACK_AUTOSCALER = "http://127.0.0.1:18081"


@pytest.fixture
def examples(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A clean copy of the example monorepo: no __pycache__ or build leftovers,
    which the SDK would pack and vastbuild would not."""
    monkeypatch.delenv("IS_DEPLOYMENT", raising=False)
    monkeypatch.delenv("VAST_API_URL", raising=False)
    copy = tmp_path / "examples"
    shutil.copytree(EXAMPLES, copy, ignore=shutil.ignore_patterns(
        "__pycache__", "*.pyc", "out", ".vastbuild*", "plugins"))
    return copy


def bind(app: SdkDeployment, code: Path, module: str) -> SdkDeployment:
    """Bind the SDK deployment to its code as ``@app.remote`` does on first use
    (``relativize`` records the root module and the file it lives in)."""
    app.root_module = module
    app.file = str(code)
    return app


def sdk_client(**kwargs: object) -> SdkDeployment:
    return SdkDeployment(api_key=FAKE_KEY, **kwargs)


# The SDK programs equivalent to the four example Vastfiles. RAM is written in GB,
# as a user of either tool writes it.


def sdk_llm(ex: Path, api: str, autoscaler: str | None,
            image: str = "vastai/vllm:@vastai-automatic-tag", **login: str) -> SdkDeployment:
    """examples/llm; ``image`` and ``login`` (``docker_login_*``) for a private image."""
    app = sdk_client(name="qwen-chat", tag="default", webserver_url=api,
                     autoscaler_url=autoscaler)
    (app.image(image, 80, **login)
        .pip_install("vllm==0.6.3", "transformers")
        .env(MODEL_NAME="Qwen/Qwen3-0.6B", HF_HOME="/data/hf")
        .run_script("mkdir -p /data/hf")
        .copy(str(ex / "lib/common"), "/app/lib/common")
        .copy(str(ex / "lib/prompts.json"), "/app/prompts.json")
        .venv("/venv/main")
        .publish_port(8000, "tcp")
        .require(gpu_ram >= 24, gpu_name.in_([RTX_4090, RTX_5090, L40S]))
        .require(reliability > 0.98, num_gpus == 1))
    app.configure_autoscaling(cold_workers=1, max_workers=4, target_util=0.8)
    app.configure_autoscaling(inactivity_timeout=600)
    return bind(app, ex / "llm/app.py", "app")


def sdk_whisper(ex: Path, api: str, autoscaler: str | None) -> SdkDeployment:
    app = sdk_client(name="whisper-stt", tag="prod", ttl=7200, webserver_url=api,
                     autoscaler_url=autoscaler)
    (app.image("vastai/pytorch:@vastai-automatic-tag", 50)
        .pip_install("faster-whisper==1.0.3", "soundfile>=0.12", "numpy<2")
        .apt_get("ffmpeg", "libsndfile1")
        .copy(str(ex / "lib/common"), "/app/lib/common")
        .use_system_python()
        .require(gpu_ram >= 8, gpu_name.notin_([RTX_3060]))
        .require(geolocation.in_(["US", "CA"])))
    app.configure_autoscaling(cold_workers=0, max_workers=8, min_load=10)
    return bind(app, ex / "whisper/worker.py", "worker")


def sdk_imagegen(ex: Path, api: str, autoscaler: str | None) -> SdkDeployment:
    app = sdk_client(name="sdxl-images", version_label="v3", webserver_url=api,
                     autoscaler_url=autoscaler)
    (app.image("vastai/pytorch:@vastai-automatic-tag", 100)
        .pip_install("diffusers==0.30.0", "accelerate", "safetensors")
        .run_cmd("python", "-c", "import torch; print(torch.cuda.is_available())")
        .run_script("pip cache purge || true")
        .copy(str(ex / "lib/common"), "lib/common")
        .require(gpu_ram >= 16, cpu_ram >= 32)
        .require(dph_total < 1.5))
    app.configure_autoscaling(cold_workers=1, max_workers=6, target_queue_time=5.0,
                              max_queue_time=30)
    return bind(app, ex / "imagegen/imagegen.py", "imagegen")


def sdk_embed(ex: Path, api: str, autoscaler: str | None) -> SdkDeployment:
    app = sdk_client(name="embeddings", webserver_url=api, autoscaler_url=autoscaler)
    image = (app.image("vastai/pytorch:@vastai-automatic-tag", 40)
             .pip_install("sentence-transformers==3.0.1")
             .env(TOKENIZERS_PARALLELISM="false")
             .copy(str(ex / "lib"), "/app/lib")
             .publish_port(8080, "tcp"))
    # The Vastfile REQUIREs `verified == true` itself, after its other terms; the SDK
    # has no public way to drop a default, so start from defaults without it.
    image._requires = Query.search_defaults(verified=None)
    image.require(gpu_ram >= 8, num_gpus == 1).require(verified == True)  # noqa: E712
    app.configure_autoscaling(cold_workers=2, max_workers=16, min_load=50, cold_mult=2.0)
    # The package travels whole: bind the folder (the SDK's packaging takes a package path).
    return bind(app, ex / "embed/embedder", "embedder")


@dataclass(frozen=True)
class Case:
    example: str
    sdk_program: Callable[[Path, str, str | None], SdkDeployment]
    api_url: str
    autoscaler_url: str | None  # None: the SDK's default (the prod autoscaler)


CASES = [
    Case("llm", sdk_llm, urls.DEFAULT_API_URL, None),
    Case("whisper", sdk_whisper, LOOPBACK_API, LOOPBACK_AUTOSCALER),
    Case("imagegen", sdk_imagegen, urls.DEFAULT_API_URL, LOOPBACK_AUTOSCALER),
    Case("embed", sdk_embed, LOOPBACK_API, None),
]


def ports_sorted(env: str) -> str:
    """The SDK's env with its ``-p`` options in vastbuild's order (by number, then protocol)."""
    options = re.findall(r"-[pe] \S+", env)
    assert " ".join(options) == env, f"unexpected env shape: {env!r}"
    ports = [option for option in options if option.startswith("-p ")]
    ports.sort(key=lambda option: (int(option.split(":")[0][3:]), option.split("/")[-1]))
    return " ".join(ports + [option for option in options if option.startswith("-e ")])


TERM = re.compile(r"(\w+)(>=|<=|!=|=|<|>| in | notin )(\S+)")


def terms(search: str) -> list[tuple[str, str, str]]:
    found = TERM.findall(search)
    assert " ".join(column + op + value for column, op, value in found) == search
    return found


def assert_search_equal_but_units(ours: str, sdk: str) -> None:
    """Equal term by term, except that the SDK sends RAM and duration divided by the
    server's multiplier (it sends ``gpu_ram>=0.024`` for 24 GB; we send ``gpu_ram>=24``)."""
    multipliers = catalog().unit_multipliers
    our_terms, sdk_terms = terms(ours), terms(sdk)
    assert [t[:2] for t in our_terms] == [t[:2] for t in sdk_terms]
    for (column, _, our_value), (_, _, sdk_value) in zip(our_terms, sdk_terms, strict=True):
        if column in multipliers:
            assert float(our_value) == pytest.approx(float(sdk_value) * multipliers[column])
        else:
            assert our_value == sdk_value, column


def sdk_tar_files(path: Path) -> dict[str, bytes]:
    """Regular files of a deployment tarball by the path the worker extracts them to."""
    files: dict[str, bytes] = {}
    with tarfile.open(path, "r:gz") as archive:
        for member in archive.getmembers():
            if member.isfile():
                data = archive.extractfile(member)
                assert data is not None
                name = member.name[2:] if member.name.startswith("./") else member.name
                files[name] = data.read()
    return files


def load_example(examples: Path, case: Case) -> Deployment:
    return load(examples / case.example / "Vastfile")


@pytest.mark.parametrize("case", CASES, ids=[case.example for case in CASES])
def test_config_json_is_the_sdks_byte_for_byte(examples: Path, tmp_path: Path,
                                               case: Case) -> None:
    model = load_example(examples, case)
    app = case.sdk_program(examples, case.api_url, case.autoscaler_url)
    assert isinstance(app.name, str) and app._image is not None
    sdk_config = serialize_config(app._collate_config(app.name, app._image)).encode("utf-8")
    assert wire.config_json(model) == sdk_config
    # ... and it is what the SDK really writes into its tarball
    sdk_tarball = tmp_path / "sdk.tar.gz"
    app._into_deployment_config_and_tarball(str(sdk_tarball))
    assert sdk_tar_files(sdk_tarball)["config.json"] == wire.config_json(model)


@pytest.mark.parametrize("case", CASES, ids=[case.example for case in CASES])
def test_registration_body_is_the_sdks_but_for_documented_differences(
        examples: Path, tmp_path: Path, case: Case) -> None:
    model = load_example(examples, case)
    app = case.sdk_program(examples, case.api_url, case.autoscaler_url)
    sdk_body = app._into_deployment_config_and_tarball(str(tmp_path / "sdk.tar.gz")).to_dict()
    ours = wire.deployment_config(
        model, file_hash=sdk_body["file_hash"], file_size=sdk_body["file_size"],
        api_url=case.api_url, autoscaler_url=case.autoscaler_url or urls.DEFAULT_AUTOSCALER_URL)

    assert list(ours) == list(sdk_body)  # same fields, same order
    assert ours["env"] == ports_sorted(sdk_body["env"])
    assert_search_equal_but_units(str(ours["search_params"]), sdk_body["search_params"])
    rest = [key for key in ours if key not in ("env", "search_params")]
    assert {key: ours[key] for key in rest} == {key: sdk_body[key] for key in rest}


def test_sdk_default_autoscaler_is_ours() -> None:
    app = sdk_client(name="probe")
    assert app.autoscaler_url == urls.DEFAULT_AUTOSCALER_URL
    assert app.webserver_url == urls.DEFAULT_API_URL


def test_search_params_equal_the_sdks_given_server_units() -> None:
    """The only unit difference is the SDK's division: hand the SDK the server's own
    units (MB, seconds) and its string is exactly ours."""
    sdk = Query.search_defaults().extend(gpu_ram >= 48_000).extend(cpu_ram >= 500)
    sdk.extend(duration >= 3 * 86_400).extend(gpu_name.in_([RTX_4090]))
    model_terms = (
        SearchTerm("verified", "eq", True), SearchTerm("rentable", "eq", True),
        SearchTerm("rented", "eq", False), SearchTerm("gpu_ram", "gte", 48),
        SearchTerm("cpu_ram", "gte", 0.5), SearchTerm("duration", "gte", 3.0),
        SearchTerm("gpu_name", "in", ("RTX 4090",)),
    )
    assert " ".join(wire.search_term(term) for term in model_terms) == sdk.unparse_query()


# The tarball: vastbuild's against the SDK's, and unpacked by the SDK's worker bootstrap.


def build_gz(model: Deployment, tmp_path: Path) -> Path:
    (result,) = build([model], cache_dir=tmp_path / "cache", outdir=tmp_path / "out",
                      formats=("gz",))
    return result.artifacts["gz"]


@pytest.mark.parametrize("case", CASES, ids=[case.example for case in CASES])
def test_tarball_holds_the_files_the_sdk_packs(examples: Path, tmp_path: Path,
                                               case: Case) -> None:
    """Same paths, same bytes: the worker ends up with the same files either way."""
    model = load_example(examples, case)
    app = case.sdk_program(examples, case.api_url, case.autoscaler_url)
    sdk_tarball = tmp_path / "sdk.tar.gz"
    app._into_deployment_config_and_tarball(str(sdk_tarball))
    assert sdk_tar_files(build_gz(model, tmp_path)) == sdk_tar_files(sdk_tarball)


def unpack_like_a_worker(tarball: Path, workdir: Path, monkeypatch: pytest.MonkeyPatch
                         ) -> Config:
    """What the bootstrap does before installing anything: extract in its working
    folder, then read config.json."""
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    serve_deployment.extract_tarball(str(tarball))
    return serve_deployment.get_config("config.json")


def test_worker_bootstrap_unpacks_an_example(examples: Path, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """imagegen COPYs to a relative dst, so it unpacks safely into a scratch folder."""
    model = load(examples / "imagegen" / "Vastfile")
    tarball = build_gz(model, tmp_path)
    worker = tmp_path / "worker"
    config = unpack_like_a_worker(tarball, worker, monkeypatch)
    assert config == Config(
        "sdxl-images", ["diffusers==0.30.0", "accelerate", "safetensors"], [], [],
        [["python", "-c", "import torch; print(torch.cuda.is_available())"],
         "pip cache purge || true"])
    assert (worker / "deployment.py").read_bytes() == \
        (examples / "imagegen" / "imagegen.py").read_bytes()
    for name in ("__init__.py", "timing.py"):
        assert (worker / "lib/common" / name).read_bytes() == \
            (examples / "lib/common" / name).read_bytes()


def test_worker_bootstrap_unpacks_a_package_with_copies(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    ws = tmp_path / "ws"
    (ws / "svc").mkdir(parents=True)
    (ws / "vastbuild.toml").write_text("")
    (ws / "svc" / "__init__.py").write_text(
        "from vastai.serverless.remote import Deployment\n\n"
        'app = Deployment(name="svc")\n\nfrom . import handlers  # noqa\n')
    (ws / "svc" / "handlers.py").write_text(
        "from . import app\n\n\n@app.remote\nasync def ping() -> str:\n    return 'pong'\n")
    (ws / "assets" / "nested").mkdir(parents=True)
    (ws / "assets" / "nested" / "weights.bin").write_bytes(bytes(range(256)) * 64)
    (ws / "assets" / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (ws / "assets" / "run.sh").chmod(0o755)
    (ws / "notes.txt").write_text("ünïcode notes\n")
    (ws / "Vastfile").write_text(
        "DEPLOYMENT svc\n"
        "FROM vastai/pytorch:@vastai-automatic-tag\n"
        "CODE svc\n"
        "PIP requests==2.32.3\n"
        "APT curl\n"
        "ENV GREETING=\"hello world\" MODE=prod\n"
        "RUN echo ready\n"
        "COPY assets data/assets\n"
        "COPY notes.txt etc/notes.txt\n")
    tarball = build_gz(load(ws / "Vastfile"), tmp_path)
    worker = tmp_path / "worker"
    config = unpack_like_a_worker(tarball, worker, monkeypatch)

    assert config == Config("svc", ["requests==2.32.3"], ["curl"],
                            [["GREETING", "hello world"], ["MODE", "prod"]], ["echo ready"])
    assert (worker / "deployment" / "__init__.py").read_bytes() == \
        (ws / "svc" / "__init__.py").read_bytes()
    assert (worker / "deployment" / "handlers.py").is_file()
    assert (worker / "data/assets/nested/weights.bin").read_bytes() == bytes(range(256)) * 64
    assert (worker / "data/assets/run.sh").stat().st_mode & 0o111
    assert (worker / "etc/notes.txt").read_text() == "ünïcode notes\n"
    extracted = sorted(p.relative_to(worker).as_posix() for p in worker.rglob("*"))
    assert extracted == [
        "config.json", "data", "data/assets", "data/assets/nested",
        "data/assets/nested/weights.bin", "data/assets/run.sh", "deployment",
        "deployment/__init__.py", "deployment/handlers.py", "etc", "etc/notes.txt",
    ]
