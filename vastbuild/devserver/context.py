"""What every route handler shares: the server's options, its database, its secret, its faults."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vastbuild.devserver.database import ServerDatabase
from vastbuild.devserver.faults import FaultBook
from vastbuild.devserver.market import Market


@dataclass(frozen=True)
class DevServerOptions:
    """How the server behaves; every field is a command line option of ``dev-server``."""

    upload_ttl: float = 300.0
    download_ttl: float = 600.0
    admin_token: str | None = None
    omit_workergroup_id: bool = False
    #: seconds each simulated worker state transition takes
    worker_step: float = 0.5
    #: how many workers of the next rollout end in ``error``
    fail_workers: int = 0
    #: a JSON list of offers to sell instead of the built-in market
    offers_file: Path | None = None


@dataclass(frozen=True)
class Context:
    """The state every handler shares."""

    database: ServerDatabase
    secret: bytes
    options: DevServerOptions
    faults: FaultBook
    market: Market
