"""Random requests against the live services: ``hifigan serve`` and ``hifigan listen`` run as
real processes on loopback, and hypothesis sends them HTTP requests with random methods,
paths, bodies and headers (Host, Origin, Content-Type, and a Content-Length that may lie) and
WebSocket streams of random message sequences. Every answer must carry a documented status
(the guard's 403 and 413 exactly where the policy says), the servers must stay healthy and
log no traceback, and their memory must stay where it was. The counts of inputs and statuses
are printed (``pytest -s``).

The default run tries a few hundred inputs; ``-m slow`` runs many more.
"""

from __future__ import annotations

import collections
import contextlib
import io
import json
import socket

import numpy as np
import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
pytest.importorskip("websockets")
pytest.importorskip("hypothesis")

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from listen.listen_helpers import CliServer, make_stimuli, system_args
from serve.serve_helpers import lj_v2_spec, raw_exchange, rss_mb, server_process

BODY_MB = 0.25  # serve's --max-body-mb here: small, so that the fuzzer crosses it
LISTEN_BODY = 64 * 1024
SERVE_STATUSES = {200, 400, 403, 404, 405, 413, 503}  # docs/serving.md
LISTEN_STATUSES = {200, 400, 403, 404, 405, 409, 410, 413, 503}  # docs/listening-test.md
STREAM_CODES = {1000, 1001, 1007, 1009, 1013, 4404}  # docs/serving.md, "Streaming"
STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}
PROTOCOL_400 = b"Invalid HTTP request received."  # uvicorn's answer to what is not HTTP
MEMORY_SLACK_MB = 100


def _settings(examples: int):
    return settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )


# ---------------------------------------------------------------------- live servers
class Live:
    """A running server process, what was tried against it and what it answered."""

    def __init__(self, name: str, port: int, pid: int, statuses: set[int]) -> None:
        self.name, self.port, self.pid, self.statuses = name, port, pid, statuses
        self.tried = 0
        self.seen: collections.Counter = collections.Counter()

    def healthy(self) -> bool:
        path = "/health" if self.name == "serve" else "/"
        request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nConnection: close\r\n\r\n"
        return raw_exchange(self.port, request.encode(), timeout=30).status == 200

    def part(self, name: str) -> Live:
        """The same server, with counts of its own."""
        return Live(name, self.port, self.pid, self.statuses)

    def report(self) -> str:
        shown = ", ".join(f"{k}: {v}" for k, v in sorted(self.seen.items(), key=str))
        return f"{self.name}: {self.tried} inputs; answers {shown}"


@pytest.fixture(scope="module")
def serve(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz-serve")
    args = ["--model", lj_v2_spec(), "--max-body-mb", str(BODY_MB), "--max-streams", "4"]
    args += ["--stream-idle-seconds", "3", "--max-seconds", "5", "--threads", "1"]
    with server_process(folder, *args, "--log-level", "warning") as running:
        port = int(running.server.url.rsplit(":", 1)[1])
        live = Live("serve", port, running.process.pid, SERVE_STATUSES)
        # first use: what the allocator keeps after it is not growth
        warm = raw_exchange(port, post(port, "/v1/vocode", npy_mel(30)), timeout=60)
        assert warm.status == 200, warm
        yield live
        assert live.healthy()
        log = running.output()
        assert "Traceback" not in log and "Exception in ASGI" not in log, log[-3000:]


@pytest.fixture(scope="module")
def listen(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz-listen")
    folders = make_stimuli(folder / "stimuli")
    server = CliServer([*system_args(folders), "--db", str(folder / "fuzz.sqlite")])
    live = Live("listen", server.port, server.process.pid, LISTEN_STATUSES)
    try:
        yield live
        assert live.healthy()
    finally:
        code, _, err = server.stop()
    assert code == 0, err
    assert "Traceback" not in err and "Exception in ASGI" not in err, err[-3000:]


# ---------------------------------------------------------------------- strategies
def npy_mel(frames: int) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.full((80, frames), -4.0, np.float32), allow_pickle=False)
    return buffer.getvalue()


PATHS = {
    "serve": ["/", "/health", "/metrics", "/v1/models", "/v1/vocode", "/v1/vocode?format=f32",
              "/v1/vocode?model=nope", "/v1/mel", "/v1/mel?format=json", "/v1/demo-clip",
              "/static/app.js", "/v1/stream", "/nowhere"],
    "listen": ["/", "/api/start", "/api/next?rater=a", "/api/rate", "/results?token=x",
               "/audio/0123", "/static/app.js", "/static/../server.py", "/nowhere"],
}  # fmt: skip

BODIES = st.one_of(
    st.binary(max_size=1500),
    st.integers(1, 12).map(npy_mel),
    st.fixed_dictionaries(
        {},
        optional={
            "rater": st.one_of(st.text(max_size=70), st.integers(), st.none()),
            "trial": st.one_of(st.integers(-2, 12), st.text(max_size=3)),
            "score": st.one_of(st.integers(-1, 7), st.booleans(), st.floats()),
            "choice": st.sampled_from(["A", "B", "none", "C", ""]),
        },
    ).map(lambda d: json.dumps(d).encode()),
    st.integers(LISTEN_BODY - 64, LISTEN_BODY + 64).map(lambda n: b"x" * n),  # at the bound
)


@st.composite
def http_inputs(draw, server: str):
    methods = ["GET"] * 3 + ["POST"] * 3 + ["PUT", "DELETE", "PATCH", "OPTIONS"]
    method = draw(st.sampled_from(methods))
    path = draw(
        st.one_of(
            st.sampled_from(PATHS[server]),
            st.sampled_from(PATHS[server]),
            st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=30).map(
                lambda t: "/" + t
            ),
        )
    )
    host = draw(st.sampled_from(["own"] * 5 + ["localhost", "evil", "other-port", "bad", "none"]))
    origin = draw(st.sampled_from([None] * 4 + ["own"] * 2 + ["evil", "null", "other-port", "x"]))
    content_type = draw(
        st.sampled_from([None, "application/json", "application/octet-stream", "audio/wav", "x"])
    )
    body = draw(BODIES) if method != "GET" or draw(st.booleans()) else b""
    length = draw(st.sampled_from(["true", "true", "none", "short", "long", "huge"]))
    return method, path, host, origin, content_type, body, length


def post(port: int, path: str, body: bytes) -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {len(body)}"
    return (head + "\r\nConnection: close\r\n\r\n").encode() + body


def build(
    port: int, method, path, host, origin, content_type, body, length
) -> tuple[bytes, int | None]:
    """The request's bytes and the Content-Length it declares (None: none)."""
    hosts = {
        "own": f"127.0.0.1:{port}",
        "localhost": f"localhost:{port}",
        "evil": f"evil.example:{port}",
        "other-port": f"127.0.0.1:{port + 1}",
        "bad": "a b",
        "none": None,
    }
    origins = {
        "own": f"http://127.0.0.1:{port}",
        "evil": "https://evil.example",
        "null": "null",
        "other-port": f"http://127.0.0.1:{port + 1}",
        "x": "::not an origin::",
    }
    lines = [f"{method} {path} HTTP/1.1"]
    if hosts[host] is not None:
        lines.append(f"Host: {hosts[host]}")
    if origin is not None:
        lines.append(f"Origin: {origins[origin]}")
    if content_type is not None:
        lines.append(f"Content-Type: {content_type}")
    declared = {
        "true": len(body),
        "short": max(0, len(body) - 7),
        "long": len(body) + 1000,
        "huge": 400 * 2**20,
    }.get(length)
    if declared is not None:
        lines.append(f"Content-Length: {declared}")
    lines.append("Connection: close")
    data = ("\r\n".join(lines) + "\r\n\r\n").encode()
    return data + (body if declared is not None else b""), declared


def check_http(live: Live, limit: int, example) -> None:
    method, path, host, origin, _, _, length = example
    request, declared = build(live.port, *example)
    # a body that is shorter than declared never ends: the client gives up on it
    reply = raw_exchange(live.port, request, shutdown=length in ("long", "huge"), timeout=30)
    live.tried += 1
    live.seen[reply.status if reply.status is not None else "closed"] += 1
    if reply.status is None:
        # no answer only to an upload the client abandoned before its declared end
        assert length == "long", example
        return
    assert reply.status in live.statuses, (example, reply)
    if reply.status == 400 and reply.body == PROTOCOL_400:
        return  # not HTTP (no Host in HTTP/1.1, a bad path): refused before the application
    assert host != "none", (example, reply)  # HTTP/1.1 without Host is not HTTP
    host_ok = host in ("own", "localhost")
    origin_ok = origin is None or (origin == "own" and host == "own")
    if not host_ok:
        expected = 400 if host == "bad" else 403
        assert reply.status == expected, (example, reply)
        assert "error" in reply.json()
    elif method in STATE_CHANGING and not origin_ok:
        assert reply.status == 403 and "refused" in reply.json()["error"], (example, reply)
    elif declared is not None and declared > limit:
        assert reply.status == 413 and "over this server's limit" in reply.json()["error"]
    else:
        assert reply.status not in (403, 413) or "results" in path, (example, reply)


def fuzz_http(live: Live, limit: int, examples: int) -> None:
    @_settings(examples)
    @given(http_inputs(live.name))
    def run(example) -> None:
        check_http(live, limit, example)
        if live.tried % 25 == 0:
            assert live.healthy()

    before = rss_mb(live.pid)
    run()
    assert live.healthy()
    after = rss_mb(live.pid)
    print(f"\n{live.report()}; resident memory {before:.0f} -> {after:.0f} MB")
    assert after - before < MEMORY_SLACK_MB


def test_fuzz_serve_http(serve):
    fuzz_http(serve.part("serve"), int(BODY_MB * 2**20), 250)


def test_fuzz_listen_http(listen):
    fuzz_http(listen.part("listen"), LISTEN_BODY, 200)


@pytest.mark.slow
def test_fuzz_both_http_long(serve, listen):
    fuzz_http(serve.part("serve"), int(BODY_MB * 2**20), 2000)
    fuzz_http(listen.part("listen"), LISTEN_BODY, 2000)


# ---------------------------------------------------------------------- WebSocket streams
def frames(values: list[float], count: int) -> bytes:
    data = np.resize(np.array(values or [-4.0], np.float32), count * 80)
    return data.astype("<f4").tobytes()


FRAMES = st.builds(
    frames,
    st.lists(st.sampled_from([-4.0, -11.0, 1.0, -4.0, float("nan")]), max_size=3),
    st.integers(0, 6),
)
VALID = st.builds(
    frames, st.lists(st.sampled_from([-4.0, -6.0, -11.0]), max_size=3), st.integers(1, 9)
)
MESSAGES = st.one_of(
    FRAMES,
    FRAMES,
    FRAMES,
    st.binary(max_size=700),
    st.sampled_from(["end", " end ", "hello", "", "{}"]),
    st.integers(int(BODY_MB * 2**20) - 320, int(BODY_MB * 2**20) + 640).map(
        lambda n: b"\0" * (n - n % 320)  # whole frames around the message bound
    ),
)


@st.composite
def stream_inputs(draw):
    origin = draw(st.sampled_from([None, None, None, "own", "own", "evil", "null"]))
    model = draw(st.sampled_from(["", "", "?model=lj-v2", "?model=nope"]))
    messages = draw(
        st.one_of(st.lists(MESSAGES, max_size=5), st.lists(VALID, min_size=1, max_size=4))
    )
    finish = draw(st.sampled_from(["end", "end", "end", "close", "drop"]))
    return origin, model, messages, finish


def check_stream(live: Live, example) -> None:
    origin, model, messages, finish = example
    port = live.port
    origins = {"own": f"http://127.0.0.1:{port}", "evil": "https://evil.example", "null": "null"}
    live.tried += 1
    url = f"ws://127.0.0.1:{port}/v1/stream{model}"
    try:
        with (
            contextlib.suppress(OSError) if finish == "drop" else contextlib.nullcontext(),
            connect(url, origin=origins.get(origin), max_size=None, open_timeout=30) as ws,
        ):
            assert origin not in ("evil", "null"), example
            outcome = exchange(ws, messages, finish)
    except InvalidStatus as e:
        live.seen[f"http {e.response.status_code}"] += 1
        assert origin in ("evil", "null") and e.response.status_code == 403, example
        return
    if finish == "drop":
        live.seen["dropped by the client"] += 1
    elif finish == "close" and outcome in (None, 1000):
        live.seen["closed by the client"] += 1
    else:
        live.seen[f"close {outcome}"] += 1
        assert outcome in STREAM_CODES, (example, outcome)


def exchange(ws, messages: list, finish: str) -> int | None:
    """Send ``messages`` and finish the stream; the close code the server sent (None when the
    client dropped the connection)."""
    with contextlib.suppress(ConnectionClosed):  # the server may close on an earlier message
        for message in messages:
            ws.send(message)
        if finish == "end":
            ws.send("end")
        elif finish == "drop":
            with contextlib.suppress(OSError):  # already closed by the server
                ws.socket.shutdown(socket.SHUT_RDWR)  # gone without a closing handshake
            return None
        else:
            ws.close()
    try:
        while True:
            reply = ws.recv(timeout=30)
            if isinstance(reply, str):
                assert set(json.loads(reply)) == {"error"}, reply
            else:
                assert len(reply) % 4 == 0
    except ConnectionClosed as e:
        return e.rcvd.code if e.rcvd is not None else None


def test_fuzz_serve_streams(serve):
    streams = serve.part("serve streams")

    @_settings(60)
    @given(stream_inputs())
    def run(example) -> None:
        check_stream(streams, example)

    before = rss_mb(serve.pid)
    run()
    assert serve.healthy()
    after = rss_mb(serve.pid)
    print(f"\n{streams.report()}; resident memory {before:.0f} -> {after:.0f} MB")
    assert after - before < MEMORY_SLACK_MB


# ---------------------------------------------------------------------- the case
def huge_post(port: int, path: str) -> bytes:
    """400 MB declared, 4 MB sent: the answer must come without the rest."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {400 * 2**20}\r\n\r\n"
    ).encode()
    return head + b" " * (4 * 2**20)


def test_three_400_mb_posts_leave_memory_flat(listen, serve):
    for live, path in ((listen, "/api/rate"), (serve, "/v1/vocode")):
        before = rss_mb(live.pid)
        for _ in range(3):
            reply = raw_exchange(live.port, huge_post(live.port, path), timeout=30)
            assert reply.status == 413, reply
            assert "over this server's limit" in reply.json()["error"]
        after = rss_mb(live.pid)
        print(f"\n{live.name}: three 400 MB posts: resident memory {before:.0f} -> {after:.0f} MB")
        assert after - before < 20
        assert live.healthy()
