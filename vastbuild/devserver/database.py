"""The dev server's state: SQLite for records, one file per blob, all under ``--data``.

Every record belongs to an account, and every read and write here takes the
account: a query for another account's id finds nothing, which is how keys are
kept apart. An account is known by the SHA-256 of its API key only, so the data
folder never holds a key. Blobs are content-addressed per account
(``blobs/{account}/{file_hash}``): one account having a blob says nothing about
another's. Writes of blobs go to ``tmp/`` first and are renamed into place, so
a blob that exists is complete.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vastbuild.devserver import workers
from vastbuild.devserver.registration import FILE_HASH_PATTERN, Registration
from vastbuild.devserver.tier_table import (
    CREATED,
    EXISTS,
    HARD_UPDATE,
    SOFT_UPDATE,
    Decision,
    decide,
)
from vastbuild.errors import VastbuildError
from vastbuild.wire import masked_env

_SCHEMA_VERSION = "1"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS accounts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key_sha256 TEXT NOT NULL UNIQUE,
    created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS endpoints (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id INTEGER NOT NULL,
    endpoint_name TEXT NOT NULL,
    endpoint_state TEXT NOT NULL,
    settings TEXT NOT NULL,
    token TEXT NOT NULL,
    created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS workergroups (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id INTEGER NOT NULL,
    endpoint_id INTEGER NOT NULL,
    search_params TEXT,
    rolling_updates INTEGER NOT NULL DEFAULT 0,
    last_rolling_update REAL,
    created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS deployments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    tag TEXT NOT NULL,
    endpoint_id INTEGER NOT NULL,
    workergroup_id INTEGER NOT NULL,
    registration TEXT NOT NULL,
    current_version_id INTEGER,
    last_healthy_version_id INTEGER,
    last_client_heartbeat REAL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    UNIQUE (account_id, name, tag));
CREATE TABLE IF NOT EXISTS versions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    deployment_id INTEGER NOT NULL,
    account_id INTEGER NOT NULL,
    number INTEGER NOT NULL,
    action TEXT NOT NULL,
    changed TEXT NOT NULL,
    registration TEXT NOT NULL,
    created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS blobs (
    account_id INTEGER NOT NULL,
    file_hash TEXT NOT NULL,
    size INTEGER NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (account_id, file_hash));
"""
#: Ids of each kind start in their own range, so that a client mixing up a
#: deployment id with an endpoint or workergroup id gets a 404, not a wrong record.
_ID_OFFSETS = {"deployments": 100, "versions": 1000, "endpoints": 2000, "workergroups": 30000}


def key_digest(api_key: str) -> str:
    """How the key store knows a key: its SHA-256, never the key."""
    return hashlib.sha256(api_key.encode()).hexdigest()


def blob_key(account: int, file_hash: str) -> str:
    """The object key of an account's blob (``s3_key`` in records, the path of its URLs)."""
    return f"{account}/{file_hash}"


def parse_blob_key(key: str) -> tuple[int, str] | None:
    """The (account, file_hash) an object key names, or None for anything else."""
    account, _, file_hash = key.partition("/")
    if not account.isdigit() or not FILE_HASH_PATTERN.fullmatch(file_hash):
        return None
    return int(account), file_hash


@dataclass(frozen=True)
class Registered:
    """The outcome of a registration, as the PUT response needs it."""

    deployment_id: int
    endpoint_id: int
    workergroup_id: int
    decision: Decision
    has_blob: bool


class ServerDatabase:
    """All state of one dev server; safe to share between request threads."""

    def __init__(self, data_dir: Path, *, worker_step: float = 0.5, fail_workers: int = 0):
        self.data_dir = data_dir
        #: seconds per simulated worker state transition (``--worker-step``)
        self.worker_step = worker_step
        self._rollouts = workers.Rollouts(fail_workers)
        self.blob_dir = data_dir / "blobs"
        self.tmp_dir = data_dir / "tmp"
        try:
            for folder in (data_dir, self.blob_dir, self.tmp_dir):
                folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            for leftover in self.tmp_dir.iterdir():  # uploads cut off by a crash
                leftover.unlink()
            self._db = sqlite3.connect(data_dir / "state.sqlite3", check_same_thread=False,
                                       isolation_level=None)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA busy_timeout=5000")
            self._create_schema()
        except (OSError, sqlite3.Error) as exc:
            damaged = isinstance(exc, sqlite3.DatabaseError) and \
                not isinstance(exc, sqlite3.OperationalError)
            raise VastbuildError(
                f"cannot use the data folder {data_dir}: {exc}",
                hint=f"move {data_dir / 'state.sqlite3'} aside to start from an empty state "
                     "(give the API keys again), or use another data folder"
                if damaged else "use a data folder this user can create and write",
                setting="data_dir") from exc
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _create_schema(self) -> None:
        self._db.executescript(_SCHEMA + workers.SCHEMA)
        self._db.execute("BEGIN IMMEDIATE")
        try:
            row = self._db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
            if row is None:
                self._db.execute("INSERT INTO meta VALUES ('schema', ?)", (_SCHEMA_VERSION,))
                self._db.executemany("INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)",
                                     _ID_OFFSETS.items())
            elif row["value"] != _SCHEMA_VERSION:
                raise sqlite3.DatabaseError(
                    f"state.sqlite3 has schema {row['value']}, this server reads "
                    f"{_SCHEMA_VERSION}")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db, self._lock)

    # accounts

    def add_keys(self, api_keys: Iterable[str], now: float) -> None:
        """Make each key an account (known keys keep theirs)."""
        with self._transaction() as db:
            db.executemany("INSERT OR IGNORE INTO accounts (key_sha256, created_at) VALUES (?, ?)",
                           [(key_digest(key), now) for key in api_keys])

    def account_count(self) -> int:
        with self._transaction() as db:
            return int(db.execute("SELECT count(*) FROM accounts").fetchone()[0])

    def account_for_key(self, api_key: str) -> int | None:
        with self._transaction() as db:
            row = db.execute("SELECT id FROM accounts WHERE key_sha256 = ?",
                             (key_digest(api_key),)).fetchone()
        return row["id"] if row else None

    def account_exists(self, account: int) -> bool:
        with self._transaction() as db:
            row = db.execute("SELECT 1 FROM accounts WHERE id = ?", (account,)).fetchone()
        return row is not None

    # deployments

    def register(self, account: int, new: Registration, now: float) -> Registered:
        """Create or update the account's deployment (name, tag) as the tier table says."""
        with self._transaction() as db:
            row = db.execute("SELECT * FROM deployments WHERE account_id=? AND name=? AND tag=?",
                             (account, new.name, new.tag)).fetchone()
            current = Registration.from_json(json.loads(row["registration"])) if row else None
            decision = decide(current, new)
            has_blob = db.execute("SELECT 1 FROM blobs WHERE account_id=? AND file_hash=?",
                                  (account, new.file_hash)).fetchone() is not None
            if decision.action == CREATED:
                endpoint_id = _insert(
                    db, "INSERT INTO endpoints (account_id, endpoint_name, endpoint_state, "
                    "settings, token, created_at) VALUES (?, ?, 'active', ?, ?, ?)",
                    (account, f"{new.name}-{new.tag}", json.dumps(new.autoscale),
                     secrets.token_hex(16), now))
                workergroup_id = _insert(
                    db, "INSERT INTO workergroups (account_id, endpoint_id, search_params, "
                    "created_at) VALUES (?, ?, ?, ?)",
                    (account, endpoint_id, new.search_params, now))
                deployment_id = _insert(
                    db, "INSERT INTO deployments (account_id, name, tag, endpoint_id, "
                    "workergroup_id, registration, created_at, updated_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (account, new.name, new.tag, endpoint_id, workergroup_id,
                     json.dumps(new.to_json()), now, now))
            else:
                deployment_id, endpoint_id = row["id"], row["endpoint_id"]
                workergroup_id = row["workergroup_id"]
            if decision.action != EXISTS:
                version_id = self._add_version(db, account, deployment_id, new, decision,
                                               has_blob, now)
                db.execute("UPDATE endpoints SET settings=? WHERE id=?",
                           (json.dumps(new.autoscale), endpoint_id))
                db.execute("UPDATE workergroups SET search_params=? WHERE id=?",
                           (new.search_params, workergroup_id))
                self._simulate_registration(db, account, deployment_id, endpoint_id,
                                            workergroup_id, version_id, decision, now)
        return Registered(deployment_id, endpoint_id, workergroup_id, decision, has_blob)

    def _simulate_registration(self, db: sqlite3.Connection, account: int, deployment_id: int,
                               endpoint_id: int, workergroup_id: int, version_id: int,
                               decision: Decision, now: float) -> None:
        """What a registration does to the workers: a new deployment starts its
        ``cold_workers``, a hard update reboots them, a soft one waits for
        ``/update_workers/``, and a changed ``cold_workers`` adds or removes some."""
        step = self.worker_step
        workers.log(db, account, endpoint_id, workergroup_id, workers.DEBUG, now,
                    f"registration of deployment {deployment_id}: {decision.action}, version "
                    f"{version_id}, changed: {', '.join(decision.changed) or 'nothing'}")
        if decision.action == CREATED:
            count = _cold_workers(db, endpoint_id)
            workers.log(db, account, endpoint_id, workergroup_id, workers.INFO0, now,
                        f"deployment {deployment_id} created: {count} workers starting on "
                        f"version {version_id}")
            workers.spawn(db, account, endpoint_id, workergroup_id, version_id, count,
                          self._rollouts.take(count), step, now)
            return
        if decision.action == HARD_UPDATE:
            moved = workers.roll(db, account, workergroup_id, version_id, True, self._rollouts,
                                 step, now)
            workers.log(db, account, endpoint_id, workergroup_id, workers.INFO0, now,
                        f"hard update to version {version_id}: {moved} workers rebooting")
        elif decision.action == SOFT_UPDATE:
            workers.log(db, account, endpoint_id, workergroup_id, workers.INFO0, now,
                        f"soft update to version {version_id} registered; workers move on "
                        "/update_workers/")
        self._scale(db, account, endpoint_id, now)

    def _scale(self, db: sqlite3.Connection, account: int, endpoint_id: int, now: float) -> None:
        """Add or remove workers until an active endpoint has ``cold_workers`` of them.

        A stopped or suspended endpoint keeps the workers it has (suspended: no
        scaling, as Vast documents it; stopped: a start scales it).
        """
        endpoint = db.execute("SELECT endpoint_state FROM endpoints WHERE id=?",
                              (endpoint_id,)).fetchone()
        deployment = db.execute("SELECT workergroup_id, current_version_id FROM deployments "
                                "WHERE endpoint_id=?", (endpoint_id,)).fetchone()
        if endpoint is None or endpoint["endpoint_state"] != "active" or deployment is None:
            return
        group = deployment["workergroup_id"]
        if db.execute("SELECT 1 FROM workergroups WHERE id=?", (group,)).fetchone() is None:
            return  # the workergroup was deleted: there is nothing to scale
        wanted = _cold_workers(db, endpoint_id)
        have = int(db.execute("SELECT count(*) FROM workers WHERE workergroup_id=?",
                              (group,)).fetchone()[0])
        if wanted > have:
            workers.spawn(db, account, endpoint_id, group, deployment["current_version_id"],
                          wanted - have, 0, self.worker_step, now)
        elif wanted < have:
            for worker in workers.remove(db, "workergroup_id", group, have - wanted):
                workers.log(db, account, endpoint_id, group, workers.INFO1, now,
                            f"worker {worker} destroyed (scaled down)")
        if wanted != have:
            workers.log(db, account, endpoint_id, group, workers.INFO0, now,
                        f"cold_workers {wanted}: {have} -> {wanted} workers")

    @staticmethod
    def _add_version(db: sqlite3.Connection, account: int, deployment_id: int,
                     new: Registration, decision: Decision, has_blob: bool, now: float) -> int:
        number = int(db.execute("SELECT count(*) FROM versions WHERE deployment_id=?",
                                (deployment_id,)).fetchone()[0]) + 1
        version_id = _insert(
            db, "INSERT INTO versions (deployment_id, account_id, number, action, changed, "
            "registration, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (deployment_id, account, number, decision.action, json.dumps(decision.changed),
             json.dumps(new.to_json()), now))
        db.execute(
            "UPDATE deployments SET registration=?, current_version_id=?, updated_at=?,"
            " last_healthy_version_id = CASE WHEN ? THEN ? ELSE last_healthy_version_id END"
            " WHERE id=?",
            (json.dumps(new.to_json()), version_id, now, has_blob, version_id, deployment_id))
        return version_id

    def deployments(self, account: int) -> list[dict[str, Any]]:
        with self._transaction() as db:
            rows = db.execute(_DEPLOYMENT_QUERY + " WHERE d.account_id=? ORDER BY d.id",
                              (account,)).fetchall()
        return [_deployment_record(row) for row in rows]

    def deployment(self, account: int, deployment_id: int) -> dict[str, Any] | None:
        with self._transaction() as db:
            row = db.execute(_DEPLOYMENT_QUERY + " WHERE d.account_id=? AND d.id=?",
                             (account, deployment_id)).fetchone()
        return _deployment_record(row) if row else None

    def versions(self, account: int, deployment_id: int) -> list[dict[str, Any]]:
        """The deployment's history, oldest first (empty for a foreign or unknown id)."""
        with self._transaction() as db:
            rows = db.execute("SELECT * FROM versions WHERE account_id=? AND deployment_id=? "
                              "ORDER BY id", (account, deployment_id)).fetchall()
        return [_version_record(row) for row in rows]

    def delete_deployment(self, account: int, deployment_id: int) -> list[int] | None:
        """Forget the deployment, its endpoint, workergroup, versions, workers and logs
        (its blobs stay). Returns the destroyed workers' ids; None: not the account's."""
        with self._transaction() as db:
            row = db.execute("SELECT endpoint_id FROM deployments WHERE account_id=? AND id=?",
                             (account, deployment_id)).fetchone()
            return None if row is None else _delete_endpoint(db, row["endpoint_id"])

    def delete_deployments_named(self, account: int, name: str,
                                 tag: str | None) -> list[tuple[int, list[int]]]:
        """Delete the account's deployments called ``name`` (every tag when ``tag`` is
        None); returns each one's id and destroyed workers."""
        with self._transaction() as db:
            rows = db.execute("SELECT id, endpoint_id FROM deployments WHERE account_id=? AND "
                              "name=? AND (? IS NULL OR tag=?) ORDER BY id",
                              (account, name, tag, tag)).fetchall()
            return [(row["id"], _delete_endpoint(db, row["endpoint_id"])) for row in rows]

    def delete_endpoint(self, account: int, endpoint_id: int) -> list[int] | None:
        """Delete an endpoint with its workergroups, workers and deployment (the dev
        server keeps no deployment without its endpoint); None: not the account's."""
        with self._transaction() as db:
            row = db.execute("SELECT id FROM endpoints WHERE account_id=? AND id=?",
                             (account, endpoint_id)).fetchone()
            return None if row is None else _delete_endpoint(db, endpoint_id)

    def delete_workergroup(self, account: int, workergroup_id: int, now: float) -> list[int] | None:
        """Delete a workergroup and destroy its workers; the endpoint and deployment stay
        (without workers). None: not the account's."""
        with self._transaction() as db:
            row = db.execute("SELECT endpoint_id FROM workergroups WHERE account_id=? AND id=?",
                             (account, workergroup_id)).fetchone()
            if row is None:
                return None
            destroyed = workers.remove(db, "workergroup_id", workergroup_id)
            db.execute("DELETE FROM workergroups WHERE id=?", (workergroup_id,))
            workers.log(db, account, row["endpoint_id"], None, workers.INFO0, now,
                        f"workergroup {workergroup_id} deleted: {len(destroyed)} workers "
                        "destroyed")
            return destroyed

    def advance(self, account: int, now: float) -> None:
        """Bring the account up to ``now``: delete deployments whose TTL ran out without
        a heartbeat, then play the worker transitions that fell due."""
        with self._transaction() as db:
            expired = db.execute(
                "SELECT endpoint_id FROM deployments WHERE account_id=? AND "
                "json_extract(registration, '$.ttl') IS NOT NULL AND "
                "max(coalesce(last_client_heartbeat, 0), updated_at) + "
                "json_extract(registration, '$.ttl') < ?", (account, now)).fetchall()
            for row in expired:
                _delete_endpoint(db, row["endpoint_id"])
            workers.advance(db, account, self.worker_step, now)

    def endpoint_workers(self, account: int, endpoint_id: int) -> list[dict[str, Any]] | None:
        with self._transaction() as db:
            if not _owns(db, "endpoints", account, endpoint_id):
                return None
            return workers.listing(db, account, endpoint_id)

    def logs(self, account: int, table: str, owner: int, tail: int | None) -> dict[str, str] | None:
        """The four level logs of the account's endpoint or workergroup (``table``)."""
        column = {"endpoints": "endpoint_id", "workergroups": "workergroup_id"}[table]
        with self._transaction() as db:
            if not _owns(db, table, account, owner):
                return None
            return workers.read_logs(db, account, column, owner, tail)

    def heartbeat(self, account: int, deployment_id: int, now: float) -> bool:
        with self._transaction() as db:
            return db.execute("UPDATE deployments SET last_client_heartbeat=? "
                              "WHERE account_id=? AND id=?",
                              (now, account, deployment_id)).rowcount == 1

    def deployment_endpoint(self, account: int, deployment_id: int) -> int | None:
        with self._transaction() as db:
            row = db.execute("SELECT endpoint_id FROM deployments WHERE account_id=? AND id=?",
                             (account, deployment_id)).fetchone()
        return None if row is None else int(row["endpoint_id"])

    def update_endpoint(self, account: int, endpoint_id: int, state: str | None,
                        settings: dict[str, Any], now: float) -> bool:
        """Change an endpoint's state and settings, and its workers with them: ``stopped``
        stops them, ``active`` after ``stopped`` starts them, a new ``cold_workers``
        scales an active endpoint. False: not the account's endpoint."""
        with self._transaction() as db:
            row = db.execute("SELECT * FROM endpoints WHERE account_id=? AND id=?",
                             (account, endpoint_id)).fetchone()
            if row is None:
                return False
            merged = {**json.loads(row["settings"]), **settings}
            before, after = row["endpoint_state"], state or row["endpoint_state"]
            db.execute("UPDATE endpoints SET endpoint_state=?, settings=? WHERE id=?",
                       (after, json.dumps(merged), endpoint_id))
            if settings:
                workers.log(db, account, endpoint_id, None, workers.INFO1, now,
                            "settings changed: " + ", ".join(
                                f"{name}={value}" for name, value in sorted(settings.items())))
            if after != before:
                workers.log(db, account, endpoint_id, None, workers.INFO0, now,
                            f"endpoint {endpoint_id}: {before} -> {after}")
            if after == "stopped" and before != "stopped":
                workers.stop(db, endpoint_id, self.worker_step, now)
            elif after == "active" and before == "stopped":
                deployment = db.execute("SELECT current_version_id FROM deployments WHERE "
                                        "endpoint_id=?", (endpoint_id,)).fetchone()
                if deployment is not None:
                    workers.start(db, endpoint_id, deployment["current_version_id"],
                                  self.worker_step, now)
            self._scale(db, account, endpoint_id, now)
            return True

    # endpoints and workergroups

    def endpoints(self, account: int, endpoint_id: int | None = None) -> list[dict[str, Any]]:
        query = "SELECT * FROM endpoints WHERE account_id=?"
        arguments: tuple[int, ...] = (account,)
        if endpoint_id is not None:
            query, arguments = query + " AND id=?", (account, endpoint_id)
        with self._transaction() as db:
            rows = db.execute(query + " ORDER BY id", arguments).fetchall()
        return [_endpoint_record(row) for row in rows]

    def workergroups(self, account: int) -> list[dict[str, Any]]:
        with self._transaction() as db:
            rows = db.execute("SELECT * FROM workergroups WHERE account_id=? ORDER BY id",
                              (account,)).fetchall()
        return [_workergroup_record(row) for row in rows]

    def rolling_update(self, account: int, workergroup_id: int,
                       now: float) -> dict[str, Any] | None:
        """Roll the account's workergroup to its deployment's current version, and count
        it (None: not the account's workergroup)."""
        with self._transaction() as db:
            db.execute("UPDATE workergroups SET rolling_updates = rolling_updates + 1, "
                       "last_rolling_update=? WHERE account_id=? AND id=?",
                       (now, account, workergroup_id))
            row = db.execute("SELECT * FROM workergroups WHERE account_id=? AND id=?",
                             (account, workergroup_id)).fetchone()
            deployment = db.execute("SELECT current_version_id FROM deployments WHERE "
                                    "workergroup_id=?", (workergroup_id,)).fetchone()
            if row is not None and deployment is not None:
                version = deployment["current_version_id"]
                moved = workers.roll(db, account, workergroup_id, version, False,
                                     self._rollouts, self.worker_step, now)
                workers.log(db, account, row["endpoint_id"], workergroup_id, workers.INFO0, now,
                            f"rolling update to version {version}: {moved} workers")
        return _workergroup_record(row) if row else None

    # blobs

    def has_blob(self, account: int, file_hash: str) -> bool:
        with self._transaction() as db:
            return db.execute("SELECT 1 FROM blobs WHERE account_id=? AND file_hash=?",
                              (account, file_hash)).fetchone() is not None

    def blob_path(self, account: int, file_hash: str) -> Path:
        return self.blob_dir / str(account) / file_hash

    def commit_blob(self, account: int, file_hash: str, uploaded: Path, size: int,
                    now: float) -> None:
        """Move a complete upload into place and make every deployment on it healthy."""
        target = self.blob_path(account, file_hash)
        target.parent.mkdir(exist_ok=True)
        os.replace(uploaded, target)
        with self._transaction() as db:
            db.execute("INSERT OR REPLACE INTO blobs VALUES (?, ?, ?, ?)",
                       (account, file_hash, size, now))
            db.execute(
                "UPDATE deployments SET last_healthy_version_id = current_version_id "
                "WHERE account_id=? AND json_extract(registration, '$.file_hash')=?",
                (account, file_hash))


def _cold_workers(db: sqlite3.Connection, endpoint_id: int) -> int:
    settings = db.execute("SELECT settings FROM endpoints WHERE id=?", (endpoint_id,)).fetchone()
    return int(json.loads(settings["settings"]).get("cold_workers") or 0)


def _owns(db: sqlite3.Connection, table: str, account: int, record_id: int) -> bool:
    return db.execute(f"SELECT 1 FROM {table} WHERE account_id=? AND id=?",
                      (account, record_id)).fetchone() is not None


def _delete_endpoint(db: sqlite3.Connection, endpoint_id: int) -> list[int]:
    """Delete an endpoint and all that hangs on it; returns the destroyed workers' ids."""
    destroyed = workers.remove(db, "endpoint_id", endpoint_id)
    for table in ("logs", "workergroups"):
        db.execute(f"DELETE FROM {table} WHERE endpoint_id=?", (endpoint_id,))
    db.execute("DELETE FROM versions WHERE deployment_id IN "
               "(SELECT id FROM deployments WHERE endpoint_id=?)", (endpoint_id,))
    db.execute("DELETE FROM deployments WHERE endpoint_id=?", (endpoint_id,))
    db.execute("DELETE FROM endpoints WHERE id=?", (endpoint_id,))
    return destroyed


def _insert(db: sqlite3.Connection, statement: str, arguments: tuple[Any, ...]) -> int:
    """Run an INSERT and return the new row's id."""
    row_id = db.execute(statement, arguments).lastrowid
    assert row_id is not None
    return row_id


class _Transaction:
    """One locked transaction: the lock serialises threads, BEGIN/COMMIT makes it atomic."""

    def __init__(self, db: sqlite3.Connection, lock: threading.Lock):
        self._db, self._lock = db, lock

    def __enter__(self) -> sqlite3.Connection:
        self._lock.acquire()
        self._db.execute("BEGIN IMMEDIATE")
        return self._db

    def __exit__(self, exc_type: object, exc: object, traceback: object) -> None:
        try:
            self._db.execute("ROLLBACK" if exc_type else "COMMIT")
        finally:
            self._lock.release()


_DEPLOYMENT_QUERY = (
    "SELECT d.*, e.endpoint_state, coalesce(w.rolling_updates, 0) AS rolling_updates, "
    "(SELECT count(*) FROM workers k WHERE k.workergroup_id = d.workergroup_id) AS worker_count "
    "FROM deployments d JOIN endpoints e ON e.id = d.endpoint_id "
    "LEFT JOIN workergroups w ON w.id = d.workergroup_id")


def _deployment_record(row: sqlite3.Row) -> dict[str, Any]:
    """A deployment in the shape of ``GET /api/v0/deployment/{id}/`` (plus a few dev extras)."""
    registration = json.loads(row["registration"])
    return {
        "id": row["id"],
        "name": row["name"],
        "tag": row["tag"],
        "endpoint_id": row["endpoint_id"],
        "endpoint_state": row["endpoint_state"],
        "worker_count": row["worker_count"],
        "s3_key": blob_key(row["account_id"], registration["file_hash"]),
        "env": _shown_env(registration["env"]),
        "image": registration["image"],
        "storage": registration["storage"],
        "search_params": registration["search_params"],
        "file_hash": registration["file_hash"],
        "current_version_id": row["current_version_id"],
        "last_healthy_version_id": row["last_healthy_version_id"],
        "ttl": registration["ttl"],
        "last_client_heartbeat": row["last_client_heartbeat"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        # dev-server extras: not promised by the Vast API
        "file_size": registration["file_size"],
        "version_label": registration["version_label"],
        "workergroup_id": row["workergroup_id"],
        "rolling_updates": row["rolling_updates"],
    }


def _shown_env(env: str | None) -> str | None:
    """The docker options as answers show them: kept whole in the database, as Vast
    keeps what it receives, but each secret's value shown as ``***``."""
    return None if env is None else masked_env(env)


def _version_record(row: sqlite3.Row) -> dict[str, Any]:
    registration = json.loads(row["registration"])
    return {
        "id": row["id"],
        "deployment_id": row["deployment_id"],
        "version": row["number"],
        "action": row["action"],
        "changed": json.loads(row["changed"]),
        "file_hash": registration["file_hash"],
        "file_size": registration["file_size"],
        "s3_key": blob_key(row["account_id"], registration["file_hash"]),
        "image": registration["image"],
        "env": _shown_env(registration["env"]),
        "search_params": registration["search_params"],
        "storage": registration["storage"],
        "ttl": registration["ttl"],
        "version_label": registration["version_label"],
        "created_at": row["created_at"],
    }


def _endpoint_record(row: sqlite3.Row) -> dict[str, Any]:
    """An endpoint in the shape the SDK's EndpointData reads, autoscaling fields at top level."""
    return {
        "id": row["id"],
        "endpoint_name": row["endpoint_name"],
        "endpoint_state": row["endpoint_state"],
        **json.loads(row["settings"]),
        "api_key": row["token"],
        "user_id": row["account_id"],
        "created_at": row["created_at"],
        "auto_delete_in_seconds": None,
        "auto_delete_due_24h": False,
    }


def _workergroup_record(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "endpoint_id": row["endpoint_id"],
        "search_params": row["search_params"],
        "rolling_updates": row["rolling_updates"],
        "last_rolling_update": row["last_rolling_update"],
        "created_at": row["created_at"],
    }
