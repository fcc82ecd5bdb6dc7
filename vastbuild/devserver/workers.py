"""Simulated workers: records that move through Vast's worker states on a clock.

The dev server runs no containers, but a client of the lifecycle routes needs
workers to watch: that they come up, take a new version, stop, start and go.
Each worker is a row with its current ``status``, the states still ahead of it
(``plan``) and when the next one is due (``next_at``). Nothing runs in the
background: :func:`advance` replays, on each request of an account, every
transition that fell due since the last one, with the time it was due, so the
result is the same however often clients poll. One step of the plan takes
``step`` seconds (``--worker-step``).

A worker goes ``idle`` only on a version whose blob has arrived: until then it
stays ``loading`` (or ``update_ready``), and goes idle at the later of its due
time and the upload. A worker marked to fail ends in ``error`` instead.

Every event is a log line at a level: 0 (info0, terse), 1 (info1, more),
2 (trace, each state change), 3 (debug). A level's log holds its own lines and
those of every lower level, so ``debug`` has everything. All functions here
take the open transaction of :class:`~vastbuild.devserver.database.ServerDatabase`.
"""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS workers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id INTEGER NOT NULL,
    endpoint_id INTEGER NOT NULL,
    workergroup_id INTEGER NOT NULL,
    status TEXT NOT NULL,
    version_id INTEGER,
    target_version_id INTEGER,
    plan TEXT NOT NULL,
    next_at REAL,
    fails INTEGER NOT NULL DEFAULT 0,
    started_at REAL,
    loaded_at REAL,
    created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS logs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id INTEGER NOT NULL,
    endpoint_id INTEGER NOT NULL,
    workergroup_id INTEGER,
    level INTEGER NOT NULL,
    at REAL NOT NULL,
    line TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS logs_by_endpoint ON logs (endpoint_id, at);
"""

INFO0, INFO1, TRACE, DEBUG = 0, 1, 2, 3
LEVEL_NAMES = ("info0", "info1", "trace", "debug")
#: The one GPU every simulated worker claims, marked so nobody mistakes it for a real offer.
GPU_NAME = "RTX 4090 (simulated)"
#: What a worker that fails its rollout says (``--fail-workers``).
FAILURE = "model failed to load: CUDA out of memory (simulated)"
#: Placeholder performance: Vast reports a dlperf estimate until a worker is idle.
_DLPERF = 100.0


class Rollouts:
    """The failures still owed to the next rollout (``--fail-workers``), process-wide.

    Only the rollout after the option is given fails, as the option promises:
    the count is used up by the first new deployment, soft or hard update.
    """

    def __init__(self, fail_next: int) -> None:
        self.fail_next = fail_next

    def take(self, workers: int) -> int:
        """How many of a rollout of ``workers`` fail; the first rollout takes them all."""
        if self.fail_next == 0 or workers == 0:
            return 0
        failing, self.fail_next = min(self.fail_next, workers), 0
        return failing


def log(db: sqlite3.Connection, account: int, endpoint_id: int, workergroup_id: int | None,
        level: int, at: float, text: str) -> None:
    """Write one timestamped log line for the endpoint (and workergroup)."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at)) + f".{int(at * 1000) % 1000:03d}Z"
    db.execute("INSERT INTO logs (account_id, endpoint_id, workergroup_id, level, at, line) "
               "VALUES (?, ?, ?, ?, ?, ?)",
               (account, endpoint_id, workergroup_id, level, at,
                f"{stamp} [{LEVEL_NAMES[level]}] {text}"))


def read_logs(db: sqlite3.Connection, account: int, column: str, owner: int,
              tail: int | None) -> dict[str, str]:
    """The four level logs of an endpoint or workergroup (``column``), the last ``tail``
    lines of each when given."""
    rows = db.execute(f"SELECT level, line FROM logs WHERE account_id=? AND {column}=? "
                      "ORDER BY at, id", (account, owner)).fetchall()
    answer = {}
    for level, name in enumerate(LEVEL_NAMES):
        lines = [row["line"] for row in rows if row["level"] <= level]
        if tail is not None:
            lines = lines[-tail:] if tail else []
        answer[name] = "".join(line + "\n" for line in lines)
    return answer


def spawn(db: sqlite3.Connection, account: int, endpoint_id: int, workergroup_id: int,
          version_id: int, count: int, failing: int, step: float, now: float) -> None:
    """Create ``count`` workers: created, then loading, then idle on ``version_id``."""
    for index in range(count):
        cursor = db.execute(
            "INSERT INTO workers (account_id, endpoint_id, workergroup_id, status, "
            "target_version_id, plan, next_at, fails, created_at) "
            "VALUES (?, ?, ?, 'created', ?, ?, ?, ?, ?)",
            (account, endpoint_id, workergroup_id, version_id, json.dumps(["loading", "idle"]),
             now + step, int(index < failing), now))
        log(db, account, endpoint_id, workergroup_id, INFO1, now,
            f"worker {cursor.lastrowid} created for version {version_id}")


def roll(db: sqlite3.Connection, account: int, workergroup_id: int, version_id: int,
         hard: bool, rollouts: Rollouts, step: float, now: float) -> int:
    """Move the workergroup's running workers to ``version_id``; returns how many.

    A soft update (new code, same container) goes ``update_ready`` then
    ``idle``; a hard one (new container) ``rebooting``, ``loading``, ``idle``.
    All workers start at once. Stopped workers are left alone: a start loads
    the current version anyway.
    """
    rows = db.execute("SELECT id, endpoint_id, status FROM workers WHERE workergroup_id=? AND "
                      "status NOT IN ('stopped', 'stopping') ORDER BY id",
                      (workergroup_id,)).fetchall()
    failing = rollouts.take(len(rows))
    for index, row in enumerate(rows):
        status, plan = (("rebooting", ["loading", "idle"]) if hard
                        else (row["status"], ["update_ready", "idle"]))
        db.execute("UPDATE workers SET status=?, target_version_id=?, plan=?, next_at=?, "
                   "fails=? WHERE id=?",
                   (status, version_id, json.dumps(plan), now + step, int(index < failing),
                    row["id"]))
        if hard:
            log(db, account, row["endpoint_id"], workergroup_id, TRACE, now,
                f"worker {row['id']}: {row['status']} -> rebooting (hard update)")
    return len(rows)


def stop(db: sqlite3.Connection, endpoint_id: int, step: float, now: float) -> None:
    """Every worker of the endpoint goes ``stopping``, then ``stopped``."""
    for row in db.execute("SELECT * FROM workers WHERE endpoint_id=? AND status NOT IN "
                          "('stopped', 'stopping')", (endpoint_id,)).fetchall():
        db.execute("UPDATE workers SET status='stopping', plan=?, next_at=? WHERE id=?",
                   (json.dumps(["stopped"]), now + step, row["id"]))
        log(db, row["account_id"], endpoint_id, row["workergroup_id"], TRACE, now,
            f"worker {row['id']}: {row['status']} -> stopping")


def start(db: sqlite3.Connection, endpoint_id: int, version_id: int, step: float,
          now: float) -> None:
    """Every stopped (or stopping) worker loads ``version_id`` again."""
    db.execute("UPDATE workers SET status='stopped', target_version_id=?, plan=?, next_at=?, "
               "fails=0 WHERE endpoint_id=? AND status IN ('stopped', 'stopping')",
               (version_id, json.dumps(["loading", "idle"]), now + step, endpoint_id))


def remove(db: sqlite3.Connection, column: str, owner: int, count: int | None = None) -> list[int]:
    """Destroy the workers of an endpoint or workergroup (``column``): all, or the
    ``count`` newest. Returns their ids."""
    rows = db.execute(f"SELECT id FROM workers WHERE {column}=? ORDER BY id DESC",
                      (owner,)).fetchall()
    ids = sorted(row["id"] for row in rows[:count])
    db.executemany("DELETE FROM workers WHERE id=?", [(worker,) for worker in ids])
    return ids


def advance(db: sqlite3.Connection, account: int, step: float, now: float) -> None:
    """Play every transition of the account's workers that fell due by ``now``."""
    rows = db.execute("SELECT * FROM workers WHERE account_id=? AND next_at IS NOT NULL AND "
                      "next_at <= ?", (account, now)).fetchall()
    for row in rows:
        _advance_worker(db, dict(row), step, now)


def _advance_worker(db: sqlite3.Connection, worker: dict[str, Any], step: float,
                    now: float) -> None:
    plan: list[str] = json.loads(worker["plan"])
    due: float | None = worker["next_at"]
    status = worker["status"]
    while plan and due is not None and due <= now:
        at = due
        following = plan[0]
        if following == "idle":
            arrived = _blob_arrival(db, worker)
            if arrived is None or arrived > now:
                break  # not yet uploaded: stays where it is until the blob is there
            at = max(due, arrived)
            if worker["fails"]:
                following = "error"
        _note(db, worker, TRACE, at, f"worker {worker['id']}: {status} -> {following}")
        status, plan = following, plan[1:]
        due = at + step if plan else None
        if status == "loading" and worker["started_at"] is None:
            worker["started_at"] = at
        elif status == "idle":
            worker["version_id"], worker["loaded_at"] = worker["target_version_id"], at
            _note(db, worker, INFO1, at,
                  f"worker {worker['id']} ready on version {worker['target_version_id']}")
        elif status == "error":
            _note(db, worker, INFO0, at, f"worker {worker['id']}: {FAILURE}")
    db.execute("UPDATE workers SET status=?, plan=?, next_at=?, version_id=?, started_at=?, "
               "loaded_at=? WHERE id=?",
               (status, json.dumps(plan), due, worker["version_id"], worker["started_at"],
                worker["loaded_at"], worker["id"]))


def _note(db: sqlite3.Connection, worker: dict[str, Any], level: int, at: float,
          text: str) -> None:
    log(db, worker["account_id"], worker["endpoint_id"], worker["workergroup_id"], level, at, text)


def _blob_arrival(db: sqlite3.Connection, worker: dict[str, Any]) -> float | None:
    """When the blob of the worker's target version arrived (None: not yet)."""
    row = db.execute(
        "SELECT b.created_at FROM versions v JOIN blobs b ON b.account_id = v.account_id AND "
        "b.file_hash = json_extract(v.registration, '$.file_hash') WHERE v.id=?",
        (worker["target_version_id"],)).fetchone()
    return None if row is None else float(row["created_at"])


def listing(db: sqlite3.Connection, account: int, endpoint_id: int) -> list[dict[str, Any]]:
    """The endpoint's workers in the shape of ``/get_endpoint_workers/`` (plus dev extras)."""
    rows = db.execute(
        "SELECT w.*, json_extract(v.registration, '$.file_hash') AS file_hash FROM workers w "
        "LEFT JOIN versions v ON v.id = w.version_id WHERE w.account_id=? AND w.endpoint_id=? "
        "ORDER BY w.id", (account, endpoint_id)).fetchall()
    return [_worker_record(row) for row in rows]


def _worker_record(row: sqlite3.Row) -> dict[str, Any]:
    idle = row["status"] == "idle"
    return {
        "id": row["id"],
        "status": row["status"],
        "cur_load": 0.0,
        "new_load": 0.0,
        "cur_load_rolling_avg": 0.0,
        "cur_perf": 0.0,
        "perf": _DLPERF if idle else 0.0,
        "measured_perf": _DLPERF,  # the dlperf placeholder before idle, as Vast's
        "dlperf": _DLPERF,
        "reliability": 1.0,
        "reqs_working": 0,
        "disk_usage": 0.0,
        "loaded_at": row["loaded_at"],
        "started_at": row["started_at"],
        # dev-server extras: the version the worker serves, and the (fake) GPU
        "version_id": row["version_id"],
        "file_hash": row["file_hash"],
        "gpu_name": GPU_NAME,
    }
