"""Presigned upload policies and signed download URLs, in the manner of S3.

An upload is an S3-style browser POST: the form carries the object key, a
base64 JSON *policy* (expiry, exact key, allowed size range) and an HMAC-SHA256
signature over that policy with a key derived from the server's secret the
AWS Signature V4 way. The blob routes take no API key at all: whoever holds a
valid signature may do exactly what it allows, until it expires, as with S3.
A download URL is bound to one blob key and an expiry by its own signature.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from vastbuild.files import atomic_write

ALGORITHM = "AWS4-HMAC-SHA256"
ACCESS_KEY_ID = "VASTBUILDDEVSERVER"
REGION = "local"
SERVICE = "s3"
#: Form fields that a policy cannot (and need not) list.
UNSIGNED_FIELDS = frozenset({"policy", "x-amz-signature", "file"})
_SECRET_BYTES = 32
#: An ``expires`` query value: ASCII digits (``str.isdigit`` also takes "²", which
#: ``int`` refuses), few enough for ``int`` to read.
_EXPIRES = re.compile(r"[0-9]{1,18}")


class S3Error(Exception):
    """A blob request refused, answered the S3 way: ``code`` is the S3 error code."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True)
class UploadGrant:
    """What a verified policy allows: one object key, a size range in bytes."""

    key: str
    min_size: int
    max_size: int


def load_or_create_secret(path: Path) -> bytes:
    """The server's signing secret, made once and kept (mode 0600) so URLs survive a restart."""
    try:
        secret = path.read_bytes()
        if len(secret) == _SECRET_BYTES:
            return secret
    except FileNotFoundError:
        pass
    secret = secrets.token_bytes(_SECRET_BYTES)
    atomic_write(path, secret, mode=0o600)
    return secret


def presign_post(secret: bytes, key: str, size: int, expires_at: float,
                 now: float | None = None) -> dict[str, str]:
    """The form fields for uploading exactly ``size`` bytes to ``key`` until ``expires_at``."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() if now is None else now))
    credential = f"{ACCESS_KEY_ID}/{stamp[:8]}/{REGION}/{SERVICE}/aws4_request"
    policy = {
        "expiration": datetime.fromtimestamp(expires_at, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "conditions": [
            {"key": key},
            ["content-length-range", size, size],
            {"x-amz-algorithm": ALGORITHM},
            {"x-amz-credential": credential},
            {"x-amz-date": stamp},
        ],
    }
    encoded = base64.b64encode(json.dumps(policy, separators=(",", ":")).encode()).decode()
    return {
        "key": key,
        "x-amz-algorithm": ALGORITHM,
        "x-amz-credential": credential,
        "x-amz-date": stamp,
        "policy": encoded,
        "x-amz-signature": _policy_signature(secret, stamp[:8], encoded),
    }


def verify_post(secret: bytes, fields: Mapping[str, str], now: float | None = None) -> UploadGrant:
    """Check the form fields of an upload against their signed policy; say what it allows.

    Raises :class:`S3Error` for a missing or forged policy, an expired one,
    a field the policy does not allow or a condition a field does not meet.
    """
    encoded, signature = fields.get("policy"), fields.get("x-amz-signature")
    credential = fields.get("x-amz-credential", "")
    if not encoded or not signature:
        raise S3Error(400, "InvalidArgument",
                             "the form must carry the fields 'policy' and 'x-amz-signature' "
                             "before the file")
    credential_parts = credential.split("/")
    day = credential_parts[1] if len(credential_parts) == 5 else ""
    if not _same(_policy_signature(secret, day, encoded), signature):
        raise S3Error(403, "SignatureDoesNotMatch",
                             "the signature does not match the policy")
    try:
        policy = json.loads(base64.b64decode(encoded, validate=True))
        expiration = datetime.strptime(policy["expiration"], "%Y-%m-%dT%H:%M:%S.%fZ")
        conditions = policy["conditions"]
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise S3Error(400, "InvalidPolicyDocument", "the policy cannot be read") from exc
    if (time.time() if now is None else now) >= expiration.replace(tzinfo=UTC).timestamp():
        raise S3Error(403, "AccessDenied", "Invalid according to Policy: Policy expired.")
    covered: set[str] = set()
    key, size_range = None, None
    for condition in conditions:
        if isinstance(condition, list) and condition[:1] == ["content-length-range"]:
            size_range = (int(condition[1]), int(condition[2]))
            continue
        ((name, expected),) = condition.items()
        covered.add(name)
        if fields.get(name) != expected:
            raise S3Error(403, "AccessDenied",
                                 f"Invalid according to Policy: Policy Condition failed: "
                                 f"field '{name}'")
        if name == "key":
            key = expected
    extra = sorted(set(fields) - covered - UNSIGNED_FIELDS)
    if extra:
        raise S3Error(403, "AccessDenied",
                             f"Invalid according to Policy: Extra input fields: {', '.join(extra)}")
    if key is None or size_range is None:
        raise S3Error(400, "InvalidPolicyDocument",
                             "the policy must name the key and a content-length-range")
    return UploadGrant(key=key, min_size=size_range[0], max_size=size_range[1])


def sign_download(secret: bytes, key: str, expires: int) -> str:
    """The signature of a GET of ``key`` until the Unix time ``expires``."""
    message = f"GET\n{key}\n{expires}".encode()
    return hmac.new(_derive(secret, b"download"), message, hashlib.sha256).hexdigest()


def verify_download(secret: bytes, key: str, expires: str | None, signature: str | None,
                    now: float | None = None) -> None:
    """Raise :class:`S3Error` unless the URL's signature is the server's and still valid."""
    if not expires or not signature or not _EXPIRES.fullmatch(expires):
        raise S3Error(403, "AccessDenied",
                             "the URL must carry 'expires' and 'signature'; ask the API for a "
                             "download URL")
    if not _same(sign_download(secret, key, int(expires)), signature):
        raise S3Error(403, "SignatureDoesNotMatch",
                             "the signature does not match this blob")
    if (time.time() if now is None else now) >= int(expires):
        raise S3Error(403, "AccessDenied", "Request has expired")


def _same(expected: str, offered: str) -> bool:
    """Compare signatures in constant time, as bytes: ``hmac.compare_digest`` raises
    TypeError for a str with a non-ASCII character, and the offered one is the client's."""
    return hmac.compare_digest(expected.encode(), offered.encode())


def _policy_signature(secret: bytes, day: str, encoded_policy: str) -> str:
    """Signature V4 over the policy: the signing key is derived from the secret and the day."""
    signing_key = _derive(b"AWS4" + secret, day.encode(), REGION.encode(), SERVICE.encode(),
                          b"aws4_request")
    return hmac.new(signing_key, encoded_policy.encode(), hashlib.sha256).hexdigest()


def _derive(key: bytes, *parts: bytes) -> bytes:
    for part in parts:
        key = hmac.new(key, part, hashlib.sha256).digest()
    return key
