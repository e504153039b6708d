"""Helpers of the listening-test tests: tiny stimuli, a live server, HTTP calls."""

from __future__ import annotations

import contextlib
import http.client
import importlib.util
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

SERVE_MISSING = [m for m in ("starlette", "uvicorn") if importlib.util.find_spec(m) is None]
needs_serve = pytest.mark.skipif(
    bool(SERVE_MISSING), reason=f"needs {', '.join(SERVE_MISSING)} (pip install 'hifigan[serve]')"
)
SRC = Path(__file__).resolve().parents[2] / "src"
SYSTEMS = ("vocoder_alpha", "vocoder_beta")
RATE = 16000


def make_stimuli(root: Path, n: int = 3, seconds: float = 0.25) -> dict[str, Path]:
    """``ref/`` with ``n`` sine tones; ``vocoder_alpha/`` with noisy copies (flac) and
    ``vocoder_beta/`` with quiet copies plus one stem the others lack. Returns the folders."""
    rng = np.random.default_rng(0)
    folders = {name: root / name for name in ("ref", *SYSTEMS)}
    for folder in folders.values():
        folder.mkdir(parents=True)
    t = np.arange(int(seconds * RATE)) / RATE
    for i in range(n):
        tone = 0.3 * np.sin(2 * np.pi * (200 + 60 * i) * t)
        sf.write(folders["ref"] / f"utt{i}.wav", tone, RATE, subtype="PCM_16")
        noisy = tone + 0.02 * rng.standard_normal(t.shape[0])
        sf.write(folders["vocoder_alpha"] / f"utt{i}.flac", noisy, RATE)
        sf.write(folders["vocoder_beta"] / f"utt{i}.wav", 0.1 * tone, RATE, subtype="PCM_16")
    sf.write(folders["vocoder_beta"] / "extra.wav", 0.1 * tone, RATE, subtype="PCM_16")
    return folders


def system_args(folders: dict[str, Path]) -> list[str]:
    args = ["--ref", str(folders["ref"])]
    for name in SYSTEMS:
        args += ["--system", f"{name}={folders[name]}"]
    return args


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode()


class Client:
    """Raw HTTP on one server: paths go out exactly as written (no normalisation)."""

    def __init__(self, port: int) -> None:
        self.port = port

    def request(
        self,
        method: str,
        path: str,
        body: dict | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            data = None if body is None else json.dumps(body).encode()
            sent = {} if body is None else {"Content-Type": "application/json"}
            conn.request(method, path, body=data, headers={**sent, **(headers or {})})
            reply = conn.getresponse()
            return Response(reply.status, dict(reply.getheaders()), reply.read())
        finally:
            conn.close()

    def get(self, path: str, headers: dict[str, str] | None = None) -> Response:
        return self.request("GET", path, headers=headers)

    def post(self, path: str, body: dict, headers: dict[str, str] | None = None) -> Response:
        return self.request("POST", path, body, headers)

    def raw(self, data: bytes, timeout: float = 20.0) -> Response | None:
        """Send ``data`` exactly as written (any Host, Content-Length true or not) and read
        one answer; None when the server closes without one."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as sock:
            with contextlib.suppress(OSError):  # answered and closed before all was sent
                sock.sendall(data)
            reply = http.client.HTTPResponse(sock)
            try:
                reply.begin()
                return Response(reply.status, dict(reply.getheaders()), reply.read())
            except (OSError, http.client.HTTPException):
                return None


class ThreadServer:
    """A listening test served by uvicorn in a thread, on a free loopback port."""

    def __init__(
        self, folders: dict[str, Path], db: Path, *, lock_timeout: float | None = None, **options
    ) -> None:
        """``lock_timeout``: how long the database waits for another writer's lock (the
        store's default when None); ``options`` go to :class:`ListeningTest`."""
        from hifigan.listen.server import ListeningTest, bind, make_server
        from hifigan.listen.stimuli import check_readable, collect_stimuli, parse_systems
        from hifigan.listen.store import Store

        systems = parse_systems([f"{name}={folders[name]}" for name in SYSTEMS])
        with pytest.warns(UserWarning, match="extra"):
            stimuli = collect_stimuli(folders["ref"], systems)
        check_readable(stimuli)  # as `hifigan listen` does at start
        self.store = Store(db) if lock_timeout is None else Store(db, timeout=lock_timeout)
        self.test = ListeningTest(stimuli, self.store, **options)
        sock = bind("127.0.0.1", 0)
        self.client = Client(sock.getsockname()[1])
        self.server = make_server(self.test)
        self.thread = threading.Thread(target=self.server.run, args=([sock],), daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "server did not start"
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)
        self.store.close()


def take_trials(client: Client, rater: str, answer: dict, choose, limit: int | None = None):
    """Rate trials with ``choose(trial_answer) -> dict`` until finished (or ``limit`` trials);
    returns the list of trial answers seen and the last answer."""
    seen = []
    while not answer["finished"] and (limit is None or len(seen) < limit):
        for url in answer["audio"]:
            audio = client.get(url)
            assert audio.status == 200 and audio.body[:4] == b"RIFF"
        seen.append(answer)
        reply = client.post(
            "/api/rate", {"rater": rater, "trial": answer["trial"], **choose(answer)}
        )
        assert reply.status == 200, reply.text
        answer = reply.json()
    return seen, answer


class CliServer:
    """``hifigan listen`` in a subprocess on a free port (or ``port``); reads the printed
    addresses."""

    def __init__(self, args: list[str], port: int = 0) -> None:
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "hifigan", "listen", *args, "--port", str(port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.lines = []
        while True:
            line = self.process.stdout.readline()
            if not line:
                raise AssertionError(f"server stopped: {self.process.stderr.read()}")
            self.lines.append(line)
            match = re.match(r"results: (http://127\.0\.0\.1:(\d+))(/results\?token=\S+)", line)
            if match:
                self.base, self.port, self.results_path = match[1], int(match[2]), match[3]
                break
        self.client = Client(self.port)

    def stop(self) -> tuple[int, str, str]:
        """SIGINT, as Ctrl-C would; returns (exit status, rest of stdout, stderr)."""
        self.process.send_signal(2)
        out, err = self.process.communicate(timeout=60)
        return self.process.returncode, out, err
