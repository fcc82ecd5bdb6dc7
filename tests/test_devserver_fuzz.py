"""Property-based fuzzing of the dev server's HTTP surface, against the real process.

Every request here goes over a raw loopback socket to a real ``vastbuild
dev-server`` process (the ``dev_server_module`` fixture), so that requests no
well-behaved client library would make can be made too: a ``Content-Length``
that lies, a chunk size of ``-1``, ``..`` or a NUL in the path, a signature with
a non-ASCII character. The answer is read with :class:`http.client.HTTPResponse`.

Whatever the request, every answer must keep these invariants (checked in
:func:`send`, for every request of the file):

- its status is below 500 (no fault is ever injected here);
- it comes within :data:`TIMEOUT` seconds: no answer in time is a hang;
- the server process is still running afterwards;
- an answer to anyone but account A never carries account A's data: A plants
  a marker in its deployment's image, env, search filter, version label and
  registry user, and in its blob; its endpoint has a token of its own. None of
  them may appear in an answer to account B or to a request without a key.

After each example the server must answer its health route, and after each test
its log must hold no traceback (a 500 writes one there). Account A's planted
deployment must come out of the whole file unchanged.

:data:`TALLY` counts the requests sent; the last test reports the count.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import socket
import string
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode, urlsplit

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from test_devserver_api import multipart

from vastbuild.devserver.routing import MAX_JSON_BODY
from vastbuild.devserver.signing import presign_post, sign_download

if TYPE_CHECKING:
    from conftest import RunningDevServer, StartDevServer

#: Seconds a request may take, sending and answering; longer is a hang.
TIMEOUT = 10.0
#: Account indexes (``RunningDevServer.keys``): A owns the planted data, B fuzzes.
A, B = 0, 1


def fuzz(examples: int) -> settings:
    """Hypothesis settings: reproducible, no example database, no per-example deadline."""
    return settings(derandomize=True, database=None, deadline=None, max_examples=examples,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.large_base_example])


@dataclass
class Tally:
    """Requests sent by this file, all of them, and how many of those were fuzz cases."""

    requests: int = 0
    health_checks: int = 0
    by_test: dict[str, int] = field(default_factory=dict)


TALLY = Tally()


# sending raw requests


@dataclass
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


#: What an answer to anyone but account A must never contain (filled by ``victim``).
LEAK_MARKERS: list[bytes] = []


def send(server: RunningDevServer, method: str | bytes, target: str | bytes, *,
         key: int | None = B, body: bytes | None = None,
         headers: Sequence[tuple[str | bytes, str | bytes]] = (),
         content_length: str | bytes | None = None, chunks: Sequence[bytes] | None = None,
         half_close: bool = False, holder: int | None = None) -> Answer:
    """Send one request as raw bytes on a new connection, read the answer, check the invariants.

    ``key`` adds ``Authorization: Bearer`` with that account's key (None: no key).
    ``content_length`` overrides the header (a lie, or garbage); ``chunks`` sends
    the body chunked instead (each item is one chunk's raw bytes, size line
    included, so that a chunk can lie about its size too). ``half_close`` shuts
    the sending side after the request, as a client that has nothing more to
    send. ``holder`` is the account whose data the request may rightly see
    (default: ``key``'s): A's signed URL gives A's blob to whoever holds it.
    """
    method_bytes = method.encode() if isinstance(method, str) else method
    target_bytes = target.encode() if isinstance(target, str) else target
    lines = [method_bytes + b" " + target_bytes + b" HTTP/1.1",
             b"Host: " + _authority(server).encode(), b"Connection: close"]
    if key is not None:
        lines.append(f"Authorization: Bearer {server.keys[key]}".encode())
    for name, value in headers:
        lines.append(_bytes(name) + b": " + _bytes(value))
    payload = b""
    if chunks is not None:
        lines.append(b"Transfer-Encoding: chunked")
        payload = b"".join(chunks)
    elif content_length is not None:
        lines.append(b"Content-Length: " + _bytes(content_length))
        payload = body or b""
    elif body is not None:
        lines.append(b"Content-Length: " + str(len(body)).encode())
        payload = body
    raw = b"\r\n".join(lines) + b"\r\n\r\n" + payload
    what = f"{_bytes(method)!r} {target_bytes[:200]!r}"

    host, port = _address(server)
    with socket.create_connection((host, port), timeout=TIMEOUT) as sock:
        try:
            sock.sendall(raw)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered before taking the whole request: read what it said
        except TimeoutError:
            pytest.fail(f"hang: the server took no more of the request for {TIMEOUT} s: {what}")
        response = http.client.HTTPResponse(sock, method=_bytes(method).decode("latin-1"))
        try:
            response.begin()
            answer = Answer(response.status, response.headers, response.read())
        except TimeoutError:
            pytest.fail(f"hang: no answer within {TIMEOUT} s to {what}")
        finally:
            response.close()
    TALLY.requests += 1

    assert answer.status < 500, f"{answer.status} for {what}: {answer.text[:300]}"
    assert server.proc.poll() is None, f"the server died on {what}:\n{server.output()[-3000:]}"
    if (holder if holder is not None else key) != A:
        seen = answer.body + str(answer.headers).encode()
        for marker in LEAK_MARKERS:
            assert marker not in seen, f"account A's data in an answer to {what}: {answer.text}"
    return answer


def healthy(server: RunningDevServer) -> None:
    """The server is alive and answers its health route (after every example)."""
    answer = send(server, "GET", "/healthz", key=None)
    TALLY.health_checks += 1
    assert answer.status == 200 and answer.json() == {"ok": True}


def _bytes(value: str | bytes) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else value


def _address(server: RunningDevServer) -> tuple[str, int]:
    split = urlsplit(server.url)
    assert split.hostname is not None and split.port is not None
    return split.hostname, split.port


def _authority(server: RunningDevServer) -> str:
    return urlsplit(server.url).netloc


def jbody(document: Any) -> bytes:
    return json.dumps(document).encode()


def error_message(answer: Answer) -> str:
    document = answer.json()
    assert document["success"] is False
    return str(document["msg"])


# fixtures: the server, account A's planted deployment, account B's own


@pytest.fixture(scope="module")
def server(dev_server_module: RunningDevServer) -> RunningDevServer:
    return dev_server_module


@pytest.fixture(autouse=True)
def clean_log_afterwards(request: pytest.FixtureRequest) -> Iterator[None]:
    """After each test: no traceback in the server's log, no upload left in its tmp folder."""
    before = TALLY.requests
    yield
    TALLY.by_test[request.node.name] = TALLY.requests - before
    if "server" in request.fixturenames:
        running: RunningDevServer = request.getfixturevalue("server")
        output = running.output()
        assert "Traceback" not in output and "error while serving" not in output, output[-5000:]
        assert list((running.data_dir / "tmp").iterdir()) == []


def registration(name: str, content: bytes, **fields: Any) -> dict[str, Any]:
    return {"name": name, "image": "vastai/base-image:cuda-12", "tag": "default",
            "file_hash": hashlib.sha256(content).hexdigest(), "file_size": len(content),
            "env": "-p 3000:3000/tcp", "search_params": "verified=true", "storage": 50,
            **fields}


BOUNDARY = "vbfuzzboundary"
FORM = ("Content-Type", f"multipart/form-data; boundary={BOUNDARY}")


def post_form(server: RunningDevServer, fields: Sequence[tuple[str, str]], content: bytes,
              holder: int | None = None) -> Answer:
    """POST an upload form (every field, then the file) to the server's upload route."""
    form = multipart([*((k, v.encode()) for k, v in fields), ("file", content)], BOUNDARY)
    return send(server, "POST", "/blobs/upload/", key=None, body=form, headers=[FORM],
                holder=holder)


def register(server: RunningDevServer, key: int, document: dict[str, Any]) -> dict[str, Any]:
    answer = send(server, "PUT", "/api/v0/deployments/", key=key, body=jbody(document))
    assert answer.status == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def download_url_of(server: RunningDevServer, key: int, deployment_id: int) -> str:
    answer = send(server, "GET", f"/api/v0/deployment/{deployment_id}/download_url/", key=key)
    assert answer.status == 200, answer.text
    url: str = answer.json()["download_url"]
    return url


def path_and_query(url: str) -> str:
    split = urlsplit(url)
    return f"{split.path}?{split.query}" if split.query else split.path


@dataclass
class Deployed:
    """A deployment with its blob uploaded, and everything known about it."""

    name: str
    tag: str
    deployment_id: int
    endpoint_id: int
    workergroup_id: int
    file_hash: str
    content: bytes
    s3_key: str
    download_url: str
    endpoint_token: str
    version_ids: list[int]

    @property
    def ids(self) -> set[int]:
        return {self.deployment_id, self.endpoint_id, self.workergroup_id, *self.version_ids}


def deploy(server: RunningDevServer, key: int, name: str, content: bytes,
           **fields: Any) -> Deployed:
    document = registration(name, content, **fields)
    answer = register(server, key, document)
    uploaded = post_form(server, list(answer["upload_fields"].items()), content, holder=key)
    assert uploaded.status == 204, uploaded.text
    record = send(server, "GET", f"/api/v0/deployment/{answer['deployment_id']}/", key=key)
    endpoint = send(server, "GET", f"/api/v0/endptjobs/{answer['endpoint_id']}/", key=key)
    versions = send(server, "GET", f"/api/v0/deployment/{answer['deployment_id']}/versions/",
                    key=key)
    return Deployed(
        name=name, tag=document["tag"], deployment_id=answer["deployment_id"],
        endpoint_id=answer["endpoint_id"], workergroup_id=answer["workergroup_id"],
        file_hash=document["file_hash"], content=content,
        s3_key=record.json()["deployment"]["s3_key"],
        download_url=download_url_of(server, key, answer["deployment_id"]),
        endpoint_token=endpoint.json()["result"]["api_key"],
        version_ids=[v["id"] for v in versions.json()["versions"]])


MARKER = f"vbleak{uuid.uuid4().hex}"


@pytest.fixture(scope="module")
def victim(server: RunningDevServer) -> Iterator[Deployed]:
    """Account A's deployment, its blob uploaded, a marker in every text field it has.

    At the end of the module it must be exactly as it was: no request of account
    B (or of nobody) may have stopped, deleted, rolled or touched it.
    """
    content = f"account A's tarball {MARKER} ".encode() + os.urandom(64)
    planted = deploy(server, A, f"victim-{uuid.uuid4().hex[:8]}", content,
                     image=f"registry.example/{MARKER}:1", env=f"-e PLANTED={MARKER}",
                     search_params=f"gpu_name={MARKER}", version_label=MARKER,
                     docker_login_user=MARKER, docker_login_pass=MARKER)
    LEAK_MARKERS[:] = [MARKER.encode(), planted.endpoint_token.encode()]
    before = _state_of(server, planted)
    yield planted
    assert _state_of(server, planted) == before


def _state_of(server: RunningDevServer, planted: Deployed) -> dict[str, Any]:
    """What account A sees of its planted deployment (to compare before and after)."""
    record = send(server, "GET", f"/api/v0/deployment/{planted.deployment_id}/", key=A)
    versions = send(server, "GET", f"/api/v0/deployment/{planted.deployment_id}/versions/",
                    key=A)
    endpoint = send(server, "GET", f"/api/v0/endptjobs/{planted.endpoint_id}/", key=A)
    groups = send(server, "GET", "/api/v0/workergroups/", key=A)
    blob = send(server, "GET", path_and_query(download_url_of(server, A, planted.deployment_id)),
                key=None, holder=A)
    assert record.status == 200 and blob.status == 200 and blob.body == planted.content
    state = {"deployment": record.json()["deployment"], "versions": versions.json(),
             "endpoint": endpoint.json(),
             "group": [g for g in groups.json()["results"] if g["id"] == planted.workergroup_id]}
    return state


@pytest.fixture(scope="module")
def own(server: RunningDevServer, victim: Deployed) -> Deployed:
    """Account B's own deployment (ids that B may rightly use; it is never deleted)."""
    return deploy(server, B, f"own-{uuid.uuid4().hex[:8]}", b"account B's tarball " +
                  os.urandom(32))


# strategies

JSON_SCALARS = (st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1)
                | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20))
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                  max_size=3),
    max_leaves=8)
NOT_OBJECTS = (st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1)
               | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=40)
               | st.lists(JSON_VALUES, max_size=4))

TEXT_FIELDS = ("name", "image", "file_hash", "tag", "env", "search_params", "version_label",
               "autoscaler_instance", "docker_login_user", "docker_login_repo",
               "docker_login_pass")
INTEGER_FIELDS = ("file_size", "cold_workers", "max_workers")
POSITIVE_FIELDS = ("storage", "ttl")
NUMBER_FIELDS = ("min_load", "min_cold_load", "target_util", "cold_mult", "max_queue_time",
                 "target_queue_time", "inactivity_timeout")
REQUIRED_FIELDS = ("name", "image", "file_hash", "file_size")
KNOWN_FIELDS = frozenset(TEXT_FIELDS + INTEGER_FIELDS + POSITIVE_FIELDS + NUMBER_FIELDS
                         + ("api_key",))

_NON_STRING = (st.booleans() | st.integers(-(2**63), 2**63 - 1)
               | st.floats(allow_nan=False, allow_infinity=False)
               | st.lists(JSON_SCALARS, max_size=3)
               | st.dictionaries(st.text(max_size=5), JSON_SCALARS, max_size=2))
_NOT_A_NUMBER = (st.booleans() | st.text(max_size=10) | st.lists(JSON_SCALARS, max_size=3)
                 | st.dictionaries(st.text(max_size=5), JSON_SCALARS, max_size=2))
_NEGATIVE = (st.integers(-(2**63), -1)
             | st.floats(max_value=-1e-9, allow_nan=False, allow_infinity=False))


def wrong_value(field_name: str) -> st.SearchStrategy[Any]:
    """Values the field must refuse (each is a 400 naming the field)."""
    if field_name in TEXT_FIELDS:
        too_long = st.integers(64 * 1024 + 1, 70_000).map(lambda n: "x" * n)
        wrong = _NON_STRING | too_long
        if field_name == "file_hash":  # names a file: no '/', no leading '.', no '..' tricks
            wrong = wrong | st.sampled_from(["..", "../x", "a/b", ".hidden", "%2e%2e", "a\x00b",
                                             "é", "a" * 129, "..%2F..%2Fetc"])
        return wrong
    if field_name in INTEGER_FIELDS:
        fractions = st.floats(allow_nan=False, allow_infinity=False).filter(
            lambda x: not x.is_integer())
        return _NOT_A_NUMBER | _NEGATIVE | fractions
    if field_name in POSITIVE_FIELDS:
        return _NOT_A_NUMBER | _NEGATIVE | st.just(0)
    return _NOT_A_NUMBER | _NEGATIVE


# the routes that read a JSON body (every route that takes an API key reads one,
# GET ones too), with what a body of the wrong top-level type must get

@dataclass(frozen=True)
class BodyRoute:
    method: str
    path: str  # "{own}" stands for account B's own deployment id
    not_an_object: int  # the status for a body that is JSON but not an object
    admin: bool = False

    def target(self, own: Deployed) -> str:
        return self.path.format(own=own.deployment_id)


BODY_ROUTES = (
    BodyRoute("PUT", "/api/v0/deployments/", 400),
    BodyRoute("DELETE", "/api/v0/deployments/", 400),
    BodyRoute("POST", "/update_workers/", 400),
    BodyRoute("POST", "/api/v0/deployment/{own}/heartbeat/", 200),
    BodyRoute("POST", "/api/v0/deployment/{own}/stop/", 200),
    BodyRoute("POST", "/api/v0/deployment/{own}/start/", 200),
    BodyRoute("GET", "/api/v0/deployments/", 200),
    BodyRoute("GET", "/api/v0/deployment/{own}/versions/", 200),
    BodyRoute("POST", "/_dev/faults", 400, admin=True),
)


def send_body(server: RunningDevServer, route: BodyRoute, own: Deployed,
              body: bytes | None = None, **options: Any) -> Answer:
    headers = [("X-Dev-Admin-Token", server.admin_token)] if route.admin else []
    return send(server, route.method, route.target(own), key=None if route.admin else B,
                body=body, headers=headers, **options)


def no_fault_armed(server: RunningDevServer) -> None:
    """The fuzzing of POST /_dev/faults armed nothing (no fault is ever turned on here)."""
    answer = send(server, "GET", "/_dev/faults", key=None,
                  headers=[("X-Dev-Admin-Token", server.admin_token)])
    assert answer.json() == {"faults": []}


def _is_json(raw: bytes) -> bool:
    try:
        json.loads(raw)
    except (ValueError, RecursionError):
        return False
    return True


MALFORMED_JSON = st.one_of(
    st.binary(min_size=1, max_size=200).filter(lambda raw: bool(raw.strip())
                                               and not _is_json(raw)),
    st.builds(lambda doc, cut: doc[:max(1, len(doc) * cut // 100)],
              st.just(jbody(registration("cut", b"cut"))), st.integers(1, 99)),
    st.sampled_from([
        b"NaN", b"Infinity", b"-Infinity", b'{"storage": NaN}', b'{"ttl": Infinity}',
        b"{'name': 'single quotes'}", b'{"name": "x",}', b"{nope", b"\xff{}",
        b'{"name": "\xc3\x28"}', b"\x00", b'{"a": 1} {"b": 2}', b'"unterminated', b"[1, 2",
        b"01", b"--1",
        b"[" * 100_000,  # nesting deeper than the parser's recursion (a 500 before the fix)
        b'{"a":' * 50_000,
        b'{"name": "\\ud800", "image": "x", "file_hash": "ab", "file_size": 1}',  # lone surrogate
        b'{"name": "x", "\\udfff": 1}',
        b"9" * 5000,  # more digits than int() reads
        b'{"file_size": 1' + b"0" * 30 + b"}",  # outside SQLite's 64 bits
        b'{"workergroup_id": -1' + b"0" * 30 + b"}",
        b'{"storage": 1' + b"0" * 400 + b"}",  # float() of it overflows
    ]),
)


# 1. JSON bodies


@fuzz(400)
@given(route=st.sampled_from(BODY_ROUTES), raw=MALFORMED_JSON)
def test_malformed_json_is_a_400_on_every_route_that_reads_a_body(
        server: RunningDevServer, own: Deployed, route: BodyRoute, raw: bytes) -> None:
    """A body that is not JSON, or JSON the server cannot hold (nesting past the parser's
    recursion, a lone surrogate that SQLite cannot store, a whole number beyond 64 bits)
    is the client's mistake on every route that reads one: 400, never a 500 or a hang."""
    answer = send_body(server, route, own, raw)
    assert answer.status == 400, answer.text
    healthy(server)


@fuzz(150)
@given(route=st.sampled_from(BODY_ROUTES), document=NOT_OBJECTS)
def test_json_that_is_not_an_object_is_refused_or_ignored(
        server: RunningDevServer, own: Deployed, route: BodyRoute, document: Any) -> None:
    """A list, number, string, boolean or null where an object is expected: a 400 on the
    routes that need a body, ignored (200) on those that take none; never a 500."""
    answer = send_body(server, route, own, jbody(document))
    assert answer.status == route.not_an_object, answer.text
    healthy(server)
    if route.admin:
        no_fault_armed(server)


@fuzz(400)
@given(field_name=st.sampled_from(TEXT_FIELDS + INTEGER_FIELDS + POSITIVE_FIELDS
                                  + NUMBER_FIELDS), data=st.data())
def test_a_registration_field_of_the_wrong_type_is_a_400_naming_it(
        server: RunningDevServer, own: Deployed, field_name: str, data: st.DataObject) -> None:
    """Each field of PUT /api/v0/deployments/ given a value of the wrong type or range
    (a number for a string, a string or a negative or a fraction for a count, zero
    storage, a file hash that climbs out of its folder, text over 64 KiB): 400, and the
    message names the field so that the user knows what to fix."""
    value = data.draw(wrong_value(field_name), label="value")
    document = {**registration(f"wrong-{field_name}", b"wrong type"), field_name: value}
    answer = send(server, "PUT", "/api/v0/deployments/", body=jbody(document))
    assert answer.status == 400, (field_name, value, answer.text)
    assert f"'{field_name}'" in error_message(answer)
    healthy(server)


_OTHER_BODIES = st.one_of(
    # DELETE /api/v0/deployments/: name and tag must be strings
    st.tuples(st.just("DELETE"), st.just("/api/v0/deployments/"),
              st.fixed_dictionaries({"name": _NON_STRING | st.just("")},
                                    optional={"tag": JSON_VALUES})),
    st.tuples(st.just("DELETE"), st.just("/api/v0/deployments/"),
              st.fixed_dictionaries({"name": st.text(min_size=1, max_size=10),
                                     "tag": _NON_STRING.filter(lambda v: bool(v))})),
    # POST /update_workers/: workergroup_id must be a whole number
    st.tuples(st.just("POST"), st.just("/update_workers/"),
              st.fixed_dictionaries({}, optional={
                  "workergroup_id": _NOT_A_NUMBER | st.none() | st.floats(
                      allow_nan=False, allow_infinity=False)})),
    # POST /_dev/faults: never a valid fault ('kind' is never one of the kinds)
    st.tuples(st.just("POST"), st.just("/_dev/faults"),
              st.fixed_dictionaries({"kind": JSON_VALUES.filter(
                  lambda v: v not in ("error", "throttle", "reset", "expired_url"))},
                  optional={"route": JSON_VALUES, "count": JSON_VALUES,
                            "status": JSON_VALUES, "after_bytes": JSON_VALUES})),
)


@fuzz(150)
@given(case=_OTHER_BODIES)
def test_the_other_bodies_with_wrong_types_are_a_400(
        server: RunningDevServer, own: Deployed, case: tuple[str, str, dict[str, Any]]) -> None:
    """The other routes that need a body (delete by name, the autoscaler's rolling update,
    arming a fault) with a field missing or of the wrong type: 400, and nothing happens
    (no deployment deleted, no workergroup rolled, no fault armed)."""
    method, path, document = case
    admin = path.startswith("/_dev/")
    answer = send(server, method, path, key=None if admin else B, body=jbody(document),
                  headers=[("X-Dev-Admin-Token", server.admin_token)] if admin else [])
    assert answer.status == 400, (document, answer.text)
    healthy(server)
    if admin:
        no_fault_armed(server)


@fuzz(120)
@given(missing=st.sets(st.sampled_from(REQUIRED_FIELDS), min_size=1),
       extra=st.dictionaries(st.text(min_size=1, max_size=12).filter(
           lambda k: k not in KNOWN_FIELDS), JSON_VALUES, max_size=4))
def test_missing_required_fields_are_a_400_and_extra_fields_are_ignored(
        server: RunningDevServer, own: Deployed, missing: set[str],
        extra: dict[str, Any]) -> None:
    """A registration without one of name, image, file_hash, file_size is a 400 naming a
    missing field; fields the server does not know are ignored, as a server that must
    take newer clients does: the same registration with them and nothing missing is
    taken (200) and reads back unchanged."""
    name = f"extra-{uuid.uuid4().hex[:8]}"
    complete = {**extra, **registration(name, b"extra fields")}
    partial = {k: v for k, v in complete.items() if k not in missing}
    refused = send(server, "PUT", "/api/v0/deployments/", body=jbody(partial))
    assert refused.status == 400, refused.text
    assert any(f"'{field_name}'" in error_message(refused) for field_name in missing)
    taken = send(server, "PUT", "/api/v0/deployments/", body=jbody(complete))
    assert taken.status == 200, taken.text
    record = send(server, "GET", f"/api/v0/deployment/{taken.json()['deployment_id']}/")
    assert record.json()["deployment"]["name"] == name
    healthy(server)


# 2. bodies too large


LIMIT = MAX_JSON_BODY


def _padded_object(size: int) -> bytes:
    """A JSON object of exactly ``size`` bytes (``{}`` and spaces)."""
    return b"{" + b" " * (size - 2) + b"}"


def _chunked(payload: bytes, piece: int = 64 * 1024) -> list[bytes]:
    chunks = [b"%x\r\n" % len(payload[i:i + piece]) + payload[i:i + piece] + b"\r\n"
              for i in range(0, len(payload), piece)]
    return [*chunks, b"0\r\n\r\n"]


SIZE_CASES = {
    # Content-Length tells the truth, one byte over the limit, and the body is sent
    "honest_over": dict(body=_padded_object(LIMIT + 1)),
    # Content-Length lies: it declares more than the limit, a few bytes follow
    "lying_10GB": dict(content_length="10737418240", body=b'{"name": "x"}'),
    "lying_30_digits": dict(content_length="9" * 30, body=b"{}"),
    "lying_leading_zeros": dict(content_length="0" * 40 + str(LIMIT + 1), body=b"{}"),
    # chunked, every chunk honest, the total over the limit
    "chunked_over": dict(chunks=_chunked(_padded_object(LIMIT + 100))),
    # chunked, one chunk declaring 1 TB and a few bytes sent
    "chunked_lying": dict(chunks=[b"ffffffffff\r\n{}"]),
}


@pytest.mark.parametrize("case", sorted(SIZE_CASES))
@pytest.mark.parametrize("route", BODY_ROUTES, ids=lambda r: f"{r.method} {r.path}")
def test_a_body_over_the_limit_is_a_413_at_once(server: RunningDevServer, own: Deployed,
                                                route: BodyRoute, case: str) -> None:
    """A body over the 1 MiB the JSON routes read (MAX_JSON_BODY in routing.py) is a 413:
    told by its Content-Length (true or lying, even with nothing of it sent; before the
    fix the server waited for bytes that never came), or found while reading a chunked
    body (a chunk declaring more than the limit is refused before it is read)."""
    started = time.monotonic()
    answer = send_body(server, route, own, **SIZE_CASES[case])
    assert answer.status == 413, answer.text
    assert time.monotonic() - started < TIMEOUT / 2
    healthy(server)


def test_a_body_at_the_limit_is_read(server: RunningDevServer, own: Deployed) -> None:
    """Exactly MAX_JSON_BODY bytes is still taken (the limit is not off by one): a 400
    for a registration that lacks its fields, a 200 where the body is ignored."""
    for route in BODY_ROUTES:
        for options in ({"body": _padded_object(LIMIT)},
                        {"chunks": _chunked(_padded_object(LIMIT))}):
            answer = send_body(server, route, own, **options)
            assert answer.status not in (413,), (route, answer.text)
    no_fault_armed(server)
    healthy(server)


@fuzz(60)
@given(route=st.sampled_from(BODY_ROUTES), declared=st.integers(2, LIMIT),
       sent=st.integers(0, 64), chunked=st.booleans())
def test_a_body_cut_short_is_a_400_once_the_client_stops_sending(
        server: RunningDevServer, own: Deployed, route: BodyRoute, declared: int, sent: int,
        chunked: bool) -> None:
    """A Content-Length (or chunk size) within the limit that promises more than is sent:
    the server waits for the rest, as HTTP says, but as soon as the client stops
    sending (closes its side) it answers 400 instead of hanging."""
    assume(sent < declared)
    body = b"{" + b" " * (sent - 1) if sent else b""
    options: dict[str, Any] = (
        {"chunks": [b"%x\r\n" % declared + body]} if chunked
        else {"content_length": str(declared), "body": body})
    answer = send_body(server, route, own, half_close=True, **options)
    assert answer.status == 400, answer.text
    healthy(server)


BAD_LENGTHS = st.one_of(
    st.sampled_from(["\xb2", "\xb9", "-1", "+5", "1e3", "0x10", "1_0", " ", "5 5", "١٢",
                     "9" * 5000, "1.0", "\xa0"]),
    st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0xFF), min_size=1,
            max_size=20).filter(lambda s: not s.strip().isascii() or not s.strip().isdigit()),
)
BAD_CHUNK_SIZES = st.one_of(
    st.sampled_from([b"-1", b"-2", b"+5", b"0x5", b"1_0", b"", b"zz", b"\xb2", b"5 5",
                     b"f" * 1000]),
    st.binary(min_size=1, max_size=12).filter(
        lambda b: b"\n" not in b and b"\r" not in b and not b.split(b";")[0].strip().isalnum()),
)


@fuzz(120)
@given(route=st.sampled_from(BODY_ROUTES), length=BAD_LENGTHS, chunk_size=BAD_CHUNK_SIZES,
       chunked=st.booleans())
def test_a_garbled_content_length_or_chunk_size_is_a_4xx(
        server: RunningDevServer, own: Deployed, route: BodyRoute, length: str,
        chunk_size: bytes, chunked: bool) -> None:
    """A Content-Length that is not a plain number ("²" passed str.isdigit and then broke
    int(), a 500 before the fix) or a chunk size that is not plain hex ("-1" made the
    server read until the connection closed: a hang before the fix): 400 or 413."""
    if chunked:
        answer = send_body(server, route, own, body=None,
                           chunks=[chunk_size + b"\r\n{}\r\n", b"0\r\n\r\n"])
    else:
        raw_length = length.encode("latin-1" if max(map(ord, length)) < 256 else "utf-8")
        answer = send_body(server, route, own, body=b"{}", content_length=raw_length)
    assert answer.status in (400, 413), answer.text
    healthy(server)


def test_an_upload_with_a_lying_length_is_refused_without_waiting_for_it(
        server: RunningDevServer, victim: Deployed) -> None:
    """The upload route reads no JSON and has no fixed limit (the policy sets the size),
    but a form whose signature is wrong is refused as soon as its file part begins,
    without waiting for the 10 GB its Content-Length promises."""
    pending = register(server, A, registration("lying-upload", b"lying upload"))
    fields = dict(pending["upload_fields"], **{"x-amz-signature": "0" * 64})
    head = multipart([(k, v.encode()) for k, v in fields.items()],
                     BOUNDARY)[:-len(f"--{BOUNDARY}--\r\n")]
    head += (b'--vbfuzzboundary\r\nContent-Disposition: form-data; name="file"; '
             b'filename="x"\r\n\r\nsome bytes')
    for options in ({"content_length": "10737418240", "body": head},
                    {"chunks": [b"%x\r\n" % (10 << 30) + head]}):
        started = time.monotonic()
        answer = send(server, "POST", "/blobs/upload/", key=None, headers=[FORM], **options)
        assert answer.status == 403 and b"SignatureDoesNotMatch" in answer.body
        assert time.monotonic() - started < TIMEOUT / 2
    healthy(server)


# 3. hostile ids, keys and path segments


_TRICKS = st.sampled_from([
    "..", "../..", "%2e%2e", "%2E%2E", ".%2e", "%2e.", "%2F", "..%2F..%2F", "%2e%2e%2f",
    "%252e%252e", "%c0%ae%c0%ae", "..\\..", "%5c", "%00", "1%00", "%001", "\x00", "1\x00",
    "", ".", "...", "%", "%zz", "?", "#", ";", "a;b", "%20", "+", "~", "*", "1.0", "1e3",
    "0x10", "١٢٣", "１２３", "²", "\u202e", "\ufeff1", "%ef%bb%bf1",
])
_NUMBERS = st.one_of(
    st.integers(-(2**70), 2**70).map(str),
    st.integers(19, 40).map(lambda n: "9" * n),  # past SQLite's 64 bits (a 500 before the fix)
    st.integers(0, 10**6).map(lambda n: f"{n:020d}"),  # leading zeros
)
_LONG = st.integers(10_000, 20_000).flatmap(lambda n: st.sampled_from(
    ["9" * n, "a" * n, "..%2F" * (n // 5), "é" * (n // 2), "%00" * (n // 3)]))
_UNICODE = st.text(st.characters(blacklist_categories=("Cs",),
                                 blacklist_characters="\r\n \t/?#"), min_size=1, max_size=30)
SEGMENTS = st.one_of(_TRICKS, _NUMBERS, _LONG, _UNICODE,
                     st.lists(_TRICKS | _UNICODE, min_size=2, max_size=4).map("/".join))


def encode_segment(segment: str, percent: bool) -> bytes:
    """The segment as raw UTF-8 on the request line, or percent-encoded (all but '%')."""
    if percent:
        return quote(segment, safe="%/").encode()
    return segment.encode("utf-8")


#: Routes with a slot for an id or a blob key: (method, path with {} for the segment).
SLOTTED = (
    ("GET", "/api/v0/deployment/{}/"), ("GET", "/api/v0/deployment/{}"),
    ("DELETE", "/api/v0/deployment/{}/"), ("GET", "/api/v0/deployment/{}/versions/"),
    ("GET", "/api/v0/deployment/{}/download_url/"),
    ("POST", "/api/v0/deployment/{}/heartbeat/"), ("POST", "/api/v0/deployment/{}/stop/"),
    ("POST", "/api/v0/deployment/{}/start/"), ("GET", "/api/v0/endptjobs/{}/"),
    ("GET", "/blobs/{}/abc"), ("GET", "/blobs/1/{}"), ("GET", "/blobs/{}"),
    ("POST", "/blobs/{}/"), ("GET", "/api/v0/{}"), ("PUT", "/api/v0/deployments/{}"),
    ("GET", "/{}"), ("GET", "/healthz/{}"), ("POST", "/update_workers/{}"),
    ("GET", "/_dev/{}"),
)


@fuzz(700)
@given(slot=st.sampled_from(SLOTTED), segment=SEGMENTS, percent=st.booleans(),
       with_key=st.booleans())
def test_hostile_ids_and_path_segments_find_nothing(
        server: RunningDevServer, victim: Deployed, own: Deployed, slot: tuple[str, str],
        segment: str, percent: bool, with_key: bool) -> None:
    """Ids and blob keys with '..', '%2e%2e', '%2F', NUL (raw and %00), 10k+ characters,
    unicode (digits of other scripts, bidi marks, BOMs), negative and huge numbers, in
    every slot of the route table. The server does not decode or normalise paths, so
    anything but 1-18 ASCII digits in an id slot is no route at all (404, 405, or 400
    for a request line it cannot read); a blob key is never served without a signature;
    an id that is a number is B's own (200) or a 404, and never one of A's."""
    method, template = slot
    raw_segment = encode_segment(segment, percent)
    target = template.encode().replace(b"{}", raw_segment)
    if method == "DELETE":
        assume(segment.lstrip("0") != str(own.deployment_id))  # B's own stays
    answer = send(server, method, target, key=B if with_key else None)
    is_id = raw_segment.isdigit() and len(raw_segment) <= 18
    if template.startswith("/blobs/"):
        assert answer.status in (400, 403, 404, 405, 414), "a blob served without a signature"
    elif template.startswith(("/api/v0/deployment/", "/api/v0/endptjobs/")):
        if not is_id:
            assert answer.status in (400, 404, 405, 414), answer.text
        elif with_key:
            assert answer.status in (200, 404), answer.text
        else:
            assert answer.status == 401, answer.text
        if is_id and int(raw_segment) in victim.ids:
            assert answer.status in (401, 404), "account B reached account A's record"
    healthy(server)


_ODD_TARGETS = st.sampled_from([
    b"http://[x/healthz", b"http://[::1/api/v0/deployments/", b"//[x/healthz",
    b"http://127.0.0.1/healthz", b"*", b"healthz", b"/healthz?%", b"/healthz?a=%ff%fe",
    b"/healthz#frag", b"/api/v0/deployments/?api_key=%00", b"/\x00", b"/%",
    b"/api/v0/deployment/1/../" + b"1/", b"/./healthz", b"/healthz/../healthz",
])


@fuzz(80)
@given(target=_ODD_TARGETS | st.binary(min_size=1, max_size=60).filter(
    lambda b: not any(c in b for c in b"\r\n \t")).map(lambda b: b"/" + b),
       method=st.sampled_from(["GET", "PUT", "POST", "DELETE"]))
def test_request_targets_that_are_not_paths_are_a_4xx(
        server: RunningDevServer, target: bytes, method: str) -> None:
    """Request targets that are not plain paths: absolute URLs with a broken host
    ("http://[x/", which urlsplit refuses: a 500 before the fix), '*', no leading slash,
    NUL and arbitrary bytes: a 4xx (or the health answer when the target names it)."""
    answer = send(server, method, target)
    assert answer.status < 500
    healthy(server)


_QUERY_VALUES = st.one_of(_TRICKS, _NUMBERS, _LONG, _UNICODE, st.just(""))


@fuzz(150)
@given(api_key=_QUERY_VALUES, authorization=st.binary(max_size=80).filter(
    lambda b: b"\r" not in b and b"\n" not in b), path=st.sampled_from(
        ["/api/v0/deployments/", "/api/v0/endptjobs/", "/update_workers/",
         "/api/v0/workergroups/"]))
def test_unknown_keys_anywhere_are_a_401(server: RunningDevServer, victim: Deployed,
                                         api_key: str, authorization: bytes, path: str) -> None:
    """Fuzzed keys in ?api_key= (NUL, 10k characters, unicode) and fuzzed Authorization
    headers (any bytes): never a key, so 401 for every route that needs one."""
    method = "POST" if path == "/update_workers/" else "GET"
    answer = send(server, method, f"{path}?{urlencode({'api_key': api_key})}", key=None,
                  headers=[("Authorization", authorization)])
    assert answer.status == 401, answer.text
    healthy(server)


# 4. signatures: forged, tampered, expired, replayed


def real_secret(server: RunningDevServer) -> bytes:
    """The server's signing secret, from its data folder: to sign URLs that are right in
    every way but their expiry (the server's own test data, in a temporary folder)."""
    return (server.data_dir / "secret").read_bytes()


def split_download(url: str) -> tuple[str, int, str]:
    """(blob key, expires, signature) of a download URL."""
    split = urlsplit(url)
    query = dict(pair.split("=", 1) for pair in split.query.split("&"))
    return split.path.removeprefix("/blobs/"), int(query["expires"]), query["signature"]


_SIGNATURES = st.one_of(
    st.text("0123456789abcdef", min_size=64, max_size=64),
    st.text("0123456789abcdef", max_size=70), _UNICODE, _LONG, st.just(""),
    st.binary(min_size=32, max_size=32).map(lambda b: b.hex().upper()),
)
_KEYS = st.one_of(
    st.just("{victim}"), st.just("{own}"), st.just("{victim_account}/{own_hash}"),
    st.just("{own_account}/{victim_hash}"), st.just("999/{victim_hash}"),
    st.just("{victim}/.."), st.just("{victim_account}/../{own}"),
    st.just("{victim_account}/%2e%2e"), SEGMENTS.map(lambda s: s.replace("{", "").replace(
        "}", "")),
)


@fuzz(400)
@given(mode=st.sampled_from(["key", "expires", "signature", "forge", "drop_expires",
                             "drop_signature", "everything"]),
       key=_KEYS, expires=st.integers(-(2**40), 2**40).map(str) | _QUERY_VALUES,
       signature=_SIGNATURES, wrong_secret=st.binary(min_size=32, max_size=32))
@example(mode="signature", key="{victim}", expires="0", signature="é" * 64,
         wrong_secret=b"\0" * 32)  # hmac.compare_digest raised TypeError: a 500
@example(mode="expires", key="{victim}", expires="\xb2", signature="",
         wrong_secret=b"\0" * 32)  # "²".isdigit() is True, int("²") raised: a 500
@example(mode="expires", key="{victim}", expires="9" * 5000, signature="",
         wrong_secret=b"\0" * 32)  # more digits than int() reads: a 500
@example(mode="key", key="9" * 19 + "/abc", expires="0", signature="",
         wrong_secret=b"\0" * 32)  # an account number past 64 bits
def test_a_forged_or_tampered_download_url_is_a_403(
        server: RunningDevServer, victim: Deployed, own: Deployed, mode: str, key: str,
        expires: str, signature: str, wrong_secret: bytes) -> None:
    """Account A's download URL with one thing changed (its key, its expiry, its
    signature), or all of them, or a parameter dropped, or a new URL signed with a wrong
    secret for any key and any expiry, past or future: 403 (404 or 405 when the key is
    not even a blob path, 414 past the request line limit), never a blob. A signature
    with a non-ASCII character made hmac.compare_digest raise, and "²" as expiry broke
    int(): both were 500s before the fix."""
    real_key, real_expires, real_signature = split_download(victim.download_url)
    blob_key = real_key
    if mode in ("key", "forge", "everything"):
        blob_key = key.format(victim=victim.s3_key, own=own.s3_key,
                              victim_account=victim.s3_key.split("/")[0],
                              own_account=own.s3_key.split("/")[0],
                              victim_hash=victim.file_hash, own_hash=own.file_hash)
    query = {"expires": str(real_expires), "signature": real_signature}
    if mode in ("expires", "everything"):
        query["expires"] = expires
    if mode in ("signature", "everything"):
        query["signature"] = signature
    if mode == "forge":
        forged = int(expires) if expires.isascii() and expires.lstrip("-").isdigit() and len(
            expires) < 20 else real_expires
        query = {"expires": str(forged), "signature": sign_download(wrong_secret, blob_key,
                                                                    forged)}
    elif mode == "drop_expires":
        query.pop("expires")
    elif mode == "drop_signature":
        query.pop("signature")
    assume((blob_key, query.get("expires"), query.get("signature")) != (
        real_key, str(real_expires), real_signature))
    target = f"/blobs/{quote(blob_key, safe='/%')}?{urlencode(query)}"
    answer = send(server, "GET", target, key=B)
    assert answer.status in (403, 404, 405, 414), answer.text
    assert victim.content not in answer.body and own.content not in answer.body
    healthy(server)


@fuzz(60)
@given(age=st.integers(1, 10**9), which=st.sampled_from(["victim", "own"]))
def test_a_download_url_past_its_expiry_is_a_403_even_when_rightly_signed(
        server: RunningDevServer, victim: Deployed, own: Deployed, age: int,
        which: str) -> None:
    """A download URL signed with the server's own secret but an expiry in the past:
    403 "Request has expired" (the signature is right, only the time is wrong)."""
    deployed = victim if which == "victim" else own
    expires = int(time.time()) - age
    signature = sign_download(real_secret(server), deployed.s3_key, expires)
    answer = send(server, "GET", f"/blobs/{deployed.s3_key}?"
                  f"{urlencode({'expires': expires, 'signature': signature})}", key=None)
    assert answer.status == 403 and b"expired" in answer.body, answer.text
    healthy(server)


def policy_fields(secret: bytes, key: str, size: int, expires_at: float,
                  now: float | None = None) -> dict[str, str]:
    return presign_post(secret, key, size, expires_at, now)


_FORM_TAMPERING = st.sampled_from([
    "signature_random", "signature_flipped", "signature_unicode", "signature_upper",
    "key_changed", "key_dropped", "key_traversal", "extra_field", "date_changed",
    "credential_day", "policy_reencoded", "policy_other_key_wrong_secret",
    "policy_bigger_wrong_secret", "algorithm_changed",
])


def tamper_form(kind: str, fields: dict[str, str], victim: Deployed, own: Deployed,
                draw: st.DataObject) -> dict[str, str]:
    """One way of bending a genuine upload form (every one must be refused with 403)."""
    tampered = dict(fields)
    signature = fields["x-amz-signature"]
    if kind == "signature_random":
        tampered["x-amz-signature"] = draw.draw(_SIGNATURES.filter(lambda s: s != signature
                                                                   and s != ""))
    elif kind == "signature_flipped":
        at = draw.draw(st.integers(0, len(signature) - 1))
        flipped = "0" if signature[at] != "0" else "1"
        tampered["x-amz-signature"] = signature[:at] + flipped + signature[at + 1:]
    elif kind == "signature_unicode":
        tampered["x-amz-signature"] = signature[:-1] + "é"
    elif kind == "signature_upper":
        assume(signature.upper() != signature)
        tampered["x-amz-signature"] = signature.upper()
    elif kind == "key_changed":
        tampered["key"] = draw.draw(st.sampled_from([victim.s3_key, own.s3_key,
                                                     f"999/{victim.file_hash}"]))
    elif kind == "key_dropped":
        tampered.pop("key")
    elif kind == "key_traversal":
        tampered["key"] = fields["key"] + draw.draw(st.sampled_from(
            ["/..", "/../../secret", "%2F..", "\x00", "/" + victim.file_hash]))
    elif kind == "extra_field":
        name = draw.draw(st.text(string.ascii_letters + "-_", min_size=1, max_size=10).filter(
            lambda n: n not in fields and n not in ("file", "policy", "x-amz-signature")))
        tampered[name] = "x"
    elif kind == "date_changed":
        tampered["x-amz-date"] = "20000101T000000Z"
    elif kind == "credential_day":
        parts = fields["x-amz-credential"].split("/")
        parts[1] = "20000101"
        tampered["x-amz-credential"] = "/".join(parts)
    elif kind == "algorithm_changed":
        tampered["x-amz-algorithm"] = "AWS4-HMAC-MD5"
    elif kind == "policy_reencoded":  # same policy, different base64 padding/spacing
        policy = json.loads(base64.b64decode(fields["policy"]))
        tampered["policy"] = base64.b64encode(json.dumps(policy, indent=1).encode()).decode()
    else:  # a policy of the attacker's own making, signed with a key that is not the server's
        wrong = draw.draw(st.binary(min_size=32, max_size=32))
        key = victim.s3_key if kind == "policy_other_key_wrong_secret" else fields["key"]
        size = 10**9 if kind == "policy_bigger_wrong_secret" else int(
            json.loads(base64.b64decode(fields["policy"]))["conditions"][1][1])
        tampered = policy_fields(wrong, key, size, time.time() + 3600)
    return tampered


@fuzz(150)
@given(kind=_FORM_TAMPERING, data=st.data())
def test_a_forged_or_tampered_upload_form_is_a_403_and_stores_nothing(
        server: RunningDevServer, victim: Deployed, own: Deployed, kind: str,
        data: st.DataObject) -> None:
    """A genuine upload form (account A's, for a blob not yet uploaded) with its
    signature, key, date, credential, algorithm or policy changed, a field added, or a
    policy of the attacker's own signed with a wrong secret: 403, and no blob is stored,
    neither the pending one nor the one the tampered key points at."""
    content = b"pending " + os.urandom(16)
    pending = register(server, A, registration(f"pending-{uuid.uuid4().hex[:8]}", content))
    fields = tamper_form(kind, pending["upload_fields"], victim, own, data)
    answer = post_form(server, list(fields.items()), content)
    assert answer.status == 403, (kind, answer.text)
    account, file_hash = pending["upload_fields"]["key"].split("/")
    assert not (server.data_dir / "blobs" / account / file_hash).exists()
    healthy(server)


@fuzz(40)
@given(age=st.integers(1, 10**8))
def test_an_upload_policy_past_its_expiry_is_a_403_even_when_rightly_signed(
        server: RunningDevServer, victim: Deployed, age: int) -> None:
    """An upload form signed with the server's own secret, for the right key and size,
    whose policy expired ``age`` seconds ago: 403 "Policy expired", nothing stored."""
    content = b"expired policy " + os.urandom(8)
    pending = register(server, A, registration(f"expired-{uuid.uuid4().hex[:8]}", content))
    now = time.time()
    fields = policy_fields(real_secret(server), pending["upload_fields"]["key"], len(content),
                           now - age, now - age - 60)
    answer = post_form(server, list(fields.items()), content)
    assert answer.status == 403 and b"expired" in answer.body, answer.text
    healthy(server)


@pytest.fixture(scope="module")
def expiring(start_dev_server: StartDevServer) -> Iterator[RunningDevServer]:
    """A second server started with --upload-ttl 0 --download-ttl 0: every URL it issues
    has expired when it is issued (the documented way to test expiry)."""
    started = start_dev_server(args=["--upload-ttl", "0", "--download-ttl", "0"])
    yield started
    assert "Traceback" not in started.output()
    started.stop()


def test_urls_issued_with_a_zero_lifetime_are_a_403(expiring: RunningDevServer) -> None:
    """On a server started with --upload-ttl 0 --download-ttl 0, the upload form it
    hands out is refused as expired, every time it is replayed; and the download URL
    of a blob (uploaded with a form signed for the future with the server's own secret)
    is refused as expired too."""
    content = b"zero lifetime " + os.urandom(8)
    answer = register(expiring, A, registration("zero-ttl", content))
    for _ in range(3):
        refused = post_form(expiring, list(answer["upload_fields"].items()), content,
                            holder=A)
        assert refused.status == 403 and b"expired" in refused.body, refused.text
    future = policy_fields(real_secret(expiring), answer["upload_fields"]["key"], len(content),
                           time.time() + 600)
    assert post_form(expiring, list(future.items()), content, holder=A).status == 204
    url = download_url_of(expiring, A, answer["deployment_id"])
    for _ in range(3):
        fetched = send(expiring, "GET", path_and_query(url), key=None, holder=A)
        assert fetched.status == 403 and b"expired" in fetched.body, fetched.text
    healthy(expiring)


@fuzz(40)
@given(target=st.sampled_from(["victim", "own", "nobody", "other_hash"]),
       order=st.sampled_from(["replaced", "key_twice_wrong_last", "key_twice_wrong_first"]))
def test_a_replayed_upload_form_cannot_write_any_other_blob(
        server: RunningDevServer, victim: Deployed, own: Deployed, target: str,
        order: str) -> None:
    """Upload forms are not single use (as S3's presigned POST: valid until they
    expire), so a replay to the same key is taken. But a used form, replayed with its
    key pointed at another blob (account A's planted one, account B's, one of an
    account that does not exist, another hash), is refused (403), or, when the right
    key is the last one sent, stores the form's own blob: the key stored is always the
    policy's. The other blob keeps its bytes."""
    content = b"replayed " + os.urandom(24)
    pending = register(server, A, registration(f"replay-{uuid.uuid4().hex[:8]}", content))
    fields = pending["upload_fields"]
    assert post_form(server, list(fields.items()), content, holder=A).status == 204
    assert post_form(server, list(fields.items()), content, holder=A).status == 204  # replay
    other_key = {"victim": victim.s3_key, "own": own.s3_key,
                 "nobody": f"999/{victim.file_hash}",
                 "other_hash": f"{fields['key'].split('/')[0]}/{'e' * 64}"}[target]
    forged = b"overwrite " + os.urandom(len(content) - 10)
    pairs = [(k, v) for k, v in fields.items() if k != "key"]
    if order == "replaced":
        pairs.insert(0, ("key", other_key))
    elif order == "key_twice_wrong_last":
        pairs[:0] = [("key", fields["key"]), ("key", other_key)]
    else:
        pairs[:0] = [("key", other_key), ("key", fields["key"])]
    answer = post_form(server, pairs, forged, holder=A)
    if order == "key_twice_wrong_first":  # the last value counts: the form's own key
        assert answer.status == 204, answer.text
    else:
        assert answer.status == 403, answer.text
    for deployed in (victim, own):
        fetched = send(server, "GET", path_and_query(deployed.download_url), key=None,
                       holder=A if deployed is victim else B)
        assert fetched.status == 200 and fetched.body == deployed.content
    assert not (server.data_dir / "blobs" / "999").exists()
    assert not (server.data_dir / "blobs" / other_key.split("/")[0] / ("e" * 64)).exists()
    healthy(server)


# 5. two accounts


_ID_POOL = st.sampled_from(["victim.deployment_id", "victim.endpoint_id",
                            "victim.workergroup_id", "victim.version", "own.deployment_id",
                            "own.endpoint_id", "own.workergroup_id"]) | st.integers(0, 40_000)
_B_ROUTES = st.sampled_from([
    ("GET", "/api/v0/deployment/{id}/"), ("GET", "/api/v0/deployment/{id}/versions/"),
    ("GET", "/api/v0/deployment/{id}/download_url/"), ("DELETE", "/api/v0/deployment/{id}/"),
    ("POST", "/api/v0/deployment/{id}/heartbeat/"), ("POST", "/api/v0/deployment/{id}/stop/"),
    ("POST", "/api/v0/deployment/{id}/start/"), ("GET", "/api/v0/endptjobs/{id}/"),
    ("GET", "/api/v0/endptjobs/"), ("GET", "/api/v0/workergroups/"),
    ("GET", "/api/v0/deployments/"), ("POST", "/update_workers/"),
    ("DELETE", "/api/v0/deployments/"), ("PUT", "/api/v0/deployments/"),
    ("GET", "/blobs/{victim_key}"),
])


@fuzz(500)
@given(route=_B_ROUTES, target_id=_ID_POOL, data=st.data(),
       key_in=st.sampled_from(["header", "query", "body"]))
def test_account_b_never_sees_or_changes_account_a(
        server: RunningDevServer, victim: Deployed, own: Deployed, route: tuple[str, str],
        target_id: int | str, data: st.DataObject, key_in: str) -> None:
    """Whatever account B asks (every route, A's ids or its own or any, A's name and tag
    in a delete by name, A's workergroup in a rolling update, A's content hash in a
    registration, A's blob path without a signature, B's key in the header, the query
    or the body), no answer carries A's marker or endpoint token (checked in send), a
    request naming one of A's ids is a 404, and A's deployment is left as it was
    (checked at the end of the module)."""
    method, template = route
    resolved = _resolve(target_id, victim, own)
    if method == "DELETE" and resolved == own.deployment_id:
        resolved = victim.deployment_id  # B's own deployment stays for the other tests
    document: dict[str, Any] = {}
    if template == "/update_workers/":
        document = {"workergroup_id": resolved}
    elif template == "/api/v0/deployments/" and method == "DELETE":
        document = {"name": data.draw(st.sampled_from([victim.name, own.name, "nothing"])),
                    "tag": data.draw(st.sampled_from([victim.tag, "", "other"]))}
        if document["name"] == own.name:
            document["tag"] = "other"  # keep B's own
    elif method == "PUT":
        document = registration(data.draw(st.sampled_from([victim.name, "b-" + uuid.uuid4().hex[
            :6]])), b"", file_hash=data.draw(st.sampled_from([victim.file_hash, "f" * 64])),
            file_size=len(victim.content))
    target = template.format(id=resolved, victim_key=victim.s3_key)
    key: int | None = B
    if key_in == "query":
        target += ("&" if "?" in target else "?") + urlencode({"api_key": server.keys[B]})
        key = None
    elif key_in == "body" and method in ("PUT", "POST", "DELETE"):
        document["api_key"] = server.keys[B]
        key = None
    answer = send(server, method, target, key=key, body=jbody(document) if document else None,
                  holder=B)
    names_a = (resolved in victim.ids and "{id}" in template) or (
        template == "/update_workers/" and resolved == victim.workergroup_id)
    if names_a:
        assert answer.status == 404, answer.text
    if template.startswith("/blobs/"):
        assert answer.status == 403
    if method == "PUT":
        assert answer.status == 200, answer.text
        reply = answer.json()
        assert {reply["deployment_id"], reply["endpoint_id"]}.isdisjoint(victim.ids)
        assert "upload_url" in reply, "B's registration counted A's blob as B's"
        assert not reply["upload_fields"]["key"].startswith(victim.s3_key.split("/")[0] + "/")
    if answer.status == 200 and answer.body:
        _assert_no_victim_ids(answer.json(), victim)
    healthy(server)


def _resolve(target_id: int | str, victim: Deployed, own: Deployed) -> int:
    if isinstance(target_id, int):
        return target_id
    if target_id == "victim.version":
        return victim.version_ids[0]
    owner, attribute = target_id.split(".")
    value: int = getattr(victim if owner == "victim" else own, attribute)
    return value


def _assert_no_victim_ids(document: Any, victim: Deployed) -> None:
    """No record in an answer to B names A's deployment, endpoint or workergroup.

    (A record of A's would carry A's marker too; this says which id leaked.)
    """
    theirs = {"deployment_id": victim.deployment_id, "endpoint_id": victim.endpoint_id,
              "workergroup_id": victim.workergroup_id}
    if isinstance(document, dict):
        for name, value in document.items():
            assert name not in theirs or value != theirs[name], (name, value)
            _assert_no_victim_ids(value, victim)
    elif isinstance(document, list):
        for item in document:
            _assert_no_victim_ids(item, victim)


# the count


def test_the_file_sent_its_requests(server: RunningDevServer) -> None:
    """How many requests this file sent (printed; run with -s to see it), and a floor so
    that a change to the settings that quietly makes the fuzzing trivial shows."""
    fuzzing = {name: count for name, count in TALLY.by_test.items() if count}
    print(f"\ndevserver fuzz: {TALLY.requests} HTTP requests "
          f"({TALLY.health_checks} of them health checks) in {len(fuzzing)} tests")
    for name, count in sorted(fuzzing.items()):
        print(f"  {count:6d}  {name}")
    if len(fuzzing) < 20:
        pytest.skip("only part of the file ran")
    assert TALLY.requests >= 6000
