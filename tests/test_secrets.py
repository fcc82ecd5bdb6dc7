"""The API key goes nowhere but the Authorization header.

A full deploy walk runs with a distinctive key and HTTP tracing on (``-vv``:
request lines, redacted headers, JSON bodies), plus the error paths that echo
server messages. Then the key's bytes are searched for in everything the run
left behind: the captured output, the dev server's log, the cache (step
results, artifacts, the state files of the last deploys) and the dev server's
data folder. Only the server's key store may hold the key, and this one keeps
SHA-256 digests, so nothing at all may.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from conftest import StartDevServer
from test_deploy import TARGETS, Workspace, copy_examples, walk

from vastbuild.vast.client import VastClient


def files_holding(needle: bytes, *folders: Path) -> list[Path]:
    found = []
    for folder in folders:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and needle in path.read_bytes():
                found.append(path)
    return found


def test_the_key_is_in_no_output_log_cache_or_server_file(start_dev_server: StartDevServer,
                                                          tmp_path: Path) -> None:
    key = f"vbsecret-{secrets.token_hex(20)}"
    server = start_dev_server(keys=(key, f"vbother-{secrets.token_hex(8)}"))
    try:
        ws = Workspace(root=copy_examples(tmp_path), cache=tmp_path / "cache", url=server.url,
                       keys=server.keys)
        walk(ws, global_args=("-vv",))
        ws.run("deploy", *TARGETS, "--dry-run", global_args=("-vv",))
        # error paths: a registration the server refuses, a rolling update of a stranger's group
        server.inject_fault("PUT /api/v0/deployments/", "error", status=400)
        refused = ws.run("deploy", "llm", global_args=("-vv",), check=False)
        assert refused.returncode == 1 and "HTTP 400" in refused.stderr
        with VastClient(key, api_url=server.url, autoscaler_url=server.url,
                        trace=ws.transcript.append, trace_bodies=True) as client:
            try:
                client.update_workers(1)
            except Exception as exc:  # any error: its text is what is checked
                ws.transcript.append(str(exc))
    finally:
        server.stop()

    transcript = "\n".join(ws.transcript)
    assert "Authorization: Bearer <redacted>" in transcript  # tracing was on
    assert '"workergroup_id"' in transcript  # and showed bodies
    assert key not in transcript
    assert key not in server.output()
    needle = key.encode()
    assert files_holding(needle, ws.cache, server.data_dir, ws.root) == []
