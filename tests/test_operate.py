"""Operating a deployment end to end: the CLI in its own process against a dev-server
process whose simulated workers move through Vast's states on a fast clock.

deploy --wait → status (up to date, idle workers) → code change → deploy --wait
(returns once the workers serve the new version) → logs (the rollout) → rollback
--previous (the first hash again) → stop / start → down --yes → status (nothing);
and a rollout whose worker fails makes deploy --wait exit 1 with its log lines.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import RunningDevServer, StartDevServer
from test_deploy import Workspace, copy_examples, edit

STEP = ("--worker-step", "0.05")


def _status(ws: Workspace, *targets: str) -> list[dict[str, object]]:
    result = ws.run("status", *targets, "--json")
    return list(json.loads(result.stdout)["targets"])


def test_deploy_wait_status_logs_rollback_stop_start_down(start_dev_server: StartDevServer,
                                                         tmp_path: Path) -> None:
    server = start_dev_server(args=STEP)
    ws = Workspace(root=copy_examples(tmp_path), cache=tmp_path / "cache", url=server.url,
                   keys=server.keys)
    first = ws.json("deploy", "llm", "--wait", "--timeout", "60", "--wait-interval", "0.1")
    first_hash = first["llm"]["hash"]
    [state] = _status(ws, "llm")
    assert state["up_to_date"] is True and state["server_hash"] == first_hash
    workers = state["workers"]
    assert isinstance(workers, dict) and set(workers) == {"idle"} and workers["idle"] >= 1

    edit(ws.root / "llm/app.py", "MODEL = ", "TIMEOUT = 30\nMODEL = ")
    second = ws.json("deploy", "llm", "--wait", "--timeout", "60", "--wait-interval", "0.1")
    assert second["llm"]["action"] == "soft_update" and second["llm"]["hash"] != first_hash
    [state] = _status(ws, "llm")
    assert state["up_to_date"] is True and set(state["workers"]) == {"idle"}  # type: ignore[arg-type]

    log = ws.run("logs", "llm", "--level", "debug").stdout
    assert "update" in log.lower(), log

    history = json.loads(ws.run("history", "llm", "--json").stdout)
    assert [v["hash"] for v in history["local"]] == [first_hash, second["llm"]["hash"]]
    back = ws.json("rollback", "llm", "--previous")
    assert back["llm"]["hash"] == first_hash
    ws.run("wait", "llm", "--timeout", "60", "--interval", "0.1")
    [state] = _status(ws, "llm")
    assert state["server_hash"] == first_hash and state["up_to_date"] is False

    ws.run("stop", "llm")
    assert _status(ws, "llm")[0]["endpoint_state"] == "stopped"
    ws.run("start", "llm")
    assert _status(ws, "llm")[0]["endpoint_state"] == "active"

    refused = ws.run("down", "llm", check=False)
    assert refused.returncode == 2 and "--yes" in refused.stderr
    ws.run("down", "llm", "--yes")
    assert _status(ws, "llm")[0]["deployment_id"] is None
    assert _status(ws) == []


def test_deploy_wait_reports_a_failing_worker_with_its_log(start_dev_server: StartDevServer,
                                                           tmp_path: Path) -> None:
    server = start_dev_server(args=(*STEP, "--fail-workers", "1"))
    ws = Workspace(root=copy_examples(tmp_path), cache=tmp_path / "cache", url=server.url,
                   keys=server.keys)
    result = ws.run("deploy", "llm", "--wait", "--timeout", "60", "--wait-interval", "0.1",
                    check=False)
    assert result.returncode == 1, result.stderr
    assert "failed" in result.stderr and "simulated" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_waiting_on_an_endpoint_that_keeps_no_worker_ends_at_once(
        dev_server_module: RunningDevServer, tmp_path: Path) -> None:
    """cold_workers=0: no worker starts until a request arrives, so there is nothing to
    wait for; deploy --wait says so and exits 0 instead of waiting out its timeout."""
    ws = Workspace(root=copy_examples(tmp_path), cache=tmp_path / "cache",
                   url=dev_server_module.url, keys=dev_server_module.keys)
    assert "cold_workers=0" in (ws.root / "whisper/Vastfile").read_text(encoding="utf-8")
    done = ws.run("deploy", "whisper", "--wait", "--timeout", "30", "--wait-interval", "0.1")
    assert "no worker to wait for: with cold_workers=0" in done.stderr, done.stderr


@pytest.mark.parametrize("command", [("status", "llm"), ("logs", "llm"), ("stop", "llm"),
                                     ("wait", "llm"), ("rollback", "llm")])
def test_a_target_that_is_not_deployed_says_so(dev_server_module: RunningDevServer,
                                              tmp_path: Path, command: tuple[str, ...]) -> None:
    ws = Workspace(root=copy_examples(tmp_path), cache=tmp_path / "cache",
                   url=dev_server_module.url, keys=dev_server_module.keys)
    result = ws.run(*command, check=False)
    assert "Traceback" not in result.stderr
    if command[0] == "status":
        assert result.returncode == 0 and "not deployed" in result.stdout
    else:
        assert result.returncode == 1 and ("not deployed" in result.stderr
                                           or "no version" in result.stderr), result.stderr


def test_logs_follow_prints_new_lines_until_ctrl_c(start_dev_server: StartDevServer,
                                                   tmp_path: Path) -> None:
    server = start_dev_server(args=STEP)
    ws = Workspace(root=copy_examples(tmp_path), cache=tmp_path / "cache", url=server.url,
                   keys=server.keys)
    ws.run("deploy", "llm", "--wait", "--timeout", "60", "--wait-interval", "0.1")
    follow = subprocess.Popen(
        [sys.executable, "-m", "vastbuild", "logs", "llm", "--level", "trace", "--follow",
         "--interval", "0.1", "--api-url", server.url, "--autoscaler-url", server.url],
        cwd=ws.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "VAST_API_KEY": server.keys[0], "VASTBUILD_CACHE_DIR": str(ws.cache)})
    time.sleep(1.5)
    ws.run("stop", "llm")  # new lines while following
    time.sleep(1.5)
    follow.send_signal(signal.SIGINT)
    out, err = follow.communicate(timeout=30)
    assert follow.returncode == 130, err
    lines = out.splitlines()
    assert len(lines) == len(set(lines)), "a line was printed twice"
    assert any("stop" in line.lower() for line in lines), out


def _deploy_on_a_terminal(ws: Workspace, *args: str) -> str:
    """Run deploy with stderr on a pseudo-terminal; what the terminal showed."""
    import pty

    leader, follower = pty.openpty()
    env = {**os.environ, "VAST_API_KEY": ws.keys[0], "VASTBUILD_CACHE_DIR": str(ws.cache),
           "COLUMNS": "120", "TERM": "xterm"}
    env.pop("VAST_API_URL", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "vastbuild", *args, "deploy", "llm", "--api-url", ws.url,
         "--autoscaler-url", ws.url], cwd=ws.root, stdout=subprocess.DEVNULL,
        stderr=follower, env=env)
    os.close(follower)
    shown = b""
    while True:
        try:
            chunk = os.read(leader, 1 << 16)
        except OSError:  # the terminal closed with the process
            break
        if not chunk:
            break
        shown += chunk
    assert process.wait(timeout=120) == 0, shown
    os.close(leader)
    return shown.decode("utf-8", "replace")


def test_an_upload_shows_bytes_and_rate_on_a_terminal_only(dev_server_module: RunningDevServer,
                                                          tmp_path: Path) -> None:
    ws = Workspace(root=copy_examples(tmp_path), cache=tmp_path / "cache",
                   url=dev_server_module.url, keys=dev_server_module.keys)
    shown = _deploy_on_a_terminal(ws)
    # bytes sent of the total; the rate column reads "?" for an upload this small
    assert "//llm: uploading" in shown and re.search(r"[\d.]+/[\d.]+ kB", shown), shown
    edit(ws.root / "llm/app.py", "MODEL = ", "TIMEOUT = 30\nMODEL = ")
    assert "uploading" not in _deploy_on_a_terminal(ws, "-q")
    piped = ws.run("deploy", "llm")  # stderr a pipe: no bar
    assert "uploading" not in piped.stderr
