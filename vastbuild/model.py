"""The checked deployment model: what a valid Vastfile means.

The checker produces one immutable :class:`Deployment`; every later pass
(graph, build, hash, plan, deploy) reads only this, never the syntax tree.
Paths are absolute and already proven to stay inside the workspace; values are
typed and in the units the wire wants (GB, days, seconds).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from vastbuild.diagnostics import Span
from vastbuild.workspace import label_of

#: the disk a worker gets when FROM gives no STORAGE, in GB (the SDK's default)
DEFAULT_STORAGE_GB = 50
#: the routing tag when the Vastfile gives no TAG
DEFAULT_TAG = "default"
#: the port every worker publishes
DEFAULT_PORT = (3000, "tcp")

AutoscaleKind = Literal["count", "number", "fraction", "seconds"]


@dataclass(frozen=True)
class AutoscaleSetting:
    """One AUTOSCALE key: what values it takes, and the value Vast gives an endpoint
    whose registration leaves it out (``None``: no value at all)."""

    name: str
    kind: AutoscaleKind
    default: int | float | None


#: The AUTOSCALE keys, in the order the SDK's DeploymentConfig lays them out (the
#: registration body's order), with the defaults Vast documents for a new endpoint.
AUTOSCALE_SETTINGS: tuple[AutoscaleSetting, ...] = (
    AutoscaleSetting("cold_workers", "count", 5),
    AutoscaleSetting("max_workers", "count", 20),
    AutoscaleSetting("min_load", "number", 0.0),
    AutoscaleSetting("min_cold_load", "number", 0.0),
    AutoscaleSetting("target_util", "fraction", 0.9),
    AutoscaleSetting("cold_mult", "number", 2.5),
    AutoscaleSetting("max_queue_time", "seconds", 30.0),
    AutoscaleSetting("target_queue_time", "seconds", 10.0),
    AutoscaleSetting("inactivity_timeout", "seconds", None),
)
AUTOSCALE_BY_NAME: dict[str, AutoscaleSetting] = {s.name: s for s in AUTOSCALE_SETTINGS}

#: A REQUIRE value after checking: GPU constants become their names
#: (``RTX_4090`` -> ``"RTX 4090"``), RAM columns are in GB, duration in days.
Scalar = bool | int | float | str
RunStep = str | tuple[str, ...]


@dataclass(frozen=True)
class CodeSource:
    """CODE: a module (``app.py`` -> ``./deployment.py``) or a package folder
    (``svc/`` with ``__init__.py`` -> ``./deployment/``)."""

    path: Path
    kind: Literal["module", "package"]
    span: Span


@dataclass(frozen=True)
class CopySpec:
    """COPY src dst. ``src`` is absolute (a file or a folder); ``dst`` as written,
    an absolute dst keeps its leading ``/``."""

    src: Path
    dst: str
    span: Span


@dataclass(frozen=True)
class RequirementsFile:
    """PIP -r file: its lines are already folded into ``pip_installs``; the file is
    an input of the build."""

    path: Path
    span: Span


@dataclass(frozen=True)
class SearchTerm:
    """One ``column OP value`` of the offer search. ``op`` is the catalog's
    canonical name: eq, neq, lt, lte, gt, gte, in, notin."""

    column: str
    op: str
    value: Scalar | tuple[Scalar, ...]
    span: Span | None = None


@dataclass(frozen=True)
class PluginDirective:
    """A directive claimed by a plugin: the checked value its ``check`` returned."""

    keyword: str
    value: object
    span: Span


@dataclass(frozen=True)
class SecretName:
    """A secret the deployment needs at deploy time: its name, and where the
    Vastfile asks for it (for the error when no value is given)."""

    name: str
    span: Span


@dataclass(frozen=True)
class RegistryLogin:
    """LOGIN: the registry login of a private image. The password is the value of
    the secret ``password``; ``registry`` is the host the login is for (REGISTRY,
    else the image's own registry host, else ``docker.io``)."""

    user: str
    registry: str
    password: SecretName


@dataclass(frozen=True)
class Deployment:
    vastfile: Path
    root: Path
    #: registered name (PUT body): DEPLOYMENT, else CODE's stem
    name: str
    #: config.json name, the one the worker looks up: DEPLOYMENT, else ""
    config_name: str
    image: str
    code: CodeSource
    tag: str = DEFAULT_TAG
    version_label: str | None = None
    ttl: int | float | None = None
    storage: int | float = DEFAULT_STORAGE_GB
    pip_installs: tuple[str, ...] = ()
    requirements_files: tuple[RequirementsFile, ...] = ()
    apt_gets: tuple[str, ...] = ()
    envs: tuple[tuple[str, str], ...] = ()
    runs: tuple[RunStep, ...] = ()
    copies: tuple[CopySpec, ...] = ()
    #: None: the SDK's managed venv; "" : SYSTEM_PYTHON; else VENV's path
    venv: str | None = None
    #: published ports, sorted, 3000/tcp always included
    ports: tuple[tuple[int, str], ...] = (DEFAULT_PORT,)
    #: the full offer search, defaults first, then REQUIRE terms in source order
    search: tuple[SearchTerm, ...] = ()
    #: AUTOSCALE keys in first-set order, later values win
    autoscale: tuple[tuple[str, int | float], ...] = ()
    plugins: tuple[PluginDirective, ...] = field(default=())
    #: the files INCLUDE read (absolute, in order): inputs like the Vastfile itself
    fragments: tuple[Path, ...] = ()
    #: every ARG that has a value, with it (``--arg`` over the default)
    args: tuple[tuple[str, str], ...] = ()
    #: SECRET names in first-mention order: sent as ``-e NAME=value`` at deploy time
    secrets: tuple[SecretName, ...] = ()
    login: RegistryLogin | None = None

    @property
    def label(self) -> str:
        """How commands name this target: its label, ``//examples/llm``."""
        return label_of(self.vastfile, self.root)
