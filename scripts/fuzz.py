"""``make fuzz``: the parser, the checker and the formatter on 100,000 inputs, each
with a time limit.

The CI test (tests/test_fuzz.py) runs 10,000 inputs and would wait forever on an
input that makes the parser loop; this run draws ten times as many from the same
corpus (tests/fuzz_helpers.py: the example Vastfiles mutated at the byte, line and
word level, and Vastfiles assembled from keywords and troublesome words) and holds
each to the same answer. Inputs run in worker processes, one at a time each, and
this process kills a worker whose input outlasts ``--time-limit``: a pathological
input is a failure with its seed, not a hang, even when it is stuck in C code where
no signal handler runs.

Every input is a function of one 64-bit seed drawn from ``--seed``, so a run is
reproduced by its seed and a failure by its own. Each failing input is written to
``--failures`` (its bytes, and a text file with the error and a command that
replays it). Exits 1 when any input failed.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import secrets
import shutil
import sys
import time
import traceback
from collections import Counter
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the corpus and the answers are the test's own

from fuzz_helpers import SOURCES, assert_answers, case  # noqa: E402

#: the start method: a forked worker starts with the parser already loaded
CONTEXT = multiprocessing.get_context("fork")


def _work(conn: Connection) -> None:
    """A worker: answer each seed sent with (seconds taken, the error or None)."""
    while True:
        seed = conn.recv()
        if seed is None:
            return
        path, source = case(seed)
        start = time.perf_counter()
        try:
            assert_answers(path, source)
            error = None
        except Exception:
            error = traceback.format_exc()
        conn.send((time.perf_counter() - start, error))


@dataclass
class Worker:
    """A worker process, the seed it is running and when that seed was sent."""

    process: BaseProcess
    conn: Connection
    seed: int | None = None
    sent: float = 0.0

    @classmethod
    def start(cls) -> Worker:
        parent, child = CONTEXT.Pipe()
        process = CONTEXT.Process(target=_work, args=(child,), daemon=True)
        process.start()
        child.close()
        return cls(process, parent)

    def send(self, seed: int) -> None:
        self.seed, self.sent = seed, time.perf_counter()
        self.conn.send(seed)

    def kill(self) -> None:
        self.process.kill()
        self.process.join()
        self.conn.close()


@dataclass
class Failure:
    seed: int
    error: str

    @property
    def signature(self) -> str:
        """The error's last line: failures that share it are likely one bug."""
        lines = self.error.strip().splitlines()
        return lines[-1] if lines else "?"


def warm_up() -> None:
    """Load here, once, what the first input loads (grammar tables, lazily imported
    modules: some 60 ms), so that a worker forked from this process -- the first ones,
    and each one started after a kill -- is timed on its input alone."""
    for path, source in SOURCES:
        try:
            assert_answers(path, source)
        except Exception:
            pass  # the examples have tests of their own; here they only load the code


def run(seeds: list[int], time_limit: float, jobs: int) -> tuple[list[Failure], float, int]:
    """Run every seed's input; the failures, the slowest input's seconds and its seed."""
    warm_up()
    failures: list[Failure] = []
    slowest, slowest_seed = 0.0, seeds[0] if seeds else 0
    pending = iter(seeds)
    workers = [Worker.start() for _ in range(min(jobs, len(seeds)))]
    done, report_every = 0, max(1, len(seeds) // 10)
    started = time.perf_counter()
    try:
        for worker in workers:
            seed = next(pending, None)
            if seed is not None:
                worker.send(seed)
        while any(w.seed is not None for w in workers):
            busy = [w for w in workers if w.seed is not None]
            now = time.perf_counter()
            timeout = max(0.0, min(w.sent + time_limit for w in busy) - now)
            ready = wait([w.conn for w in busy], timeout)
            for index, worker in enumerate(workers):
                if worker.seed is None:
                    continue
                seed = worker.seed
                if worker.conn in ready:
                    try:
                        seconds, error = worker.conn.recv()
                    except EOFError:  # the worker died: a crash in C, out of memory
                        seconds = time.perf_counter() - worker.sent
                        error = f"the worker died (exit code {worker.process.exitcode})"
                        worker.kill()
                        worker = workers[index] = Worker.start()
                    if error is None and seconds > time_limit:
                        error = f"took {seconds:.3f} s, over the limit of {time_limit} s"
                elif time.perf_counter() - worker.sent >= time_limit:
                    seconds = time.perf_counter() - worker.sent
                    error = f"no answer in {time_limit} s: killed (a hang, or a slowdown)"
                    worker.kill()
                    worker = workers[index] = Worker.start()
                else:
                    continue
                worker.seed = None
                if seconds > slowest:
                    slowest, slowest_seed = seconds, seed
                if error is not None:
                    failures.append(Failure(seed, error))
                done += 1
                if done % report_every == 0:
                    print(f"  {done:,} inputs, {len(failures):,} failures, "
                          f"{time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
                following = next(pending, None)
                if following is not None:
                    worker.send(following)
    finally:
        for worker in workers:
            if worker.seed is None and worker.process.is_alive():
                worker.conn.send(None)  # idle: let it end on its own
                worker.process.join(5)
            worker.kill()
    return failures, slowest, slowest_seed


def write_failures(failures: list[Failure], folder: Path) -> None:
    """Each failing input's bytes as SEED.Vastfile, and SEED.txt: the file it was checked
    as, the error, and a command that replays it."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for failure in failures:
        path, source = case(failure.seed)
        (folder / f"{failure.seed}.Vastfile").write_bytes(source)
        replay = (f"{ROOT / '.venv/bin/python'} -c \"import sys; sys.path.insert(0, "
                  f"'{ROOT / 'tests'}'); from fuzz_helpers import assert_answers, case; "
                  f"assert_answers(*case({failure.seed}))\"")
        (folder / f"{failure.seed}.txt").write_text(
            f"seed: {failure.seed}\nchecked as: {path}\nreplay: {replay}\n\n{failure.error}\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=100_000, metavar="N",
                        help="inputs to run (default: 100,000)")
    parser.add_argument("--time-limit", type=float, default=2.0, metavar="S",
                        help="seconds an input may take before it is a failure (default: 2)")
    parser.add_argument("--seed", type=int, default=None,
                        help="the seed the inputs' seeds are drawn from (default: a random one, "
                             "printed)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, metavar="N",
                        help="worker processes (default: the cores)")
    parser.add_argument("--failures", type=Path, default=ROOT / "build" / "fuzz-failures",
                        metavar="DIR", help="where failing inputs are written "
                                            "(default: build/fuzz-failures)")
    args = parser.parse_args()
    if args.examples < 1 or args.time_limit <= 0 or args.jobs < 1:
        parser.error("--examples, --time-limit and --jobs must be positive")
    base = args.seed if args.seed is not None else secrets.randbits(32)
    rng = random.Random(base)
    seeds = [rng.getrandbits(64) for _ in range(args.examples)]
    print(f"fuzz: {len(seeds):,} inputs, seed {base}, {args.jobs} workers, "
          f"time limit {args.time_limit} s an input", flush=True)
    started = time.perf_counter()
    failures, slowest, slowest_seed = run(seeds, args.time_limit, args.jobs)
    total = time.perf_counter() - started
    print(f"inputs:        {len(seeds):,}")
    print(f"failures:      {len(failures):,}")
    print(f"slowest input: {slowest:.3f} s (seed {slowest_seed})")
    print(f"total time:    {total:.1f} s")
    if failures:
        write_failures(failures, args.failures)
        print(f"failing inputs written to {args.failures}; by error:")
        for signature, count in Counter(f.signature for f in failures).most_common():
            first = next(f.seed for f in failures if f.signature == signature)
            print(f"  {count:>7,}  {signature}  (e.g. seed {first})")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
