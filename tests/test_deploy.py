"""``vastbuild plan`` and ``deploy`` end to end: the CLI in its own process, a real
dev-server process on loopback, and a copy of the example monorepo edited step by
step through every update tier. Before each deploy, ``plan`` must predict what
the server then does."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from build_helpers import vastbuild
from conftest import RunningDevServer

from vastbuild.vast.client import VastApiError, VastClient

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
TARGETS = ("llm", "embed", "imagegen", "whisper")


@dataclass
class Workspace:
    """A copy of the examples, a cache folder and the server they deploy to."""

    root: Path
    cache: Path
    url: str
    keys: tuple[str, ...]
    #: every command line run, with its stdout and stderr
    transcript: list[str] = field(default_factory=list)

    def run(self, *args: str, key: int = 0, global_args: tuple[str, ...] = (),
            check: bool = True) -> subprocess.CompletedProcess[str]:
        """``vastbuild [global_args] COMMAND ARGS --api-url .. --autoscaler-url ..``."""
        result = vastbuild(*global_args, *args, "--api-url", self.url, "--autoscaler-url",
                           self.url, cwd=self.root, timeout=180,
                           env={"VAST_API_URL": None, "VAST_API_KEY": self.keys[key],
                                "VASTBUILD_CACHE_DIR": str(self.cache)})
        self.transcript.append(f"$ vastbuild {' '.join(args)}\n{result.stdout}{result.stderr}")
        if check and result.returncode != 0:
            pytest.fail(f"vastbuild {' '.join(args)} exited {result.returncode}:\n"
                        f"{result.stdout}\n{result.stderr}")
        return result

    def json(self, *args: str, key: int = 0,
             global_args: tuple[str, ...] = ()) -> dict[str, dict[str, object]]:
        """Run with --json; the targets by their folder name."""
        result = self.run(*args, "--json", key=key, global_args=global_args)
        return {t["label"].removeprefix("//"): t for t in json.loads(result.stdout)["targets"]}


def copy_examples(destination: Path) -> Path:
    """The example monorepo without build leftovers or the plugin (not a deploy target)."""
    root = destination / "examples"
    shutil.copytree(EXAMPLES, root, ignore=shutil.ignore_patterns(
        "__pycache__", "*.pyc", "out", ".vastbuild*", "plugins"))
    return root


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


@dataclass(frozen=True)
class Step:
    """One change to the workspace and what the deploy after it must do to the edited target
    (every other target: exists, Tier 0, nothing uploaded)."""

    title: str
    change: Callable[[Path], None] | None
    target: str | None
    action: str
    tier: int
    uploaded: bool


WALK = (
    Step("first deploy", None, None, "created", 4, True),
    Step("nothing changed", None, None, "exists", 0, False),
    Step("whisper scales wider",
         lambda root: edit(root / "whisper/Vastfile", "max_workers=8", "max_workers=12"),
         "whisper", "autoscale_update", 1, False),
    Step("llm code changes",
         lambda root: edit(root / "llm/app.py", "MODEL = ", "TIMEOUT = 30\nMODEL = "),
         "llm", "soft_update", 2, True),
    Step("embed moves to another image",
         lambda root: edit(root / "embed/Vastfile", "FROM vastai/pytorch:@vastai-automatic-tag",
                           "FROM vastai/pytorch:2.5.1-cuda-12.1"),
         "embed", "hard_update", 3, False),
    Step("imagegen gets a canary tag",
         lambda root: edit(root / "imagegen/Vastfile", "VERSION v3", "TAG canary\nVERSION v3"),
         "imagegen", "created", 4, False),
)


def expected(step: Step, target: str) -> tuple[str, int, bool]:
    if step.target is None or step.target == target:
        return step.action, step.tier, step.uploaded
    return "exists", 0, False


def walk(ws: Workspace, global_args: tuple[str, ...] = (),
         on_step: Callable[[Step, dict[str, dict[str, object]]], None] | None = None) -> None:
    """Every step: change, plan, deploy; plan and deploy must both say what the step expects."""
    for step in WALK:
        if step.change:
            step.change(ws.root)
        planned = ws.json("plan", *TARGETS, global_args=global_args)
        deployed = ws.json("deploy", *TARGETS, global_args=global_args)
        assert "warning:" not in ws.transcript[-1], ws.transcript[-1]
        for target in TARGETS:
            action, tier, uploaded = expected(step, target)
            assert (planned[target]["action"], planned[target]["tier"]) == (action, tier), \
                f"{step.title}: plan of {target}"
            assert planned[target]["certain"] is True, f"{step.title}: {planned[target]}"
            got = deployed[target]
            assert (got["action"], got["tier"], got["uploaded"]) == (action, tier, uploaded), \
                f"{step.title}: deploy of {target}: {got}"
            assert got["reasons"] == planned[target]["reasons"]
        if on_step:
            on_step(step, deployed)


@pytest.fixture
def workspace(tmp_path: Path, dev_server: RunningDevServer) -> Workspace:
    return Workspace(root=copy_examples(tmp_path), cache=tmp_path / "cache", url=dev_server.url,
                     keys=dev_server.keys)


def test_the_walk_through_every_tier_is_predicted_by_plan(workspace: Workspace):
    client = VastClient(workspace.keys[0], api_url=workspace.url, autoscaler_url=workspace.url)
    seen: dict[str, dict[str, object]] = {}

    def check(step: Step, deployed: dict[str, dict[str, object]]) -> None:
        if step.tier == 2:
            llm = deployed["llm"]
            groups = {g["id"]: g for g in client.list_workergroups()}
            assert groups[llm["workergroup_id"]]["rolling_updates"] == 1
        if step.title == "imagegen gets a canary tag":
            canary, default = deployed["imagegen"], seen["imagegen"]
            assert canary["tag"] == "canary"
            assert canary["endpoint_id"] != default["endpoint_id"]
            assert canary["deployment_id"] != default["deployment_id"]
        seen.update(deployed)

    walk(workspace, on_step=check)
    records = client.list_deployments()
    assert sorted((r["name"], r["tag"]) for r in records) == sorted([
        ("qwen-chat", "default"), ("embeddings", "default"), ("sdxl-images", "default"),
        ("sdxl-images", "canary"), ("whisper-stt", "prod")])
    # each one's current content is downloadable, byte for byte what was built
    for record in records:
        blob = requests.get(client.get_download_url(record["id"]), timeout=10)
        assert blob.status_code == 200 and blob.content[:2] == b"\x1f\x8b"


def test_the_summary_fits_a_screen_and_names_tier_action_endpoint_upload(workspace: Workspace):
    first = workspace.run("deploy", "llm")
    lines = first.stdout.splitlines()
    assert lines[0].startswith("//llm  qwen-chat:default  Tier 4 created")
    assert any(line.split()[:1] == ["endpoint"] for line in lines)
    assert any(line.split()[:1] == ["uploaded"] and "in" in line for line in lines)
    assert lines[-1].startswith("deployed 1 target in ")
    again = workspace.run("deploy", "llm")
    assert "Tier 0 exists" in again.stdout
    assert "uploaded  nothing" in again.stdout


def test_a_dry_run_reads_but_changes_nothing(workspace: Workspace):
    dry = workspace.json("deploy", "llm", "--dry-run")
    assert (dry["llm"]["action"], dry["llm"]["uploaded"]) == ("created", False)
    client = VastClient(workspace.keys[0], api_url=workspace.url, autoscaler_url=workspace.url)
    assert client.list_deployments() == []
    assert not (workspace.cache / "deploys").exists()


def test_plan_says_why_in_words(workspace: Workspace):
    workspace.run("deploy", "llm")
    edit(workspace.root / "llm/app.py", "MODEL = ", "TIMEOUT = 30\nMODEL = ")
    edit(workspace.root / "llm/Vastfile", "max_workers=4", "max_workers=6")
    edit(workspace.root / "llm/Vastfile", "STORAGE 80GB", "STORAGE 100GB")
    planned = workspace.run("plan", "llm").stdout
    assert "Tier 3 hard_update" in planned
    assert "why       code: app.py changed" in planned
    assert "why       autoscale: max_workers 4 → 6" in planned
    assert "why       storage changed: 80 → 100 GB" in planned


def test_a_second_key_sees_nothing_of_the_first(workspace: Workspace,
                                               dev_server: RunningDevServer) -> None:
    deployed = workspace.json("deploy", "llm")["llm"]
    ids = int(deployed["deployment_id"])  # type: ignore[arg-type]
    owner = VastClient(workspace.keys[0], api_url=workspace.url, autoscaler_url=workspace.url)
    download_url = owner.get_download_url(ids)
    [record] = owner.list_deployments()

    stranger = VastClient(workspace.keys[1], api_url=workspace.url, autoscaler_url=workspace.url)
    assert stranger.list_deployments() == []
    assert stranger.list_endpoints() == []
    assert stranger.list_workergroups() == []
    for call in (stranger.get_deployment, stranger.get_versions, stranger.get_download_url,
                 stranger.heartbeat, stranger.delete_deployment):
        with pytest.raises(VastApiError) as caught:
            call(ids)
        assert caught.value.status in (403, 404), call.__name__
    with pytest.raises(VastApiError) as caught:
        stranger.update_workers(int(deployed["workergroup_id"]))  # type: ignore[arg-type]
    assert caught.value.status in (403, 404)
    # the blob by its key, with the stranger's key instead of a signature
    unsigned = requests.get(download_url.split("?")[0], headers=dev_server.auth(1), timeout=10)
    assert unsigned.status_code in (403, 404)
    # and the stranger plans the same Vastfile as new: it sees no deployment of that name
    assert workspace.json("plan", "llm", key=1)["llm"]["action"] == "created"
    assert owner.get_deployment(ids)["file_hash"] == record["file_hash"]

    for method, route in (("GET", "/api/v0/deployments/"), ("PUT", "/api/v0/deployments/"),
                          ("GET", f"/api/v0/deployment/{ids}/"),
                          ("GET", f"/api/v0/deployment/{ids}/download_url/"),
                          ("GET", "/api/v0/endptjobs/"), ("POST", "/update_workers/")):
        anonymous = requests.request(method, workspace.url + route, json={}, timeout=10)
        assert anonymous.status_code == 401, route


def test_no_api_key_is_a_usage_error_naming_both_ways(workspace: Workspace):
    result = vastbuild("plan", "llm", "--api-url", workspace.url, cwd=workspace.root,
                       env={"VAST_API_KEY": None}, timeout=60)
    assert result.returncode == 2
    assert "VAST_API_KEY" in result.stderr and "--api-key-file" in result.stderr


def test_the_key_can_come_from_a_file(workspace: Workspace, tmp_path: Path):
    key_file = tmp_path / "key"
    key_file.write_text(workspace.keys[0] + "\n")
    result = vastbuild("plan", "llm", "--json", "--api-url", workspace.url, "--api-key-file",
                       str(key_file), cwd=workspace.root, timeout=60,
                       env={"VAST_API_KEY": None, "VASTBUILD_CACHE_DIR": str(workspace.cache)})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["targets"][0]["action"] == "created"


def test_a_refused_key_exits_1_with_a_hint(workspace: Workspace):
    workspace.keys = ("not-a-known-key",)
    result = workspace.run("plan", "llm", check=False)
    assert result.returncode == 1
    assert "HTTP 401" in result.stderr and "VAST_API_KEY" in result.stderr
    assert "not-a-known-key" not in result.stderr + result.stdout


def test_keep_alive_sends_heartbeats_until_interrupted(workspace: Workspace):
    env = {k: v for k, v in os.environ.items() if k != "VAST_API_URL"}
    env.update(VAST_API_KEY=workspace.keys[0], VASTBUILD_CACHE_DIR=str(workspace.cache))
    process = subprocess.Popen(
        [sys.executable, "-m", "vastbuild", "deploy", "whisper", "--keep-alive",
         "--api-url", workspace.url, "--autoscaler-url", workspace.url],
        cwd=workspace.root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    client = VastClient(workspace.keys[0], api_url=workspace.url, autoscaler_url=workspace.url)
    try:
        beat = None
        for _ in range(600):  # the first heartbeat follows the deploy at once
            records = client.list_deployments()
            beat = records[0].get("last_client_heartbeat") if records else None
            if beat is not None or process.poll() is not None:
                break
            time.sleep(0.05)
        assert beat is not None, process.communicate(timeout=10)
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "whisper-stt:prod  Tier 4 created" in out
    assert "keeping whisper-stt:prod alive: a heartbeat every 60 s" in err


def test_keep_alive_without_a_ttl_says_so(workspace: Workspace):
    result = workspace.run("deploy", "llm", "--keep-alive", check=False)
    assert result.returncode == 2
    assert "no target sets a TTL" in result.stderr
    assert not (workspace.cache / "deploys").exists()  # checked before anything was deployed


def _tree_digest(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and "__pycache__" not in p.parts}


def test_the_demo_walks_every_tier_offline_and_leaves_the_examples_alone():
    before = _tree_digest(EXAMPLES)
    env = {k: v for k, v in os.environ.items() if k not in ("VAST_API_KEY", "VAST_API_URL")}
    result = subprocess.run([sys.executable, str(EXAMPLES / "demo.py")], env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "demo ok: every deploy did what plan predicted" in result.stdout
    for tier, action in ((4, "created"), (0, "exists"), (1, "autoscale_update"),
                         (2, "soft_update"), (3, "hard_update")):
        assert f"Tier {tier} {action}" in result.stdout
    assert _tree_digest(EXAMPLES) == before


def test_a_url_that_is_not_http_is_a_usage_error(workspace: Workspace):
    for bad in ("console.vast.ai", "ftp://x", "http://me:pw@host"):
        result = vastbuild("plan", "llm", "--api-url", bad, cwd=workspace.root,
                           env={"VAST_API_KEY": workspace.keys[0]}, timeout=60)
        assert result.returncode == 2, bad
        assert "--api-url" in result.stderr and "pw" not in result.stderr


def test_examples_makefile_builds_once_and_deploys_nothing_at_tier_0(workspace: Workspace):
    root = workspace.root
    tool = f"{sys.executable} -m vastbuild --cache-dir {workspace.cache}"
    flags = f"--api-url={workspace.url} --autoscaler-url={workspace.url}"
    env = {**os.environ, "VAST_API_KEY": workspace.keys[0]}

    def make(*args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(["make", "-C", str(root), f"VASTBUILD={tool}",
                               f"DEPLOY_FLAGS={flags}", *args],
                              capture_output=True, text=True, env=env, check=False)
        assert done.returncode in (0, 1), done.stderr  # make -q says 1 when out of date
        return done

    assert make("-j4").returncode == 0
    dist = root / "dist"
    artifacts = sorted(dist.glob("*.tar.*")) + sorted(dist.glob("*.deployment.json"))
    assert len(artifacts) == 12
    assert make("-q").returncode == 0  # every target up to date
    assert "Nothing to be done" in make().stdout
    written = {p: p.stat().st_mtime_ns for p in artifacts}

    def touch_every_input() -> None:
        for path in root.rglob("*"):
            if dist not in path.parents and path != dist:
                os.utime(path, follow_symlinks=False)  # now: after every stamp

    touch_every_input()
    assert make("-q").returncode == 1
    rebuilt = make("-j4")
    assert rebuilt.returncode == 0 and rebuilt.stdout.count(" build ") == 4
    assert {p: p.stat().st_mtime_ns for p in artifacts} == written  # no artifact rewritten
    assert make("-q").returncode == 0

    first = make("-j4", "deploy")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "Nothing to be done" in make("deploy").stdout
    touch_every_input()
    again = make("-j4", "deploy")
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.count("Tier 0 ") == 4, again.stdout
    assert "uploaded  nothing" in again.stdout
