"""Operate what was deployed: status, logs, waiting for a rollout, stop and start,
taking a deployment down, its history, and rolling back to an earlier version.

Every function finds a target's deployment on the server by (name, tag), as
``deploy`` registers it, and reads the local record of the last deploy
(:mod:`vastbuild.vast.last_deploy`) for what the server does not keep: the
versions deployed from here and their tarballs. Nothing here prints: results
are dataclasses and progress goes to a ``report`` callback.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from vastbuild.deploy import (
    DeployOutcome,
    Meter,
    ServerReader,
    deploy_registered,
    listed,
    plan_target,
    tags_of,
)
from vastbuild.errors import VastbuildError
from vastbuild.model import DEFAULT_TAG, Deployment
from vastbuild.progress import TransferMeter
from vastbuild.secret_values import Secrets
from vastbuild.units import int_or_none
from vastbuild.vast.client import VastClient
from vastbuild.vast.last_deploy import Deployed, forget, read_history
from vastbuild.wire import with_secrets

Report = Callable[[str], None]
#: worker states that end a rollout badly (compared in lower case)
FAILED_STATES = frozenset({"error", "unavail", "destroying", "failed"})
#: worker states a rollout waits through
BUSY_STATES = frozenset({"created", "creating", "starting", "loading", "model_loading",
                         "rebooting", "update_ready", "update_rebooting", "update_starting",
                         "pending"})


@dataclass(frozen=True)
class TargetStatus:
    """One deployment as the server and the local record see it."""

    label: str | None
    name: str
    tag: str
    deployment_id: int | None
    endpoint_id: int | None
    endpoint_state: str | None
    current_version: int | None
    last_healthy_version: int | None
    server_hash: str | None
    local_hash: str | None
    workers: Mapping[str, int]
    ttl: float | None
    last_heartbeat: float | None

    @property
    def up_to_date(self) -> bool | None:
        """Whether the server serves the local content (None: no local content known)."""
        if self.local_hash is None:
            return None
        return self.server_hash == self.local_hash

    def to_json(self) -> dict[str, Any]:
        return {"label": self.label, "name": self.name, "tag": self.tag,
                "deployment_id": self.deployment_id, "endpoint_id": self.endpoint_id,
                "endpoint_state": self.endpoint_state,
                "current_version_id": self.current_version,
                "last_healthy_version_id": self.last_healthy_version,
                "server_hash": self.server_hash, "local_hash": self.local_hash,
                "up_to_date": self.up_to_date, "workers": dict(self.workers),
                "ttl": self.ttl, "last_heartbeat": self.last_heartbeat}


def status(client: VastClient, targets: Sequence[tuple[Deployment, str]] | None
           ) -> list[TargetStatus]:
    """The status of each (model, local content hash); with None, every deployment
    of the account (no local hash to compare)."""
    found: list[TargetStatus] = []
    if targets is None:
        for record in client.list_deployments():
            name, tag = str(record.get("name")), str(record.get("tag") or DEFAULT_TAG)
            found.append(_status(client, None, name, tag, None))
        return found
    for model, local in targets:
        found.append(_status(client, model.label, model.name, model.tag, local))
    return found


def _status(client: VastClient, label: str | None, name: str, tag: str,
            local: str | None) -> TargetStatus:
    record = find_deployment(client, name, tag)
    if record is None:
        return TargetStatus(label, name, tag, None, None, None, None, None, None, local, {},
                            None, None)
    endpoint_id = int_or_none(record.get("endpoint_id"))
    workers = client.get_endpoint_workers(endpoint_id) if endpoint_id is not None else []
    counts = Counter(str(w.get("status", "unknown")).lower() for w in workers)
    return TargetStatus(
        label, name, tag, int_or_none(record.get("id")), endpoint_id,
        _text(record.get("endpoint_state")), int_or_none(record.get("current_version_id")),
        int_or_none(record.get("last_healthy_version_id")), _text(record.get("file_hash")),
        local, dict(sorted(counts.items())), _number(record.get("ttl")),
        _number(record.get("last_client_heartbeat")))


def find_deployment(client: VastClient, name: str, tag: str) -> dict[str, Any] | None:
    """The server's full record of (name, tag), or None."""
    found = listed(client.list_deployments(), name, tag)
    return None if found is None else client.get_deployment(int(found["id"]))


def _required(client: VastClient, model: Deployment) -> dict[str, Any]:
    record = find_deployment(client, model.name, model.tag)
    if record is None:
        raise VastbuildError(f"{model.label}: {model.name}:{model.tag} is not deployed",
                             "deploy it first (`vastbuild deploy`)")
    return record


# -- logs ------------------------------------------------------------------------------


def logs(client: VastClient, model: Deployment, *, level: str = "info1",
         tail: int | None = None, workergroup: bool = False) -> list[str]:
    """The lines of one log level of the target's endpoint (or its workergroup)."""
    record = _required(client, model)
    if workergroup:
        group = int_or_none(record.get("workergroup_id")) or client.find_workergroup(
            int(record["endpoint_id"]))
        if group is None:
            raise VastbuildError(f"{model.label}: no workergroup serves the endpoint",
                                 "read the endpoint's logs instead")
        answer = client.get_logs("workergroup", group, tail)
    else:
        answer = client.get_logs("endpoint", int(record["endpoint_id"]), tail)
    return _lines(answer, level)


def new_lines(seen: list[str], lines: list[str]) -> list[str]:
    """The lines of ``lines`` after those already ``seen`` (a log that was cut at its
    start or rotated shares a tail with what was seen; else everything is new)."""
    if not seen:
        return lines
    for overlap in range(min(len(seen), len(lines)), 0, -1):
        if seen[-overlap:] == lines[:overlap]:
            return lines[overlap:]
    return lines


# -- waiting for a rollout ---------------------------------------------------------------

#: how a wait ends when the workers serve the new version
SERVING = "serving"
#: how a wait ends for an endpoint that keeps no worker when idle
NO_STANDING_WORKERS = ("no worker to wait for: with cold_workers=0 none starts until a "
                       "request arrives")


@dataclass(frozen=True)
class WaitResult:
    """How a wait ended: ``ok``, and the workers by status at the end; ``failed`` the
    failing workers' ids and ``log`` the endpoint's log lines that name them."""

    ok: bool
    reason: str
    workers: Mapping[str, int]
    failed: tuple[int, ...] = ()
    log: tuple[str, ...] = ()

    @property
    def serving(self) -> bool:
        """Whether it ended with the workers serving (not with nothing to wait for)."""
        return self.reason == SERVING


def wait(client: VastClient, model: Deployment, file_hash: str, *, timeout: float = 600.0,
         interval: float = 1.0, report: Report | None = None) -> WaitResult:
    """Poll the endpoint's workers until every one is idle on ``file_hash`` (when the
    workers report what they serve) or at least one is idle and none is busy; a
    worker in a failed state, or the timeout, ends it badly. An endpoint with
    ``cold_workers=0`` and no worker has nothing to wait for (ok at once)."""
    say = report or (lambda line: None)
    record = _required(client, model)
    endpoint = int(record["endpoint_id"])
    deadline = time.monotonic() + timeout
    last_shown = ""
    while True:
        workers = client.get_endpoint_workers(endpoint)
        counts = dict(sorted(Counter(str(w.get("status", "")).lower() for w in workers).items()))
        shown = ", ".join(f"{n} {state}" for state, n in counts.items()) or "no workers yet"
        if shown != last_shown:
            say(f"{model.label}: workers: {shown}")
            last_shown = shown
        failed = tuple(int(w["id"]) for w in workers if str(w.get("status", "")).lower()
                       in FAILED_STATES and w.get("id") is not None)
        if failed:
            return WaitResult(False, f"{len(failed)} worker(s) failed", counts, failed,
                              tuple(_lines_naming(client, endpoint, failed)))
        if workers and _serving(workers, file_hash):
            return WaitResult(True, SERVING, counts)
        if not workers and dict(model.autoscale).get("cold_workers") == 0:
            return WaitResult(True, NO_STANDING_WORKERS, counts)
        if time.monotonic() >= deadline:
            return WaitResult(False, f"not serving after {timeout:.0f} s", counts, (),
                              tuple(logs_tail(client, endpoint)))
        time.sleep(interval)


def _serving(workers: list[dict[str, Any]], file_hash: str) -> bool:
    states = [str(w.get("status", "")).lower() for w in workers]
    if any(state in BUSY_STATES for state in states) or "idle" not in states:
        return False
    versions = [w.get("file_hash") for w in workers if str(w.get("status", "")).lower() == "idle"]
    return all(v is None or v == file_hash for v in versions)


def _lines_naming(client: VastClient, endpoint: int, workers: tuple[int, ...]) -> list[str]:
    lines = logs_tail(client, endpoint, level="debug", tail=500)
    named = [line for line in lines if any(f"worker {w}" in line for w in workers)]
    return named[-20:] or lines[-20:]


def logs_tail(client: VastClient, endpoint: int, level: str = "info0",
              tail: int = 50) -> list[str]:
    return _lines(client.get_logs("endpoint", endpoint, tail), level)


def _lines(answer: Mapping[str, str], level: str) -> list[str]:
    """The non-blank lines of one level of a log answer (or of its one ``logs`` text,
    the other documented shape)."""
    return [line for line in answer.get(level, answer.get("logs", "")).splitlines()
            if line.strip()]


# -- stop, start, down ---------------------------------------------------------------------

def set_running(client: VastClient, model: Deployment, running: bool) -> str:
    """Start or stop the target's endpoint; the state the server reports after."""
    record = _required(client, model)
    deployment = int(record["id"])
    answer = client.start_deployment(deployment) if running else \
        client.stop_deployment(deployment)
    return str(answer.get("endpoint_state") or ("active" if running else "stopped"))


@dataclass(frozen=True)
class DownResult:
    """What taking a target down did, as the server reported it."""

    name: str
    tags: tuple[str, ...]
    count: int
    deleted_workers: tuple[int, ...]
    failed_workers: tuple[int, ...]
    message: str


def down(client: VastClient, model: Deployment, *, all_tags: bool, cache_dir: Path
         ) -> DownResult:
    """Delete the deployment by name (and tag, unless ``all_tags``), report what the
    server says of its workers, and forget the local records of what was deleted."""
    tags = tags_of(client.list_deployments(), model.name) if all_tags else [model.tag]
    if not all_tags and find_deployment(client, model.name, model.tag) is None:
        raise VastbuildError(f"{model.label}: {model.name}:{model.tag} is not deployed",
                             "nothing to take down")
    answer = client.delete_deployments_by_name(model.name, None if all_tags else model.tag)
    for tag in tags:
        forget(cache_dir, client.api_url, model.name, tag)
    return DownResult(model.name, tuple(tags), int(answer.get("count") or 0),
                      _ids(answer.get("deleted_workers")), _ids(answer.get("failed_workers")),
                      str(answer.get("msg") or ""))


def _ids(value: object) -> tuple[int, ...]:
    return tuple(int(v) for v in value if isinstance(v, int)) if isinstance(value, list) \
        else ()


# -- history and rollback ----------------------------------------------------------------

def history(client: VastClient, model: Deployment, cache_dir: Path
            ) -> tuple[list[Deployed], list[dict[str, Any]]]:
    """The versions deployed from here (oldest first) and the server's own list."""
    local = read_history(cache_dir, client.api_url, model.name, model.tag)
    record = find_deployment(client, model.name, model.tag)
    server = client.get_versions(int(record["id"])) if record is not None else []
    return local, server


def rollback_target(client: VastClient, model: Deployment, cache_dir: Path, *,
                    to_hash: str | None, secrets: Secrets, dry_run: bool = False,
                    report: Report | None = None, meter: Meter = TransferMeter
                    ) -> DeployOutcome:
    """Register an earlier version again, as a deploy would: planned first (the tier
    and why), its tarball uploaded only if the server asks, a rolling update started on
    a soft update. ``to_hash`` picks the version (a prefix is enough); None picks the
    one before the version the server serves."""
    say = report or (lambda line: None)
    versions = read_history(cache_dir, client.api_url, model.name, model.tag)
    record = find_deployment(client, model.name, model.tag)
    serving = str((record or {}).get("file_hash") or "")
    chosen = _choose(versions, to_hash, serving, model)
    if chosen.artifact is None or not Path(chosen.artifact).is_file():
        raise VastbuildError(
            f"{model.label}: the tarball of {chosen.snapshot.file_hash[:16]} is no longer "
            "kept here", "rebuilding an evicted version from its recorded inputs is not "
            "supported: check out the commit that made it and run `vastbuild deploy`")
    desired = replace(chosen.snapshot, secrets=secrets.fingerprints(model))
    reader = ServerReader(client, secrets)
    planned = plan_target(reader, model.label, desired, cache_dir=cache_dir,
                          api_url=client.api_url)
    say(f"{model.label}: rollback to {desired.file_hash[:16]}: Tier {planned.decision.tier} "
        f"({planned.decision.action}) predicted")
    body = with_secrets(desired.config, model, secrets.values)
    return deploy_registered(client, planned, body, Path(chosen.artifact),
                             cache_dir=cache_dir, api_url=client.api_url, say=say,
                             dry_run=dry_run, meter=meter)


def _choose(versions: list[Deployed], to_hash: str | None, serving: str,
            model: Deployment) -> Deployed:
    if not versions:
        raise VastbuildError(f"{model.label}: no version was deployed from here",
                             "rollback uses the versions `vastbuild history` lists")
    if to_hash is not None:
        matches = [v for v in versions if v.snapshot.file_hash.startswith(to_hash)]
        if len({v.snapshot.file_hash for v in matches}) != 1:
            raise VastbuildError(
                f"{model.label}: {to_hash!r} names {'no' if not matches else 'more than one'}"
                " version deployed from here", "`vastbuild history` lists them")
        return matches[-1]
    current = [i for i, v in enumerate(versions) if v.snapshot.file_hash == serving]
    before = (current[-1] if current else len(versions)) - 1
    if before < 0:
        raise VastbuildError(f"{model.label}: there is no version before the one served",
                             "`vastbuild history` lists the versions")
    return versions[before]


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) \
        else None

