"""Load test of ``hifigan serve`` on loopback: batching defaults against no and forced batching.

Prints one markdown table. Its first row is the same work offline: reading the request's audio,
its mel and its synthesis, repeated in one process with the model loaded, run before any server
starts (nothing else competes for the cores) and with the same torch thread count as the
servers; then, for each server setting (``--modes``):

* ``default``: the service's own batching default (off on the CPU, on with CUDA);
* ``no batching``: ``--max-batch 1``;
* ``forced``: ``--max-batch 8 --max-batch-seconds 40`` (``--forced-batch``,
  ``--forced-batch-seconds``), so that 5 s requests do batch;

``POST /v1/vocode`` of a ``--request-seconds`` excerpt of the clip (an audio upload: decoding,
mel and synthesis in the server) from 1, 4, 16 and 64 concurrent clients (``--clients``):
throughput in audio seconds per second, p50 and p99 latency, the batch sizes the answers
report (``X-Batch-Size``: size x answers), and the server's peak resident memory during the
row. Every row is bounded by a request count (``--requests``, at least one per client) and by
``--phase-seconds``; the servers listen on 127.0.0.1 only. Figures mean something only on an
otherwise idle machine. A check that the script works (not a measurement):

    python scripts/load_test_serve.py --model ../shared/reference/official_lj_v2/generator_v2 \\
        --clients 1 2 --requests 2 --request-seconds 1 --offline-repeats 2
"""

from __future__ import annotations

import argparse
import collections
import json
import os
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
START_TIMEOUT_S = 180.0
MODES = ("default", "no batching", "forced")


def hifigan_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "hifigan", *args]


def child_env() -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(REPO / "src"), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path}


def model_options(args: argparse.Namespace) -> list[str]:
    """The options that choose the model, backend and device, the same for every command."""
    options = ["--model", args.model, "--threads", str(args.threads)]
    if args.backend:
        options += ["--backend", args.backend]
    if args.config:
        options += ["--config", args.config]
    if args.device:
        options += ["--device", args.device]
    return options


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class Server:
    """``hifigan serve`` in a child process on a free loopback port; its output goes to
    ``log``."""

    def __init__(self, args: argparse.Namespace, options: list[str], log: Path) -> None:
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.ws_url = f"ws://{HOST}:{self.port}"
        self.log = log
        command = hifigan_command("serve", "--host", HOST, "--port", str(self.port))
        command += [*model_options(args), "--log-level", "warning", "--max-queue", "1024"]
        command += options
        with open(log, "wb") as out:
            self.process = subprocess.Popen(
                command, env=child_env(), stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise SystemExit(f"hifigan serve did not start:\n{self.output()}")
            time.sleep(0.2)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def notes(self) -> list[str]:
        """The ``note:`` lines it printed at start (threads, batching)."""
        return [line for line in self.output().splitlines() if line.startswith("note:")]

    def _status(self, field: str) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def reset_peak_rss(self) -> bool:
        """Restart the peak-memory count (Linux: ``clear_refs`` 5); False where it cannot."""
        try:
            Path(f"/proc/{self.process.pid}/clear_refs").write_text("5")
            return True
        except OSError:
            return False

    def peak_rss_mb(self) -> float:
        return self._status("VmHWM")

    def cpu_seconds(self) -> float:
        """User and system CPU time of the server process so far."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def excerpt(clip: Path, seconds: float, folder: Path) -> tuple[Path, float]:
    """The first ``seconds`` of ``clip`` as a float wav in ``folder`` (0: all of it)."""
    import soundfile as sf

    audio, rate = sf.read(str(clip), dtype="float32", always_2d=True)
    if seconds:
        if seconds * rate > len(audio):
            raise SystemExit(f"{clip} is {len(audio) / rate:.2f} s long, shorter than {seconds} s")
        audio = audio[: round(seconds * rate)]
    path = folder / "request.wav"
    sf.write(str(path), audio, rate, subtype="FLOAT")
    return path, len(audio) / rate


OFFLINE = """
import json, sys, time
from hifigan.inference import Vocoder
from hifigan.pretrained import choose_model
from hifigan.serve.payload import decode_audio
from hifigan.threads import apply_threads

options = json.loads(sys.argv[1])
apply_threads(options["threads"])
choice = choose_model(options["model"], config=options["config"])
kwargs = {k: options[k] for k in ("backend", "device") if options[k]}
vocoder = Vocoder.from_checkpoint(choice.checkpoint, choice.config, **kwargs)
body = open(options["clip"], "rb").read()

def once():
    audio = decode_audio(body, vocoder.sample_rate, 86400.0)
    vocoder(vocoder.mel(audio), check=False)

once()  # warm-up
start = time.perf_counter()
for _ in range(options["repeats"]):
    once()
print(json.dumps({"wall_s": time.perf_counter() - start}))
"""


def offline(args: argparse.Namespace, clip: Path, seconds: float) -> dict:
    """The server's work without the server: ``--offline-repeats`` times reading the clip,
    its mel and its synthesis, in one process with the model loaded (the time of loading
    excluded) and the same thread count. Runs while no server does."""
    options = {
        "model": args.model,
        "config": args.config,
        "backend": args.backend,
        "device": args.device,
        "threads": args.threads,
        "clip": str(clip),
        "repeats": args.offline_repeats,
    }
    command = [sys.executable, "-c", OFFLINE, json.dumps(options)]
    done = subprocess.run(command, capture_output=True, text=True, env=child_env())
    if done.returncode:
        raise SystemExit(f"the offline run failed:\n{done.stderr}")
    wall = json.loads(done.stdout.strip().splitlines()[-1])["wall_s"]
    return {"repeats": args.offline_repeats, "audio_s_per_s": seconds * args.offline_repeats / wall}


def post(url: str, body: bytes) -> tuple[float, int]:
    """One request: its latency in seconds and the batch size it reports."""
    start = time.perf_counter()
    request = urllib.request.Request(url, data=body, method="POST")
    with urllib.request.urlopen(request, timeout=600) as response:
        response.read()
        if response.status != 200:
            raise RuntimeError(f"status {response.status}")
        batch = int(response.headers.get("X-Batch-Size", "0"))
    return time.perf_counter() - start, batch


def hammer(url: str, body: bytes, clients: int, requests: int, limit_s: float) -> tuple:
    """``requests`` POSTs from ``clients`` threads, stopping early after ``limit_s``.

    Returns ``(latencies, batch sizes, wall seconds)``; a failed request stops the run."""
    latencies: list[float] = []
    batches: list[int] = []
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
                latency, batch = post(url, body)
            except Exception as e:
                errors.append(f"{type(e).__name__}: {e}")
                return
            with lock:
                latencies.append(latency)
                batches.append(batch)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise SystemExit(f"{len(errors)} requests failed, the first: {errors[0]}")
    return latencies, batches, time.perf_counter() - start


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def batch_text(batches: list[int]) -> str:
    """``[1, 1, 2, 2]`` -> ``1 x2, 2 x2``: each size the answers reported, with their count."""
    counts = sorted(collections.Counter(batches).items())
    return ", ".join(f"{size} x{count}" for size, count in counts)


def http_rows(args: argparse.Namespace, server: Server, body: bytes, seconds: float) -> list:
    rows = []
    post(server.url + "/v1/vocode", body)  # warm-up
    for clients in args.clients:
        exact_peak = server.reset_peak_rss()
        latencies, batches, wall = hammer(
            server.url + "/v1/vocode",
            body,
            clients,
            max(args.requests, clients),
            args.phase_seconds,
        )
        rows.append(
            {
                "clients": clients,
                "requests": len(latencies),
                "audio_s_per_s": seconds * len(latencies) / wall,
                "p50_ms": 1000 * percentile(latencies, 50),
                "p99_ms": 1000 * percentile(latencies, 99),
                "batch_sizes": dict(sorted(collections.Counter(batches).items())),
                "batches": batch_text(batches),
                "peak_rss_mb": server.peak_rss_mb(),
                "peak_since_start": not exact_peak,
            }
        )
    return rows


def mode_options(args: argparse.Namespace, mode: str) -> list[str]:
    if mode == "no batching":
        return ["--max-batch", "1"]
    if mode == "forced":
        batch_s = f"{args.forced_batch_seconds:g}"
        return ["--max-batch", str(args.forced_batch), "--max-batch-seconds", batch_s]
    return []


def mode_label(args: argparse.Namespace, mode: str) -> str:
    options = " ".join(mode_options(args, mode))
    return f"{mode} (`{options}`)" if options else "default (no batching options)"


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--model", default="lj-v1", help="a built-in name or checkpoint path")
    ap.add_argument("--config", default=None, help="for a checkpoint that carries none")
    ap.add_argument("--clip", type=Path, default=DEMO_CLIP)
    ap.add_argument(
        "--request-seconds", type=float, default=5.0, help="audio per request (0: the whole clip)"
    )
    ap.add_argument("--backend", default=None, help="(default: the commands' own)")
    ap.add_argument("--device", default=None, help="(default: the commands' own)")
    ap.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads of every server and of the offline run (default: the cores idle "
        "when the script starts, chosen once)",
    )
    ap.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16, 64])
    ap.add_argument("--requests", type=int, default=64, help="requests per row (at least clients)")
    ap.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    ap.add_argument("--forced-batch", type=int, default=8, help="--max-batch of the forced mode")
    ap.add_argument(
        "--forced-batch-seconds", type=float, default=40.0, help="its --max-batch-seconds"
    )
    ap.add_argument("--phase-seconds", type=float, default=300.0, help="time limit per row")
    ap.add_argument(
        "--offline-repeats", type=int, default=8, help="syntheses of the offline row (default 8)"
    )
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args()
    if args.offline_repeats < 1:
        ap.error("--offline-repeats must be at least 1")
    if args.threads is None:
        sys.path.insert(0, str(REPO / "src"))
        from hifigan.threads import auto_threads

        args.threads = auto_threads()
    with tempfile.TemporaryDirectory() as folder:
        clip, seconds = excerpt(args.clip, args.request_seconds, Path(folder))
        results = run(args, clip, seconds, Path(folder))
    print(report(args, results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


def run(args: argparse.Namespace, clip: Path, seconds: float, folder: Path) -> dict:
    # offline first, while no server exists: it must not share the cores with one
    results: dict = {
        "request_s": seconds,
        "threads": args.threads,
        "offline": offline(args, clip, seconds),
        "modes": {},
    }
    body = clip.read_bytes()
    for mode in args.modes:
        server = Server(args, mode_options(args, mode), folder / f"serve-{len(results['modes'])}")
        try:
            rows = http_rows(args, server, body, seconds)
            results["modes"][mode] = {"notes": server.notes(), "rows": rows}
        finally:
            server.stop()
    return results


def report(args: argparse.Namespace, results: dict) -> str:
    off = results["offline"]
    lines = [
        f"{results['request_s']:.2f} s requests, model {args.model}, backend "
        f"{args.backend or 'default'}, "
        f"{results['threads']} torch threads for the offline run and every server",
        "",
        "| mode | clients | requests | audio s/s | p50 ms | p99 ms | batch sizes | peak RSS MB |",
        "|---|---:|---:|---:|---:|---:|---|---:|",
        f"| offline: read, mel and synthesis in one process, no server ({off['repeats']} "
        f"requests, model loaded) | – | – | {off['audio_s_per_s']:.2f} | – | – | – | – |",
    ]
    for mode, result in results["modes"].items():
        for row in result["rows"]:
            peak = f"{row['peak_rss_mb']:.0f}" + (
                " (since start)" if row["peak_since_start"] else ""
            )
            lines.append(
                f"| {mode_label(args, mode)} | {row['clients']} | {row['requests']} "
                f"| {row['audio_s_per_s']:.2f} | {row['p50_ms']:.0f} | {row['p99_ms']:.0f} "
                f"| {row['batches']} | {peak} |"
            )
    lines.append("")
    for mode, result in results["modes"].items():
        lines += [f"* {mode}: {note.removeprefix('note: ')}" for note in result["notes"]]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
