"""Benchmark: vastbuild against the tools a user would otherwise use, in one run.

Generates a deterministic deployment tree shaped like users' (a third of the
bytes source-like text in ``.py`` files, two thirds incompressible ``.bin``
files, folders of 30 files; CODE app.py and ``COPY data /app/data``), commits
it to a git repository, then runs every case as its own process, interleaved
round by round, and reports the median of the rounds:

  cold zst      ``vastbuild build --format zst``, empty cache  vs ``tar | zstd -3 -T0``
  cold gz       ``vastbuild build --format gz``, empty cache   vs ``tar | gzip -6``, ``pigz -6``
  one file      ``build --format gz`` after one file changed   vs ``cp`` of the artifact
  no change     ``build --format gz`` again                    vs the warm ``hash``
  warm hash     ``vastbuild hash``                             vs ``git status --porcelain``
  SDK           the vastai SDK's packaging (small tree only)   vs cold gz

and the peak RSS of every vastbuild run. vastbuild runs from a venv of its own
in the work folder, installed from this checkout as a user installs it (a wheel,
its bytecode compiled), and every case starts after ``sync``: dirty pages the
last case left are not this case's to write. It prints a table of ratios and,
with ``--results``, writes it into ``bench/RESULTS.md`` (between the markers,
keeping what is written around them) with the machine, the versions and the
commands. ``make bench`` runs both shapes; CI runs ``--shape small --rounds 1``
to prove the script works, and checks no figure.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

#: bump when the generated tree changes, so that a stale tree is generated again
TREE_VERSION = 2
SEED = 20261130
REPO = Path(__file__).resolve().parent.parent

WORDS = (
    "the model request worker tensor batch token prompt cache queue latency gpu memory "
    "load score scale endpoint deploy image layer weight vector embed decode encode "
    "stream return value index table row column sample train infer async await import "
    "def class self none true false for while if else elif try except raise yield with"
).split()


@dataclass(frozen=True)
class Shape:
    """How many files and bytes the generated tree holds, and their sizes."""

    files: int
    total_mb: int
    #: log-uniform size range of the text files, in KB
    text_kb: tuple[int, int]
    #: uniform size range of the binary files, in KB
    binary_kb: tuple[int, int] = (90, 275)
    #: the share of the bytes that is text
    text_share: float = 1 / 3


SHAPES = {
    "small": Shape(files=2_000, total_mb=50, text_kb=(2, 30)),
    "big": Shape(files=10_000, total_mb=500, text_kb=(2, 80)),
}


def _text(rng: random.Random, size: int) -> bytes:
    """Compressible, source-like text of exactly ``size`` bytes."""
    lines: list[str] = []
    total = 0
    while total < size:
        line = "    " * rng.randrange(4) + " ".join(rng.choices(WORDS, k=rng.randrange(3, 14)))
        lines.append(line)
        total += len(line) + 1
    return ("\n".join(lines) + "\n").encode()[:size]


def _sizes(rng: random.Random, shape: Shape) -> list[tuple[str, int]]:
    """(kind, size) of every data file: text sizes log-uniform, binary uniform, then
    scaled so that the tree has the shape's bytes in the shape's proportions."""
    text_bytes = shape.total_mb * 1e6 * shape.text_share
    binary_bytes = shape.total_mb * 1e6 - text_bytes
    binaries = max(1, round(binary_bytes / (sum(shape.binary_kb) / 2 * 1000)))
    texts = shape.files - 1 - binaries  # and app.py
    low, high = (kb * 1000 for kb in shape.text_kb)
    text_sizes = [int(low * (high / low) ** rng.random()) for _ in range(texts)]
    binary_sizes = [rng.randrange(shape.binary_kb[0], shape.binary_kb[1]) * 1000
                    for _ in range(binaries)]
    text_scale = text_bytes / sum(text_sizes)
    binary_scale = binary_bytes / sum(binary_sizes)
    files = [("py", max(64, int(s * text_scale))) for s in text_sizes] + \
            [("bin", int(s * binary_scale)) for s in binary_sizes]
    rng.shuffle(files)
    return files


def generate(root: Path, shape: Shape) -> None:
    """Write the tree and commit it to a git repository at ``root``."""
    rng = random.Random(SEED)
    root.mkdir(parents=True)
    (root / "app.py").write_text(
        '"""The benchmark deployment."""\n\n'
        "from vastai.serverless.remote import Deployment\n\n"
        'app = Deployment(name="bench")\n')
    (root / "Vastfile").write_text("DEPLOYMENT bench\nFROM vastai/pytorch:@vastai-automatic-tag\n"
                                   "CODE app.py\nCOPY data /app/data\n")
    (root / ".gitignore").write_text("")
    for index, (kind, size) in enumerate(_sizes(rng, shape)):
        folder = root / "data" / f"d{index // 30:04d}"
        folder.mkdir(parents=True, exist_ok=True)
        data = _text(rng, size) if kind == "py" else rng.randbytes(size)
        (folder / f"f{index:05d}.{kind}").write_bytes(data)
    git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@localhost",
           "-c", "commit.gpgsign=false"]
    for command in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "benchmark tree"]):
        subprocess.run([*git, *command], cwd=root, check=True)


def ensure_tree(workdir: Path, name: str) -> Path:
    """The tree of shape ``name``, generated once and reused by later runs."""
    root = workdir / f"tree-{name}-v{TREE_VERSION}"
    marker = workdir / f"tree-{name}-v{TREE_VERSION}.complete"
    if not marker.exists():
        shutil.rmtree(root, ignore_errors=True)
        print(f"generating {root} ...", file=sys.stderr, flush=True)
        generate(root, SHAPES[name])
        marker.write_text("")
    return root


def tree_size(root: Path) -> tuple[int, int]:
    """(files, bytes) of the tree outside .git."""
    files = size = 0
    for folder, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if d != ".git"]
        for name in names:
            files += 1
            size += os.lstat(os.path.join(folder, name)).st_size
    return files, size


# -- running cases ---------------------------------------------------------------------

def settled() -> None:
    """The default preparation: let the last case's writes reach the disk first."""
    os.sync()


@dataclass
class Case:
    """One thing to time: a command (a shell line or an argv), prepared untimed first."""

    name: str
    command: Sequence[str] | str
    prepare: Callable[[], None] = settled
    #: the vastbuild runs, whose peak RSS is reported
    ours: bool = False
    seconds: list[float] = field(default_factory=list)
    rss_mb: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


def run_case(case: Case, cwd: Path) -> None:
    """Run once: wall time and peak RSS (of the process, or of a shell line's pipeline)."""
    case.prepare()
    shell = isinstance(case.command, str)
    started = time.perf_counter()
    process = subprocess.Popen(case.command, shell=shell, cwd=cwd, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    errors = process.stderr.read().decode(errors="replace") if process.stderr else ""
    if process.returncode != 0:
        sys.exit(f"benchmark command failed ({process.returncode}): {case.command}\n{errors}")
    case.seconds.append(seconds)
    case.rss_mb.append(usage.ru_maxrss / 1024)


def reset(*paths: Path) -> Callable[[], None]:
    """Start from nothing at ``paths``: what is there is moved aside, into a ``trash``
    folder emptied after the last round, since deleting a gigabyte makes the disk
    discard its blocks while the next cases run."""
    def prepare() -> None:
        for path in paths:
            if path.exists():
                trash = path.parent / "trash"
                trash.mkdir(exist_ok=True)
                path.rename(trash / f"{path.name}-{time.monotonic_ns()}")
        os.sync()
    return prepare


def touch_one(path: Path) -> Callable[[], None]:
    """Change one file by one line each time (and back to a new variant each round)."""
    original = path.read_bytes()
    counter = [0]

    def prepare() -> None:
        counter[0] += 1
        path.write_bytes(original + f"# edit {counter[0]}\n".encode())
        os.sync()
    return prepare


SDK_SCRIPT = """
import sys
from vastai.serverless.remote.base import Config
from vastai.serverless.remote.utils import compute_deployment_hash, create_deployment_tarball
root, out = sys.argv[1], sys.argv[2]
config = Config("bench", [], [], [], [])
copies = [(f"{root}/data", "/app/data")]
print(compute_deployment_hash(config, f"{root}/app.py", copies))
create_deployment_tarball(out, config, f"{root}/app.py", copies)
"""


def install(workdir: Path) -> Path:
    """A venv under ``workdir`` holding vastbuild as a user installs it (from this
    checkout, as a wheel); its python. The dependencies install once, vastbuild
    again on every run."""
    venv = workdir / "venv"
    python = venv / "bin" / "python"
    pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    if not python.exists():
        print(f"installing vastbuild into {venv} ...", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([*pip, str(REPO)], check=True)
    subprocess.run([*pip, "--no-deps", "--force-reinstall", str(REPO)], check=True)
    return python


def tool(name: str, package: str) -> bool:
    """Whether the command ``name`` is there, installing Debian's ``package`` when it is
    not and this is a Debian machine run as root; saying so when it stays missing."""
    if shutil.which(name) is None and shutil.which("apt-get") and os.geteuid() == 0:
        print(f"{name} is missing: apt-get install {package} ...", file=sys.stderr, flush=True)
        for command in (["update", "-qq"], ["install", "-y", "-qq", package]):
            subprocess.run(["apt-get", *command], stdout=subprocess.DEVNULL, check=False,
                           env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    if shutil.which(name) is None:
        print(f"{name} is not installed (apt-get install {package}): its case is skipped",
              file=sys.stderr)
        return False
    return True


def cases_for(name: str, root: Path, work: Path, python: Path, pigz: bool, zstd: bool,
              sdk: bool) -> list[Case]:
    vb = shlex.join([str(python), "-m", "vastbuild"])
    tar = f"tar --sort=name -C {shlex.quote(str(root))} -cf - app.py data"
    out, cold = work / "out", work / "cache-cold"
    warm = work / "cache-warm"
    changed = next((root / "data").glob("d0000/*.py"))
    cases = [
        *([Case("tar | zstd -3 -T0", f"{tar} | zstd -3 -T0 -q -f -o {work}/ref.tar.zst")]
          if zstd else []),
        Case("cold build, zst", f"{vb} --cache-dir {cold} -q build --format zst {root} "
             f"-o {out}-zst", reset(cold, Path(f"{out}-zst")), ours=True),
        Case("tar | gzip -6", f"{tar} | gzip -6 > {work}/ref.tar.gz"),
        Case("cold build, gz", f"{vb} --cache-dir {cold} -q build --format gz {root} "
             f"-o {out}-gz", reset(cold, Path(f"{out}-gz")), ours=True),
        Case("one file changed, gz", f"{vb} --cache-dir {warm} -q build --format gz {root} "
             f"-o {out}", touch_one(changed), ours=True),
        Case("cp of the artifact", f"cp {out}/bench.tar.gz {work}/copy.tar.gz"),
        Case("nothing changed, gz", f"{vb} --cache-dir {warm} -q build --format gz {root} "
             f"-o {out}", ours=True),
        Case("warm hash", f"{vb} --cache-dir {warm} -q hash {root}", ours=True),
        Case("git status --porcelain", f"git -C {root} status --porcelain"),
    ]
    if pigz:
        at = next(i for i, c in enumerate(cases) if c.name == "cold build, gz")
        cases.insert(at, Case("tar | pigz -6", f"{tar} | pigz -6 > {work}/ref-pigz.tar.gz"))
    if sdk:
        cases.append(Case("vastai SDK packaging", [sys.executable, "-c", SDK_SCRIPT, str(root),
                                                   str(work / "sdk.tar.gz")]))
    return cases


def warm_up(python: Path, root: Path, work: Path) -> None:
    """Fill the warm cache and the output the warm cases start from, untimed, and let
    the tree's files age past vastbuild's racy window (2 s)."""
    time.sleep(2.1)
    vb = [str(python), "-m", "vastbuild", "--cache-dir", str(work / "cache-warm"), "-q"]
    for argv in (["build", "--format", "gz", str(root), "-o", str(work / "out")],
                 ["hash", str(root)]):
        subprocess.run([*vb, *argv], check=True, stdout=subprocess.DEVNULL, cwd=work)


# -- reporting ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Goal:
    what: str
    ours: str
    peer: str
    at_most: float


GOALS = (
    Goal("cold zst build vs tar | zstd -3 -T0", "cold build, zst", "tar | zstd -3 -T0", 1.0),
    Goal("cold gz build vs tar | gzip -6", "cold build, gz", "tar | gzip -6", 0.1),
    Goal("cold gz build vs tar | pigz -6", "cold build, gz", "tar | pigz -6", 0.2),
    Goal("one-file rebuild vs cp of the artifact", "one file changed, gz",
         "cp of the artifact", 1.5),
    Goal("no-change build vs warm hash", "nothing changed, gz", "warm hash", 1.3),
    Goal("warm hash vs git status", "warm hash", "git status --porcelain", 6.0),
    Goal("cold gz build vs the vastai SDK", "cold build, gz", "vastai SDK packaging", 1 / 25),
)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def report(shape: str, root: Path, cases: list[Case]) -> list[str]:
    files, size = tree_size(root)
    by_name = {c.name: c for c in cases}
    lines = [f"### {shape}: {files:,} files, {size / 1e6:.0f} MB "
             f"(median of {len(cases[0].seconds)} interleaved rounds)", "",
             "| case | median s | runs s | peak RSS MB |", "| --- | ---: | --- | ---: |"]
    for case in cases:
        runs = " ".join(f"{s:.3f}" for s in case.seconds)
        rss = f"{max(case.rss_mb):.0f}" if case.ours else ""
        lines.append(f"| {_cell(case.name)} | {case.median:.3f} | {runs} | {rss} |")
    lines += ["", "| goal | ratio | at most | met |", "| --- | ---: | ---: | --- |"]
    for goal in GOALS:
        if goal.ours in by_name and goal.peer in by_name:
            ratio = by_name[goal.ours].median / by_name[goal.peer].median
            met = "yes" if ratio <= goal.at_most else "**no**"
            lines.append(f"| {_cell(goal.what)} | {ratio:.3f} | {goal.at_most:.3g} | {met} |")
    hash_ms = by_name["warm hash"].median * 1000
    lines.append(f"| warm hash wall time | {hash_ms:.0f} ms | 150 ms | "
                 f"{'yes' if hash_ms <= 150 else '**no**'} |")
    peak = max(max(c.rss_mb) for c in cases if c.ours)
    lines.append(f"| peak RSS of any vastbuild run | {peak:.0f} MB | 200 MB | "
                 f"{'yes' if peak <= 200 else '**no**'} |")
    return lines


def machine() -> list[str]:
    def version(*argv: str) -> str:
        try:
            run = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        except OSError:
            return "not installed"
        return (run.stdout or run.stderr).strip().splitlines()[0]

    import isal
    import zstandard

    rev = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True).stdout.strip()
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    return [f"- machine: {os.cpu_count()} cores ({cpu}), {platform.system()} "
            f"{platform.release()}",
            f"- Python {platform.python_version()}; vastbuild at {rev}; zstandard "
            f"{zstandard.__version__} (libzstd {zstandard.ZSTD_VERSION}); isal {isal.__version__}",
            f"- {version('tar', '--version')}; {version('zstd', '--version')}; "
            f"{version('gzip', '--version')}; {version('pigz', '--version')}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", choices=[*SHAPES, "all"], default="all")
    parser.add_argument("--rounds", type=int, default=5,
                        help="interleaved rounds; each case's median is reported")
    parser.add_argument("--workdir", type=Path,
                        default=Path(tempfile.gettempdir()) / "vastbuild-bench",
                        help="where the generated trees, caches and outputs live")
    parser.add_argument("--results", type=Path, default=None,
                        help="write the table to this file (bench/RESULTS.md)")
    args = parser.parse_args()

    pigz, zstd = tool("pigz", "pigz"), tool("zstd", "zstd")
    workdir: Path = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    python = install(workdir)
    sections: list[list[str]] = []
    peaks: dict[str, float] = {}
    for name in SHAPES if args.shape == "all" else [args.shape]:
        root = ensure_tree(workdir, name)
        work = workdir / f"run-{name}"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        sdk = name == "small"
        cases = cases_for(name, root, work, python, pigz, zstd, sdk)
        warm_up(python, root, work)
        try:
            for round_ in range(args.rounds):
                print(f"{name}: round {round_ + 1} of {args.rounds}", file=sys.stderr,
                      flush=True)
                for case in cases:
                    run_case(case, work)  # not the checkout: `-m vastbuild` would import it
        finally:
            subprocess.run(["git", "-C", str(root), "checkout", "-q", "--", "."], check=True)
            shutil.rmtree(work / "trash", ignore_errors=True)
        sections.append(report(name, root, cases))
        peaks[name] = max(max(c.rss_mb) for c in cases if c.ours)
    if len(peaks) == 2:
        ratio = peaks["big"] / peaks["small"]
        sections.append([f"Peak RSS, big tree / small tree: {peaks['big']:.0f} / "
                         f"{peaks['small']:.0f} MB = {ratio:.2f} (at most 1.3: "
                         f"{'yes' if ratio <= 1.3 else '**no**'})"])
    text = "\n\n".join("\n".join(s) for s in sections)
    print(text)
    if args.results is not None:
        commands = " ".join(shlex.quote(a) for a in sys.argv[1:])
        measured = (f"Written by `python bench/run.py {commands}`; see bench/README.md for "
                    "what each case runs.\n\n" + "\n".join(machine()) + "\n\n" + text)
        write_results(args.results, measured)


BEGIN, END = "<!-- bench/run.py: begin -->", "<!-- bench/run.py: end -->"


def write_results(path: Path, measured: str) -> None:
    """Put ``measured`` between the markers of ``path``, keeping the rest of the file
    (the notes on where the time goes); a new file holds the table alone."""
    before = path.read_text() if path.exists() else f"# Benchmark results\n\n{BEGIN}\n{END}\n"
    head, found, rest = before.partition(BEGIN)
    if not found:
        head, rest = before.rstrip() + "\n\n", END + "\n"
    tail = rest.partition(END)[2]
    path.write_text(f"{head}{BEGIN}\n{measured}\n{END}{tail}")


if __name__ == "__main__":
    main()
