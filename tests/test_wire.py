"""The wire formats from hand-built models: config.json, env, search_params, PUT body."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

pytest.importorskip("vastai", reason="the vastai SDK (in the test extra) is not installed")

from vastai.data.deployment import DeploymentConfig
from vastai.data.query import Query
from vastai.serverless.remote.base import Config
from vastai.serverless.remote.utils import serialize_config

from vastbuild import wire
from vastbuild.diagnostics import Span
from vastbuild.model import CodeSource, Deployment, SearchTerm
from vastbuild.urls import DEFAULT_API_URL, DEFAULT_AUTOSCALER_URL

ROOT = Path("/ws")
SPAN = Span("Vastfile", 1, 1, 1, 2)
DEFAULTS = (
    SearchTerm("verified", "eq", True),
    SearchTerm("rentable", "eq", True),
    SearchTerm("rented", "eq", False),
)


def make(**changes: object) -> Deployment:
    """A minimal valid model; tests change only what they look at."""
    base = Deployment(
        vastfile=ROOT / "Vastfile",
        root=ROOT,
        name="app",
        config_name="",
        image="vastai/pytorch:@vastai-automatic-tag",
        code=CodeSource(ROOT / "app.py", "module", SPAN),
        search=DEFAULTS,
    )
    return dataclasses.replace(base, **changes)


# config.json -----------------------------------------------------------------


def test_config_json_key_order_and_spelling() -> None:
    d = make(
        config_name="qwen-chat",
        pip_installs=("vllm==0.6.3", "transformers"),
        apt_gets=("ffmpeg",),
        envs=(("MODEL_NAME", "Qwen/Qwen3-0.6B"), ("HF_HOME", "/data/hf")),
        runs=("mkdir -p /data/hf", ("python", "-c", "print('ready')")),
    )
    assert wire.config_json(d) == (
        b'{"name": "qwen-chat", "pip_installs": ["vllm==0.6.3", "transformers"], '
        b'"apt_gets": ["ffmpeg"], "envs": [["MODEL_NAME", "Qwen/Qwen3-0.6B"], '
        b'["HF_HOME", "/data/hf"]], "runs": ["mkdir -p /data/hf", '
        b"[\"python\", \"-c\", \"print('ready')\"]]}"
    )


def test_config_json_unnamed_deployment_is_empty_name() -> None:
    document = json.loads(wire.config_json(make()))
    assert document == {"name": "", "pip_installs": [], "apt_gets": [], "envs": [], "runs": []}
    assert list(document) == ["name", "pip_installs", "apt_gets", "envs", "runs"]


def test_config_json_equals_sdk_serializer_with_non_ascii() -> None:
    d = make(
        config_name="café",
        envs=(("GREETING", "grüß dich \"quoted\" \\ back"),),
        runs=("echo 'ünïcode' && true", ("printf", "%s\n", "tab\there")),
    )
    sdk = Config(
        "café",
        [],
        [],
        [("GREETING", "grüß dich \"quoted\" \\ back")],
        ["echo 'ünïcode' && true", ("printf", "%s\n", "tab\there")],
    )
    assert wire.config_json(d) == serialize_config(sdk).encode("utf-8")


# env -------------------------------------------------------------------------


def test_docker_env_defaults() -> None:
    env = wire.docker_env(make(), DEFAULT_API_URL, DEFAULT_AUTOSCALER_URL)
    assert env == "-p 3000:3000/tcp -e REPORT_ADDR=https://run.vast.ai"


def test_docker_env_ports_custom_api_and_venv() -> None:
    d = make(ports=((3000, "tcp"), (8000, "tcp"), (8443, "udp")), venv="/venv/main")
    env = wire.docker_env(d, "http://127.0.0.1:9000", "http://127.0.0.1:9001")
    assert env == (
        "-p 3000:3000/tcp -p 8000:8000/tcp -p 8443:8443/udp "
        "-e REPORT_ADDR=http://127.0.0.1:9001 -e VAST_API_URL=http://127.0.0.1:9000 "
        "-e ENV_PATH=/venv/main"
    )


def test_docker_env_system_python() -> None:
    env = wire.docker_env(make(venv=""), DEFAULT_API_URL, "https://run-alpha.vast.ai")
    assert env == (
        "-p 3000:3000/tcp -e REPORT_ADDR=https://run-alpha.vast.ai "
        "-e USE_SYSTEM_PYTHON=true -e UV_SYSTEM_PYTHON=1 -e UV_BREAK_SYSTEM_PACKAGES=1"
    )


# search_params ---------------------------------------------------------------


def test_search_params_defaults_only() -> None:
    assert wire.search_params(make()) == "verified=true rentable=true rented=false"


def test_search_params_units_stay_in_gb_and_days() -> None:
    d = make(
        search=(
            *DEFAULTS,
            SearchTerm("gpu_ram", "gte", 48),
            SearchTerm("cpu_ram", "gte", 32.0),
            SearchTerm("gpu_total_ram", "lt", 0.5),
            SearchTerm("duration", "gte", 3.0000000000000004),
        )
    )
    assert wire.search_params(d).split(" ")[3:] == [
        "gpu_ram>=48",
        "cpu_ram>=32",
        "gpu_total_ram<0.5",
        "duration>=3",
    ]


@pytest.mark.parametrize(
    ("term", "text"),
    [
        (SearchTerm("gpu_name", "eq", "H100 SXM"), "gpu_name=H100_SXM"),
        (SearchTerm("gpu_name", "in", ("RTX 4090", "RTX 5090")), "gpu_name in RTX_4090,RTX_5090"),
        (SearchTerm("gpu_name", "notin", ("RTX 3060",)), "gpu_name notin RTX_3060"),
        (SearchTerm("geolocation", "in", ("US", "CA")), "geolocation in US,CA"),
        (SearchTerm("num_gpus", "neq", 2), "num_gpus!=2"),
        (SearchTerm("reliability", "gt", 0.98), "reliability>0.98"),
        (SearchTerm("dph_total", "lte", 2.0), "dph_total<=2.0"),
        (SearchTerm("cpu_cores", "lt", 64), "cpu_cores<64"),
        (SearchTerm("datacenter", "eq", False), "datacenter=false"),
        (SearchTerm("verified", "neq", True), "verified!=true"),
        (SearchTerm("num_gpus", "in", (1, 2, 4)), "num_gpus in 1,2,4"),
    ],
)
def test_search_term_spelling(term: SearchTerm, text: str) -> None:
    assert wire.search_term(term) == text


def test_search_params_matches_sdk_outside_unit_columns() -> None:
    terms = [
        ("gpu_name", "in", ("RTX 4090", "L40S")),
        ("reliability", "gt", 0.98),
        ("dph_total", "lt", 2.0),
        ("num_gpus", "eq", 1),
        ("geolocation", "notin", ("CN",)),
    ]
    d = make(search=(*DEFAULTS, *(SearchTerm(c, o, v) for c, o, v in terms)))
    sdk = Query.search_defaults()
    for column, op, value in terms:
        sdk.extend(Query({column: {op: list(value) if isinstance(value, tuple) else value}}))
    assert wire.search_params(d) == sdk.unparse_query()


# the PUT body ----------------------------------------------------------------


def test_deployment_config_minimal_leaves_out_empty_fields() -> None:
    body = wire.deployment_config(
        make(),
        file_hash="ab" * 32,
        file_size=1234,
        api_url=DEFAULT_API_URL,
        autoscaler_url=DEFAULT_AUTOSCALER_URL,
    )
    assert body == {
        "name": "app",
        "image": "vastai/pytorch:@vastai-automatic-tag",
        "file_hash": "ab" * 32,
        "file_size": 1234,
        "env": "-p 3000:3000/tcp -e REPORT_ADDR=https://run.vast.ai",
        "tag": "default",
        "search_params": "verified=true rentable=true rented=false",
        "storage": 50,
    }
    assert list(body)[:4] == ["name", "image", "file_hash", "file_size"]


def test_deployment_config_field_order_is_the_sdks() -> None:
    d = make(
        name="qwen-chat",
        tag="prod",
        version_label="v3",
        ttl=7200,
        storage=80,
        # set in another order than the SDK's dataclass lays them out
        autoscale=(("inactivity_timeout", 600), ("target_util", 0.8), ("cold_workers", 1),
                   ("max_workers", 4), ("cold_mult", 2.0), ("min_load", 10),
                   ("max_queue_time", 30.0), ("target_queue_time", 5.0),
                   ("min_cold_load", 5)),
    )
    body = wire.deployment_config(
        d, file_hash="00" * 32, file_size=1, api_url=DEFAULT_API_URL,
        autoscaler_url=DEFAULT_AUTOSCALER_URL,
    )
    sdk = DeploymentConfig(
        name="qwen-chat",
        image=d.image,
        file_hash="00" * 32,
        file_size=1,
        env=body["env"],  # type: ignore[arg-type]
        tag="prod",
        search_params=body["search_params"],  # type: ignore[arg-type]
        storage=80,
        ttl=7200,
        version_label="v3",
        **dict(d.autoscale),  # type: ignore[arg-type]
    ).to_dict()
    assert list(body.items()) == list(sdk.items())
    assert body["inactivity_timeout"] == 600 and body["target_util"] == 0.8


def test_deployment_config_body_is_json_stable() -> None:
    """The body goes out as JSON: two computations give the same bytes."""
    d = make(autoscale=(("max_workers", 8), ("cold_workers", 0)), ttl=90.5)
    first = wire.deployment_config(
        d, file_hash="f" * 64, file_size=7, api_url="http://localhost:1",
        autoscaler_url="http://localhost:2",
    )
    second = wire.deployment_config(
        d, file_hash="f" * 64, file_size=7, api_url="http://localhost:1",
        autoscaler_url="http://localhost:2",
    )
    assert json.dumps(first) == json.dumps(second)
    assert list(first)[-3:] == ["ttl", "cold_workers", "max_workers"]
    assert "-e VAST_API_URL=http://localhost:1" in first["env"]  # type: ignore[operator]
