"""Benchmark: packaging a realistic deployment tree with vastbuild and with its peers.

Generates a deterministic tree (source files, JSON and CSV data, incompressible
weights) behind a Vastfile, then times, each as its own process so that start-up
costs count the same for everyone:

  (a) ``tar --sort=name -cf - ... | gzip -6``  the shell baseline
  (b) the vastai SDK packaging: ``compute_deployment_hash`` + ``create_deployment_tarball``
  (c) ``vastbuild build`` with an empty cache
  (d) ``vastbuild build`` again, nothing changed
  (e) ``vastbuild hash`` with a warm cache
  (f) ``vastbuild build`` after one source file changed

Each case runs ``--repeat`` times and reports the fastest run, as hyperfine's
``min`` does: the least disturbed by other load on the machine. Run with
``make bench`` or ``python bench/build_bench.py --help``.
"""

from __future__ import annotations

import argparse
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

#: bump when the generated tree changes, so that a stale tree is regenerated
TREE_VERSION = 1

WORDS = (
    "the model request worker tensor batch token prompt cache queue latency gpu memory "
    "load score scale endpoint deploy image layer weight vector embed decode encode "
    "stream return value index table row column sample train infer async await import "
    "def class self none true false for while if else elif try except raise yield with"
).split()


@dataclass(frozen=True)
class TreeShape:
    """How many files of each kind the generated tree holds."""

    source_files: int
    data_files: int
    blobs: int
    weights: int
    weight_mb: int


SHAPES = {
    "small": TreeShape(source_files=400, data_files=80, blobs=20, weights=1, weight_mb=4),
    "default": TreeShape(source_files=3000, data_files=400, blobs=120, weights=4, weight_mb=10),
    "big": TreeShape(source_files=9000, data_files=800, blobs=196, weights=4, weight_mb=10),
}


def _text(rng: random.Random, size: int) -> bytes:
    """Compressible, source-like text of about ``size`` bytes."""
    lines: list[str] = []
    total = 0
    while total < size:
        indent = "    " * rng.randrange(4)
        line = indent + " ".join(rng.choices(WORDS, k=rng.randrange(3, 14)))
        lines.append(line)
        total += len(line) + 1
    return ("\n".join(lines) + "\n").encode()


def _csv(rng: random.Random, rows: int) -> bytes:
    out = ["id,name,score,latency_ms"]
    for row in range(rows):
        out.append(f"{row},{rng.choice(WORDS)}_{rng.randrange(1000)},"
                   f"{rng.random():.6f},{rng.randrange(5, 900)}")
    return ("\n".join(out) + "\n").encode()


def generate_tree(root: Path, shape: TreeShape, seed: int) -> None:
    """Write the benchmark tree under ``root`` (deterministic for a given seed)."""
    rng = random.Random(seed)
    (root / "vastbuild.toml").write_text("# benchmark workspace\n")
    (root / "app.py").write_text(
        '"""Benchmark deployment."""\n\n'
        "from vastai.serverless.remote import Deployment\n\n"
        'app = Deployment(name="bench")\n\n\n'
        "@app.remote\nasync def echo(text: str) -> str:\n    return text\n")
    for index in range(shape.source_files):
        folder = root / "src" / f"pkg{index % 40:02d}" / f"mod{index % 7}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"file{index:05d}.py").write_bytes(_text(rng, rng.randrange(1_000, 30_000)))
    for index in range(shape.data_files):
        folder = root / "data" / f"shard{index % 16:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        if index % 2:
            (folder / f"table{index:04d}.csv").write_bytes(_csv(rng, rng.randrange(500, 3_500)))
        else:
            size = rng.randrange(20_000, 200_000)
            (folder / f"doc{index:04d}.json").write_bytes(_text(rng, size))
    for index in range(shape.blobs):
        folder = root / "assets" / f"group{index % 8}"
        folder.mkdir(parents=True, exist_ok=True)
        size = rng.randrange(50_000, 1_000_000)
        (folder / f"blob{index:04d}.bin").write_bytes(rng.randbytes(size))
    (root / "models").mkdir(exist_ok=True)
    for index in range(shape.weights):
        (root / "models" / f"weights{index}.safetensors").write_bytes(
            rng.randbytes(shape.weight_mb * 1_000_000))
    (root / "Vastfile").write_text(
        "DEPLOYMENT bench\n"
        "FROM vastai/pytorch:@vastai-automatic-tag\n"
        "CODE app.py\n"
        "PIP numpy\n"
        "COPY src /app/src\n"
        "COPY data /app/data\n"
        "COPY assets /app/assets\n"
        "COPY models /models\n")


def ensure_tree(workdir: Path, shape_name: str, seed: int) -> Path:
    """The tree for (shape, seed), generated once and reused by later runs."""
    root = workdir / f"tree-{shape_name}-{seed}-v{TREE_VERSION}"
    marker = root / ".complete"
    if not marker.exists():
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        print(f"generating {root} ...", file=sys.stderr)
        generate_tree(root, SHAPES[shape_name], seed)
        marker.write_text("")
    return root


def tree_stats(root: Path) -> tuple[int, int]:
    """(files, bytes) of the tree, marker files excluded."""
    files = 0
    size = 0
    for path in root.rglob("*"):
        if path.is_file() and path.name != ".complete":
            files += 1
            size += path.stat().st_size
    return files, size


#: the SDK packaging, as a deploy does it, run as its own process
SDK_SCRIPT = """
import sys
from vastai.serverless.remote.base import Config
from vastai.serverless.remote.utils import compute_deployment_hash, create_deployment_tarball
root, out = sys.argv[1], sys.argv[2]
config = Config("bench", ["numpy"], [], [], [])
copies = [(f"{root}/src", "/app/src"), (f"{root}/data", "/app/data"),
          (f"{root}/assets", "/app/assets"), (f"{root}/models", "/models")]
print(compute_deployment_hash(config, f"{root}/app.py", copies))
create_deployment_tarball(out, config, f"{root}/app.py", copies)
"""


def run(command: list[str] | str, **kwargs: object) -> None:
    """Run a command; a failure stops the benchmark with the command's own output."""
    result = subprocess.run(command, capture_output=True, text=True, **kwargs)  # type: ignore[call-overload]
    if result.returncode != 0:
        sys.exit(f"benchmark command failed ({result.returncode}): {command}\n"
                 f"{result.stdout}{result.stderr}")


def fastest(repeat: int, prepare: Callable[[int], None], action: Callable[[], None]) -> float:
    """Minimum wall time of ``action`` over ``repeat`` runs; ``prepare(i)`` runs untimed first."""
    best = float("inf")
    for index in range(repeat):
        prepare(index)
        started = time.perf_counter()
        action()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", choices=sorted(SHAPES), default="default")
    parser.add_argument("--seed", type=int, default=20261127)
    parser.add_argument("--repeat", type=int, default=3, help="runs per case; the minimum counts")
    parser.add_argument("--workdir", type=Path,
                        default=Path(tempfile.gettempdir()) / "vastbuild-bench",
                        help="where the generated tree, caches and outputs live")
    args = parser.parse_args()

    workdir: Path = args.workdir.resolve()
    root = ensure_tree(workdir, args.shape, args.seed)
    files, size = tree_stats(root)
    print(f"tree: {root}\n      {files} files, {size / 1e6:.1f} MB\n")

    python = sys.executable
    vastbuild = [python, "-m", "vastbuild"]
    out = workdir / "out"
    cache = workdir / "cache"
    changed = root / "src" / "pkg00" / "mod0" / "file00000.py"
    original = changed.read_bytes()

    def reset(path: Path) -> None:
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)

    def build() -> None:
        run([*vastbuild, "--cache-dir", str(cache), "-q", "build", "--format", "gz", str(root),
             "-o", str(out)])

    def noop(_: int) -> None:
        pass

    tar_gz = out / "tree.tar.gz"
    sdk_gz = out / "sdk.tar.gz"
    ours_gz = out / "bench.tar.gz"
    #: case -> (fastest seconds, MB of the file it wrote, or None)
    results: dict[str, tuple[float, float | None]] = {}

    def measure(case: str, prepare: Callable[[int], None], action: Callable[[], None],
                output: Path | None) -> None:
        seconds = fastest(args.repeat, prepare, action)
        results[case] = (seconds, output.stat().st_size / 1e6 if output else None)

    try:
        measure("(a) tar --sort=name | gzip -6", lambda _: reset(out),
                lambda: run(f"tar --sort=name -C {root} -cf - . | gzip -6 > {tar_gz}",
                            shell=True), tar_gz)
        measure("(b) vastai SDK hash + tarball", lambda _: reset(out),
                lambda: run([python, "-c", SDK_SCRIPT, str(root), str(sdk_gz)]), sdk_gz)
        measure("(c) vastbuild build, cold", lambda _: (reset(out), reset(cache)), build,
                ours_gz)
        measure("(d) vastbuild build, warm", noop, build, ours_gz)
        measure("(e) vastbuild hash, warm", noop,
                lambda: run([*vastbuild, "--cache-dir", str(cache), "-q", "hash", str(root)]),
                None)
        measure("(f) vastbuild build, 1 file changed",
                lambda index: changed.write_bytes(original + f"# edit {index}\n".encode()),
                build, ours_gz)
        startup = fastest(args.repeat, noop, lambda: run([*vastbuild, "--version"]))
    finally:
        changed.write_bytes(original)

    tar_time = results["(a) tar --sort=name | gzip -6"][0]
    sdk_time = results["(b) vastai SDK hash + tarball"][0]
    print(f"{'case':<38} {'seconds':>9} {'vs (a)':>9} {'vs (b)':>9} {'output MB':>10}")
    for name, (seconds, megabytes) in results.items():
        written = f"{megabytes:>10.1f}" if megabytes is not None else f"{'-':>10}"
        print(f"{name:<38} {seconds:>9.3f} {seconds / tar_time:>8.2f}x "
              f"{seconds / sdk_time:>8.2f}x {written}")
    print(f"\nfastest of {args.repeat} runs each; a ratio below 1 is faster than the peer."
          f"\n`vastbuild --version` alone (interpreter start-up): {startup:.3f} s")


if __name__ == "__main__":
    main()
