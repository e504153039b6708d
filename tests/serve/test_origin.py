"""The service's boundary: which Host and Origin it answers, its body bound, a client leaving
mid-upload, and the bounds of WebSocket streams (count, idleness, message size)."""

from __future__ import annotations

import json
import logging
import socket
import time

import numpy as np
import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
pytest.importorskip("websockets")

from serve_helpers import (
    MODEL,
    http_request,
    npy_bytes,
    raw_exchange,
    running_server,
)
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from hifigan import HiFiGANError
from hifigan.serve.guard import WebPolicy, body_limit_text, parse_host, parse_origin
from inference_helpers import log_mel

EVIL = "https://evil.example"


# ---------------------------------------------------------------------- the policy itself
def test_host_and_origin_parsing():
    assert parse_host("LocalHost:8000") == ("localhost", 8000)
    assert parse_host("[::1]:8000") == ("::1", 8000)
    assert parse_host("example.org.") == ("example.org", None)
    for bad in ("", "a b", "::1", "[::1", "[nope]:1", "host:0", "host:99999", "h:x", "u@h", "é"):
        assert parse_host(bad) is None, bad
    assert parse_origin("http://127.0.0.1:8000") == ("http", "127.0.0.1", 8000)
    assert parse_origin("HTTPS://App.Example") == ("https", "app.example", 443)
    for bad in ("null", "file://", "chrome-extension://abc", "http://", "http://a/b", "evil"):
        assert parse_origin(bad) is None, bad
    assert [body_limit_text(n) for n in (64 * 1024, 2**19, 1048, 64 * 2**20)] == [
        "64 KiB",
        "0.5 MB",
        "0.001 MB",
        "64 MB",
    ]


def test_served_names_follow_the_address():
    loop = WebPolicy("127.0.0.1")
    for host in (("127.0.0.1", 8000), ("localhost", 8000), ("::1", 8000)):
        assert loop.host_allowed(host, 8000, "http"), host
    assert not loop.host_allowed(("evil.example", 8000), 8000, "http")
    assert not loop.host_allowed(("10.1.2.3", 8000), 8000, "http")
    assert not loop.host_allowed(("127.0.0.1", 9000), 8000, "http")  # another port
    assert loop.host_allowed(("localhost", None), 80, "http")  # the default port, omitted
    assert not loop.host_allowed(("localhost", None), 8000, "http")
    assert loop.describe() is None

    one = WebPolicy("192.168.7.7")
    assert one.host_allowed(("192.168.7.7", 8000), 8000, "http")
    assert not one.host_allowed(("localhost", 8000), 8000, "http")  # not reachable there

    anywhere = WebPolicy("0.0.0.0")
    assert anywhere.host_allowed(("10.1.2.3", 8000), 8000, "http")  # any literal address
    assert anywhere.host_allowed(("fe80::1", 8000), 8000, "http")
    assert anywhere.host_allowed((socket.gethostname().lower(), 8000), 8000, "http")
    assert not anywhere.host_allowed(("evil.example", 8000), 8000, "http")
    assert "by an IP address" in anywhere.describe() and "--allow-host" in anywhere.describe()

    extra = WebPolicy("127.0.0.1", ["vocoder.example.org", "localhost:9000"], [EVIL])
    assert extra.host_allowed(("vocoder.example.org", 443), 8000, "http")  # any port
    assert extra.host_allowed(("localhost", 9000), 8000, "http")  # an ssh tunnel's port
    assert not extra.host_allowed(("localhost", 9001), 8000, "http")
    assert extra.origin_allowed(EVIL, ("localhost", 8000))
    assert WebPolicy(allow_hosts=["*"]).host_allowed(("evil.example", 1), 8000, "http")


def test_own_origin_is_the_one_the_host_names():
    policy = WebPolicy("127.0.0.1")
    assert policy.origin_allowed("http://127.0.0.1:8000", ("127.0.0.1", 8000))
    assert policy.origin_allowed("http://localhost:8000", ("localhost", 8000))
    assert not policy.origin_allowed("http://localhost:8000", ("127.0.0.1", 8000))
    assert not policy.origin_allowed("http://127.0.0.1:8001", ("127.0.0.1", 8000))
    assert not policy.origin_allowed(EVIL, ("127.0.0.1", 8000))
    assert not policy.origin_allowed("null", ("127.0.0.1", 8000))
    # behind a TLS proxy that forwards "Host: name": the page's https origin is its own
    proxied = WebPolicy("127.0.0.1", ["vocoder.example.org"])
    assert proxied.origin_allowed("https://vocoder.example.org", ("vocoder.example.org", None))


@pytest.mark.parametrize(
    ("option", "value"),
    [("allow_hosts", "two words"), ("allow_hosts", "h:123456"), ("allow_origins", "evil.com")],
)
def test_bad_allow_values_are_one_line_errors(option, value):
    with pytest.raises(HiFiGANError, match=r"^--allow-(host|origin) '.*' is not an? "):
        WebPolicy("127.0.0.1", **{option: [value]})


def test_cli_refuses_a_bad_allow_host_before_loading(run_cli):
    code, _, err = run_cli("serve", "--allow-host", "no such/host", "--model", "nowhere.pt")
    assert code == 1
    assert err.strip().splitlines()[-1].startswith("error: --allow-host 'no such/host' is not")


# ---------------------------------------------------------------------- the live service
@pytest.fixture(scope="module")
def server():
    with running_server(max_body_mb=0.5, max_streams=2, stream_idle_seconds=1.5) as s:
        yield s


def port_of(server) -> int:
    return int(server.url.rsplit(":", 1)[1])


def test_foreign_host_is_refused_on_every_path(server):
    port = port_of(server)
    for path in ("/health", "/", "/v1/models", "/metrics", "/static/app.js"):
        reply = raw_exchange(port, http_request("GET", path, f"evil.example:{port}"))
        assert reply.status == 403, path
        assert reply.json()["error"].startswith(f"Host 'evil.example:{port}' is not an address")
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"LOCALHOST:{port}"):
        assert raw_exchange(port, http_request("GET", "/health", host)).status == 200, host
    # HTTP/1.0 without Host: not a browser (they always send it), so served
    assert raw_exchange(port, b"GET /health HTTP/1.0\r\n\r\n").status == 200
    assert raw_exchange(port, http_request("GET", "/health", "127.0.0.1:1")).status == 403
    assert raw_exchange(port, http_request("GET", "/health", "a b")).status == 400
    reply = raw_exchange(port, ws_handshake(f"evil.example:{port}"))
    assert reply.status == 403 and "is not an address of this service" in reply.json()["error"]
    assert raw_exchange(port, ws_handshake(f"localhost:{port}")).status == 101


def ws_handshake(host: str, origin: str | None = None) -> bytes:
    """A WebSocket opening handshake for /v1/stream with any Host and Origin."""
    lines = [
        "GET /v1/stream HTTP/1.1",
        f"Host: {host}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version: 13",
    ]
    lines += [f"Origin: {origin}"] if origin else []
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def test_foreign_origin_cannot_drive_the_service(server):
    port = port_of(server)
    own = f"http://127.0.0.1:{port}"
    body = npy_bytes(log_mel(8).numpy())
    before = server.metric("hifigan_batch_size_count", model=MODEL)
    for origin in (EVIL, "null", f"http://127.0.0.1:{port + 1}", f"http://localhost:{port}"):
        reply = server.post("/v1/vocode", body, headers={"Origin": origin})
        assert reply.status == 403, origin
        assert reply.json()["error"] == (
            f"requests from pages of {origin!r} are refused (start the service with "
            "--allow-origin ORIGIN to allow a site)"
        )
        with pytest.raises(InvalidStatus) as refused:
            connect(f"{server.ws_url}/v1/stream", origin=origin)
        assert refused.value.response.status_code == 403
        assert json.loads(refused.value.response.body)["error"].startswith("requests from pages")
    assert server.metric("hifigan_batch_size_count", model=MODEL) == before  # nothing ran
    assert server.metric("hifigan_requests_total", endpoint="/v1/stream", status="403") >= 4
    # reads stay open (no CORS header: a foreign page cannot read them anyway)
    assert server.get("/v1/models", headers={"Origin": EVIL}).status == 200
    # the service's own page, and clients that send no Origin, are served
    assert server.post("/v1/vocode", body, headers={"Origin": own}).status == 200
    assert server.post("/v1/vocode", body).status == 200
    with connect(f"{server.ws_url}/v1/stream", origin=own) as ws:
        ws.send(np.ascontiguousarray(log_mel(15).numpy().T, "<f4").tobytes())
        assert ws.recv(timeout=60)


def test_allowed_hosts_and_origins():
    app_origin = "https://app.example"
    with running_server(allow_hosts=["vocoder.test"], allow_origins=[app_origin]) as server:
        port = port_of(server)
        reply = raw_exchange(port, http_request("GET", "/v1/models", "vocoder.test"))
        assert reply.status == 200 and reply.json()["default"] == MODEL
        with connect(f"{server.ws_url}/v1/stream", origin=app_origin) as ws:
            ws.send(np.ascontiguousarray(log_mel(15).numpy().T, "<f4").tobytes())
            assert ws.recv(timeout=60)
        assert server.post("/v1/mel", b"x", headers={"Origin": EVIL}).status == 403


def test_body_over_the_bound_is_refused_before_it_is_read(server):
    port = port_of(server)
    head = http_request("POST", "/v1/vocode", f"127.0.0.1:{port}", content_length=400 * 2**20)
    # 400 MB declared, 64 KB sent: the answer comes without waiting for the rest
    reply = raw_exchange(port, head + b"\0" * 65536, timeout=10)
    assert reply.status == 413
    assert reply.json()["error"] == "request body is over this server's limit of 0.5 MB"
    # no Content-Length (chunked): counted as it arrives, cut once past the bound
    chunked = (
        f"POST /v1/vocode HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    ).encode()
    chunk = b"10000\r\n" + b"\1" * 0x10000 + b"\r\n"
    reply = raw_exchange(port, chunked + chunk * 12, timeout=10)  # 768 KB, never finished
    assert reply.status == 413
    assert "over this server's limit of 0.5 MB" in reply.json()["error"]
    assert server.get("/health").status == 200


def test_a_client_leaving_mid_upload_is_one_line_and_499(server, caplog):
    port = port_of(server)
    before = server.metric("hifigan_requests_total", endpoint="/v1/vocode", status="499")
    head = http_request("POST", "/v1/vocode", f"127.0.0.1:{port}", content_length=300_000)
    with caplog.at_level(logging.INFO):
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(head + b"\0" * 1000)
            time.sleep(0.3)  # the server is reading the body
        server.wait_for_metric(
            before + 1, "hifigan_requests_total", endpoint="/v1/vocode", status="499"
        )
    assert server.metric("hifigan_requests_total", endpoint="/v1/vocode", status="500") == 0
    gone = [r for r in caplog.records if "disconnected during the upload" in r.getMessage()]
    assert len(gone) == 1 and gone[0].exc_info is None
    assert "POST /v1/vocode: client 127.0.0.1:" in gone[0].getMessage()
    assert "(1000 of 300000 bytes); answered 499" in gone[0].getMessage()
    assert not [r for r in caplog.records if r.exc_info or "Exception" in r.getMessage()]


def stream_url(server) -> str:
    return f"{server.ws_url}/v1/stream"


def closing_error(ws) -> tuple[int, str | None]:
    """Read until the server closes; the close code and the JSON error it sent."""
    error = None
    try:
        while True:
            message = ws.recv(timeout=30)
            if isinstance(message, str):
                error = json.loads(message)["error"]
    except ConnectionClosed as e:
        return e.rcvd.code, error


def test_streams_are_bounded_in_number_and_idle_time(server):
    busy = server.metric("hifigan_requests_total", endpoint="/v1/stream", status="1013")
    with connect(stream_url(server)) as first, connect(stream_url(server)) as second:
        server.wait_for_metric(2, "hifigan_active_streams", model=MODEL)
        first.send(np.ascontiguousarray(log_mel(20).numpy().T, "<f4").tobytes())
        assert first.recv(timeout=60)  # busy streams stay open while they are used
        with connect(stream_url(server)) as third:
            assert closing_error(third) == (
                1013,
                "this server already has 2 open streams; retry later",
            )
        start = time.monotonic()
        # neither side sends: each is closed after the idle time, with the reason
        assert closing_error(second) == (
            1001,
            "stream idle for 1.5 s (--stream-idle-seconds); closed",
        )
        assert closing_error(first)[0] == 1001
        assert 1.0 < time.monotonic() - start < 20
    assert server.metric("hifigan_requests_total", endpoint="/v1/stream", status="1013") == (
        busy + 1
    )
    server.wait_for_metric(0, "hifigan_active_streams", model=MODEL)
    with connect(stream_url(server)) as ws:  # the slots are free again
        ws.send(np.ascontiguousarray(log_mel(15).numpy().T, "<f4").tobytes())
        ws.send("end")
        assert closing_error(ws) == (1000, None)


def test_an_oversized_stream_message_gets_the_json_error(server):
    with connect(stream_url(server), max_size=None) as ws:
        ws.send(b"\0" * (320 * 2000))  # 640 KB: over 0.5 MB
        assert closing_error(ws) == (
            1009,
            "message of 640000 bytes is over this server's limit of 0.5 MB",
        )
    assert server.get("/health").status == 200
