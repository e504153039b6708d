"""Load test of ``hifigan serve`` on loopback, against offline ``hifigan vocode`` of the same audio.

Measures, in one run:

* offline: ``hifigan vocode`` on ``--offline-copies`` copies of the clip (one process, model
  loading included), as audio seconds per second;
* ``POST /v1/vocode`` of the clip with 1, 4 and 16 concurrent clients (``--clients``), with
  dynamic batching off (``--max-batch 1``) and on (``--batch``, ``--wait-ms``): throughput in
  audio seconds per second, p50 and p99 latency;
* ``WS /v1/stream`` with 7-frame chunks sent at real-time pace: time to the first audio, and
  compute per chunk (from sending a chunk to receiving its audio);
* the server's resident memory before and after ``--rss-requests`` requests.

Every phase is bounded by a request count and by ``--phase-seconds``; the servers listen on
127.0.0.1 only. Figures are only meaningful on an otherwise idle machine. A quick check that
the script works (not a measurement):

    python scripts/load_test_serve.py --model ../shared/reference/official_lj_v2/generator_v2 \\
        --requests 4 --clients 1 4 --rss-requests 10 --offline-copies 2 --ws-seconds 1
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEMO_CLIP = REPO / "src" / "hifigan" / "data" / "sonnet1_librivox.flac"
HOST = "127.0.0.1"
CHUNK_FRAMES = 7


def hifigan_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "hifigan", *args]


def child_env() -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(REPO / "src"), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path}


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def audio_seconds(path: Path) -> float:
    import soundfile as sf

    return sf.info(str(path)).duration


def vocode_wall(args: argparse.Namespace, copies: int) -> float:
    """Wall seconds of one ``hifigan vocode`` process on ``copies`` copies of the clip."""
    with tempfile.TemporaryDirectory() as folder:
        inputs = Path(folder) / "in"
        inputs.mkdir()
        for i in range(copies):
            shutil.copy(args.clip, inputs / f"clip{i}{args.clip.suffix}")
        command = hifigan_command("vocode", str(inputs), "-o", str(Path(folder) / "out"))
        command += ["--model", args.model, "--backend", args.backend]
        if args.threads:
            command += ["--threads", str(args.threads)]
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, env=child_env())
        return time.perf_counter() - start


def offline(args: argparse.Namespace, seconds: float) -> dict:
    """``hifigan vocode`` on one copy of the clip and on ``--offline-copies``: the difference
    is the throughput without process start and model loading."""
    one = vocode_wall(args, 1)
    many = vocode_wall(args, args.offline_copies)
    extra = args.offline_copies - 1
    return {
        "files": args.offline_copies,
        "wall_s": many,
        "audio_s_per_s": seconds * args.offline_copies / many,
        "marginal_audio_s_per_s": seconds * extra / (many - one) if many > one else float("nan"),
    }


class Server:
    """``hifigan serve`` in a child process on a free loopback port."""

    def __init__(
        self, args: argparse.Namespace, max_batch: int, wait_ms: float, batch_s: float | None
    ) -> None:
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        command = hifigan_command("serve", "--host", HOST, "--port", str(self.port))
        command += ["--model", args.model, "--backend", args.backend, "--log-level", "warning"]
        command += ["--max-batch", str(max_batch), "--max-wait-ms", str(wait_ms)]
        command += ["--max-queue", "1024"]
        if batch_s is not None:
            command += ["--max-batch-seconds", str(batch_s)]
        if args.threads:
            command += ["--threads", str(args.threads)]
        self.process = subprocess.Popen(command, env=child_env())
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("hifigan serve did not start")
            time.sleep(0.2)

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(60)


def post(url: str, body: bytes) -> float:
    """One request; returns its latency in seconds."""
    start = time.perf_counter()
    request = urllib.request.Request(url, data=body, method="POST")
    with urllib.request.urlopen(request, timeout=300) as response:
        response.read()
        if response.status != 200:
            raise RuntimeError(f"status {response.status}")
    return time.perf_counter() - start


def hammer(url: str, body: bytes, clients: int, requests: int, limit_s: float) -> tuple:
    """``requests`` POSTs from ``clients`` threads, stopping early after ``limit_s``.

    Returns ``(latencies, wall seconds)``; a failed request stops the run."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    remaining = [requests]
    deadline = time.monotonic() + limit_s

    def client() -> None:
        while time.monotonic() < deadline:
            with lock:
                if remaining[0] == 0:
                    return
                remaining[0] -= 1
            try:
                latency = post(url, body)
            except Exception as e:
                errors.append(f"{type(e).__name__}: {e}")
                return
            with lock:
                latencies.append(latency)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise SystemExit(f"{len(errors)} requests failed, the first: {errors[0]}")
    return latencies, time.perf_counter() - start


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def http_phase(args: argparse.Namespace, server: Server, body: bytes, seconds: float) -> list:
    rows = []
    post(server.url + "/v1/vocode", body)  # warm-up
    for clients in args.clients:
        latencies, wall = hammer(
            server.url + "/v1/vocode", body, clients, args.requests, args.phase_seconds
        )
        rows.append(
            {
                "clients": clients,
                "requests": len(latencies),
                "audio_s_per_s": seconds * len(latencies) / wall,
                "p50_ms": 1000 * percentile(latencies, 50),
                "p99_ms": 1000 * percentile(latencies, 99),
            }
        )
    return rows


def ws_phase(args: argparse.Namespace, server: Server, clip: bytes) -> dict:
    """Stream the clip's mel (first ``--ws-seconds``) in 7-frame chunks at real-time pace."""
    from websockets.sync.client import connect

    with urllib.request.urlopen(
        urllib.request.Request(server.url + "/v1/mel", data=clip, method="POST"), timeout=300
    ) as r:
        mel = np.load(io.BytesIO(r.read()))
    info = json.load(urllib.request.urlopen(server.url + "/v1/models", timeout=30))["models"][0]
    frames = min(mel.shape[1], int(args.ws_seconds * info["sample_rate"] / info["hop_length"]))
    pace = CHUNK_FRAMES * info["hop_length"] / info["sample_rate"]
    compute, first_audio = [], None
    with connect(f"ws://{HOST}:{server.port}/v1/stream") as ws:
        start = time.perf_counter()
        for i, at in enumerate(range(0, frames, CHUNK_FRAMES)):
            time.sleep(max(0.0, start + i * pace - time.perf_counter()))
            end = min(at + CHUNK_FRAMES, frames)
            sent = time.perf_counter()
            ws.send(np.ascontiguousarray(mel[:, at:end].T, "<f4").tobytes())
            if end > info["latency_frames"]:  # this chunk makes audio final
                ws.recv(timeout=60)
                compute.append(time.perf_counter() - sent)
                first_audio = first_audio or time.perf_counter() - start
        ws.send("end")
        ws.recv(timeout=60)
    return {
        "chunk_frames": CHUNK_FRAMES,
        "chunks": len(compute),
        "first_audio_ms": 1000 * (first_audio or float("nan")),
        "compute_p50_ms": 1000 * percentile(compute, 50),
        "compute_p99_ms": 1000 * percentile(compute, 99),
    }


def rss_phase(args: argparse.Namespace, server: Server, body: bytes) -> dict:
    before = server.rss_mb()
    latencies, _ = hammer(
        server.url + "/v1/vocode", body, 4, args.rss_requests, 10 * args.phase_seconds
    )
    return {"requests": len(latencies), "rss_before_mb": before, "rss_after_mb": server.rss_mb()}


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--model", default="lj-v1", help="a built-in name or checkpoint path")
    ap.add_argument("--clip", type=Path, default=DEMO_CLIP)
    ap.add_argument("--backend", default="eager")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
    ap.add_argument("--requests", type=int, default=64, help="requests per client count")
    ap.add_argument("--batch", type=int, default=16, help="--max-batch when batching")
    ap.add_argument("--wait-ms", type=float, default=5.0, help="--max-wait-ms when batching")
    ap.add_argument(
        "--batch-seconds",
        type=float,
        default=None,
        help="--max-batch-seconds when batching (default: the server's)",
    )
    ap.add_argument("--phase-seconds", type=float, default=120.0, help="time limit per phase")
    ap.add_argument("--offline-copies", type=int, default=8, help="at least 2")
    ap.add_argument("--ws-seconds", type=float, default=6.0, help="audio streamed over WS")
    ap.add_argument("--rss-requests", type=int, default=1000)
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args()
    if args.offline_copies < 2:
        ap.error("--offline-copies must be at least 2")
    clip = args.clip.read_bytes()
    seconds = audio_seconds(args.clip)
    results: dict = {"clip_s": seconds, "offline": offline(args, seconds)}
    modes = (("no batching", 1, 0.0), ("batching", args.batch, args.wait_ms))
    for label, max_batch, wait in modes:
        server = Server(args, max_batch, wait, args.batch_seconds if max_batch > 1 else None)
        try:
            results[label] = http_phase(args, server, clip, seconds)
            if max_batch > 1:
                results["stream"] = ws_phase(args, server, clip)
                results["memory"] = rss_phase(args, server, clip)
        finally:
            server.stop()
    report(results)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


def report(results: dict) -> None:
    off = results["offline"]
    print(f"clip {results['clip_s']:.2f} s")
    print(
        f"offline hifigan vocode, {off['files']} files in one process: "
        f"{off['audio_s_per_s']:.1f} audio s/s (wall {off['wall_s']:.1f} s, model load "
        f"included); without start-up: {off['marginal_audio_s_per_s']:.1f} audio s/s"
    )
    print("| mode | clients | requests | audio s/s | p50 ms | p99 ms |")
    print("|---|---:|---:|---:|---:|---:|")
    for label in ("no batching", "batching"):
        for row in results[label]:
            print(
                f"| {label} | {row['clients']} | {row['requests']} | {row['audio_s_per_s']:.1f} "
                f"| {row['p50_ms']:.0f} | {row['p99_ms']:.0f} |"
            )
    s = results["stream"]
    print(
        f"stream, {s['chunk_frames']}-frame chunks at real-time pace: first audio "
        f"{s['first_audio_ms']:.0f} ms, compute per chunk p50 {s['compute_p50_ms']:.1f} ms, "
        f"p99 {s['compute_p99_ms']:.1f} ms ({s['chunks']} chunks)"
    )
    m = results["memory"]
    print(
        f"server RSS {m['rss_before_mb']:.0f} MB before, {m['rss_after_mb']:.0f} MB after "
        f"{m['requests']} requests"
    )


if __name__ == "__main__":
    main()
