"""The local record of the last deploy of each (API URL, name, tag).

The server keeps a deployment's file_hash, image, options and scaling, but not
which files made the tarball. To say "code: app.py changed" rather than
"content changed", ``deploy`` writes, after a deploy the server accepted, what
it registered: the registration body, the component hashes, the tarball's
manifest and config.json. ``plan`` reads it back and trusts it only while the
server still serves that version (equal file_hash, same deployment id).

Where: ``{cache_dir}/deploys/{key}.json``, one small JSON file per target,
``key`` a digest of (API URL, name, tag). The cache folder, not the source
tree: the record is a convenience that a fresh machine or a cleared cache may
lose without harm, and it must never end up in a repository. It holds no API
key and no secret's value: nothing that reaches this module carries one (the
registration body it keeps is the one built, before secrets join it at
sending time, and secrets appear only as keyed fingerprints).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vastbuild.files import atomic_write
from vastbuild.vast.tiers import Snapshot

#: Bumped when the file's shape changes; other versions are ignored, not misread.
STATE_FORMAT = 1


@dataclass(frozen=True)
class LastDeploy:
    """What one deploy registered and what the server answered."""

    snapshot: Snapshot
    api_url: str
    deployment_id: int
    endpoint_id: int
    workergroup_id: int | None
    action: str
    deployed_at: float


def state_path(cache_dir: Path, api_url: str, name: str, tag: str) -> Path:
    """The file holding the last deploy of (api_url, name, tag)."""
    key = hashlib.sha256("\0".join((api_url.rstrip("/"), name, tag)).encode()).hexdigest()
    return Path(cache_dir) / "deploys" / f"{key[:32]}.json"


def read_last_deploy(cache_dir: Path, api_url: str, name: str, tag: str) -> LastDeploy | None:
    """The record, or None when there is none or it cannot be read (it is only a hint)."""
    path = state_path(cache_dir, api_url, name, tag)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("format") != STATE_FORMAT:
        return None
    try:
        snapshot = _snapshot_from(doc["snapshot"])
        if (snapshot.name, snapshot.tag) != (name, tag) or \
                doc["api_url"] != api_url.rstrip("/"):
            return None
        return LastDeploy(
            snapshot=snapshot, api_url=str(doc["api_url"]),
            deployment_id=int(doc["deployment_id"]), endpoint_id=int(doc["endpoint_id"]),
            workergroup_id=None if doc.get("workergroup_id") is None
            else int(doc["workergroup_id"]),
            action=str(doc["action"]), deployed_at=float(doc["deployed_at"]))
    except (KeyError, TypeError, ValueError):
        return None


def write_last_deploy(cache_dir: Path, record: LastDeploy, *, tier: int | None = None,
                      artifact: str | None = None) -> Path:
    """Replace the record atomically: a reader sees the old file or the new one, whole.
    The deploy joins the target's history (``tier`` it was, ``artifact`` where its
    tarball is kept for a rollback)."""
    snap = record.snapshot
    path = state_path(cache_dir, record.api_url, snap.name, snap.tag)
    doc: dict[str, Any] = {
        "format": STATE_FORMAT,
        "api_url": record.api_url.rstrip("/"),
        "deployment_id": record.deployment_id,
        "endpoint_id": record.endpoint_id,
        "workergroup_id": record.workergroup_id,
        "action": record.action,
        "deployed_at": record.deployed_at or time.time(),
        "snapshot": _snapshot_doc(snap),
    }
    earlier = [entry for entry in read_history(cache_dir, record.api_url, snap.name, snap.tag)
               if entry.snapshot.file_hash != snap.file_hash]
    doc["history"] = [_entry_doc(entry) for entry in earlier[-(HISTORY_LENGTH - 1):]] + [
        {"snapshot": doc["snapshot"], "deployed_at": doc["deployed_at"],
         "action": record.action, "tier": tier, "artifact": artifact}]
    atomic_write(path, json.dumps(doc, indent=1, sort_keys=True).encode("utf-8"), mode=0o600)
    return path


@dataclass(frozen=True)
class Deployed:
    """One version in a target's history: what was registered, when, how, and where
    its tarball is kept (None: not kept)."""

    snapshot: Snapshot
    deployed_at: float
    action: str
    tier: int | None
    artifact: str | None


def read_history(cache_dir: Path, api_url: str, name: str, tag: str) -> list[Deployed]:
    """The versions deployed from here to (api_url, name, tag), oldest first; each
    content once (its last deploy). Empty when there is no readable record."""
    path = state_path(cache_dir, api_url, name, tag)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        entries = doc.get("history", []) if isinstance(doc, dict) and \
            doc.get("format") == STATE_FORMAT else []
        return [Deployed(_snapshot_from(e["snapshot"]), float(e["deployed_at"]),
                         str(e["action"]), None if e.get("tier") is None else int(e["tier"]),
                         None if e.get("artifact") is None else str(e["artifact"]))
                for e in entries]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return []


def forget(cache_dir: Path, api_url: str, name: str, tag: str) -> None:
    """Remove the record of (api_url, name, tag) (its deployment is gone)."""
    try:
        state_path(cache_dir, api_url, name, tag).unlink()
    except FileNotFoundError:
        pass


#: how many versions a target's history keeps
HISTORY_LENGTH = 20


def _entry_doc(entry: Deployed) -> dict[str, Any]:
    return {"snapshot": _snapshot_doc(entry.snapshot), "deployed_at": entry.deployed_at,
            "action": entry.action, "tier": entry.tier, "artifact": entry.artifact}


def _snapshot_doc(snap: Snapshot) -> dict[str, Any]:
    return {
        "name": snap.name, "tag": snap.tag, "file_hash": snap.file_hash,
        "config": dict(snap.config), "components": dict(snap.components),
        "manifest": dict(snap.manifest), "worker_config": dict(snap.worker_config),
        "code_name": snap.code_name,
        # fingerprints (keyed HMACs) only: see vastbuild.secret_values
        "secrets": dict(snap.secrets),
    }


def _snapshot_from(snap: Any) -> Snapshot:
    return Snapshot(
        name=str(snap["name"]), tag=str(snap["tag"]), file_hash=str(snap["file_hash"]),
        config=dict(snap["config"]), components=dict(snap["components"]),
        manifest=dict(snap["manifest"]), worker_config=dict(snap["worker_config"]),
        code_name=str(snap["code_name"]),
        secrets={str(k): str(v) for k, v in dict(snap.get("secrets", {})).items()})
