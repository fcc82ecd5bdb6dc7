"""The Vast client on the wire: a scripted HTTP server on loopback records every
request, so the tests see exactly what vastbuild sends (headers, URL, body order)."""

from __future__ import annotations

import hashlib
import json
import socket
import struct
import threading
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from vastbuild.errors import VastbuildError
from vastbuild.vast.client import (
    REDACTED,
    RetryPolicy,
    UploadRejected,
    VastApiError,
    VastClient,
    VastConnectionError,
)

KEY = "test-key-7f3a9c1e5b"
FAST = RetryPolicy(attempts=4, base_delay=0.01, max_delay=0.05, total_time=10.0,
                   connect_timeout=2.0, read_timeout=5.0)


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes = b""
    body_digest: str = ""
    body_size: int = 0


#: A scripted answer: (status, headers, JSON body), or "reset" to drop the connection
Answer = tuple[int, dict[str, str], object] | str


@dataclass
class Script:
    answers: dict[str, list[Answer]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    #: bodies larger than this are hashed as they stream in, not kept
    keep_limit: int = 1 << 20

    def next(self, method: str, path: str) -> Answer:
        queue = self.answers.get(f"{method} {path}") or [(404, {}, {"msg": "no route"})]
        return queue.pop(0) if len(queue) > 1 else queue[0]


def make_handler(script: Script) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def _serve(self) -> None:
            answer = script.next(self.command, self.path)
            length = int(self.headers.get("Content-Length") or 0)
            seen = Seen(self.command, self.path, dict(self.headers.items()))
            script.seen.append(seen)
            if answer == "reset":
                self.rfile.read(min(length, 64 << 10))  # take part of the body, then drop
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                           struct.pack("ii", 1, 0))
                self.connection.close()
                self.close_connection = True
                return
            digest, kept, left = hashlib.sha256(), bytearray(), length
            while left:
                chunk = self.rfile.read(min(left, 1 << 20))
                if not chunk:
                    break
                left -= len(chunk)
                digest.update(chunk)
                if length <= script.keep_limit:
                    kept += chunk
            seen.body, seen.body_digest, seen.body_size = bytes(kept), digest.hexdigest(), length
            status, headers, body = answer  # type: ignore[misc]
            payload = json.dumps(body).encode()
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_PUT = do_POST = do_DELETE = _serve

    return Handler


@pytest.fixture
def server() -> Iterator[tuple[str, Script]]:
    script = Script()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(script))
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", script
    finally:
        httpd.shutdown()
        httpd.server_close()


def client_for(url: str, trace: Callable[[str], None] | None = None,
               retry: RetryPolicy = FAST, **kwargs: object) -> VastClient:
    return VastClient(KEY, api_url=url, autoscaler_url=url + "/as", retry=retry, trace=trace,
                      **kwargs)  # type: ignore[arg-type]


PUT_OK = (200, {}, {"success": True, "action": "created", "deployment_id": 5,
                    "endpoint_id": 9, "upload_url": "/blob?sig=abc",
                    "upload_fields": {"key": "k1", "policy": "p"}})


def test_the_key_goes_in_the_authorization_header_only(server):
    url, script = server
    script.answers["PUT /api/v0/deployments/"] = [PUT_OK]
    answer = client_for(url).put_deployment({"name": "n", "image": "i"})
    assert (answer.action, answer.deployment_id, answer.endpoint_id) == ("created", 5, 9)
    assert answer.needs_upload and answer.upload_fields == {"key": "k1", "policy": "p"}
    [request] = script.seen
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert request.path == "/api/v0/deployments/"
    assert KEY.encode() not in request.body
    assert json.loads(request.body) == {"name": "n", "image": "i"}


def test_update_workers_sends_the_group_and_the_key_as_the_sdk_does(server):
    url, script = server
    script.answers["POST /as/update_workers/"] = [(200, {}, {"success": True})]
    client_for(url).update_workers(4)
    [request] = script.seen
    assert json.loads(request.body) == {"workergroup_id": 4, "api_key": KEY}
    assert request.headers["Authorization"] == f"Bearer {KEY}"


def test_the_workergroup_is_found_by_endpoint(server):
    url, script = server
    script.answers["GET /api/v0/workergroups/"] = [(200, {}, {"results": [
        {"id": 1, "endpoint_id": 8}, {"id": 2, "endpoint_id": 9}]})]
    assert client_for(url).find_workergroup(9) == 2
    assert client_for(url).find_workergroup(10) is None


def test_5xx_is_retried_until_it_succeeds(server):
    url, script = server
    script.answers["GET /api/v0/deployments/"] = [
        (500, {}, {"msg": "boom"}), (503, {}, {}), (200, {}, {"deployments": [{"id": 1}]})]
    assert client_for(url).list_deployments() == [{"id": 1}]
    assert len(script.seen) == 3


def test_429_waits_at_least_retry_after(server):
    url, script = server
    script.answers["GET /api/v0/endptjobs/"] = [
        (429, {"Retry-After": "1"}, {"msg": "slow down"}), (200, {}, {"results": []})]
    lines: list[str] = []
    assert client_for(url, trace=lines.append).list_endpoints() == []
    assert any("HTTP 429; retrying in 1.00 s" in line for line in lines)


def test_a_retry_after_beyond_the_total_time_fails_at_once(server):
    url, script = server
    script.answers["GET /api/v0/endptjobs/"] = [(429, {"Retry-After": "3600"}, {"msg": "later"})]
    with pytest.raises(VastApiError) as caught:
        client_for(url).list_endpoints()
    assert caught.value.status == 429
    assert "asked to wait 3600 s" in str(caught.value)
    assert len(script.seen) == 1


def test_retries_stop_after_the_attempts_and_say_so(server):
    url, script = server
    script.answers["GET /api/v0/deployments/"] = [(502, {}, {"msg": "bad gateway"})]
    with pytest.raises(VastApiError) as caught:
        client_for(url).list_deployments()
    assert "HTTP 502: bad gateway (gave up after 4 attempts)" in str(caught.value)
    assert len(script.seen) == 4


def test_a_4xx_is_not_retried_and_carries_a_hint(server):
    url, script = server
    script.answers["GET /api/v0/deployment/3/"] = [(403, {}, {"msg": "not yours"})]
    with pytest.raises(VastApiError) as caught:
        client_for(url).get_deployment(3)
    assert caught.value.status == 403 and caught.value.hint
    assert len(script.seen) == 1


def test_a_dead_port_is_a_connection_error_with_what_to_do():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(VastConnectionError) as caught:
        client_for(f"http://127.0.0.1:{port}").list_deployments()
    assert caught.value.hint and caught.value.setting == "api_url"


def test_the_key_never_reaches_a_trace_or_an_error(server):
    url, script = server
    script.answers["GET /api/v0/deployments/"] = [(400, {}, {"msg": f"bad key {KEY}"})]
    lines: list[str] = []
    with pytest.raises(VastApiError) as caught:
        client_for(url, trace=lines.append, trace_bodies=True).list_deployments()
    assert KEY not in str(caught.value) and REDACTED in str(caught.value)
    assert lines and not any(KEY in line for line in lines)
    assert any(f"Authorization: Bearer {REDACTED}" in line for line in lines)


def test_upload_sends_fields_first_then_the_file_without_the_key(server, tmp_path):
    url, script = server
    script.answers["POST /blob?sig=abc"] = [(204, {}, {})]
    tarball = tmp_path / "app.tar.gz"
    tarball.write_bytes(b"\x1f\x8b" + b"x" * 1000)
    lines: list[str] = []
    client_for(url, trace=lines.append).upload(url + "/blob?sig=abc",
                                               {"key": "k1", "policy": "p"}, tarball)
    [request] = script.seen
    assert "Authorization" not in request.headers
    assert request.headers["Content-Type"].startswith("multipart/form-data; boundary=")
    body = request.body
    assert body.index(b'name="key"') < body.index(b'name="policy"') < body.index(b'name="file"')
    assert b'filename="app.tar.gz"' in body and b"Content-Type: application/gzip" in body
    assert b"\x1f\x8b" + b"x" * 1000 in body
    assert not any("sig=abc" in line for line in lines)  # the signature stays out of traces


def test_upload_streams_from_disk(server, tmp_path):
    url, script = server
    script.answers["POST /blob"] = [(201, {}, {})]
    tarball = tmp_path / "big.tar.gz"
    block = hashlib.sha256(b"seed").digest() * (1 << 15)  # 1 MiB
    with tarball.open("wb") as out:
        for _ in range(48):
            out.write(block)
    tracemalloc.start()
    try:
        client_for(url).upload(url + "/blob", {"key": "k"}, tarball)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert script.seen[0].body_size > 48 << 20
    assert peak < 16 << 20, f"upload held {peak >> 20} MiB in memory"


def test_a_reset_mid_upload_is_retried_from_the_first_byte(server, tmp_path):
    url, script = server
    script.answers["POST /blob"] = ["reset", (200, {}, {})]
    tarball = tmp_path / "app.tar.gz"
    tarball.write_bytes(b"y" * (4 << 20))
    client_for(url).upload(url + "/blob", {"key": "k"}, tarball)
    assert len(script.seen) == 2
    assert script.seen[1].body_size > 4 << 20


def test_an_expired_upload_url_is_an_upload_rejected(server, tmp_path):
    url, script = server
    script.answers["POST /blob"] = [(403, {}, {"msg": "Request has expired"})]
    tarball = tmp_path / "app.tar.gz"
    tarball.write_bytes(b"z")
    with pytest.raises(UploadRejected) as caught:
        client_for(url).upload(url + "/blob", {"key": "k"}, tarball)
    assert "Request has expired" in str(caught.value)


def test_a_registration_without_its_fields_is_an_unexpected_answer(server):
    url, script = server
    script.answers["PUT /api/v0/deployments/"] = [(200, {}, {"success": True})]
    with pytest.raises(VastApiError, match="unexpected answer"):
        client_for(url).put_deployment({"name": "n"})


def test_an_empty_key_is_refused_before_any_request():
    with pytest.raises(Exception, match="no API key"):
        VastClient("", api_url="http://127.0.0.1:1")


def test_readers_decode_their_documents(server, tmp_path: Path):
    url, script = server
    script.answers["GET /api/v0/deployment/5/"] = [(200, {}, {"deployment": {"id": 5}})]
    script.answers["GET /api/v0/deployment/5/versions/"] = [
        (200, {}, {"success": True, "versions": [{"id": 1}]})]
    script.answers["GET /api/v0/deployment/5/download_url/"] = [
        (200, {}, {"success": True, "download_url": "http://x/y"})]
    script.answers["POST /api/v0/deployment/5/heartbeat/"] = [(200, {}, {"success": True})]
    client = client_for(url)
    assert client.get_deployment(5) == {"id": 5}
    assert client.get_versions(5) == [{"id": 1}]
    assert client.get_download_url(5) == "http://x/y"
    client.heartbeat(5)
    assert all(request.headers["Authorization"] == f"Bearer {KEY}" for request in script.seen)


def test_traced_bodies_hide_credentials_of_every_kind(server):
    url, script = server
    script.answers["PUT /api/v0/deployments/"] = [PUT_OK]
    script.answers["GET /api/v0/endptjobs/"] = [
        (200, {}, {"results": [{"id": 1, "api_key": "endpoint-token-5", "max_workers": 2}]})]
    lines: list[str] = []
    client = client_for(url, trace=lines.append, trace_bodies=True)
    client.put_deployment({"name": "n", "docker_login_pass": "hunter2",
                           "env": "-p 3000:3000/tcp -e REPORT_ADDR=http://a -e HF_TOKEN=hf_x1"})
    client.list_endpoints()
    traced = "\n".join(lines)
    assert '"max_workers": 2' in traced and '"name": "n"' in traced
    assert "-e REPORT_ADDR=http://a -e HF_TOKEN=***" in traced
    for secret in ("endpoint-token-5", "hunter2", '"policy": "p"', "hf_x1"):
        assert secret not in traced


def test_a_key_echoed_where_a_message_is_cut_is_redacted_whole(server):
    """Messages are cut to 300 characters, traces to 2000: the key is taken out before
    the cut, so no prefix of it survives a cut through its middle."""
    url, script = server
    echo = {"msg": "x" * 290 + f" {KEY} ", "pad": "y" * 1970 + KEY}
    script.answers["GET /api/v0/deployments/"] = [(400, {}, echo)]
    lines: list[str] = []
    with pytest.raises(VastApiError) as caught:
        client_for(url, trace=lines.append, trace_bodies=True).list_deployments()
    shown = "\n".join([str(caught.value), *lines])
    assert KEY[:6] not in shown


@pytest.mark.parametrize("key", ["two\nlines", "caf\u00e9-key", "\ufeffbom-key", "with space"])
def test_a_key_a_header_cannot_carry_is_refused_without_showing_it(key):
    with pytest.raises(VastbuildError) as caught:
        VastClient(key, api_url="http://127.0.0.1:1")
    assert "key" in str(caught.value) and key.strip("\ufeff")[:3] not in str(caught.value)


@pytest.mark.parametrize(("route", "answer", "call"), [
    ("GET /api/v0/deployments/", {"deployments": [{"id": "abc", "name": "n"}]},
     lambda c: c.list_deployments()),
    ("PUT /api/v0/deployments/", {"action": "created", "deployment_id": 1, "endpoint_id": 2,
                                  "upload_url": 12345, "upload_fields": {}},
     lambda c: c.put_deployment({"name": "n"})),
])
def test_an_answer_of_the_wrong_shape_is_an_unexpected_answer(server, route, answer, call):
    url, script = server
    script.answers[route] = [(200, {}, answer)]
    with pytest.raises(VastApiError, match="unexpected answer"):
        call(client_for(url))


def test_an_upload_url_no_client_can_parse_is_an_error_not_a_crash(server, tmp_path):
    url, _ = server
    tarball = tmp_path / "app.tar.gz"
    tarball.write_bytes(b"x")
    with pytest.raises(VastConnectionError):
        client_for(url).upload("http://" + "a" * 300 + ".example/up", {"key": "k"}, tarball)


@pytest.mark.timeout(60)
def test_an_answer_that_drips_is_cut_off_at_the_read_timeout():
    """Each read gets a byte before the read timeout; the whole answer never arrives
    in time. The call must still end, as a connection failure, after its attempts."""
    stop = threading.Event()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]

    def drip() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             b"Content-Length: 100000\r\n\r\n")
                while not stop.wait(0.1):
                    try:
                        conn.sendall(b" ")
                    except OSError:
                        break

    thread = threading.Thread(target=drip, daemon=True)
    thread.start()
    policy = RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.01, total_time=10.0,
                         connect_timeout=1.0, read_timeout=0.8)
    try:
        with pytest.raises(VastConnectionError) as caught:
            client_for(f"http://127.0.0.1:{port}", retry=policy).list_deployments()
        assert "gave up after 2 attempts" in caught.value.message
    finally:
        stop.set()
        thread.join(5)
        listener.close()


@pytest.mark.parametrize("key", ["k", "ke", "a1", "key-with-dash"])
def test_a_short_key_is_hidden_where_it_stands_whole_never_inside_words(key: str) -> None:
    """The message that read `update_wor<redacted>ers ... not <redacted>nown` with the key k."""
    client = VastClient(key)
    text = (f"POST https://run.vast.ai/update_workers/: Name or service not known; "
            f"Authorization: Bearer {key}; token={key}.")
    shown = client.redact(text)
    assert "update_workers" in shown and "not known" in shown
    assert shown.endswith("Bearer <redacted>; token=<redacted>.")


def test_a_long_key_and_a_hidden_secret_go_wherever_they_stand() -> None:
    key = "0123456789abcdef0123456789abcdef"
    client = VastClient(key)
    client.hide(["hf_secretvalue", "x"])
    shown = client.redact(f"prefix{key}suffix -e HF_TOKEN=hf_secretvalue max")
    assert shown == "prefix<redacted>suffix -e HF_TOKEN=<redacted> max"


# -- the lifecycle calls, exactly as vast-lifecycle.md gives them ----------------------------

LIFECYCLE = [
    # (call, method, path, body; None: no body)
    (lambda c: c.stop_deployment(7), "POST", "/api/v0/deployment/7/stop/", {}),
    (lambda c: c.start_deployment(7), "POST", "/api/v0/deployment/7/start/", {}),
    (lambda c: c.delete_deployment(7), "DELETE", "/api/v0/deployment/7/", {}),
    (lambda c: c.delete_deployments_by_name("svc", "prod"), "DELETE", "/api/v0/deployments/",
     {"name": "svc", "tag": "prod"}),
    (lambda c: c.delete_deployments_by_name("svc", None), "DELETE", "/api/v0/deployments/",
     {"name": "svc"}),
    (lambda c: c.heartbeat(7), "POST", "/api/v0/deployment/7/heartbeat/", None),
    (lambda c: c.get_versions(7), "GET", "/api/v0/deployment/7/versions/", None),
    (lambda c: c.get_logs("endpoint", 9, 100), "POST", "/as/get_endpoint_logs/",
     {"id": 9, "api_key": KEY, "tail": 100}),
    (lambda c: c.get_logs("endpoint", 9), "POST", "/as/get_endpoint_logs/",
     {"id": 9, "api_key": KEY}),
    (lambda c: c.get_logs("workergroup", 4), "POST", "/as/get_autogroup_logs/",
     {"id": 4, "api_key": KEY}),
    (lambda c: c.get_endpoint_workers(9), "POST", "/as/get_endpoint_workers/", {"id": 9}),
]
ANSWERS = {"/api/v0/deployment/7/versions/": {"versions": []},
           "/as/get_endpoint_workers/": [{"id": 1, "status": "idle"}]}


@pytest.mark.parametrize("call, method, path, body", LIFECYCLE,
                         ids=[f"{m} {p}" for _, m, p, _ in LIFECYCLE])
def test_each_lifecycle_call_sends_the_method_path_and_body_of_the_spec(
        server, call, method: str, path: str, body: object) -> None:
    url, script = server
    script.answers[f"{method} {path}"] = [(200, {}, ANSWERS.get(path, {"success": True}))]
    call(client_for(url))
    [seen] = script.seen
    assert (seen.method, seen.path) == (method, path)
    assert seen.headers["Authorization"] == f"Bearer {KEY}"
    assert (json.loads(seen.body) if seen.body else None) == body


def test_logs_come_in_either_documented_shape_and_a_bare_string_is_an_error(server) -> None:
    url, script = server
    route = "POST /as/get_endpoint_logs/"
    levels = {"info0": "a\n", "info1": "a\nb\n", "trace": "", "debug": "x"}
    script.answers[route] = [(200, {}, levels), (200, {}, {"logs": "one\ntwo"}),
                             (200, {}, "authenticate_endpoint_apikey: invalid api_key")]
    client = client_for(url)
    assert client.get_logs("endpoint", 1) == levels
    assert client.get_logs("endpoint", 1) == {"logs": "one\ntwo"}
    with pytest.raises(VastApiError, match="invalid api_key"):
        client.get_logs("endpoint", 1)


def test_workers_come_as_a_list_or_under_workers_and_not_ready_is_none(server) -> None:
    url, script = server
    route = "POST /as/get_endpoint_workers/"
    script.answers[route] = [(200, {}, {"workers": [{"id": 2, "status": "loading"}]}),
                             (200, {}, {"error_msg": "endpoint not ready"})]
    client = client_for(url)
    assert client.get_endpoint_workers(1) == [{"id": 2, "status": "loading"}]
    assert client.get_endpoint_workers(1) == []
