"""The vastbuild demo: check, build, hash, then deploy the example monorepo
through every update tier, against a local dev server. Offline; touches no file
of this repository (it works on a temporary copy); exits 0 when every deploy
did what `vastbuild plan` said it would.

    python examples/demo.py

Each step edits the copy the way a user would, runs `vastbuild plan` (what will
happen, and why), then `vastbuild deploy` (what did happen).
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from vastbuild.api import dev_server

EXAMPLES = Path(__file__).resolve().parent
TARGETS = ("llm", "embed", "imagegen", "whisper")
#: the first line of each target in `plan` and `deploy` output
TIER_LINE = re.compile(r"^(?P<label>\S+)  (?P<name>\S+)  Tier (?P<tier>\d) (?P<action>\w+)",
                       re.MULTILINE)


@dataclass(frozen=True)
class Step:
    title: str
    change: Callable[[Path], None] | None
    targets: tuple[str, ...]
    tier: int
    action: str


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    if old not in text:
        raise SystemExit(f"demo: {old!r} is not in {path}; the examples changed")
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


STEPS = (
    Step("first deploy: every target is new", None, TARGETS, 4, "created"),
    Step("deploy again, nothing changed", None, TARGETS, 0, "exists"),
    Step("whisper: AUTOSCALE max_workers 8 -> 12",
         lambda root: edit(root / "whisper/Vastfile", "max_workers=8", "max_workers=12"),
         ("whisper",), 1, "autoscale_update"),
    Step("llm: a line of app.py changes",
         lambda root: edit(root / "llm/app.py", "MODEL = ", "TIMEOUT = 30\nMODEL = "),
         ("llm",), 2, "soft_update"),
    Step("embed: FROM another image",
         lambda root: edit(root / "embed/Vastfile", "FROM vastai/pytorch:@vastai-automatic-tag",
                           "FROM vastai/pytorch:2.5.1-cuda-12.1"),
         ("embed",), 3, "hard_update"),
    Step("imagegen: TAG canary, a second endpoint beside the default one",
         lambda root: edit(root / "imagegen/Vastfile", "VERSION v3", "TAG canary\nVERSION v3"),
         ("imagegen",), 4, "created"),
)


class Demo:
    def __init__(self, workdir: Path, url: str, key: str):
        self.root = workdir / "examples"
        self.url = url
        self.env = {k: v for k, v in os.environ.items() if k != "VAST_API_URL"}
        # the key travels in the environment only: never on a command line or screen
        self.env.update(VAST_API_KEY=key, VASTBUILD_CACHE_DIR=str(workdir / "cache"),
                        NO_COLOR="1")

    def run(self, *args: str, server: bool = True) -> str:
        """Run and show one vastbuild command in the example copy; its output."""
        urls = ("--api-url", self.url, "--autoscaler-url", self.url) if server else ()
        shown = " ".join(args)
        print(f"\n$ vastbuild {shown}", flush=True)
        result = subprocess.run([sys.executable, "-m", "vastbuild", *args, *urls],
                                cwd=self.root, env=self.env, capture_output=True, text=True)
        print((result.stdout + result.stderr).rstrip(), flush=True)
        if result.returncode != 0:
            raise SystemExit(f"demo: `vastbuild {shown}` exited {result.returncode}")
        return result.stdout


def tiers_of(output: str) -> dict[str, tuple[int, str]]:
    return {m["label"].removeprefix("//"): (int(m["tier"]), m["action"])
            for m in TIER_LINE.finditer(output)}


def main() -> int:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="vastbuild-demo-") as temporary:
        workdir = Path(temporary)
        shutil.copytree(EXAMPLES, workdir / "examples", ignore=shutil.ignore_patterns(
            "__pycache__", "*.pyc", "out", "dist", ".vastbuild*", "plugins", "demo.py"))
        key = f"demo-{secrets.token_hex(16)}"
        with dev_server(workdir / "dev-server", api_keys=[key]) as server:
            print(f"dev server listening on {server.url} (data in a temporary folder)")
            demo = Demo(workdir, server.url, key)
            demo.run("check", *TARGETS, server=False)
            demo.run("build", *TARGETS, "-o", "dist", "--format", "gz",
                     "--autoscaler-url", server.url, "--api-url", server.url, server=False)
            demo.run("hash", *TARGETS, "--autoscaler-url", server.url,
                     "--api-url", server.url, server=False)
            failures = []
            for number, step in enumerate(STEPS, 1):
                print(f"\n=== step {number}: {step.title} "
                      f"(expect Tier {step.tier} {step.action})")
                if step.change:
                    step.change(demo.root)
                planned = tiers_of(demo.run("plan", *step.targets))
                deployed = tiers_of(demo.run("deploy", *step.targets))
                for target in step.targets:
                    want = (step.tier, step.action)
                    if planned.get(target) != want or deployed.get(target) != want:
                        failures.append(f"step {number} {target}: expected {want}, plan said "
                                        f"{planned.get(target)}, deploy did {deployed.get(target)}")
    print()
    if failures:
        print("demo FAILED:\n  " + "\n  ".join(failures))
        return 1
    print(f"demo ok: every deploy did what plan predicted ({time.monotonic() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
