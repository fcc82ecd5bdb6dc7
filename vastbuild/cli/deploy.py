"""``vastbuild plan`` and ``vastbuild deploy``: the commands that talk to the Vast API.

Both take Vastfiles (or folders holding one; default ./Vastfile), an API key
from ``$VAST_API_KEY`` or ``--api-key-file``, and the API and autoscaler URLs.
A missing key is a usage error (exit 2); a server that refuses is exit 1. The
key is read once into the client and goes nowhere else: traces (``-v``) and
errors pass through the client's redaction.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import click

from vastbuild.cli import Settings
from vastbuild.cli.output import load_targets
from vastbuild.errors import UsageError
from vastbuild.wire import DEFAULT_API_URL, DEFAULT_AUTOSCALER_URL

if TYPE_CHECKING:  # imported when a command runs, not when the CLI starts
    from vastbuild.deploy import Outcome
    from vastbuild.vast.client import VastClient

PATHS = click.argument("paths", nargs=-1, type=click.Path(path_type=Path))


def _http_url(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """An http(s) URL with a host, without a trailing slash (usage error otherwise)."""
    wrong = click.BadParameter(f"{value!r} is not an http(s)://host[:port] URL")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 -- raises ValueError for a port that is not 0-65535
        if not parts.hostname:
            raise wrong
        parts.hostname.encode("idna")  # raises UnicodeError for an empty or too long label
    except (ValueError, UnicodeError):
        raise wrong from None
    if parts.scheme.lower() not in ("http", "https"):
        raise wrong
    if parts.username or parts.password or parts.query or parts.fragment:
        raise click.BadParameter("give the URL without credentials, a query string or a "
                                 "fragment; the API key goes in $VAST_API_KEY or "
                                 "--api-key-file")
    return value.rstrip("/")


def _server_options(command: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout."),
        click.option("--api-url", envvar="VAST_API_URL", default=DEFAULT_API_URL,
                     show_default=True, callback=_http_url,
                     help="The Vast web API (env: VAST_API_URL)."),
        click.option("--autoscaler-url", default=DEFAULT_AUTOSCALER_URL, show_default=True,
                     callback=_http_url, help="The Vast autoscaler, which workers report to."),
        click.option("--api-key-file", type=click.Path(dir_okay=False, path_type=Path),
                     help="Read the API key from this file (default: $VAST_API_KEY)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@click.command()
@PATHS
@_server_options
@click.pass_obj
def plan(settings: Settings, paths: tuple[Path, ...], as_json: bool, api_url: str,
         autoscaler_url: str, api_key_file: Path | None) -> None:
    """Say what deploying would do: the update tier of each target and every reason.

    Reads the server (deployment record, endpoint settings, versions) and the
    local record of the last deploy; changes nothing anywhere.
    """
    from vastbuild.deploy import plan_targets

    models = load_targets(paths, settings)
    with _client(settings, api_url, autoscaler_url, api_key_file) as client:
        plans = plan_targets(models, client=client, cache_dir=settings.cache_dir,
                             api_url=api_url, autoscaler_url=autoscaler_url)
    if as_json:
        click.echo(json.dumps({"targets": [{
            "label": p.label, "name": p.desired.name, "tag": p.desired.tag,
            "hash": p.desired.file_hash, "tier": p.plan.tier, "action": p.plan.action,
            "certain": p.plan.certain, "deployment_id": p.deployment_id,
            "endpoint_id": p.endpoint_id, "reasons": list(p.plan.reasons),
        } for p in plans]}, indent=2))
        return
    for p in plans:
        certainty = "" if p.plan.certain else " (at least: some settings cannot be compared)"
        click.echo(f"{p.label}  {p.desired.name}:{p.desired.tag}  "
                   f"Tier {p.plan.tier} {p.plan.action}{certainty}")
        click.echo(f"  hash      {p.desired.file_hash[:16]}")
        if p.deployment_id is not None:
            click.echo(f"  server    deployment {p.deployment_id}, endpoint {p.endpoint_id}")
        for reason in p.plan.reasons:
            click.echo(f"  why       {reason}")


@click.command()
@PATHS
@click.option("--dry-run", is_flag=True,
              help="Build and plan, read the server, change nothing.")
@click.option("--keep-alive", is_flag=True,
              help="After deploying, send heartbeats for targets with a TTL until interrupted.")
@_server_options
@click.pass_obj
def deploy(settings: Settings, paths: tuple[Path, ...], dry_run: bool, keep_alive: bool,
           as_json: bool, api_url: str, autoscaler_url: str, api_key_file: Path | None) -> None:
    """Build, plan, register, upload what the server lacks, and roll the workers.

    Prints a summary per target: tier, server action, endpoint, what was
    uploaded and how long it took. With --dry-run nothing is registered,
    uploaded or recorded.
    """
    from vastbuild import deploy as library

    if keep_alive and dry_run:
        raise UsageError("--keep-alive and --dry-run exclude each other",
                         "a dry run deploys nothing to keep alive")
    models = load_targets(paths, settings)
    if keep_alive and not any(model.ttl for model in models):
        raise UsageError("--keep-alive: no target sets a TTL, so none needs heartbeats",
                         "set TTL in the Vastfile, or deploy without --keep-alive")
    started = time.monotonic()
    say = _progress(settings)
    with _client(settings, api_url, autoscaler_url, api_key_file) as client:
        outcomes = library.deploy_targets(
            models, client=client, cache_dir=settings.cache_dir, api_url=api_url,
            autoscaler_url=autoscaler_url, dry_run=dry_run, report=say)
        for outcome in outcomes:
            for warning in outcome.warnings:
                click.echo(f"warning: {outcome.label}: {warning}", err=True)
        if as_json:
            click.echo(json.dumps({"targets": [o.to_json() for o in outcomes]}, indent=2))
        else:
            _summary(outcomes, time.monotonic() - started, dry_run)
        if keep_alive:
            stop = threading.Event()
            tell = (lambda line: None) if settings.verbosity < 0 else \
                (lambda line: click.echo(line, err=True))
            try:
                library.keep_alive(client, outcomes, stop, report=tell)
            except KeyboardInterrupt:
                stop.set()
                tell("keep-alive stopped")


def _summary(outcomes: list[Outcome], seconds: float, dry_run: bool) -> None:
    """One screen: a block per target, then the total."""
    from vastbuild.deploy import human_size

    for o in outcomes:
        click.echo(f"{o.label}  {o.name}:{o.tag}  Tier {o.tier} {o.action}"
                   + ("" if o.certain else " (at least)"))
        click.echo(f"  hash      {o.hash[:16]}")
        if o.endpoint_id is not None:
            group = f", workergroup {o.workergroup_id}" if o.workergroup_id is not None else ""
            click.echo(f"  endpoint  {o.endpoint_id} (deployment {o.deployment_id}{group})")
        if o.uploaded:
            rate = ""
            if o.upload_seconds > 0 and o.upload_bytes >= 10_000_000:
                rate = f", {human_size(int(o.upload_bytes / o.upload_seconds))}/s"
            click.echo(f"  uploaded  {human_size(o.upload_bytes)} in {o.upload_seconds:.2f} s"
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



def _client(settings: Settings, api_url: str, autoscaler_url: str,
            api_key_file: Path | None) -> VastClient:
    from vastbuild.vast.client import VastClient

    trace = (lambda line: click.echo(line, err=True)) if settings.verbosity >= 1 else None
    return VastClient(_api_key(api_key_file), api_url=api_url, autoscaler_url=autoscaler_url,
                      trace=trace, trace_bodies=settings.verbosity >= 2)


def _api_key(api_key_file: Path | None) -> str:
    """The key from --api-key-file (first line, trimmed) or $VAST_API_KEY."""
    hint = "export VAST_API_KEY=..., or pass --api-key-file FILE"
    if api_key_file is not None:
        try:
            text = api_key_file.read_text(encoding="utf-8-sig")  # as an editor may save it
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "unreadable"
            raise UsageError(f"--api-key-file {api_key_file}: {reason}", hint) from None
        key = text.strip().splitlines()[0].strip() if text.strip() else ""
        if not key:
            raise UsageError(f"--api-key-file {api_key_file} is empty", hint)
        return key
    key = os.environ.get("VAST_API_KEY", "").strip()
    if not key:
        raise UsageError("no API key: $VAST_API_KEY is not set", hint)
    return key


def _progress(settings: Settings) -> Callable[[str], None]:
    """Step-by-step lines on stderr with -v; by default the summary says it all."""
    if settings.verbosity < 1:
        return lambda line: None
    return lambda line: click.echo(line, err=True)
