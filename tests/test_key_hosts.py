"""Where requests go, and which carry the key: real servers on loopback for every host.

A recorder stands in for every host vastbuild must not reach (a third host a
redirect points at, a forward proxy that catches anything not on loopback), a
relay for an autoscaler given by ``VAST_AUTOSCALER_URL``; the dev server is the
API. The README's dev-server walk (deploy, change the code, deploy) must reach
nothing but loopback, with no ``--autoscaler-url``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from build_helpers import vastbuild
from conftest import RunningDevServer
from loopback_http import serving
from test_deploy import copy_examples, edit

from vastbuild.vast.client import RetryPolicy, VastApiError, VastClient


def _deploy(root: Path, server: RunningDevServer, env: dict[str, str | None]
            ) -> tuple[int, str, str]:
    """The README's command: ``VAST_API_KEY=... vastbuild deploy --api-url URL llm``."""
    result = vastbuild("deploy", "--api-url", server.url, "llm", cwd=root, timeout=180,
                       env={"VAST_API_KEY": server.keys[0], "VAST_API_URL": None,
                            "VAST_AUTOSCALER_URL": None, **env})
    assert result.returncode == 0, result.stdout + result.stderr
    return result.returncode, result.stdout, result.stderr


def test_the_readme_dev_server_walk_reaches_nothing_but_loopback(
        dev_server: RunningDevServer, tmp_path: Path) -> None:
    """Every proxy variable points at a recorder, loopback excepted: a request to any
    other host (run.vast.ai for the rolling update, say) would reach it."""
    root = copy_examples(tmp_path)
    with serving() as trap:
        proxied: dict[str, str | None] = {
            name: trap.url for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY",
                                        "http_proxy", "https_proxy", "all_proxy")}
        proxied.update(NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost",
                       VASTBUILD_CACHE_DIR=str(tmp_path / "cache"))
        _, first, _ = _deploy(root, dev_server, proxied)
        edit(root / "llm/app.py", "MODEL = ", "TIMEOUT = 30\nMODEL = ")
        _, second, _ = _deploy(root, dev_server, proxied)
        assert trap.seen == [], [(s.method, s.target) for s in trap.seen]
    assert "Tier 4 created" in first
    assert "Tier 2 soft_update" in second and "rolling   update started" in second, second


def test_vast_autoscaler_url_is_where_workers_report_and_the_update_goes(
        dev_server: RunningDevServer, tmp_path: Path) -> None:
    root = copy_examples(tmp_path)
    with serving(upstream=dev_server.url) as scaler:
        env: dict[str, str | None] = {"VAST_AUTOSCALER_URL": scaler.url,
                                      "VASTBUILD_CACHE_DIR": str(tmp_path / "cache")}
        result = vastbuild("deploy", "--api-url", dev_server.url, "llm", cwd=root,
                           env={"VAST_API_KEY": dev_server.keys[0], "VAST_API_URL": None,
                                **env}, timeout=180)
        assert result.returncode == 0, result.stderr
        edit(root / "llm/app.py", "MODEL = ", "TIMEOUT = 30\nMODEL = ")
        result = vastbuild("-v", "deploy", "--api-url", dev_server.url, "llm", cwd=root,
                           env={"VAST_API_KEY": dev_server.keys[0], "VAST_API_URL": None,
                                **env}, timeout=180)
        assert result.returncode == 0, result.stderr
        assert [s.target for s in scaler.seen] and all(
            "update_workers" in s.target for s in scaler.seen), scaler.seen
        assert all(s.headers.get("Authorization") == f"Bearer {dev_server.keys[0]}"
                   for s in scaler.seen)


def test_a_redirect_to_another_host_carries_no_key() -> None:
    key = "vbkey-redirect-0123456789abcdef"
    with serving() as third, serving(redirect_to=third.url) as api:
        client = VastClient(key, api_url=api.url, autoscaler_url=api.url,
                            retry=RetryPolicy(attempts=1))
        with client, pytest.raises(VastApiError) as refused:
            client.list_deployments()
        assert api.seen[0].headers["Authorization"] == f"Bearer {key}"
        assert third.seen, "the redirect was followed"
        for seen in third.seen:
            assert "Authorization" not in seen.headers
            assert key not in str(seen.headers) and key not in seen.target
    assert key not in str(refused.value)


@pytest.mark.parametrize("command", ["build", "hash", "plan", "deploy"])
def test_a_url_with_credentials_is_refused_without_repeating_them(
        tmp_path: Path, command: str) -> None:
    root = copy_examples(tmp_path)
    result = vastbuild(command, "--api-url", "ftp://me:pw-0123@x", "llm", cwd=root,
                       env={"VAST_API_KEY": "k3y-never-used"})
    assert result.returncode == 2, result.stderr
    assert "pw-0123" not in result.stderr + result.stdout and "--api-url" in result.stderr
    assert not (root / "dist").exists()
