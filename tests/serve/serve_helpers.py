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
from hifigan.serve.app import create_app

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
    config = ServeConfig(models=[lj_v2_spec()], **options)
    app = create_app(config)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            ws_max_size=config.max_body_bytes,
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
