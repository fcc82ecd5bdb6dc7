"""``vastbuild status``, ``logs``, ``wait``, ``stop``, ``start``, ``down``, ``history`` and
``rollback``: operating what ``deploy`` put on Vast.

Each takes targets as the other commands do (paths, labels, names), the API key
and URLs as ``deploy`` does, and prints a table on a terminal or JSON when
asked; what went wrong exits 1, a usage error 2, Ctrl-C 130.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import click

from vastbuild.api import (
    LOG_LEVELS,
    deploy_history,
    deployment_status,
    endpoint_logs,
    new_log_lines,
    set_running,
    take_down,
    wait_for_rollout,
)
from vastbuild.api import rollback as rollback_target
from vastbuild.cli import options
from vastbuild.cli.context import GlobalOptions
from vastbuild.cli.deploy import _client, _progress, _summary, _tell_failure
from vastbuild.cli.report import EXIT_INPUT, load

target = options.target


@click.command()
@options.paths
@options.server
@click.pass_obj
def status(settings: GlobalOptions, paths: tuple[str, ...], as_json: bool, api_url: str | None,
           autoscaler_url: str | None, api_key_file: Path | None) -> None:
    """Show each target's deployment: endpoint, versions, workers, up to date or not.

    With no TARGET, every deployment of the account (without the local hash).
    """
    models = load(paths, settings) if paths else None
    with _client(settings, api_url, autoscaler_url, api_key_file) as client:
        found = deployment_status(models, client=client, cache_dir=settings.cache_dir)
    if as_json:
        click.echo(json.dumps({"targets": [s.to_json() for s in found]}, indent=2))
        return
    if not found:
        click.echo("no deployments")
    for s in found:
        where = f"{s.label}  " if s.label else ""
        if s.deployment_id is None:
            click.echo(f"{where}{s.name}:{s.tag}  not deployed")
            continue
        fresh = {True: "up to date", False: "differs from the local content",
                 None: "local content not compared"}[s.up_to_date]
        click.echo(f"{where}{s.name}:{s.tag}  deployment {s.deployment_id}  endpoint "
                   f"{s.endpoint_id} ({s.endpoint_state or 'state unknown'})")
        click.echo(f"  content   {(s.server_hash or 'none')[:16]}  {fresh}")
        click.echo(f"  versions  current {s.current_version}, last healthy "
                   f"{s.last_healthy_version}")
        workers = ", ".join(f"{n} {state}" for state, n in s.workers.items()) or "none"
        click.echo(f"  workers   {workers}")
        if s.ttl:
            beat = ("never" if not s.last_heartbeat else
                    datetime.fromtimestamp(s.last_heartbeat, UTC).strftime("%H:%M:%S UTC"))
            click.echo(f"  ttl       {s.ttl:.0f} s, last heartbeat {beat}")


@click.command()
@target
@click.option("--level", type=click.Choice(LOG_LEVELS), default="info1", show_default=True,
              help="Which log: info0 is the tersest, debug the fullest.")
@click.option("--tail", type=click.IntRange(min=1), help="Only the last N lines.")
@click.option("--follow", is_flag=True, help="Keep printing new lines until Ctrl-C.")
@click.option("--workergroup", is_flag=True, help="The workergroup's log, not the endpoint's.")
@click.option("--interval", type=click.FloatRange(min=0.05), default=2.0, hidden=True)
@options.api_url
@options.autoscaler_url
@options.api_key_file
@click.pass_obj
def logs(settings: GlobalOptions, target: str, level: str, tail: int | None, follow: bool,
         workergroup: bool, interval: float, api_url: str | None, autoscaler_url: str | None,
         api_key_file: Path | None) -> None:
    """Print the target's endpoint log from the run host."""
    [model] = load((target,), settings)
    with _client(settings, api_url, autoscaler_url, api_key_file) as client:
        seen: list[str] = []
        while True:
            lines = endpoint_logs(model, client=client, level=level, tail=tail,
                                  workergroup=workergroup)
            for line in new_log_lines(seen, lines):
                click.echo(line)
            seen = lines
            if not follow:
                return
            sys.stdout.flush()
            time.sleep(interval)  # Ctrl-C ends it: exit 130


timeout_option = click.option("--timeout", type=click.FloatRange(min=0), default=600.0,
                              show_default=True, metavar="S",
                              help="Give up waiting after S seconds.")


@click.command()
@target
@timeout_option
@click.option("--interval", type=click.FloatRange(min=0.05), default=1.0, hidden=True)
@options.api_url
@options.autoscaler_url
@options.api_key_file
@click.pass_obj
def wait(settings: GlobalOptions, target: str, timeout: float, interval: float,
         api_url: str | None, autoscaler_url: str | None, api_key_file: Path | None) -> None:
    """Wait until the target's workers serve its current local content."""
    [model] = load((target,), settings)
    with _client(settings, api_url, autoscaler_url, api_key_file) as client:
        [state] = deployment_status([model], client=client, cache_dir=settings.cache_dir)
        result = wait_for_rollout(model, state.server_hash or "", client=client,
                                  timeout=timeout, interval=interval,
                                  report=_progress(settings, at=0))
    if not result.ok:
        _tell_failure(model.label, result)
        raise SystemExit(EXIT_INPUT)
    if not result.serving:
        click.echo(f"{model.label}: {result.reason}")
        return
    click.echo(f"{model.label}: serving "
               f"({', '.join(f'{n} {state}' for state, n in result.workers.items())})")


def _state_command(running: bool) -> click.Command:
    verb = "start" if running else "stop"

    @click.command(name=verb, help=f"{verb.capitalize()} the target's endpoint "
                   f"({'its workers serve again' if running else 'its workers go inactive'}).")
    @target
    @options.api_url
    @options.autoscaler_url
    @options.api_key_file
    @click.pass_obj
    def command(settings: GlobalOptions, target: str, api_url: str | None,
                autoscaler_url: str | None, api_key_file: Path | None) -> None:
        [model] = load((target,), settings)
        with _client(settings, api_url, autoscaler_url, api_key_file) as client:
            state = set_running(model, running, client=client)
        if not settings.quiet:
            click.echo(f"{model.label}: {model.name}:{model.tag} {state}")

    return command


start = _state_command(True)
stop = _state_command(False)


@click.command()
@target
@click.option("--all-tags", is_flag=True, help="Every tag of the deployment's name.")
@click.option("--yes", is_flag=True, help="Do not ask (needed when not on a terminal).")
@options.api_url
@options.autoscaler_url
@options.api_key_file
@click.pass_obj
def down(settings: GlobalOptions, target: str, all_tags: bool, yes: bool, api_url: str | None,
         autoscaler_url: str | None, api_key_file: Path | None) -> None:
    """Delete the target's deployment, its endpoint and its workergroup."""
    [model] = load((target,), settings)
    what = f"{model.name} (every tag)" if all_tags else f"{model.name}:{model.tag}"
    if not yes:
        if not sys.stdin.isatty():
            raise click.UsageError(f"taking {what} down needs --yes when not on a terminal")
        click.confirm(f"Delete {what} with its endpoint and workers?", abort=True)
    with _client(settings, api_url, autoscaler_url, api_key_file) as client:
        result = take_down(model, client=client, cache_dir=settings.cache_dir,
                           all_tags=all_tags)
    click.echo(f"{model.label}: deleted {what} ({result.count} deployment"
               f"{'s' * (result.count != 1)}); workers deleted: "
               f"{len(result.deleted_workers)}, failed to delete: {len(result.failed_workers)}"
               + (f"; the server says: {result.message}" if result.message else ""))


@click.command()
@target
@options.server
@click.pass_obj
def history(settings: GlobalOptions, target: str, as_json: bool, api_url: str | None,
            autoscaler_url: str | None, api_key_file: Path | None) -> None:
    """List the versions deployed from here, beside the server's version list."""
    [model] = load((target,), settings)
    with _client(settings, api_url, autoscaler_url, api_key_file) as client:
        local, server = deploy_history(model, client=client, cache_dir=settings.cache_dir)
    if as_json:
        click.echo(json.dumps({
            "local": [{"hash": d.snapshot.file_hash, "deployed_at": d.deployed_at,
                       "action": d.action, "tier": d.tier, "kept": d.artifact is not None
                       and Path(d.artifact).is_file()} for d in local],
            "server": server}, indent=2))
        return
    click.echo(f"{model.label}: {len(local)} version(s) deployed from here")
    for d in local:
        when = datetime.fromtimestamp(d.deployed_at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        kept = "" if d.artifact and Path(d.artifact).is_file() else "  (tarball not kept)"
        click.echo(f"  {d.snapshot.file_hash[:16]}  {when}  Tier {d.tier} {d.action}{kept}")
    click.echo(f"server: {len(server)} version(s)")
    for v in server:
        click.echo(f"  version {v.get('version', v.get('id'))}  "
                   f"{str(v.get('file_hash', ''))[:16]}  {v.get('action', '')}")


@click.command()
@target
@click.option("--to", "to_hash", metavar="HASH", help="The version (a hash prefix).")
@click.option("--previous", is_flag=True,
              help="The version before the one served (the default).")
@click.option("--dry-run", is_flag=True, help="Plan the rollback, change nothing.")
@options.server
@options.secrets
@click.pass_obj
def rollback(settings: GlobalOptions, target: str, to_hash: str | None, previous: bool,
             dry_run: bool, as_json: bool, api_url: str | None, autoscaler_url: str | None,
             api_key_file: Path | None, secret_files: dict[str, Path],
             secrets_file: Path | None) -> None:
    """Deploy an earlier version again, from the tarball kept when it was deployed."""
    if to_hash and previous:
        raise click.UsageError("--to and --previous exclude each other")
    [model] = load((target,), settings)
    started = time.monotonic()
    with _client(settings, api_url, autoscaler_url, api_key_file) as client:
        outcome = rollback_target(model, client=client, cache_dir=settings.cache_dir,
                                  to_hash=to_hash, dry_run=dry_run,
                                  secrets=options.sources_of(secret_files, secrets_file),
                                  report=_progress(settings),
                                  show_uploads=not as_json and not settings.quiet)
    if as_json:
        click.echo(json.dumps({"targets": [outcome.to_json()]}, indent=2))
    else:
        _summary([outcome], time.monotonic() - started, dry_run)
