"""The body of ``PUT /api/v0/deployments/``, checked and normalised.

A registration is a full declaration of what the deployment should be: a field
left out means the server's default, not "keep what you had". Normalising the
body here (defaults filled in, ``""`` read as absent, the registry password
replaced by a keyed digest) is what lets the tier decision compare two
registrations field by field with plain equality.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

#: The autoscaling settings of an endpoint and the value each takes when a
#: registration leaves it out: the defaults Vast documents for a new endpoint.
#: The dev server keeps its own copy of these facts, apart from the client's, so
#: that it stays an independent oracle for the client it tests.
AUTOSCALE_DEFAULTS: dict[str, float | int | None] = {
    "cold_workers": 5,
    "max_workers": 20,
    "min_load": 0.0,
    "min_cold_load": 0.0,
    "target_util": 0.9,
    "cold_mult": 2.5,
    "max_queue_time": 30.0,
    "target_queue_time": 10.0,
    "inactivity_timeout": None,
}

DEFAULT_TAG = "default"
DEFAULT_STORAGE_GB = 50.0

_INTEGER_AUTOSCALE_FIELDS = frozenset({"cold_workers", "max_workers"})

#: A content hash names a blob file on disk: letters, digits, ``_ . -`` only,
#: and not starting with a dot, so it can never climb out of the blob folder.
FILE_HASH_PATTERN = re.compile(r"[0-9A-Za-z][0-9A-Za-z_.-]{0,127}")
_MAX_TEXT = 64 * 1024


class RegistrationError(ValueError):
    """The body cannot be a registration; the message names the field, never its value."""


@dataclass(frozen=True)
class Registration:
    """One registration, normalised so that equal meaning gives equal fields."""

    name: str
    tag: str
    image: str
    file_hash: str
    file_size: int
    env: str | None = None
    search_params: str | None = None
    storage: float = DEFAULT_STORAGE_GB
    ttl: float | None = None
    version_label: str | None = None
    autoscaler_instance: str | None = None
    docker_login_user: str | None = None
    docker_login_repo: str | None = None
    #: HMAC-SHA256 of ``docker_login_pass`` under the server's secret: enough to
    #: notice a changed password without keeping it, or a digest one could guess at.
    docker_login_pass_digest: str | None = None
    autoscale: dict[str, float | int | None] = field(
        default_factory=lambda: dict(AUTOSCALE_DEFAULTS))

    def to_json(self) -> dict[str, Any]:
        """The form kept in the state database (it holds no secret)."""
        return asdict(self)

    @classmethod
    def from_json(cls, stored: Mapping[str, Any]) -> Registration:
        return cls(**{**stored, "autoscale": dict(stored["autoscale"])})


def parse_registration(body: Any, secret: bytes) -> Registration:
    """Check a decoded JSON body and return its normalised registration.

    ``secret`` keys the digest of the registry password. Unknown fields are
    ignored, as a server that must accept newer clients does.
    """
    if not isinstance(body, Mapping):
        raise RegistrationError("the body must be a JSON object")
    file_hash = _required_text(body, "file_hash")
    if not FILE_HASH_PATTERN.fullmatch(file_hash):
        raise RegistrationError(
            "field 'file_hash': expected a content hash (letters, digits, '_', '.', '-'; "
            "at most 128 characters, not starting with '.')")
    password = _text(body, "docker_login_pass")
    return Registration(
        name=_required_text(body, "name"),
        tag=_text(body, "tag") or DEFAULT_TAG,
        image=_required_text(body, "image"),
        file_hash=file_hash,
        file_size=_required_integer(body, "file_size"),
        env=_text(body, "env"),
        search_params=_text(body, "search_params"),
        storage=_number(body, "storage", positive=True) or DEFAULT_STORAGE_GB,
        ttl=_number(body, "ttl", positive=True),
        version_label=_text(body, "version_label"),
        autoscaler_instance=_text(body, "autoscaler_instance"),
        docker_login_user=_text(body, "docker_login_user"),
        docker_login_repo=_text(body, "docker_login_repo"),
        docker_login_pass_digest=(
            hmac.new(secret, password.encode(), hashlib.sha256).hexdigest()
            if password else None),
        autoscale={
            name: (_integer(body, name) if name in _INTEGER_AUTOSCALE_FIELDS
                   else _number(body, name)) if body.get(name) is not None else default
            for name, default in AUTOSCALE_DEFAULTS.items()
        },
    )


def _required_text(body: Mapping[str, Any], name: str) -> str:
    value = _text(body, name)
    if value is None:
        raise RegistrationError(f"field '{name}' is required")
    return value


def _required_integer(body: Mapping[str, Any], name: str) -> int:
    value = _integer(body, name)
    if value is None:
        raise RegistrationError(f"field '{name}' is required")
    return value


def _text(body: Mapping[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise RegistrationError(f"field '{name}': expected a string")
    if len(value) > _MAX_TEXT:
        raise RegistrationError(f"field '{name}': longer than {_MAX_TEXT} characters")
    return value


def _integer(body: Mapping[str, Any], name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise RegistrationError(f"field '{name}': expected a whole number >= 0")
    return value


def _number(body: Mapping[str, Any], name: str, positive: bool = False) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(
            value) or value < 0 or (positive and value == 0):
        raise RegistrationError(
            f"field '{name}': expected a number {'> 0' if positive else '>= 0'}")
    return float(value)
