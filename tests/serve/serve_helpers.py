"""A real uvicorn server on a loopback port, and small HTTP helpers, for the serve tests.

Test modules import from here after ``pytest.importorskip("starlette")`` and
``pytest.importorskip("uvicorn")``, so that the tests skip cleanly without ``hifigan[serve]``.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path

import numpy as np
import uvicorn

from hifigan.serve import ServeConfig
from hifigan.serve.app import create_app, server_options

from conftest import LJ_V2, REPO, need

MODEL = "lj-v2"
START_TIMEOUT_S = 60.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def lj_v2_spec() -> str:
    return f"{MODEL}={need(LJ_V2)}"


@dataclass
class Reply:
    status: int
    headers: Message  # case-insensitive
    body: bytes

    def json(self):
        return json.loads(self.body)


@dataclass
class Server:
    """A running service: its base URL and helpers for requests."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def ws_url(self) -> str:
        return "ws" + self.url[len("http") :]

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 60.0,
    ) -> Reply:
        request = urllib.request.Request(
            self.url + path, data=body, method=method, headers={**self.headers, **(headers or {})}
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return Reply(response.status, response.headers, response.read())
        except urllib.error.HTTPError as e:
            return Reply(e.code, e.headers, e.read())

    def get(self, path: str, **kwargs) -> Reply:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, body: bytes, **kwargs) -> Reply:
        return self.request("POST", path, body, **kwargs)

    def metric(self, name: str, **labels: str) -> float:
        """One sample of ``/metrics`` (0 when absent)."""
        text = self.get("/metrics").body.decode()
        wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
        pattern = re.escape(name + ("{" + wanted + "}" if wanted else "")) + r" (\S+)$"
        match = re.search(pattern, text, re.MULTILINE)
        return float(match.group(1)) if match else 0.0

    def wait_for_metric(self, value: float, name: str, **labels: str) -> None:
        """Poll ``/metrics`` until the sample equals ``value`` (at most a minute)."""
        deadline = time.monotonic() + 60
        while self.metric(name, **labels) != value:
            if time.monotonic() > deadline:
                raise AssertionError(f"{name}{labels} never became {value}")
            time.sleep(0.05)


@contextlib.contextmanager
def running_server(**options) -> Iterator[Server]:
    """The service with the LJ_V2 model in a thread of this process; ``options`` are
    :class:`ServeConfig` fields."""
    config = ServeConfig(**{"models": [lj_v2_spec()], **options})
    app = create_app(config)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            **server_options(config),
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield Server(f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        thread.join(30)


@dataclass
class ServerProcess:
    server: Server
    process: subprocess.Popen
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@contextlib.contextmanager
def server_process(tmp_path: Path, *args: str) -> Iterator[ServerProcess]:
    """``hifigan serve`` in a child process on a free port, its output in a file."""
    port = free_port()
    command = [sys.executable, "-m", "hifigan", "serve", "--port", str(port), *args]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    log = tmp_path / f"serve-{port}.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    running = ServerProcess(Server(f"http://127.0.0.1:{port}"), process, log)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"hifigan serve exited: {running.output()}")
            with contextlib.suppress(OSError):
                if running.server.get("/health", timeout=2).status == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"hifigan serve did not start: {running.output()}")
            time.sleep(0.2)
        yield running
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@dataclass
class RawReply:
    """What a raw exchange got back: ``status`` None when the server closed the connection
    (or the time ran out) without an answer."""

    status: int | None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    def json(self):
        return json.loads(self.body)


def raw_exchange(
    port: int,
    request: bytes,
    *,
    shutdown: bool = False,
    timeout: float = 20.0,
) -> RawReply:
    """Send ``request`` (bytes exactly as written: any Host, Origin or Content-Length, true or
    not) to 127.0.0.1:``port`` and read one answer. ``shutdown`` closes the sending side
    afterwards, as a client that gives up on its upload does."""
    import http.client

    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        with contextlib.suppress(OSError):  # the server may answer and close before all is sent
            sock.sendall(request)
        if shutdown:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_WR)
        response = http.client.HTTPResponse(sock)
        try:
            response.begin()
            body = response.read()
        except (OSError, http.client.HTTPException):
            return RawReply(None)
        return RawReply(response.status, {k.lower(): v for k, v in response.getheaders()}, body)


def http_request(
    method: str,
    path: str,
    host: str | None,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    content_length: int | None = None,
) -> bytes:
    """An HTTP/1.1 request as bytes; ``host`` None sends no Host header, ``content_length``
    overrides the true length."""
    lines = [f"{method} {path} HTTP/1.1"]
    if host is not None:
        lines.append(f"Host: {host}")
    length = len(body) if content_length is None else content_length
    if body or content_length is not None or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {length}")
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin1") + body


def rss_mb(pid: int) -> float:
    """Resident memory of a process, MB (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for process {pid}")


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def read_wav_bytes(data: bytes) -> tuple[np.ndarray, int]:
    import soundfile as sf

    audio, rate = sf.read(io.BytesIO(data), dtype="int16")
    return audio, rate


def write_file(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
