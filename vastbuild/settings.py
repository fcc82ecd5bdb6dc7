"""Settings: what a run uses when a flag does not say, and where each value came from.

Each setting is looked up, first found wins, in: a command line flag, the
environment, the chosen profile of ``vastbuild.toml`` (``[profile.NAME]``, chosen
by ``--profile`` or ``$VASTBUILD_PROFILE``), the top of ``vastbuild.toml``, the
default. ``vastbuild.toml`` is the one at the workspace root (the nearest folder
upward holding one). A relative ``cache_dir`` there is relative to the file's
folder. The API key is never a setting: it is a secret, and ``vastbuild.toml`` is
committed (``$VAST_API_KEY`` or ``--api-key-file``).

The autoscaler URL follows the API URL: when the API URL is not Vast's and no
autoscaler URL is set, workers report to the API URL's host, as the vastai SDK
does, so that a deploy to a local server sends nothing to Vast.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from vastbuild.errors import InvalidArgument, VastbuildError
from vastbuild.urls import DEFAULT_API_URL, DEFAULT_AUTOSCALER_URL, check_url
from vastbuild.workspace import root_from

SETTINGS_FILE = "vastbuild.toml"
PROFILE_ENV = "VASTBUILD_PROFILE"
#: what a TAG may be, as the Vastfile's TAG accepts it
_TAG = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
Value = str | int | bool | Path | None


def default_cache_dir() -> Path:
    """$XDG_CACHE_HOME/vastbuild, else ~/.cache/vastbuild."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(base) / "vastbuild"


class _Refused(ValueError):
    """A value refused with a message that shows it safely (a URL without its
    credentials), where other parse errors only say what was expected."""


def _refusal(value: object, exc: ValueError) -> str:
    """Why ``value`` was refused, never quoting what a :class:`_Refused` hides."""
    return str(exc) if isinstance(exc, _Refused) else f"{value!r} is not {exc}"


def _path(value: object, base: Path) -> Path:
    if not isinstance(value, str) or not value:
        raise ValueError("a folder path (a non-empty string)")
    return base / os.path.expanduser(value)


def _url(name: str) -> Callable[[object, Path], str]:
    def parse(value: object, base: Path) -> str:
        if not isinstance(value, str):
            raise ValueError("an http(s)://host[:port] URL (a string)")
        try:
            return check_url(value, name)
        except InvalidArgument as exc:
            raise _Refused(exc.message) from None
    return parse


def _jobs(value: object, base: Path) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError("a whole number of parallel jobs, 1 or more")
    return value


def _flag(value: object, base: Path) -> bool:
    if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on", "0", "false",
                                                    "no", "off", ""):
        return value.lower() in ("1", "true", "yes", "on")
    if not isinstance(value, bool):
        raise ValueError("true or false")
    return value


def _tag(value: object, base: Path) -> str:
    if not isinstance(value, str) or not _TAG.fullmatch(value):
        raise ValueError("a tag: letters, digits, '.', '_' and '-', as TAG takes it")
    return value


@dataclass(frozen=True)
class SettingSpec:
    """A setting: its name (as written in ``vastbuild.toml``), its environment
    variable, its flag, how a written value is read, and what it is for."""

    name: str
    env: str | None
    flag: str
    parse: Callable[[object, Path], Value]
    help: str
    #: how it is written in vastbuild.toml, for hints
    example: str


SPECS: tuple[SettingSpec, ...] = (
    SettingSpec("cache_dir", "VASTBUILD_CACHE_DIR", "--cache-dir", _path,
                "the build cache's folder", '".cache/vastbuild"'),
    SettingSpec("remote_cache", "VASTBUILD_REMOTE_CACHE", "--remote-cache", _url("remote_cache"),
                "the HTTP cache shared with other machines (Bazel's protocol)",
                '"https://cache.example.com:9092"'),
    SettingSpec("remote_cache_read_only", "VASTBUILD_REMOTE_CACHE_READ_ONLY",
                "--remote-cache-read-only", _flag, "read the remote cache, never write it", "true"),
    SettingSpec("jobs", "VASTBUILD_JOBS", "--jobs", _jobs, "steps run at once", "4"),
    SettingSpec("api_url", "VAST_API_URL", "--api-url", _url("api_url"), "the Vast web API",
                '"http://127.0.0.1:8765"'),
    SettingSpec("autoscaler_url", "VAST_AUTOSCALER_URL", "--autoscaler-url",
                _url("autoscaler_url"), "the autoscaler workers report to",
                '"http://127.0.0.1:8765"'),
    SettingSpec("tag", "VASTBUILD_TAG", "--tag", _tag,
                "the tag of a Vastfile that has no TAG line", '"staging"'),
)
BY_NAME = {spec.name: spec for spec in SPECS}


def check_setting(name: str, value: str) -> Value:
    """``value`` as the setting ``name`` takes it (given as a flag, relative to the
    current folder); :class:`InvalidArgument` naming the setting otherwise."""
    try:
        return BY_NAME[name].parse(value, Path.cwd())
    except ValueError as exc:
        raise InvalidArgument(_refusal(value, exc), "for example "
                              f"{BY_NAME[name].flag} {BY_NAME[name].example.strip(chr(34))}"
                              ) from None


@dataclass(frozen=True)
class Setting:
    """A setting's effective value and where it came from (``--api-url``,
    ``$VAST_API_URL``, ``vastbuild.toml:4 [profile.dev]``, ``default``)."""

    name: str
    value: Value
    source: str


@dataclass(frozen=True)
class Settings:
    """Every setting's effective value, the settings file read (if any) and the
    profile chosen (if any)."""

    values: Mapping[str, Setting]
    file: Path | None
    profile: str | None

    @property
    def cache_dir(self) -> Path:
        value = self.values["cache_dir"].value
        assert isinstance(value, Path)
        return value

    @property
    def remote_cache(self) -> str | None:
        value = self.values["remote_cache"].value
        return value if isinstance(value, str) else None

    @property
    def remote_cache_read_only(self) -> bool:
        return self.values["remote_cache_read_only"].value is True

    @property
    def jobs(self) -> int | None:
        value = self.values["jobs"].value
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    @property
    def api_url(self) -> str:
        return str(self.values["api_url"].value)

    @property
    def autoscaler_url(self) -> str:
        return str(self.values["autoscaler_url"].value)

    @property
    def tag(self) -> str | None:
        value = self.values["tag"].value
        return value if isinstance(value, str) else None

    def with_flags(self, **flags: Value) -> Settings:
        """These settings with the flags given (None: not given) on top; the autoscaler
        URL follows a changed API URL unless it was set itself."""
        values = dict(self.values)
        for name, value in flags.items():
            if value is not None:
                values[name] = Setting(name, value, BY_NAME[name].flag)
        return Settings(_follow(values), self.file, self.profile)


def _follow(values: dict[str, Setting]) -> dict[str, Setting]:
    """The autoscaler URL of an unset autoscaler setting: Vast's when the API is Vast's,
    the API URL otherwise."""
    scaler = values.get("autoscaler_url")
    if scaler is None or scaler.source.startswith("default"):
        api = values["api_url"]
        if api.value == DEFAULT_API_URL:
            values["autoscaler_url"] = Setting("autoscaler_url", DEFAULT_AUTOSCALER_URL,
                                               "default")
        else:
            values["autoscaler_url"] = Setting("autoscaler_url", api.value,
                                               f"default (follows api_url, {api.source})")
    return values


def load_settings(cwd: Path | None = None, *, profile: str | None = None,
                  environ: Mapping[str, str] | None = None,
                  flags: Mapping[str, Value] | None = None) -> Settings:
    """The settings seen from ``cwd`` (default: the current folder): ``flags`` (None:
    not given) over ``environ`` (default: the process environment) over the profile
    (``profile``, else ``$VASTBUILD_PROFILE``) over the file over the defaults.
    :class:`VastbuildError` (at ``file:line``) for a file that does not parse, an
    unknown key or profile, a value of the wrong kind; :class:`InvalidArgument` for
    a bad value in the environment."""
    environ = os.environ if environ is None else environ
    cwd = cwd or Path.cwd()
    profile_source = "--profile"
    if profile is None and environ.get(PROFILE_ENV):
        profile, profile_source = environ[PROFILE_ENV], f"${PROFILE_ENV}"
    path = root_from(cwd) / SETTINGS_FILE
    document, text = _read(path)
    values: dict[str, Setting] = {
        "cache_dir": Setting("cache_dir", default_cache_dir(), "default"),
        "remote_cache": Setting("remote_cache", None, "default"),
        "remote_cache_read_only": Setting("remote_cache_read_only", False, "default"),
        "jobs": Setting("jobs", None, "default (the number of cores)"),
        "api_url": Setting("api_url", DEFAULT_API_URL, "default"),
        "autoscaler_url": Setting("autoscaler_url", None, "default"),
        "tag": Setting("tag", None, "default (the Vastfile's TAG, else default)"),
    }
    if document is not None:
        profiles = document.pop("profile", {})
        if not isinstance(profiles, dict):
            raise _at(path, text, None, "profile", "`profile` is a table of profiles",
                      "write [profile.NAME] sections")
        _apply(values, document, path, text, None)
        if profile is not None:
            chosen = profiles.get(profile)
            if not isinstance(chosen, dict):
                known = ", ".join(sorted(profiles)) or "none"
                raise VastbuildError(f"{path}: no profile {profile!r} (from {profile_source}); "
                                     f"profiles: {known}", _did_you_mean(profile, profiles)
                                     or f"add [profile.{profile}] to {path}, or choose "
                                     "another")
            _apply(values, chosen, path, text, profile)
        for name, table in profiles.items():  # every profile is checked, not just the one used
            if isinstance(table, dict):
                _apply({}, table, path, text, name)
    elif profile is not None:
        raise VastbuildError(f"no {SETTINGS_FILE} at the workspace root {path.parent}, so no "
                             f"profile {profile!r} (from {profile_source})",
                             f"write [profile.{profile}] in {path}, or drop the profile")
    for spec in SPECS:
        if spec.env and environ.get(spec.env):
            try:
                value = spec.parse(environ[spec.env], cwd)
            except ValueError as exc:
                raise InvalidArgument(f"${spec.env}: {_refusal(environ[spec.env], exc)}",
                                      f"fix or unset ${spec.env}") from None
            values[spec.name] = Setting(spec.name, value, f"${spec.env}")
    loaded = Settings(_follow(values), path if document is not None else None, profile)
    return loaded.with_flags(**(flags or {}))


def _read(path: Path) -> tuple[dict[str, object] | None, str]:
    """The parsed ``vastbuild.toml`` and its text; (None, "") when there is none."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, ""
    except (OSError, UnicodeDecodeError) as exc:
        raise VastbuildError(f"cannot read {path}: {exc}",
                             "make it a readable UTF-8 file") from None
    import tomllib  # only when there is a file to read

    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as exc:
        where = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
        message = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
        place = f"{path}:{where[1]}:{where[2]}" if where else str(path)
        raise VastbuildError(f"{place}: {message}",
                             "fix the TOML syntax (https://toml.io)") from None


def _apply(values: dict[str, Setting], table: Mapping[str, object], path: Path, text: str,
           profile: str | None) -> None:
    for key, raw in table.items():
        spec = BY_NAME.get(key)
        if spec is None:
            if key in ("api_key", "key", "token", "password"):
                raise _at(path, text, profile, key, f"`{key}` does not belong in {path.name}: "
                          "it is committed, and keys are secrets",
                          "remove it; give the API key as $VAST_API_KEY or --api-key-file")
            raise _at(path, text, profile, key, f"unknown setting `{key}`"
                      + (f" in [profile.{profile}]" if profile else ""),
                      _did_you_mean(key, BY_NAME) or
                      "settings: " + ", ".join(BY_NAME) + ", and [profile.NAME] tables")
        try:
            value = spec.parse(raw, path.parent)
        except ValueError as exc:
            raise _at(path, text, profile, key, f"`{key}`: {_refusal(raw, exc)}",
                      f"write it as, for example, {key} = {spec.example}") from None
        where = _line(text, profile, key)
        source = f"{path.name}:{where[0]}" if where else path.name
        values[key] = Setting(key, value, source + (f" [profile.{profile}]" if profile else ""))


def _did_you_mean(word: str, known: Mapping[str, object]) -> str | None:
    import difflib

    close = difflib.get_close_matches(word, list(known), n=1)
    return f"did you mean `{close[0]}`?" if close else None


def _line(text: str, profile: str | None, key: str) -> tuple[int, int] | None:
    """Where ``key`` is written: at the top, or in ``[profile.NAME]``."""
    section: str | None = None
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        header = re.fullmatch(r"\[\s*([^\]]*?)\s*\]", stripped)
        if header:
            name = header[1]
            section = name[len("profile."):].strip('"') if name.startswith("profile.") else name
            continue
        match = re.match(rf"\s*\"?{re.escape(key)}\"?\s*=", line)
        if match and section == profile:
            return number, len(line) - len(line.lstrip()) + 1
    return None


def _at(path: Path, text: str, profile: str | None, key: str, message: str,
        hint: str) -> VastbuildError:
    where = _line(text, profile, key)
    place = f"{path}:{where[0]}:{where[1]}" if where else str(path)
    return VastbuildError(f"{place}: {message}", hint)
