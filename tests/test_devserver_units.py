"""The dev server's pure parts: the tier table, registration checks, signing, faults, redaction."""

from __future__ import annotations

import base64
import io
import json
from email.message import Message

import pytest

from vastbuild.devserver.accesslog import redact
from vastbuild.devserver.faults import FaultBook, parse_fault
from vastbuild.devserver.httpbody import BodyError, iter_body
from vastbuild.devserver.registration import RegistrationError, parse_registration
from vastbuild.devserver.signing import (
    S3Error,
    presign_post,
    sign_download,
    verify_download,
    verify_post,
)
from vastbuild.devserver.tier_table import decide

SECRET = b"s" * 32
BASE = {"name": "llm", "image": "vastai/base:1", "file_hash": "ab" * 32, "file_size": 10,
        "env": "-p 3000:3000/tcp", "search_params": "verified=true", "storage": 60}


def reg(**changes: object):
    return parse_registration({**BASE, **changes}, SECRET)


@pytest.mark.parametrize(("changes", "action", "changed"), [
    ({}, "exists", ()),
    ({"file_size": 99}, "exists", ()),
    ({"max_workers": 3}, "autoscale_update", ("max_workers",)),
    ({"ttl": 600}, "autoscale_update", ("ttl",)),
    ({"version_label": "v2"}, "autoscale_update", ("version_label",)),
    ({"file_hash": "cd" * 32}, "soft_update", ("file_hash",)),
    ({"file_hash": "cd" * 32, "cold_workers": 1}, "soft_update", ("file_hash", "cold_workers")),
    ({"image": "vastai/base:2"}, "hard_update", ("image",)),
    ({"env": "-p 3000:3000/tcp -e A=1"}, "hard_update", ("env",)),
    ({"search_params": "verified=false"}, "hard_update", ("search_params",)),
    ({"storage": 80}, "hard_update", ("storage",)),
    ({"docker_login_pass": "hunter2"}, "hard_update", ("docker_login_pass_digest",)),
    ({"image": "x:1", "file_hash": "cd" * 32, "ttl": 5}, "hard_update",
     ("image", "file_hash", "ttl")),
])
def test_the_highest_tier_of_any_change_decides_the_action(changes, action, changed) -> None:
    decision = decide(reg(), reg(**changes))
    assert decision.action == action
    assert decision.changed == changed


def test_a_new_deployment_is_created() -> None:
    assert decide(None, reg()).action == "created"


def test_omitted_fields_mean_the_server_defaults() -> None:
    explicit = reg(tag="default", storage=50, cold_workers=5, max_workers=20.0, target_util=0.9)
    implicit = parse_registration({k: v for k, v in BASE.items() if k != "storage"}, SECRET)
    assert decide(explicit, implicit).action == "exists"
    assert decide(reg(env=""), reg(env=None)).action == "exists"


def test_the_registry_password_is_kept_only_as_a_digest() -> None:
    stored = json.dumps(reg(docker_login_pass="hunter2").to_json())
    assert "hunter2" not in stored


@pytest.mark.parametrize(("body", "message"), [
    ([], "JSON object"),
    ({**BASE, "name": None}, "'name' is required"),
    ({**BASE, "file_size": -1}, "'file_size'"),
    ({**BASE, "file_size": True}, "'file_size'"),
    ({**BASE, "storage": 0}, "'storage'"),
    ({**BASE, "ttl": "long"}, "'ttl'"),
    ({**BASE, "max_workers": 2.5}, "'max_workers'"),
    ({**BASE, "min_load": float("nan")}, "'min_load'"),
    ({**BASE, "file_hash": "../../etc/passwd"}, "'file_hash'"),
    ({**BASE, "file_hash": ".hidden"}, "'file_hash'"),
    ({**BASE, "image": 3}, "'image': expected a string"),
])
def test_bad_registrations_name_the_field(body: object, message: str) -> None:
    with pytest.raises(RegistrationError, match=message):
        parse_registration(body, SECRET)


def test_a_presigned_post_allows_exactly_its_key_and_size() -> None:
    fields = presign_post(SECRET, "1/abc", 123, expires_at=2000.0, now=1000.0)
    assert set(fields) == {"key", "policy", "x-amz-algorithm", "x-amz-credential", "x-amz-date",
                           "x-amz-signature"}
    policy = json.loads(base64.b64decode(fields["policy"]))
    assert {"key": "1/abc"} in policy["conditions"]
    assert ["content-length-range", 123, 123] in policy["conditions"]
    grant = verify_post(SECRET, fields, now=1999.0)
    assert (grant.key, grant.min_size, grant.max_size) == ("1/abc", 123, 123)


@pytest.mark.parametrize(("tamper", "code"), [
    (lambda f: f.update(key="2/abc"), "AccessDenied"),
    (lambda f: f.update({"x-amz-signature": "0" * 64}), "SignatureDoesNotMatch"),
    (lambda f: f.update(policy=base64.b64encode(b'{"expiration": "2100-01-01T00:00:00.0Z",'
                                                b' "conditions": []}').decode()),
     "SignatureDoesNotMatch"),
    (lambda f: f.update(acl="public-read"), "AccessDenied"),
    (lambda f: f.pop("policy"), "InvalidArgument"),
])
def test_a_tampered_form_is_refused(tamper, code: str) -> None:
    fields = presign_post(SECRET, "1/abc", 10, expires_at=2000.0, now=1000.0)
    tamper(fields)
    with pytest.raises(S3Error) as caught:
        verify_post(SECRET, fields, now=1500.0)
    assert caught.value.code == code


def test_a_policy_expires_and_another_secret_does_not_verify() -> None:
    fields = presign_post(SECRET, "1/abc", 10, expires_at=2000.0, now=1000.0)
    with pytest.raises(S3Error, match="expired"):
        verify_post(SECRET, fields, now=2000.0)
    with pytest.raises(S3Error) as caught:
        verify_post(b"t" * 32, fields, now=1500.0)
    assert caught.value.code == "SignatureDoesNotMatch"


def test_a_download_signature_is_bound_to_key_and_expiry() -> None:
    signature = sign_download(SECRET, "1/abc", 2000)
    verify_download(SECRET, "1/abc", "2000", signature, now=1999.0)
    for key, expires, now in (("1/abd", "2000", 1000.0), ("1/abc", "2001", 1000.0),
                              ("1/abc", "2000", 2000.0)):
        with pytest.raises(S3Error):
            verify_download(SECRET, key, expires, signature, now=now)
    with pytest.raises(S3Error):
        verify_download(SECRET, "1/abc", None, None)


def test_faults_fire_count_times_on_matching_routes() -> None:
    book = FaultBook()
    book.arm(parse_fault({"route": "put /api/v0/deployments/", "kind": "error", "count": 2}))
    book.arm(parse_fault({"route": "POST /blobs/*", "kind": "reset"}))
    kinds = ("error", "reset")
    assert book.take("GET", "/api/v0/deployments", kinds) is None
    assert book.take("PUT", "/api/v0/deployments", kinds).kind == "error"
    assert book.take("PUT", "/api/v0/deployments/", kinds).kind == "error"
    assert book.take("PUT", "/api/v0/deployments/", kinds) is None
    assert book.take("POST", "/blobs/upload/", ("error",)) is None
    assert book.take("POST", "/blobs/upload/", kinds).kind == "reset"
    assert book.armed() == []


@pytest.mark.parametrize("body", [
    {"route": "/no-method", "kind": "error"},
    {"route": "GET /x", "kind": "explode"},
    {"route": "GET /x", "kind": "error", "count": 0},
    {"route": "GET /x", "kind": "error", "status": 200},
    {"route": "GET /x", "kind": "error", "colour": "red"},
])
def test_bad_faults_are_refused(body: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        parse_fault(body)


def test_redaction_blanks_keys_and_signatures() -> None:
    line = redact('"GET /a?x=1&api_key=sekrit&signature=abc" Authorization: Bearer sekrit')
    assert "sekrit" not in line and "abc" not in line
    assert "x=1" in line and "api_key=REDACTED" in line


def _headers(**values: str) -> Message:
    message = Message()
    for name, value in values.items():
        message[name.replace("_", "-")] = value
    return message


def test_chunked_and_sized_bodies_read_alike() -> None:
    chunked = io.BytesIO(b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: x\r\n\r\n")
    assert b"".join(iter_body(chunked, _headers(Transfer_Encoding="chunked"))) == b"hello world"
    sized = io.BytesIO(b"hello world")
    assert b"".join(iter_body(sized, _headers(Content_Length="11"))) == b"hello world"
    with pytest.raises(BodyError):
        b"".join(iter_body(io.BytesIO(b"short"), _headers(Content_Length="11")))
    with pytest.raises(BodyError):
        b"".join(iter_body(io.BytesIO(b"zz\r\n"), _headers(Transfer_Encoding="chunked")))
