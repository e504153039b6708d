"""Latency of ``WS /v1/stream`` at real-time pace, for several message sizes.

Starts ``hifigan serve`` on loopback with a model (a built-in name or a checkpoint path;
default lj-v1 when its weights are installed), takes the mel of the first ``--seconds`` of a
clip (the server's ``/v1/mel``), and streams it with 1, 7 and 32 frames per message
(``--frames``), one message every ``c x hop_length / sample_rate`` seconds, reading the audio
as it comes on another thread. Prints a markdown table, one row per message size:

* first audio: from the first message sent to the first audio received;
* last audio after the last frame: from sending the last frames to receiving the last audio;
* last audio after start: from the first message to the last audio;
* close: the close code (1000, a normal end, is the only good one) and its reason; the stream's
  audio must equal offline synthesis of the same mel (``/v1/vocode``) within 1e-4 (float
  rounding of windows of other lengths: under 2e-5 for V2, 6.2e-5 measured for V1);
* server CPU: the server process's CPU time during the stream, as a share of its torch
  threads' wall time.

With ``--mel-convention NAME`` (a named convention without normalisation) the client sends
that convention's mel of the clip, computed here, paced at its hop, on
``/v1/stream?mel_convention=NAME``, and the reference is ``/v1/vocode?mel_convention=NAME``:
the cost of converting as the frames arrive.

Exits with status 1 when a stream did not end normally or its audio was wrong. Figures mean
something only on an otherwise idle machine; a check that the script works:

    python scripts/stream_latency.py ../shared/reference/official_lj_v2/generator_v2 --seconds 1
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from load_test_serve import DEMO_CLIP, REPO, Server

EXACT = 1e-4  # the bound fast keeps against eager; streams round within it
DEFAULT_MODEL = "lj-v1"


@dataclass
class StreamResult:
    frames_per_message: int
    messages: int
    first_audio_s: float = float("nan")
    last_after_last_frame_s: float = float("nan")
    last_after_start_s: float = float("nan")
    close_code: int | None = None
    close_reason: str = ""
    error: str = ""
    samples: int = 0
    max_abs_diff: float = float("nan")
    server_cpu_share: float = float("nan")
    arrivals: list[float] = field(default_factory=list, repr=False)

    def ok(self, expected: int) -> bool:
        return (
            self.close_code == 1000
            and not self.error
            and self.samples == expected
            and self.max_abs_diff <= EXACT
        )


def fetch(url: str, body: bytes | None = None, timeout: float = 300) -> bytes:
    request = urllib.request.Request(url, data=body, method="POST" if body else "GET")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.read()


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def stream_once(
    server: Server, info: dict, mel: np.ndarray, frames: int, threads: int, ping: float
) -> tuple[StreamResult, np.ndarray]:
    """Stream ``mel`` (n_mels, T) in ``frames``-frame messages at real-time pace."""
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    pace = frames * info["mel_hop_length"] / info["mel_rate"]
    starts = list(range(0, mel.shape[1], frames))
    result = StreamResult(frames, len(starts))
    pieces: list[np.ndarray] = []
    cpu_before = server.cpu_seconds()
    url = f"{server.ws_url}/v1/stream?model={info['name']}{info['query']}"
    with connect(url, ping_interval=ping, ping_timeout=ping, max_size=None) as ws:

        def read() -> None:
            # reads all the time: a client that stops reading stops its keepalive too
            try:
                while True:
                    message = ws.recv()
                    if isinstance(message, str):
                        result.error = json.loads(message).get("error", message)
                        continue
                    result.arrivals.append(time.perf_counter())
                    pieces.append(np.frombuffer(message, dtype="<f4"))
            except ConnectionClosed as e:
                if e.rcvd is not None:
                    result.close_code, result.close_reason = e.rcvd.code, e.rcvd.reason
                elif e.sent is not None:
                    result.close_code, result.close_reason = e.sent.code, f"(ours) {e.sent.reason}"

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        start = time.perf_counter()
        last_sent = start
        try:
            for i, at in enumerate(starts):
                time.sleep(max(0.0, start + i * pace - time.perf_counter()))
                ws.send(np.ascontiguousarray(mel[:, at : at + frames].T, "<f4").tobytes())
                last_sent = time.perf_counter()
            ws.send("end")
        except ConnectionClosed:
            pass  # the reader has the code
        reader.join(600)
    wall = (result.arrivals[-1] if result.arrivals else time.perf_counter()) - start
    result.server_cpu_share = (server.cpu_seconds() - cpu_before) / (wall * threads)
    if result.arrivals:
        result.first_audio_s = result.arrivals[0] - start
        result.last_after_last_frame_s = result.arrivals[-1] - last_sent
        result.last_after_start_s = result.arrivals[-1] - start
    audio = np.concatenate(pieces) if pieces else np.zeros(0, np.float32)
    result.samples = audio.size
    return result, audio


def choose_model(given: str | None) -> str:
    """``given``, else lj-v1 when its weights are installed."""
    if given is not None:
        return given
    sys.path.insert(0, str(REPO / "src"))
    from hifigan.pretrained import get_model, is_installed

    model = get_model(DEFAULT_MODEL)
    if model is None or not is_installed(model):
        raise SystemExit(
            f"error: {DEFAULT_MODEL}'s weights are not installed: give a checkpoint path "
            "(python scripts/stream_latency.py PATH)"
        )
    return DEFAULT_MODEL


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "model",
        nargs="?",
        default=None,
        help=f"a built-in name or checkpoint path (default: {DEFAULT_MODEL}, if installed)",
    )
    ap.add_argument("--config", default=None, help="for a checkpoint that carries none")
    ap.add_argument("--clip", type=Path, default=DEMO_CLIP, help="the utterance (audio file)")
    ap.add_argument("--seconds", type=float, default=5.0, help="audio streamed (default 5)")
    ap.add_argument("--frames", type=int, nargs="+", default=[1, 7, 32])
    ap.add_argument("--backend", default=None, help="(default: hifigan serve's)")
    ap.add_argument("--device", default=None, help="(default: hifigan serve's)")
    ap.add_argument(
        "--threads",
        type=int,
        default=None,
        help="the server's torch threads (default: the cores idle when the script starts)",
    )
    ap.add_argument(
        "--ping",
        type=float,
        default=20.0,
        help="the client's keepalive ping interval and timeout, s (default 20, the websockets "
        "library's)",
    )
    ap.add_argument(
        "--mel-convention",
        default=None,
        help="send this convention's mel, converted by the server as it arrives (default: the "
        "model's own)",
    )
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args()
    args.model = choose_model(args.model)
    if args.threads is None:
        sys.path.insert(0, str(REPO / "src"))
        from hifigan.threads import auto_threads

        args.threads = auto_threads()
    with tempfile.TemporaryDirectory() as folder:
        server = Server(args, [], Path(folder) / "serve.log")
        try:
            rows, info, expected = measure(args, server)
        finally:
            server.stop()
    print(report(args, info, rows))
    if args.json:
        Path(args.json).write_text(json.dumps([asdict(r) for r in rows], indent=2) + "\n")
    if not all(row.ok(expected) for row in rows):
        sys.exit(1)


def measure(args: argparse.Namespace, server: Server) -> tuple[list[StreamResult], dict, int]:
    info = json.loads(fetch(server.url + "/v1/models"))["models"][0]
    # the mel sent: the model's own, or --mel-convention's (its own rate and hop)
    info.update(query="", mel_rate=info["sample_rate"], mel_hop_length=info["hop_length"])
    if args.mel_convention:
        mel, rate, hop_length = convention_mel(args.clip, args.mel_convention)
        info.update(mel_rate=rate, mel_hop_length=hop_length)
        info["query"] = f"&mel_convention={args.mel_convention}"
    else:
        mel = np.load(io.BytesIO(fetch(server.url + "/v1/mel", args.clip.read_bytes())))
    frames = round(args.seconds * info["mel_rate"] / info["mel_hop_length"])
    if mel.shape[1] < frames:
        raise SystemExit(f"error: {args.clip} is shorter than {args.seconds} s")
    mel = np.ascontiguousarray(mel[:, :frames])
    query = f"?format=f32{info['query']}"
    offline = np.frombuffer(fetch(f"{server.url}/v1/vocode{query}", npy(mel)), "<f4")
    rows = []
    for c in args.frames:
        result, audio = stream_once(server, info, mel, c, args.threads, args.ping)
        if audio.size == offline.size:
            result.max_abs_diff = float(np.abs(audio - offline).max())
        rows.append(result)
    info["frames"] = frames
    return rows, info, offline.size


def convention_mel(clip: Path, name: str) -> tuple[np.ndarray, int, int]:
    """The mel of ``clip`` in convention ``name``: ``(n_mels, frames)``, its rate and hop."""
    sys.path.insert(0, str(REPO / "src"))
    import torch

    from hifigan.conventions import load_convention
    from hifigan.io import load_audio

    convention = load_convention(name)
    if convention.normalization.kind != "none":
        raise SystemExit(f"error: convention {name} is normalised: choose one without statistics")
    audio, _ = load_audio(clip, convention.sample_rate)
    with torch.no_grad():
        mel = convention.mel_spectrogram()(torch.as_tensor(audio)[None])[0].numpy()
    return mel, convention.sample_rate, convention.hop_length


def seconds_text(value: float) -> str:
    return "–" if np.isnan(value) else f"{1000 * value:.0f}"


def report(args: argparse.Namespace, info: dict, rows: list[StreamResult]) -> str:
    rate, hop_length = info["sample_rate"], info["hop_length"]
    sent = info["frames"] * info["mel_hop_length"] / info["mel_rate"]
    lines = [
        f"model {args.model} ({info['name']}), {info['frames']} frames "
        f"{'of ' + args.mel_convention + ' ' if args.mel_convention else ''}"
        f"({sent:.2f} s), backend {info['backend']}, "
        f"{args.threads} torch threads, holds back {info['latency_frames']} frames "
        f"({1000 * info['latency_frames'] * hop_length / rate:.0f} ms)",
        "",
        "| frames per message | messages | first audio ms | last audio after last frame ms "
        "| last audio after start ms | close | max abs diff | server CPU |",
        "|---:|---:|---:|---:|---:|---|---:|---:|",
    ]
    for r in rows:
        close = f"{r.close_code} {r.close_reason}".strip() if r.close_code else "none (dropped)"
        if r.error:
            close += f": {r.error}"
        lines.append(
            f"| {r.frames_per_message} | {r.messages} | {seconds_text(r.first_audio_s)} "
            f"| {seconds_text(r.last_after_last_frame_s)} | {seconds_text(r.last_after_start_s)} "
            f"| {close} | {r.max_abs_diff:.1e} | {100 * r.server_cpu_share:.0f}% |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
