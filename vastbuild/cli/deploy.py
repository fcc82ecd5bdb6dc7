"""``vastbuild plan`` and ``vastbuild deploy``: the commands that talk to the Vast API.

Both take Vastfiles (or folders holding one; default ./Vastfile), an API key
from ``$VAST_API_KEY`` or ``--api-key-file``, and the API and autoscaler URLs.
A missing key is a usage error (exit 2); a server that refuses is exit 1. The
key is read once into the client and goes nowhere else: traces (``-v``) and
errors pass through the client's redaction.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import click

from vastbuild.api import connect, format_bytes, plan_deploy, read_api_key, wait_for_rollout
from vastbuild.api import deploy as deploy_targets
from vastbuild.api import keep_alive as send_heartbeats
from vastbuild.cli import options
from vastbuild.cli.context import GlobalOptions
from vastbuild.cli.report import EXIT_INPUT, load, narrowed

if TYPE_CHECKING:
    from vastbuild.api import Deployment, DeployOutcome, MarketNote, VastClient, WaitResult

F = TypeVar("F", bound=Callable[..., object])


def _market_options(command: F) -> F:
    """``--require-offers``, ``--no-market``, ``--refresh-market``: how plan and deploy
    treat the market."""
    require = click.option(
        "--require-offers", is_flag=True,
        help="Stop with an error, before anything is registered, when a target's REQUIRE "
             "matches no offer on the market (or the market cannot be searched).")
    skip = click.option("--no-market", is_flag=True,
                        help="Do not search the market for each target's offers.")
    return require(skip(options.refresh_market(command)))


@click.command()
@options.paths
@options.server
@options.secrets
@_market_options
@click.pass_obj
def plan(settings: GlobalOptions, paths: tuple[str, ...], as_json: bool, api_url: str | None,
         autoscaler_url: str | None, api_key_file: Path | None,
         secret_files: dict[str, Path], secrets_file: Path | None, require_offers: bool,
         no_market: bool, refresh_market: bool) -> None:
    """Say what deploying would do: the update tier of each target and every reason.

    Reads the server (deployment record, endpoint settings, versions), the
    market's offers for each target's REQUIRE (docs/market.md) and the local
    record of the last deploy; changes nothing anywhere.
    """
    models = load(paths, settings)
    with _client(settings, api_url, autoscaler_url, api_key_file) as client:
        plans = plan_deploy(models, client=client, cache_dir=settings.cache_dir,
                            remote_cache=settings.remote_cache,
                            remote_cache_read_only=settings.remote_cache_read_only,
                            secrets=options.sources_of(secret_files, secrets_file),
                            market=not no_market, require_offers=require_offers,
                            refresh_market=refresh_market)
    for p in plans:
        if p.market is not None and p.market.warning:
            click.echo(f"warning: {p.label}: {p.market.warning}", err=True)
    if as_json:
        click.echo(json.dumps({"targets": [{
            "label": p.label, "name": p.desired.name, "tag": p.desired.tag,
            "hash": p.desired.file_hash, "tier": p.decision.tier, "action": p.decision.action,
            "certain": p.decision.certain, "deployment_id": p.deployment_id,
            "endpoint_id": p.endpoint_id, "reasons": list(p.decision.reasons),
            **({"market": p.market.to_json()} if p.market else {}),
        } for p in plans]}, indent=2))
        return
    for p in plans:
        certainty = "" if p.decision.certain else " (at least: some settings cannot be compared)"
        click.echo(f"{p.label}  {p.desired.name}:{p.desired.tag}  "
                   f"Tier {p.decision.tier} {p.decision.action}{certainty}")
        click.echo(f"  hash      {p.desired.file_hash[:16]}")
        if p.deployment_id is not None:
            click.echo(f"  server    deployment {p.deployment_id}, endpoint {p.endpoint_id}")
        _market_lines(p.market)
        for reason in p.decision.reasons:
            click.echo(f"  why       {reason}")


@click.command()
@options.paths
@options.affected_since
@click.option("--dry-run", is_flag=True,
              help="Build and plan, read the server, change nothing.")
@click.option("--keep-alive", is_flag=True,
              help="After deploying, send heartbeats for targets with a TTL until interrupted.")
@click.option("--wait", "wait_", is_flag=True,
              help="After deploying, wait until each target's workers serve the new version.")
@click.option("--timeout", type=click.FloatRange(min=0), default=600.0, show_default=True,
              metavar="S", help="With --wait: give up after S seconds per target.")
@click.option("--wait-interval", type=click.FloatRange(min=0.05), default=1.0, hidden=True)
@options.server
@options.secrets
@_market_options
@click.pass_obj
def deploy(settings: GlobalOptions, paths: tuple[str, ...], affected_since: str | None,
           dry_run: bool, keep_alive: bool, wait_: bool, timeout: float, wait_interval: float,
           as_json: bool, api_url: str | None, autoscaler_url: str | None,
           api_key_file: Path | None, secret_files: dict[str, Path],
           secrets_file: Path | None, require_offers: bool, no_market: bool,
           refresh_market: bool) -> None:
    """Build, plan, register, upload what the server lacks, and roll the workers.

    Prints a summary per target: tier, server action, endpoint, what was
    uploaded and how long it took. With --dry-run nothing is registered,
    uploaded or recorded.
    """
    targets = narrowed(paths, affected_since, settings)
    if not targets:
        if as_json:
            click.echo(json.dumps({"targets": []}))
        return
    models = load(targets, settings)
    started = time.monotonic()
    say = _progress(settings)
    with _client(settings, api_url, autoscaler_url, api_key_file) as client:
        outcomes = deploy_targets(models, client=client, cache_dir=settings.cache_dir,
                                  dry_run=dry_run, keep_alive=keep_alive, report=say,
                                  remote_cache=settings.remote_cache,
                                  remote_cache_read_only=settings.remote_cache_read_only,
                                  secrets=options.sources_of(secret_files, secrets_file),
                                  show_uploads=not as_json and not settings.quiet,
                                  market=not no_market, require_offers=require_offers,
                                  refresh_market=refresh_market)
        for outcome in outcomes:
            for warning in outcome.warnings:
                click.echo(f"warning: {outcome.label}: {warning}", err=True)
        if as_json:
            click.echo(json.dumps({"targets": [o.to_json() for o in outcomes]}, indent=2))
        else:
            _summary(outcomes, time.monotonic() - started, dry_run)
        if wait_ and not dry_run:
            _wait_for_all(settings, client, models, outcomes, timeout, wait_interval)
        if keep_alive:
            stop = threading.Event()
            tell = _progress(settings, at=0)
            try:
                send_heartbeats(client, outcomes, stop, report=tell)
            except KeyboardInterrupt:
                stop.set()
                tell("keep-alive stopped")


def _wait_for_all(settings: GlobalOptions, client: VastClient, models: list[Deployment],
                  outcomes: list[DeployOutcome], timeout: float, interval: float) -> None:
    """Wait for each deployed target's workers to serve what was deployed; exit 1 with
    the failing workers' log lines when one fails or the wait times out."""
    failed = False
    for model, outcome in zip(models, outcomes, strict=True):
        result = wait_for_rollout(model, outcome.hash, client=client, timeout=timeout,
                                  interval=interval, report=_progress(settings, at=0))
        if result.ok:
            if not settings.quiet:
                click.echo(f"{outcome.label}: " + (f"serving {outcome.hash[:16]}"
                           if result.serving else result.reason), err=True)
            continue
        failed = True
        _tell_failure(outcome.label, result)
    if failed:
        raise SystemExit(EXIT_INPUT)


def _tell_failure(label: str, result: WaitResult) -> None:
    """A wait that ended badly, on stderr: why, then the failing workers' log lines."""
    click.echo(f"error: {label}: {result.reason}", err=True)
    for line in result.log:
        click.echo(f"  {line}", err=True)


def _summary(outcomes: list[DeployOutcome], seconds: float, dry_run: bool) -> None:
    """One screen: a block per target, then the total."""
    for o in outcomes:
        click.echo(f"{o.label}  {o.name}:{o.tag}  Tier {o.tier} {o.action}"
                   + ("" if o.certain else " (at least)"))
        click.echo(f"  hash      {o.hash[:16]}")
        if o.endpoint_id is not None:
            group = f", workergroup {o.workergroup_id}" if o.workergroup_id is not None else ""
            click.echo(f"  endpoint  {o.endpoint_id} (deployment {o.deployment_id}{group})")
        _market_lines(o.market)
        if o.uploaded:
            rate = ""
            if o.upload_seconds > 0 and o.upload_bytes >= 10_000_000:
                rate = f", {format_bytes(int(o.upload_bytes / o.upload_seconds))}/s"
            click.echo(f"  uploaded  {format_bytes(o.upload_bytes)} in {o.upload_seconds:.2f} s"
                       f"{rate}")
        elif not dry_run:
            click.echo("  uploaded  nothing (the server has this content)")
        if o.rolling_update:
            click.echo(f"  rolling   update started on workergroup {o.workergroup_id}")
        for reason in o.reasons:
            click.echo(f"  why       {reason}")
        if dry_run:
            click.echo("  dry run   nothing was registered, uploaded or recorded")
    count = len(outcomes)
    click.echo(f"{'planned' if dry_run else 'deployed'} {count} target{'s' * (count != 1)} "
               f"in {seconds:.2f} s")



def _market_lines(note: MarketNote | None) -> None:
    """The market line of a target: matches, price range and the cost estimate."""
    check = note.check if note else None
    if check is None or check.prices is None:
        return  # not asked, failed or empty: the warning on stderr says so
    click.echo(f"  market    {check.count_text()}, {check.prices.range_text()}")
    if check.estimate is not None:
        click.echo(f"  estimate  {check.estimate.summary()}, from the current market")


@contextmanager
def _client(settings: GlobalOptions, api_url: str | None, autoscaler_url: str | None,
            api_key_file: Path | None) -> Iterator[VastClient]:
    trace = (lambda line: click.echo(line, err=True)) if settings.verbosity >= 1 else None
    api, scaler = settings.urls(api_url, autoscaler_url)
    with connect(read_api_key(api_key_file), api_url=api, autoscaler_url=scaler,
                 trace=trace, trace_bodies=settings.verbosity >= 2) as client:
        yield client


def _progress(settings: GlobalOptions, at: int = 1) -> Callable[[str], None]:
    """Lines on stderr from verbosity ``at`` on (deploy's steps with -v: by default the
    summary says it all; keep-alive's heartbeats unless -q)."""
    def say(line: str) -> None:
        if settings.verbosity >= at:
            click.echo(line, err=True)
    return say
