"""A monorepo: many targets sharing folders, built as one graph."""

from __future__ import annotations

import json
import os
from pathlib import Path

from build_helpers import vastbuild, write_tree

SHARED = ("lib/common", "lib/models", "assets")


def monorepo(root: Path, targets: int = 20) -> Path:
    """``targets`` deployments under services/, each copying two or three of three
    shared folders to the same place, with its own CODE."""
    files: dict[str, bytes | str] = {"vastbuild.toml": ""}
    for i, folder in enumerate(SHARED):
        for j in range(12):
            files[f"{folder}/f{j:02d}.py"] = f"# {folder} {j}\n" + "x = 1\n" * (200 * j + i)
    for t in range(targets):
        name = f"svc-{t:02d}"
        copies = [f"COPY ../../{folder} /app/{folder}" for k, folder in enumerate(SHARED)
                  if (t + k) % 3 != 2 or k == 0]
        files[f"services/{name}/Vastfile"] = "\n".join(
            [f"DEPLOYMENT {name}", "FROM vastai/base", "CODE app.py", *copies]) + "\n"
        files[f"services/{name}/app.py"] = (
            "from vastai.serverless.remote import Deployment\n"
            f"app = Deployment(name='{name}')\n")
    write_tree(root, files)
    os.utime(root, (1_600_000_000, 1_600_000_000))
    return root


def test_twenty_targets_share_their_folders_steps(tmp_path: Path) -> None:
    root = monorepo(tmp_path / "ws")
    listed = vastbuild("targets", "//...", "--json", cwd=root)
    assert len(json.loads(listed.stdout)["targets"]) == 20, listed.stderr
    args = ("--cache-dir", str(tmp_path / "cache"), "build", "//...", "-o",
            str(tmp_path / "out"), "--json")
    first = vastbuild(*args, cwd=root)
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert len(report["targets"]) == 20
    steps = report["steps"]
    shared = [s for s in steps if s["shared"]]
    # each shared folder is collected once and compressed once per format, for all
    collects = [s for s in shared if s["kind"] == "collect"]
    assert sorted(s["label"] for s in collects) == sorted(
        f"copy /app/{folder}" for folder in SHARED)
    assert all(s["ran"] for s in shared)
    assert len({s["id"] for s in steps}) == len(steps)  # each step listed once
    assert max(len(s["targets"]) for s in collects) > 10
    second = vastbuild(*args, cwd=root)
    assert second.returncode == 0, second.stderr
    assert sum(t["built_steps"] for t in json.loads(second.stdout)["targets"]) == 0
