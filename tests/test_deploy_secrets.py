"""SECRET and LOGIN through ``deploy``: a real dev-server process behind a recording
relay on loopback, the CLI in its own process, and the vastai SDK for the body.

One scenario runs once per module (first deploy, unchanged, changed secret,
changed registry password, a plan without values, ``-vv`` traces) with a planted
API key and planted secret values; the tests then check what each request
carried, where each went, what the server shows, and that neither the values
nor the key are anywhere the run left files or output.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from conftest import RunningDevServer, StartDevServer
from loopback_http import Seen, serving
from test_deploy import Workspace, copy_examples, edit
from test_secrets import files_holding

pytest.importorskip("vastai", reason="the vastai SDK (in the test extra) is not installed")

from test_sdk_compat import assert_search_equal_but_units, ports_sorted, sdk_llm

IMAGE = "ghcr.io/acme/llm:1.4"
REGISTRATION = "/api/v0/deployments/"


@dataclass
class Scenario:
    ws: Workspace
    server: RunningDevServer
    relay: list[Seen]
    uploads: list[Seen]
    relay_url: str
    upload_url: str
    hf_token: str
    hf_token_2: str
    ghcr: str
    ghcr_2: str
    config_home: Path
    #: (what was run, its parsed --json answer) in order
    steps: list[tuple[str, dict[str, dict[str, object]]]]
    missing: str
    build_out: Path

    def registrations(self) -> list[dict[str, object]]:
        return [json.loads(s.body) for s in self.relay
                if s.method == "PUT" and s.target == REGISTRATION]


def _run(ws: Workspace, env: dict[str, str], *args: str, check: bool = True,
         global_args: tuple[str, ...] = ()) -> tuple[int, str, str]:
    from build_helpers import vastbuild

    result = vastbuild(*global_args, *args, "--api-url", ws.url, "--autoscaler-url", ws.url,
                       cwd=ws.root, timeout=180,
                       env={"VAST_API_URL": None, "VAST_API_KEY": ws.keys[0],
                            "VASTBUILD_CACHE_DIR": str(ws.cache), "HF_TOKEN": None,
                            "GHCR_TOKEN": None, **env})
    ws.transcript.append(f"$ vastbuild {' '.join(args)}\n{result.stdout}{result.stderr}")
    if check and result.returncode != 0:
        pytest.fail(f"vastbuild {' '.join(args)} exited {result.returncode}:\n"
                    f"{result.stdout}\n{result.stderr}")
    return result.returncode, result.stdout, result.stderr


@pytest.fixture(scope="module")
def scenario(start_dev_server: StartDevServer, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[Scenario]:
    tmp = tmp_path_factory.mktemp("secrets")
    key = f"vbkey-{secrets.token_hex(20)}"
    server = start_dev_server(keys=(key, f"vbother-{secrets.token_hex(8)}"))
    root = copy_examples(tmp)
    vastfile = root / "llm/Vastfile"
    edit(vastfile, "FROM vastai/vllm:@vastai-automatic-tag STORAGE 80GB",
         f"FROM {IMAGE} STORAGE 80GB\nLOGIN acme-bot PASSWORD GHCR_TOKEN\nSECRET HF_TOKEN")
    hf, hf2 = f"hf_{secrets.token_hex(16)}", f"hf_{secrets.token_hex(16)}"
    ghcr, ghcr2 = f"ghp_{secrets.token_hex(16)}", f"ghp_{secrets.token_hex(16)}"
    secret_dir = tmp / "outside"
    secret_dir.mkdir()
    ghcr_file = secret_dir / "ghcr"
    ghcr_file.write_text(ghcr + "\n")
    dotenv = secret_dir / "prod.env"
    dotenv.write_text(f"# the new token\nexport HF_TOKEN='{hf2}'\n")
    config_home = tmp / "config"
    steps: list[tuple[str, dict[str, dict[str, object]]]] = []
    with serving(upstream=server.url) as uploads, \
            serving(upstream=server.url, upload_via=uploads.url) as relay:
        ws = Workspace(root=root, cache=tmp / "cache", url=relay.url, keys=server.keys)
        base = {"XDG_CONFIG_HOME": str(config_home)}
        with_hf = {**base, "HF_TOKEN": hf}
        given = ("--secret", f"GHCR_TOKEN=@{ghcr_file}")

        def step(title: str, command: str, env: dict[str, str], *extra: str) -> None:
            _, out, _ = _run(ws, env, command, "llm", "--json", *extra, global_args=("-vv",))
            steps.append((title, {t["label"].removeprefix("//"): t
                                  for t in json.loads(out)["targets"]}))

        code, _, missing = _run(ws, base, "deploy", "llm", *given, check=False)
        assert code == 1, missing
        step("plan first", "plan", with_hf, *given)
        step("first deploy", "deploy", with_hf, *given)
        step("unchanged plan", "plan", with_hf, *given)
        step("unchanged deploy", "deploy", with_hf, *given)
        step("plan without values", "plan", base)
        step("new token plan", "plan", base, "--secrets-file", str(dotenv), *given)
        step("new token deploy", "deploy", base, "--secrets-file", str(dotenv), *given)
        ghcr_file.write_text(ghcr2)
        step("new password plan", "plan", base, "--secrets-file", str(dotenv), *given)
        step("new password deploy", "deploy", base, "--secrets-file", str(dotenv), *given)
        build_out = tmp / "dist"
        _run(ws, base, "build", "llm", "-o", str(build_out))
        _run(ws, base, "hash", "llm")
        yield Scenario(ws=ws, server=server, relay=relay.seen, uploads=uploads.seen,
                       relay_url=relay.url, upload_url=uploads.url, hf_token=hf,
                       hf_token_2=hf2, ghcr=ghcr, ghcr_2=ghcr2, config_home=config_home,
                       steps=steps, missing=missing, build_out=build_out)
    server.stop()


def _step(s: Scenario, title: str) -> dict[str, object]:
    return next(result for name, result in s.steps if name == title)["llm"]


def test_each_change_of_a_secret_is_planned_and_deployed_as_tier_3(s: Scenario) -> None:
    expected = {
        "plan first": (4, "created"), "first deploy": (4, "created"),
        "unchanged plan": (0, "exists"), "unchanged deploy": (0, "exists"),
        "new token plan": (3, "hard_update"), "new token deploy": (3, "hard_update"),
        "new password plan": (3, "hard_update"), "new password deploy": (3, "hard_update"),
    }
    for title, (tier, action) in expected.items():
        got = _step(s, title)
        assert (got["tier"], got["action"]) == (tier, action), (title, got)
    assert _step(s, "new token plan")["reasons"] == ["secret HF_TOKEN changed"]
    assert _step(s, "new password plan")["reasons"] == ["registry password changed"]
    assert _step(s, "new token plan")["certain"] is True
    unknown = _step(s, "plan without values")
    assert unknown["certain"] is False and unknown["tier"] == 0
    assert "secret HF_TOKEN: cannot compare (no value given)" in unknown["reasons"]


def test_a_missing_secret_stops_deploy_naming_it_where_the_vastfile_asks(s: Scenario) -> None:
    assert "llm/Vastfile:5:8: the secret HF_TOKEN has no value" in s.missing, s.missing
    assert "--secret NAME=@FILE" in s.missing and "Traceback" not in s.missing
    # nothing was registered by it: the first registration is the first deploy's
    assert s.registrations()[0]["env"] is not None


def test_the_registration_carries_them_as_the_sdk_would(s: Scenario) -> None:
    """Field for field the SDK's body for the same program with the same image login;
    the secret is the one `-e` the SDK has no way to send."""
    ours = s.registrations()[0]
    app = sdk_llm(s.ws.root, s.relay_url, s.relay_url, IMAGE, docker_login_user="acme-bot",
                  docker_login_pass=s.ghcr, docker_login_repo="ghcr.io")
    os.environ.pop("IS_DEPLOYMENT", None)
    sdk = app._into_deployment_config_and_tarball(str(s.build_out / "sdk.tar.gz")).to_dict()

    assert list(ours) == list(sdk)  # the same fields in the same order
    assert ours["env"] == ports_sorted(sdk["env"]) + f" -e HF_TOKEN={s.hf_token}"
    assert_search_equal_but_units(str(ours["search_params"]), sdk["search_params"])
    same = [k for k in ours if k not in ("env", "search_params", "file_hash", "file_size")]
    assert {k: ours[k] for k in same} == {k: sdk[k] for k in same}
    assert (ours["docker_login_user"], ours["docker_login_pass"], ours["docker_login_repo"]) \
        == ("acme-bot", s.ghcr, "ghcr.io")


def test_the_key_goes_to_the_api_alone_and_the_upload_host_gets_no_key(s: Scenario) -> None:
    assert s.uploads, "the upload went through the second host"
    for seen in s.uploads:
        assert "Authorization" not in seen.headers and seen.method == "POST"
        assert s.ws.keys[0].encode() not in seen.body
    authorized = [seen for seen in s.relay if "Authorization" in seen.headers]
    assert authorized and all(seen.headers["Authorization"] == f"Bearer {s.ws.keys[0]}"
                              for seen in authorized)


def test_the_server_keeps_the_value_and_shows_it_as_stars(s: Scenario) -> None:
    listing = requests.get(f"{s.server.url}/api/v0/deployments/", headers=s.server.auth(),
                           timeout=10).json()
    [record] = [d for d in listing["deployments"] if d["name"] == "qwen-chat"]
    shown = requests.get(f"{s.server.url}/api/v0/deployment/{record['id']}/",
                         headers=s.server.auth(), timeout=10).text
    assert "-e HF_TOKEN=***" in shown
    for value in (s.hf_token, s.hf_token_2, s.ghcr, s.ghcr_2):
        assert value not in shown


def test_the_fingerprint_key_is_the_users_own_and_private(s: Scenario) -> None:
    key = s.config_home / "vastbuild" / "secrets.key"
    assert key.stat().st_mode & 0o777 == 0o600
    assert not any(s.ws.root.rglob("secrets.key"))


def test_no_value_and_no_key_is_left_anywhere(s: Scenario) -> None:
    """Output (with -vv traces of every body), the cache with its deploy records,
    the build's output and the workspace hold none of the four values nor the key;
    the dev server's data holds only the stored env's HF_TOKEN (as Vast keeps what
    it receives) and neither registry password (it keeps a keyed digest)."""
    transcript = "\n".join(s.ws.transcript)
    assert "<redacted>" in transcript  # the -vv traces did print the bodies
    values = (s.hf_token, s.hf_token_2, s.ghcr, s.ghcr_2, s.ws.keys[0])
    for value in values:
        assert value not in transcript
        assert files_holding(value.encode(), s.ws.cache, s.build_out, s.ws.root,
                             s.config_home) == []
    for value in (s.ghcr, s.ghcr_2, s.ws.keys[0]):
        assert files_holding(value.encode(), s.server.data_dir) == []
        assert value not in s.server.output()
    for value in (s.hf_token, s.hf_token_2):
        assert value not in s.server.output()
        held = files_holding(value.encode(), s.server.data_dir)
        assert all(path.name.startswith("state.") or path.suffix in (".db", ".sqlite",
                   ".db-wal", ".sqlite3") for path in held), held


@pytest.fixture
def s(scenario: Scenario) -> Scenario:
    return scenario
