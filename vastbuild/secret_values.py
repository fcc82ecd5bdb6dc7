"""Secrets at deploy time: where their values come from, and how a change is noticed.

A SECRET's value (and LOGIN's password) never enters the build: not the
tarball, the cache, ``deployment.json``, the record of the last deploy, a plan
or a message. ``deploy`` reads it here, from ``--secret NAME=@FILE``, then a
``--secrets-file`` (dotenv form), then the environment, and hands it to the
one request that carries it.

To tell whether a secret changed since the last deploy without keeping it,
the record keeps a *fingerprint*: an HMAC-SHA256 of the name and the value
under a random key of the user's own, kept outside every repository and cache
(``$XDG_CONFIG_HOME/vastbuild/secrets.key``, mode 0600). A plain hash would let
anyone holding the record test guesses against it; the HMAC needs the key.
Each fingerprint starts with the key's id, so a record written on another
machine (another key) reads as "cannot compare", never as "changed".
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from vastbuild.errors import InvalidArgument, VastbuildError

if TYPE_CHECKING:  # only named: the command line imports this module before any model
    from vastbuild.model import Deployment, SecretName

#: the fingerprint key's file, in the user's vastbuild configuration folder
KEY_FILE = "secrets.key"
#: what ``docker_login_pass`` is called among a deployment's fingerprints
LOGIN_PASSWORD = "LOGIN PASSWORD"


@dataclass(frozen=True)
class SecretSources:
    """Where secret values may come from, in the order they are looked for."""

    #: ``--secret NAME=@FILE``: the file's text, one trailing newline removed
    files: Mapping[str, Path] = field(default_factory=dict)
    #: ``--secrets-file``: ``NAME=value`` lines as dotenv writes them
    secrets_file: Path | None = None
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))


def parse_secret_option(option: str) -> tuple[str, Path]:
    """``NAME=@FILE`` -> (NAME, FILE). A value on the command line is refused: it
    would stay in the shell's history and show in the process list."""
    name, equals, source = option.partition("=")
    if not equals or not name:
        raise InvalidArgument(f"{option!r} is not NAME=@FILE",
                              "write --secret NAME=@FILE (the value is read from FILE)",
                              setting="secrets")
    if not source.startswith("@") or len(source) < 2:
        raise InvalidArgument(
            f"--secret {name}=... gives a value on the command line",
            f"put the value in a file and write --secret {name}=@FILE, or export {name}",
            setting="secrets")
    return name, Path(source[1:])


@dataclass(frozen=True)
class Secrets:
    """The secret values a deploy (or a plan) was given, and the user's fingerprint key."""

    values: Mapping[str, str]
    key: bytes

    def fingerprint(self, name: str, value: str) -> str:
        """``{key id}:{HMAC-SHA256(key, name NUL value)}``: equal for an unchanged value
        under the same key, useless to anyone without the key."""
        import hashlib  # here: the command line imports this module for every command
        import hmac

        key_id = hashlib.sha256(b"vastbuild key id\0" + self.key).hexdigest()[:8]
        mac = hmac.new(self.key, f"{name}\0{value}".encode(), hashlib.sha256).hexdigest()
        return f"{key_id}:{mac}"

    def fingerprints(self, model: Deployment) -> dict[str, str]:
        """Each secret of ``model`` by name (LOGIN's as :data:`LOGIN_PASSWORD`): its
        fingerprint, or ``""`` when no value was given."""
        named = [(s.name, s.name) for s in model.secrets]
        if model.login is not None:
            named.append((LOGIN_PASSWORD, model.login.password.name))
        return {shown: self.fingerprint(shown, self.values[name]) if name in self.values
                else "" for shown, name in named}


def load_secrets(models: Sequence[Deployment], sources: SecretSources, *,
                 required: bool = True) -> Secrets:
    """The secrets the deployments name, with the user's fingerprint key; see
    :func:`secret_values`."""
    values = secret_values(models, sources, required=required)
    needs_key = any(model.secrets or model.login for model in models)
    # a deployment without secrets leaves the user's configuration folder alone
    return Secrets(values, fingerprint_key(config_folder(sources.environ)) if needs_key
                   else b"")


def secret_values(models: Sequence[Deployment], sources: SecretSources, *,
                  required: bool = True) -> dict[str, str]:
    """The value of every secret the deployments name; a :class:`VastbuildError`
    naming each missing or unusable one, with where its Vastfile asks for it
    (without ``required``, those are left out instead: a plan compares what it can)."""
    from_file = _read_secrets_file(sources.secrets_file) if sources.secrets_file else {}
    values: dict[str, str] = {}
    problems: list[str] = []
    for wanted in _wanted(models):
        if wanted.name in values:
            continue
        if wanted.name in sources.files:
            value: str | None = _read_value_file(wanted.name, sources.files[wanted.name])
        else:
            value = from_file.get(wanted.name, sources.environ.get(wanted.name))
        if value is None:
            problems.append(f"{wanted.span}: the secret {wanted.name} has no value")
        elif not value or any(char.isspace() or not char.isprintable() for char in value):
            problems.append(f"{wanted.span}: the value of the secret {wanted.name} is empty "
                            "or holds white space or control characters, which the docker "
                            "options cannot carry")
        else:
            values[wanted.name] = value
    if problems and required:
        raise VastbuildError(
            "; ".join(problems),
            "export each one, or pass --secret NAME=@FILE or --secrets-file FILE "
            "(build and hash need no secrets; deploy does)")
    return values


def _wanted(models: Sequence[Deployment]) -> list[SecretName]:
    wanted: list[SecretName] = []
    for model in models:
        wanted.extend(model.secrets)
        if model.login is not None:
            wanted.append(model.login.password)
    return wanted


def _read_text(path: Path, what: str, option: str) -> str:
    """A file's text (an editor's byte order mark dropped), or an error naming ``what``
    it was read for and the ``option`` that named it."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or "not UTF-8 text"
        raise VastbuildError(f"cannot read {what} from {path}: {reason}",
                             f"check the path given to {option}") from None


def _read_value_file(name: str, path: Path) -> str:
    text = _read_text(path, f"the secret {name}", "--secret")
    return text.removesuffix("\n").removesuffix("\r")


def _read_secrets_file(path: Path) -> dict[str, str]:
    text = _read_text(path, "the secrets file", "--secrets-file")
    from dotenv import dotenv_values  # only when a secrets file is given

    parsed = dotenv_values(stream=io.StringIO(text), interpolate=False)
    return {name: value for name, value in parsed.items() if value is not None}


# -- fingerprints --------------------------------------------------------------------------

def config_folder(environ: Mapping[str, str]) -> Path:
    """The user's vastbuild configuration folder (XDG), never inside a workspace."""
    base = environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "vastbuild"


def fingerprint_key(folder: Path) -> bytes:
    """The user's fingerprint key, made (32 random bytes, mode 0600) on first use."""
    import secrets

    from vastbuild.files import atomic_write

    path = folder / KEY_FILE
    try:
        key = path.read_bytes()
        if len(key) >= 32:
            return key
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise VastbuildError(f"cannot read {path}: {exc.strerror}",
                             "make it readable, or delete it (the next deploy of each "
                             "secret will then be compared as unknown)") from None
    key = secrets.token_bytes(32)
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        atomic_write(path, key, mode=0o600)
    except OSError as exc:
        raise VastbuildError(f"cannot write {path}: {exc.strerror}",
                             "make the folder writable, or set XDG_CONFIG_HOME") from None
    return key


def same_key(a: str, b: str) -> bool:
    """Whether two fingerprints were made with the same key (only then compare them)."""
    return a.partition(":")[0] == b.partition(":")[0]
