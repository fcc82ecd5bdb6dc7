"""The errors vastbuild raises for anything a user can fix.

Library code raises :class:`VastbuildError` (a missing file, a server that said
no) or :class:`InvalidArgument` (a value the caller passed cannot be used: a
URL, a size, a folder). Messages speak of what a value *is* ("the cache
folder", "the API URL"), never of a command line flag: ``setting`` names the
setting concerned, and the command line, which knows its own flags, says how
to change it. Anything else reaching the command line is a bug.
"""

from __future__ import annotations

#: The settings an error may name, so that a front end can say how to change them.
SETTINGS = frozenset({
    "api_key", "api_url", "autoscaler_url", "cache_dir", "outdir", "formats", "max_size",
    "make_target", "source_date_epoch", "data_dir", "dev_server_keys", "host", "port",
    "remote_cache", "depfile", "args", "secrets",
})


class VastbuildError(Exception):
    """An error with a message that says what went wrong and a hint that says what to do.

    ``setting`` (one of :data:`SETTINGS`) names the setting the hint is about.
    """

    def __init__(self, message: str, hint: str | None = None, *,
                 setting: str | None = None):
        super().__init__(message)
        assert setting is None or setting in SETTINGS, setting
        self.message = message
        self.hint = hint
        self.setting = setting

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  = help: {self.hint}"


class InvalidArgument(VastbuildError):
    """A value the caller passed cannot be used (a front end reports it as a usage error)."""
