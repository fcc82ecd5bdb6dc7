"""``vastbuild dev-server``: run the local stand-in for the Vast deployment API."""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from types import FrameType

import click

from vastbuild.api import DEFAULT_DEV_SERVER_PORT
from vastbuild.api import dev_server as start_dev_server
from vastbuild.cli.context import GlobalOptions


@click.command("dev-server")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Anything but loopback lets others reach it.")
@click.option("--port", type=click.IntRange(0, 65535), default=DEFAULT_DEV_SERVER_PORT,
              show_default=True,
              help="Port to listen on; 0 picks a free one (the listening line says which).")
@click.option("--data", "data_dir", type=click.Path(file_okay=False, path_type=Path),
              default=None,
              help="State folder: SQLite database, blobs, signing secret, key digests "
                   "(default: $XDG_STATE_HOME/vastbuild/dev-server).")
@click.option("--api-key", "api_keys", multiple=True, envvar="VASTBUILD_DEV_SERVER_API_KEYS",
              show_envvar=True,
              help="Accept this API key (repeatable; the variable takes keys separated by "
                   "spaces). Each key is one account; only its SHA-256 is stored, and "
                   "stored keys stay valid after a restart.")
@click.option("--upload-ttl", type=click.FloatRange(min=0), default=300.0, show_default=True,
              help="Seconds an upload form stays valid.")
@click.option("--download-ttl", type=click.FloatRange(min=0), default=600.0, show_default=True,
              help="Seconds a download URL stays valid.")
@click.option("--admin-token", envvar="VASTBUILD_DEV_SERVER_ADMIN_TOKEN", show_envvar=True,
              default=None,
              help="Enable the fault-injection routes under /_dev/ for this token "
                   "(header X-Dev-Admin-Token).")
@click.option("--omit-workergroup-id", is_flag=True,
              help="Leave workergroup_id out of registration answers, so that clients must "
                   "find the workergroup through /api/v0/workergroups/.")
@click.option("--worker-step", type=click.FloatRange(min=0), default=0.5, show_default=True,
              metavar="SECONDS", envvar="VASTBUILD_DEV_SERVER_WORKER_STEP", show_envvar=True,
              help="How long each state change of a simulated worker takes.")
@click.option("--fail-workers", type=click.IntRange(min=0), default=0, metavar="N",
              envvar="VASTBUILD_DEV_SERVER_FAIL_WORKERS", show_envvar=True,
              help="N workers of the next rollout end in error (for testing `deploy --wait`).")
@click.option("--offers", "offers_file",
              type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Sell these offers (a JSON list in Vast's offer shape) instead of the "
                   "built-in market.")
@click.pass_obj
def dev_server(settings: GlobalOptions | None, host: str, port: int, data_dir: Path | None,
               api_keys: tuple[str, ...], upload_ttl: float, download_ttl: float,
               admin_token: str | None, omit_workergroup_id: bool, worker_step: float,
               fail_workers: int, offers_file: Path | None) -> None:
    """Serve the Vast deployment API locally (web API, autoscaler, blob storage on one port).

    vastbuild, the vastai SDK and its worker bootstrap can all deploy to it offline.
    Stop it with Ctrl-C or SIGTERM.
    """
    quiet = settings is not None and settings.quiet
    server = start_dev_server(
        data_dir, host=host, port=port, api_keys=api_keys, upload_ttl=upload_ttl,
        download_ttl=download_ttl, admin_token=admin_token,
        omit_workergroup_id=omit_workergroup_id, worker_step=worker_step,
        fail_workers=fail_workers, offers_file=offers_file,
        access_log=None if quiet else sys.stderr)
    signal.signal(signal.SIGTERM, _interrupt)
    if not server.is_loopback:
        click.echo(f"warning: listening on {host}: anyone who can reach this address can use "
                   "the server with a valid key", err=True)
    click.echo(f"vastbuild dev-server listening on {server.url}", err=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    click.echo("vastbuild dev-server stopped", err=True)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    """SIGTERM stops the server the way Ctrl-C does: cleanly, exit 0."""
    raise KeyboardInterrupt
