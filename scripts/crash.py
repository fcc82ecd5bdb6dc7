"""``make crash``: builds killed with SIGKILL at random moments, each rebuilt and
compared byte for byte with a clean build.

The cache promises that a killed build never leaves an entry a later build
trusts (docs/build.md, vastbuild/cache.py). This run puts the promise to a real
``kill -9``: it generates a project of a few hundred files (text and binary),
then, trial after trial, starts ``vastbuild build`` -- cold (the tree's content
all new, so every step runs) or incremental (a few files edited, added, deleted
or touched since the last build) -- kills it at a random moment within the
measured duration of such a build, builds again to completion, and compares the
artifacts and the registration body with those of a clean build of the same
tree in a fresh cache. Every trial shares one cache folder (``--cache-dir``)
and one output folder, so what each killed build left behind is there for all
the builds after it. At the end, ``vastbuild cache verify`` looks for damaged
entries and the run counts the temporary files killed builds left.

Exits 1 when a rebuild fails or its bytes differ; each such trial's tree and
artifacts are kept in ``--failures``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: the console script a user runs, beside this interpreter (the venv's)
VASTBUILD = Path(sys.executable).parent / "vastbuild"
NAME = "crashtest"
ARTIFACTS = (f"{NAME}.tar.gz", f"{NAME}.tar.zst", f"{NAME}.deployment.json")
VASTFILE = f"""\
DEPLOYMENT {NAME}
FROM vastai/pytorch:@vastai-automatic-tag
CODE app.py
COPY src /app/src
COPY data /app/data
"""
APP = f"""\
from vastai.serverless.remote import Deployment

app = Deployment(name="{NAME}")
"""
#: what a rebuild may take before it counts as failed
REBUILD_TIMEOUT = 600
WORDS = ["def", "return", "self", "value", "import", "class", "for", "in", "if", "else",
         "None", "True", "data", "path", "model", "tensor", "batch", "config", "#", "=",
         "(", ")", ":", "[", "]", "0", "1", "42", "'text'", "é", "ünïcödé"]


def text_file(rng: random.Random) -> bytes:
    """Source-like text: lines of words, 1 to 30 KB."""
    lines, size, target = [], 0, rng.randint(1_000, 30_000)
    while size < target:
        line = "    " * rng.randint(0, 3) + " ".join(rng.choices(WORDS, k=rng.randint(1, 12)))
        lines.append(line)
        size += len(line) + 1
    return ("\n".join(lines) + "\n").encode()


def binary_file(rng: random.Random) -> bytes:
    """Incompressible bytes (weights, archives) or structured, compressible ones."""
    if rng.random() < 0.5:
        return rng.randbytes(rng.randint(1_000, 400_000))
    record = rng.randbytes(rng.randint(4, 64))
    return b"".join(record[:rng.randint(1, len(record))] + i.to_bytes(4, "little")
                    for i in range(rng.randint(100, 40_000)))


def generate(project: Path, rng: random.Random, files: int) -> None:
    """A project of ``files`` files, two thirds text below src/, a third binary below
    data/, in folders of about 15; the folders' previous content is replaced."""
    for folder in ("src", "data"):
        shutil.rmtree(project / folder, ignore_errors=True)
    project.mkdir(parents=True, exist_ok=True)
    (project / "Vastfile").write_text(VASTFILE)
    (project / "app.py").write_text(APP)
    for i in range(files):
        if i % 3:
            path = project / "src" / f"pkg{i // 45}" / f"mod{i}.py"
            content = text_file(rng)
        else:
            path = project / "data" / f"set{i // 45}" / f"blob{i}.bin"
            content = binary_file(rng)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    (project / "data" / "empty.bin").write_bytes(b"")


def edit(project: Path, rng: random.Random) -> list[str]:
    """One to four edits of the kinds a user makes between builds; what was done."""
    done = []
    for _ in range(rng.randint(1, 4)):
        files = sorted(p for p in (project / "src").rglob("*") if p.is_file()) + \
            sorted(p for p in (project / "data").rglob("*") if p.is_file())
        kind = rng.choice(["text", "bytes", "resize", "add", "delete", "touch"])
        texts = [p for p in files if p.suffix == ".py"]
        binaries = [p for p in files if p.suffix == ".bin" and p.stat().st_size]
        if kind == "text":
            path = rng.choice(texts)
            lines = path.read_bytes().split(b"\n")
            lines[rng.randrange(len(lines))] = text_file(rng)[:80].split(b"\n")[0]
            path.write_bytes(b"\n".join(lines))
        elif kind == "bytes":  # same size, so only the content tells
            path = rng.choice(binaries)
            changed = bytearray(path.read_bytes())
            at = rng.randrange(len(changed))
            changed[at:at + 16] = rng.randbytes(len(changed[at:at + 16]))
            path.write_bytes(bytes(changed))
        elif kind == "resize":
            path = rng.choice(binaries)
            data = path.read_bytes()
            path.write_bytes(data[:rng.randrange(len(data))] if rng.random() < 0.5
                             else data + rng.randbytes(rng.randint(1, 100_000)))
        elif kind == "add":
            suffix = rng.choice([".py", ".bin"])
            path = rng.choice(files).parent / f"new{rng.randrange(10**6)}{suffix}"
            path.write_bytes(text_file(rng) if path.suffix == ".py" else binary_file(rng))
        elif kind == "delete":
            path = rng.choice(files)
            path.unlink()
        else:  # a new mtime, the same bytes
            path = rng.choice(files)
            os.utime(path)
        done.append(f"{kind} {path.relative_to(project)}")
    return done


def command(cache: Path, outdir: Path, project: Path) -> list[str]:
    return [str(VASTBUILD), "--cache-dir", str(cache), "--quiet", "--color", "never", "build",
            "-o", str(outdir), str(project)]


def build(cache: Path, outdir: Path,
          project: Path) -> tuple[float, subprocess.CompletedProcess[str]]:
    """A build run to completion: (seconds, the finished process)."""
    started = time.perf_counter()
    done = subprocess.run(command(cache, outdir, project), capture_output=True, text=True,
                          timeout=REBUILD_TIMEOUT)
    return time.perf_counter() - started, done


def clean_build(project: Path, work: Path) -> tuple[float, dict[str, bytes]]:
    """A build of ``project`` in a fresh cache: (seconds, its artifacts' bytes)."""
    cache, outdir = work / "fresh-cache", work / "fresh-out"
    for folder in (cache, outdir):
        shutil.rmtree(folder, ignore_errors=True)
    seconds, done = build(cache, outdir, project)
    if done.returncode != 0:
        raise SystemExit(f"a clean build failed (exit {done.returncode}):\n{done.stderr}")
    found = {name: (outdir / name).read_bytes() for name in ARTIFACTS}
    shutil.rmtree(cache)
    return seconds, found


def killed_build(cache: Path, outdir: Path, project: Path, delay: float,
                 log: Path) -> bool:
    """Start a build and SIGKILL it (and its process group) after ``delay`` seconds;
    whether it was still running then."""
    with log.open("w") as output:
        process = subprocess.Popen(command(cache, outdir, project), stdout=output,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        time.sleep(delay)
        running = process.poll() is None
        if running:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    return running


def calibrate(work: Path, rng: random.Random, files: int) -> tuple[float, float]:
    """The seconds a cold and an incremental build take here (medians of three)."""
    project, cache, outdir = work / "calibration", work / "calibration-cache", \
        work / "calibration-out"
    cold, incremental = [], []
    for _ in range(3):
        generate(project, rng, files)
        cold.append(build(cache, outdir, project)[0])
        edit(project, rng)
        incremental.append(build(cache, outdir, project)[0])
    for folder in (project, cache, outdir):
        shutil.rmtree(folder)
    return statistics.median(cold), statistics.median(incremental)


@dataclass
class Tally:
    trials: int = 0
    cold: int = 0
    mid_build: int = 0
    mismatches: int = 0
    errors: int = 0


def keep_failure(folder: Path, trial: int, project: Path, outdir: Path,
                 clean: dict[str, bytes], notes: str) -> Path:
    """The trial's tree, rebuilt and clean artifacts and notes, for a closer look."""
    kept = folder / f"trial-{trial:03d}"
    shutil.rmtree(kept, ignore_errors=True)
    (kept / "clean").mkdir(parents=True)
    for name, data in clean.items():
        (kept / "clean" / name).write_bytes(data)
    shutil.copytree(outdir, kept / "rebuilt")
    with tarfile.open(kept / "project.tar", "w") as tar:
        tar.add(project, arcname="project")
    (kept / "notes.txt").write_text(notes)
    return kept


def leftovers(folder: Path) -> list[Path]:
    """Temporary files (names starting with a dot) below ``folder``."""
    return [p for p in folder.rglob(".*") if p.is_file()] if folder.is_dir() else []


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=50, metavar="N",
                        help="builds to kill (default: 50), cold and incremental in turn")
    parser.add_argument("--cache-dir", type=Path, default=None, metavar="DIR",
                        help="the cache folder every trial shares (default: a new one)")
    parser.add_argument("--files", type=int, default=300, metavar="N",
                        help="files in the generated project (default: 300)")
    parser.add_argument("--seed", type=int, default=None,
                        help="seed of the trees, edits and delays (default: a random one, "
                             "printed)")
    parser.add_argument("--failures", type=Path, default=ROOT / "build" / "crash-failures",
                        metavar="DIR", help="where failed trials are kept "
                                            "(default: build/crash-failures)")
    args = parser.parse_args()
    if args.trials < 1 or args.files < 3:
        parser.error("--trials must be positive and --files at least 3")
    seed = args.seed if args.seed is not None else secrets.randbits(32)
    rng = random.Random(seed)
    started = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="vastbuild-crash-"))
    cache = args.cache_dir or work / "cache"
    project, outdir = work / "project", work / "out"
    tally = Tally()
    try:
        cold_seconds, incremental_seconds = calibrate(work, rng, args.files)
        print(f"crash: {args.trials} trials, seed {seed}, {args.files} files, cache {cache}; "
              f"a build takes {cold_seconds:.2f} s cold, {incremental_seconds:.2f} s "
              "incremental", flush=True)
        for trial in range(1, args.trials + 1):
            cold = trial % 2 == 1
            if cold:
                generate(project, rng, args.files)
                edits = ["all new content"]
            else:
                edits = edit(project, rng)
            clean_seconds, clean = clean_build(project, work)
            if cold:
                cold_seconds = clean_seconds  # this very tree, cold
            delay = rng.uniform(0, cold_seconds if cold else incremental_seconds)
            log = work / "killed.log"
            mid_build = killed_build(cache, outdir, project, delay, log)
            seconds, done = build(cache, outdir, project)
            tally.trials += 1
            tally.cold += cold
            tally.mid_build += mid_build
            rebuilt = {name: (outdir / name).read_bytes() if (outdir / name).exists() else None
                       for name in ARTIFACTS}
            if done.returncode != 0:
                tally.errors += 1
                verdict = f"REBUILD FAILED (exit {done.returncode})"
            elif rebuilt != clean:
                tally.mismatches += 1
                differ = [name for name in ARTIFACTS if rebuilt[name] != clean[name]]
                verdict = "MISMATCH: " + ", ".join(differ)
            else:
                verdict = "same bytes"
            print(f"trial {trial:>3}/{args.trials} {'cold' if cold else 'incremental':<11} "
                  f"killed at {delay:5.2f} s "
                  f"{'mid-build' if mid_build else 'after it ended'}; rebuilt in "
                  f"{seconds:5.2f} s: {verdict}  ({'; '.join(edits)})", flush=True)
            if verdict != "same bytes":
                kept = keep_failure(args.failures, trial, project, outdir, clean,
                                    f"seed {seed}, trial {trial}, kill after {delay:.3f} s\n"
                                    f"edits: {edits}\n\nkilled build's output:\n"
                                    f"{log.read_text()}\nrebuild's output:\n"
                                    f"{done.stdout}{done.stderr}")
                print(f"    kept in {kept}", flush=True)
        verified = subprocess.run([str(VASTBUILD), "--cache-dir", str(cache), "cache",
                                   "verify", "--json"], capture_output=True, text=True)
        report = json.loads(verified.stdout)
        left_in_cache, left_in_out = leftovers(cache), leftovers(outdir)
        left_bytes = sum(p.stat().st_size for p in left_in_cache)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"trials:              {tally.trials} ({tally.cold} cold, "
          f"{tally.trials - tally.cold} incremental), one shared cache")
    print(f"kills mid-build:     {tally.mid_build} ({tally.trials - tally.mid_build} builds "
          "had ended before their kill)")
    print(f"rebuild mismatches:  {tally.mismatches}")
    print(f"rebuild errors:      {tally.errors}")
    print(f"cache verify after:  {len(report['damaged'])} damaged of "
          f"{sum(report['checked'].values())} entries checked")
    print(f"temporary files left by killed builds: {len(left_in_cache)} in the cache "
          f"({left_bytes:,} bytes), "
          f"{len(left_in_out)} in the output folder")
    print(f"total time:          {time.perf_counter() - started:.1f} s")
    return 1 if tally.mismatches or tally.errors else 0


if __name__ == "__main__":
    sys.exit(main())
