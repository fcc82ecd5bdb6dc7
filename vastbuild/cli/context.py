"""The global options every command sees (``ctx.obj``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from vastbuild.api import Settings

#: the program name shell completion is for, and the variable its script sets when it
#: calls the program back (click's convention); the completion code is imported only then
PROG_NAME = "vastbuild"
COMPLETE_VAR = "_VASTBUILD_COMPLETE"


@dataclass(frozen=True)
class GlobalOptions:
    """The settings (flags over the environment over ``vastbuild.toml``), the
    verbosity (-1 quiet, 0 normal, 1 and up more) and whether to colour diagnostics."""

    settings: Settings
    verbosity: int
    color: bool
    #: --arg NAME=VALUE: values of the Vastfiles' ARGs
    args: Mapping[str, str] = field(default_factory=dict)

    @property
    def quiet(self) -> bool:
        return self.verbosity < 0

    @property
    def cache_dir(self) -> Path:
        return self.settings.cache_dir

    @property
    def remote_cache(self) -> str | None:
        return self.settings.remote_cache

    @property
    def remote_cache_read_only(self) -> bool:
        return self.settings.remote_cache_read_only

    @property
    def jobs(self) -> int | None:
        return self.settings.jobs

    @property
    def tag(self) -> str | None:
        return self.settings.tag

    def urls(self, api_url: str | None, autoscaler_url: str | None) -> tuple[str, str]:
        """The API and autoscaler URLs, with a command's flags (None: not given) on top."""
        chosen = self.settings.with_flags(api_url=api_url, autoscaler_url=autoscaler_url)
        return chosen.api_url, chosen.autoscaler_url
