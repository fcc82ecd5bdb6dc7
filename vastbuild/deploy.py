"""Deploy: link built deployments to live Vast endpoints, doing only what the tier needs.

For each target: build (cached), read what the server holds for its (name,
tag), plan the tier, register, upload the ``.tar.gz`` only when the server asks
for it, start a rolling update on ``soft_update``, then record what was
deployed for the next plan. ``dry_run`` stops before the first request that
changes anything, so it reads the server but writes nothing, locally or
remotely.

A deploy that fails leaves no local record behind and says what to do; the
server side is safe to retry, since a registration is keyed by (name, tag) and
the server asks for the blob again until it has it.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from vastbuild.builder import build_targets, hash_targets
from vastbuild.cache import BuildCache
from vastbuild.canonical import JsonValue
from vastbuild.errors import InvalidArgument, VastbuildError
from vastbuild.market import MarketNote, OfferSearch, survey
from vastbuild.model import DEFAULT_TAG, Deployment
from vastbuild.progress import Reporter, TransferMeter
from vastbuild.secret_values import Secrets
from vastbuild.units import format_bytes, int_or_none
from vastbuild.vast.client import PutResponse, UploadRejected, VastClient
from vastbuild.vast.last_deploy import LastDeploy, read_last_deploy, write_last_deploy
from vastbuild.vast.tiers import ServerView, Snapshot, TierDecision, action_mismatch, decide_tier
from vastbuild.wire import config_json, deployment_config, masked_env, split_secrets, with_secrets

#: Where progress lines go (the CLI prints them to stderr).
Report = Callable[[str], None]
#: Makes the display of one upload's progress, from its label.
Meter = Callable[[str], TransferMeter]

ROLLOUT_PENDING = ("rolling update: an earlier deploy registered this content but did not "
                   "finish, so its workers may run the old code; deploy starts the update")


@dataclass(frozen=True)
class DeployPlan:
    """One target's plan, with the server ids it will touch (None: not on the server yet)."""

    label: str
    desired: Snapshot
    decision: TierDecision
    deployment_id: int | None
    endpoint_id: int | None
    #: an earlier deploy registered this very content but never recorded its end:
    #: its rolling update may not have started, so this deploy starts one
    rollout_pending: bool = False
    #: what the market holds for its search (None: not asked)
    market: MarketNote | None = None


@dataclass(frozen=True)
class DeployOutcome:
    """What deploying one target did."""

    label: str
    name: str
    tag: str
    hash: str
    tier: int
    action: str
    reasons: tuple[str, ...]
    certain: bool
    uploaded: bool
    upload_bytes: int
    upload_seconds: float
    deployment_id: int | None
    endpoint_id: int | None
    workergroup_id: int | None
    rolling_update: bool
    ttl: float | None
    seconds: float
    dry_run: bool
    #: the .tar.gz that was (or would be) uploaded
    artifact: Path
    warnings: tuple[str, ...] = field(default=())
    #: what the market held for its search before the deploy (None: not asked)
    market: MarketNote | None = None

    def to_json(self) -> dict[str, JsonValue]:
        """The ``--json`` form of one target."""
        return {
            "label": self.label, "name": self.name, "tag": self.tag, "hash": self.hash,
            "tier": self.tier, "action": self.action, "uploaded": self.uploaded,
            "deployment_id": self.deployment_id, "endpoint_id": self.endpoint_id,
            "workergroup_id": self.workergroup_id, "reasons": list(self.reasons),
            **({"market": self.market.to_json()} if self.market else {}),
        }


def snapshot(model: Deployment, *, file_hash: str, config: Mapping[str, Any],
             components: Mapping[str, str], manifest: Mapping[str, str],
             secrets: Secrets) -> Snapshot:
    """The desired state of one target, in the shape the tier planner compares (its
    secrets as fingerprints: the snapshot is printed, recorded and compared)."""
    return Snapshot(
        name=model.name, tag=model.tag, file_hash=file_hash, config=dict(config),
        components=dict(components), manifest=dict(manifest),
        worker_config=json.loads(config_json(model)),
        code_name=model.code.path.name, secrets=secrets.fingerprints(model))


def listed(deployments: Iterable[Mapping[str, Any]], name: str, tag: str
           ) -> Mapping[str, Any] | None:
    """The entry of (name, tag) in the server's list of deployments (one with an id)."""
    return next((d for d in deployments if d.get("name") == name and d.get("id") is not None
                 and (d.get("tag") or DEFAULT_TAG) == tag), None)


def tags_of(deployments: Iterable[Mapping[str, Any]], name: str) -> list[str]:
    """The tags the server's list holds under ``name``, sorted."""
    return sorted({str(d.get("tag") or DEFAULT_TAG) for d in deployments
                   if d.get("name") == name})


class ServerReader:
    """Reads what the server holds, listing deployments and endpoints once per run.

    The secrets in a deployment's docker options are turned into fingerprints
    as the record arrives, and the record keeps them only as ``***``: what the
    planner and its messages see holds no secret's value.
    """

    def __init__(self, client: VastClient, secrets: Secrets):
        self.client = client
        self.secrets = secrets
        self._deployments: list[dict[str, Any]] | None = None
        self._endpoints: list[dict[str, Any]] | None = None

    def forget_deployments(self) -> None:
        """The list changed (a deployment was created): read it again when next needed."""
        self._deployments = self._endpoints = None

    def view(self, name: str, tag: str) -> ServerView:
        if self._deployments is None:
            self._deployments = self.client.list_deployments()
        tags = tuple(sorted(set(tags_of(self._deployments, name)) - {tag}))
        match = listed(self._deployments, name, tag)
        if match is None:
            return ServerView(record=None, tags=tags)
        record = self.client.get_deployment(int(match["id"]))
        on_server: dict[str, str | None] | None = None
        if "env" in record:
            env = str(record.get("env") or "")
            on_server = {name: None if value in ("", "***") else
                         self.secrets.fingerprint(name, value)
                         for name, value in split_secrets(env)[1].items()}
            record = {**record, "env": masked_env(env)}
        if self._endpoints is None:
            self._endpoints = self.client.list_endpoints()
        endpoint = next((e for e in self._endpoints
                         if e.get("id") is not None and e.get("id") == record.get("endpoint_id")),
                        None)
        versions = tuple(self.client.get_versions(int(match["id"])))
        return ServerView(record=record, endpoint=endpoint, versions=versions, tags=tags,
                          secrets=on_server)


def plan_target(reader: ServerReader, label: str, desired: Snapshot, *, cache_dir: Path,
                api_url: str) -> DeployPlan:
    """Compare one desired deployment with the server (and the local record of the last deploy)."""
    view = reader.view(desired.name, desired.tag)
    last = read_last_deploy(cache_dir, api_url, desired.name, desired.tag)
    result = decide_tier(desired, view, last.snapshot if last else None,
                         last.deployment_id if last else None)
    record = view.record or {}
    deployment_id = int_or_none(record.get("id"))
    pending = (last is not None and deployment_id == last.deployment_id
               and str(record.get("file_hash")) == desired.file_hash
               and last.snapshot.file_hash != desired.file_hash)
    if pending:
        result = replace(result, reasons=(*result.reasons, ROLLOUT_PENDING))
    return DeployPlan(label=label, desired=desired, decision=result, deployment_id=deployment_id,
                      endpoint_id=int_or_none(record.get("endpoint_id")),
                      rollout_pending=pending)


def plan_targets(models: Sequence[Deployment], *, client: VastClient, cache: BuildCache,
                 mtime: int, api_url: str, autoscaler_url: str,
                 secrets: Secrets, market: OfferSearch | None = None,
                 require_offers: bool = False) -> list[DeployPlan]:
    """Plan every target without building: the content hash and manifest come from
    the hashing pass, which reads (and remembers) file digests but packs nothing.
    A secret without a value is compared as unknown. ``market``: check each target's
    search against the market first (see :func:`vastbuild.market.survey`)."""
    notes = survey(models, market, require_offers=require_offers) if market else None
    reader = ServerReader(client, secrets)
    plans = []
    hashed_targets = hash_targets(list(models), cache=cache, mtime=mtime, api_url=api_url,
                                  autoscaler_url=autoscaler_url).results
    for model, hashed in zip(models, hashed_targets, strict=True):
        config = deployment_config(model, file_hash=hashed.hash, file_size=0,
                                   api_url=api_url, autoscaler_url=autoscaler_url)
        config.pop("file_size")  # unknown until packed, and never compared
        desired = snapshot(model, file_hash=hashed.hash, config=config,
                           components=hashed.components, manifest=hashed.manifest,
                           secrets=secrets)
        plans.append(plan_target(reader, model.label, desired, cache_dir=cache.directory,
                                 api_url=api_url))
    if notes is not None:
        plans = [replace(plan, market=note) for plan, note in zip(plans, notes, strict=True)]
    return plans


def deploy_targets(models: Sequence[Deployment], *, client: VastClient, cache: BuildCache,
                   mtime: int, api_url: str, autoscaler_url: str, secrets: Secrets,
                   dry_run: bool = False, report: Report | None = None,
                   meter: Meter = TransferMeter, market: OfferSearch | None = None,
                   require_offers: bool = False) -> list[DeployOutcome]:
    """Build, plan and deploy every target, in order; the first failure stops the run.
    ``secrets`` holds a value for every secret the targets name. ``market``: check
    each target's search against the market before anything is built (with
    ``require_offers``, a target without offers stops the run there)."""
    say = report or (lambda line: None)
    notes = survey(models, market, require_offers=require_offers) if market else None
    cache_dir = cache.directory
    started = time.monotonic()
    results = build_targets(list(models), cache=cache, outdir=None, formats=("gz",),
                            mtime=mtime, reporter=Reporter(), api_url=api_url,
                            autoscaler_url=autoscaler_url).results
    say(f"built {len(results)} target{'s' * (len(results) != 1)} "
        f"in {time.monotonic() - started:.2f} s")
    reader = ServerReader(client, secrets)
    outcomes = []
    for model, built in zip(models, results, strict=True):
        target_started = time.monotonic()
        config = built.deployment_config
        assert config is not None  # built with gz, which the registration describes
        desired = snapshot(model, file_hash=built.hash, config=config,
                           components=built.components, manifest=built.manifest,
                           secrets=secrets)
        predicted = plan_target(reader, built.label, desired, cache_dir=cache_dir,
                                api_url=api_url)
        decision = predicted.decision
        say(f"{built.label}: Tier {decision.tier} ({decision.action}) predicted")
        if dry_run:
            outcomes.append(_dry_outcome(predicted, config, built.artifacts["gz"],
                                         time.monotonic() - target_started))
            continue
        body = with_secrets(config, model, secrets.values)
        outcome = deploy_registered(client, predicted, body, built.artifacts["gz"],
                                    cache_dir=cache_dir, api_url=api_url, say=say,
                                    started=target_started, meter=meter)
        if outcome.action == "created":
            reader.forget_deployments()
        outcomes.append(outcome)
    if notes is not None:
        outcomes = [replace(o, market=note, warnings=(
            *((note.warning,) if note.warning else ()), *o.warnings))
            for o, note in zip(outcomes, notes, strict=True)]
    return outcomes


def deploy_registered(client: VastClient, predicted: DeployPlan,
                      body: Mapping[str, JsonValue], tarball: Path, *, cache_dir: Path,
                      api_url: str, say: Report, started: float | None = None,
                      dry_run: bool = False, meter: Meter = TransferMeter) -> DeployOutcome:
    """Register ``body`` (the desired config with its secrets: sent, never kept),
    upload ``tarball`` if asked, roll the workers on a soft update, and record the
    deploy in the target's history. Shared by deploy and rollback. ``meter`` makes
    the display of an upload's progress from its label."""
    started = time.monotonic() if started is None else started
    if dry_run:
        return _dry_outcome(predicted, predicted.desired.config, tarball,
                            time.monotonic() - started)
    desired = predicted.desired
    label = predicted.label
    say(f"{label}: registering {desired.name}:{desired.tag}")
    answer = client.put_deployment(body)
    warnings = []
    mismatch = action_mismatch(predicted.decision, answer.action)
    if mismatch:
        warnings.append(mismatch)

    uploaded, upload_bytes, upload_seconds = False, 0, 0.0
    if answer.needs_upload:
        upload_bytes = tarball.stat().st_size
        say(f"{label}: uploading {tarball.name} ({format_bytes(upload_bytes)})")
        upload_started = time.monotonic()
        try:
            _upload_with_fresh_url(client, answer, body, tarball, label, say, meter)
        except VastbuildError as failure:
            raise _upload_failed(client, answer, label, failure) from None
        upload_seconds = time.monotonic() - upload_started
        uploaded = True

    workergroup_id = answer.workergroup_id
    rolling = False
    if answer.action == "soft_update" or (answer.action == "exists"
                                          and predicted.rollout_pending):
        if workergroup_id is None:
            workergroup_id = client.find_workergroup(answer.endpoint_id)
        if workergroup_id is None:
            warnings.append(f"{answer.action}, but no workergroup serves endpoint "
                            f"{answer.endpoint_id}: no rolling update was started")
        else:
            say(f"{label}: rolling update of workergroup {workergroup_id}")
            client.update_workers(workergroup_id)
            rolling = True

    write_last_deploy(cache_dir, LastDeploy(
        snapshot=desired, api_url=api_url, deployment_id=answer.deployment_id,
        endpoint_id=answer.endpoint_id, workergroup_id=workergroup_id, action=answer.action,
        deployed_at=time.time()), tier=predicted.decision.tier,
        artifact=keep_artifact(cache_dir, tarball, desired.file_hash))
    return DeployOutcome(
        label=label, name=desired.name, tag=desired.tag, hash=desired.file_hash,
        tier=predicted.decision.tier, action=answer.action, reasons=predicted.decision.reasons,
        certain=predicted.decision.certain, uploaded=uploaded, upload_bytes=upload_bytes,
        upload_seconds=upload_seconds, deployment_id=answer.deployment_id,
        endpoint_id=answer.endpoint_id, workergroup_id=workergroup_id, rolling_update=rolling,
        ttl=_float_or_none(desired.config.get("ttl")), seconds=time.monotonic() - started,
        dry_run=False, artifact=tarball, warnings=tuple(warnings))


def keep_artifact(cache_dir: Path, tarball: Path, file_hash: str) -> str | None:
    """Keep the deployed tarball under its content hash for a later rollback (a hard
    link where the file system allows, else a copy); None when it cannot be kept,
    which only means that version cannot be rolled back to from here."""
    kept = cache_dir / "deploys" / "artifacts" / f"{file_hash}.tar.gz"
    if kept.is_file():
        return str(kept)
    try:
        kept.parent.mkdir(parents=True, exist_ok=True)
        temporary = kept.with_name(f".{kept.name}.{os.getpid()}")
        try:
            os.link(tarball, temporary)
        except OSError:
            shutil.copyfile(tarball, temporary)
        os.replace(temporary, kept)
    except OSError:
        return None
    return str(kept)


def _upload_with_fresh_url(client: VastClient, answer: PutResponse,
                           body: Mapping[str, JsonValue], tarball: Path, label: str,
                           say: Report, meter: Meter) -> None:
    """Upload; if the URL was refused (expired), register again once for a fresh one."""
    assert answer.upload_url is not None and answer.upload_fields is not None
    try:
        with closing(meter(f"{label}: uploading")) as shown:
            client.upload(answer.upload_url, answer.upload_fields, tarball, shown.update)
        return
    except UploadRejected as first:
        say(f"{label}: the upload URL was refused ({first.message}); registering again "
            "for a fresh one")
    again = client.put_deployment(body)
    if not again.needs_upload:
        return  # the server has the blob after all
    assert again.upload_url is not None and again.upload_fields is not None
    try:
        with closing(meter(f"{label}: uploading")) as shown:
            client.upload(again.upload_url, again.upload_fields, tarball, shown.update)
    except UploadRejected as second:
        raise VastbuildError(
            f"the upload of {tarball.name} was refused twice: {second.message}",
            "the upload URL expires before the file arrives: check the clock and the "
            "connection, then run the deploy again (the server keeps asking for the file "
            "until it has it)") from None


def _upload_failed(client: VastClient, answer: PutResponse, label: str,
                   failure: VastbuildError) -> VastbuildError:
    """The error to report for a failed upload, after undoing what can be undone.

    A deployment this deploy created is deleted again: without its blob its
    workers could only fail to start. An update is left registered: no rolling
    update was started, the workers keep serving the last version that had a
    blob, and the next deploy uploads the file the server still asks for.
    """
    if answer.action == "created":
        try:
            client.delete_deployment(answer.deployment_id)
        except VastbuildError as cleanup:
            return VastbuildError(
                f"{label}: {failure.message}; deleting the new deployment "
                f"{answer.deployment_id} failed too: {cleanup.message}",
                "delete it by hand (DELETE /api/v0/deployment/"
                f"{answer.deployment_id}/), then run the deploy again")
        return VastbuildError(f"{label}: {failure.message} (the new deployment was deleted "
                              "again)", failure.hint)
    return VastbuildError(
        f"{label}: {failure.message} (the registration stands, without its file; no rolling "
        "update was started)", failure.hint or "run the deploy again to upload the file")


def _dry_outcome(predicted: DeployPlan, config: Mapping[str, Any], artifact: Path,
                 seconds: float) -> DeployOutcome:
    desired = predicted.desired
    return DeployOutcome(
        label=predicted.label, name=desired.name, tag=desired.tag, hash=desired.file_hash,
        tier=predicted.decision.tier, action=predicted.decision.action,
        reasons=predicted.decision.reasons,
        certain=predicted.decision.certain, uploaded=False, upload_bytes=0, upload_seconds=0.0,
        deployment_id=predicted.deployment_id, endpoint_id=predicted.endpoint_id,
        workergroup_id=None, rolling_update=False, ttl=_float_or_none(config.get("ttl")),
        seconds=seconds, dry_run=True, artifact=artifact)


def require_ttl(ttls: Iterable[float | int | None]) -> None:
    """Keeping deployments alive needs one with a TTL: :class:`InvalidArgument` otherwise."""
    if not any(ttls):
        raise InvalidArgument("no target sets a TTL, so none needs heartbeats",
                              "set TTL in the Vastfile, or deploy without keeping it alive")


def keep_alive(client: VastClient, outcomes: Sequence[DeployOutcome], stop: threading.Event,
               report: Report | None = None) -> None:
    """Send heartbeats for every deployed target with a TTL until ``stop`` is set.

    The interval is half the shortest TTL, at most a minute, so one lost
    heartbeat never lets a deployment expire.
    """
    alive = [o for o in outcomes if o.ttl and o.deployment_id is not None and not o.dry_run]
    require_ttl(o.ttl for o in alive)
    interval = min(60.0, min(o.ttl or 60.0 for o in alive) / 2)
    say = report or (lambda line: None)
    names = ", ".join(f"{o.name}:{o.tag}" for o in alive)
    say(f"keeping {names} alive: a heartbeat every {interval:.0f} s; Ctrl-C to stop")
    while not stop.is_set():
        for outcome in alive:
            assert outcome.deployment_id is not None
            client.heartbeat(outcome.deployment_id)
        say(f"heartbeat sent ({time.strftime('%H:%M:%S')})")
        stop.wait(interval)


def _float_or_none(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) \
        else None
