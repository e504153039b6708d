"""``WS /v1/stream``: exact streaming synthesis, audio as soon as it is final, errors."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
pytest.importorskip("websockets")

from serve_helpers import MODEL, npy_bytes, running_server
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from hifigan import Vocoder
from inference_helpers import log_mel

from conftest import LJ_V2, REPO, need

HOP = 256
RATE = 22050
LATENCY = 13  # LJ_V2's receptive field reaches 13 frames ahead
EXACT = 2e-5  # a stream's audio against offline synthesis, whatever the message sizes


@pytest.fixture(scope="module")
def server():
    with running_server(max_seconds=5.0) as s:
        yield s


@pytest.fixture(scope="module")
def vocoder():
    return Vocoder.from_checkpoint(need(LJ_V2))


class WindowCounter:
    """Wraps the stream synthesis of every vocoder in this process (the test server runs in
    a thread here): counts the windows computed, optionally making each one slow."""

    def __init__(self, monkeypatch, delay: float = 0.0) -> None:
        self.calls = 0
        self.delay = delay
        original = Vocoder._synthesize_stream_window

        def counted(vocoder, mel):
            self.calls += 1
            if self.delay:
                time.sleep(self.delay)
            return original(vocoder, mel)

        monkeypatch.setattr(Vocoder, "_synthesize_stream_window", counted)


def test_every_model_metric_is_sampled_before_any_use(server):
    # first in this module: the server has not seen a stream or a vocode request yet
    lines = server.get("/metrics").body.decode().splitlines()
    for sample in (
        "hifigan_active_streams",
        "hifigan_queue_depth",
        "hifigan_audio_seconds_total",
        "hifigan_batch_size_count",
    ):
        assert f'{sample}{{model="{MODEL}"}} 0' in lines, sample


def frames_message(mel: np.ndarray) -> bytes:
    """``(n_mels, c)`` -> the wire format: frame-major little-endian float32."""
    return np.ascontiguousarray(mel.T, dtype="<f4").tobytes()


def receive_samples(ws, count: int) -> list[np.ndarray]:
    pieces, got = [], 0
    while got < count:
        piece = np.frombuffer(ws.recv(timeout=60), dtype="<f4")
        pieces.append(piece)
        got += piece.size
    assert got == count  # never more than what is final
    return pieces


@pytest.mark.parametrize("chunk", [1, 7, 32])
def test_stream_equals_offline_and_sends_audio_as_soon_as_final(server, vocoder, chunk):
    mel = log_mel(70, seed=chunk).numpy()
    pieces: list[np.ndarray] = []
    with connect(f"{server.ws_url}/v1/stream?model={MODEL}") as ws:
        sent = 0
        for start in range(0, mel.shape[1], chunk):
            block = mel[:, start : start + chunk]
            ws.send(frames_message(block))
            final_before = max(0, sent - LATENCY)
            sent += block.shape[1]
            pieces += receive_samples(ws, (max(0, sent - LATENCY) - final_before) * HOP)
        ws.send("end")
        pieces += receive_samples(ws, min(LATENCY, sent) * HOP)
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=30)
    assert closed.value.rcvd.code == 1000
    audio = np.concatenate(pieces)
    offline = vocoder(mel).numpy()
    assert audio.shape == offline.shape == (70 * HOP,)
    assert np.abs(audio - offline).max() < EXACT


def stream_all(server, mel: np.ndarray, chunk: int, **connect_options):
    """Send ``mel`` in ``chunk``-frame messages as fast as the socket takes them and ``end``
    without reading; then read everything until the close.

    Returns: the audio messages, the close code.
    """
    with connect(f"{server.ws_url}/v1/stream?model={MODEL}", **connect_options) as ws:
        for start in range(0, mel.shape[1], chunk):
            ws.send(frames_message(mel[:, start : start + chunk]))
        ws.send("end")
        pieces = []
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                pieces.append(np.frombuffer(ws.recv(timeout=60), dtype="<f4"))
    return pieces, closed.value.rcvd.code


def test_one_frame_messages_sent_fast_are_coalesced_and_exact(server, vocoder, monkeypatch):
    windows = WindowCounter(monkeypatch)
    mel = log_mel(300, seed=3).numpy()
    pieces, code = stream_all(server, mel, chunk=1)
    assert code == 1000
    audio = np.concatenate(pieces)
    assert audio.shape == (300 * HOP,)
    assert np.abs(audio - vocoder(mel).numpy()).max() < EXACT
    # 300 messages: one synthesis each would recompute the receptive field 287 times
    assert windows.calls < 300 / 4, windows.calls
    assert len(pieces) == windows.calls


def test_a_long_message_is_synthesized_in_bounded_jobs(server, vocoder, monkeypatch):
    # one job of the model's thread is at most MAX_CHUNK_SECONDS (2 s, 172 frames) long
    windows = WindowCounter(monkeypatch)
    mel = log_mel(430, seed=8).numpy()  # the server's 5 s limit, in one message
    pieces, code = stream_all(server, mel, chunk=430)
    assert code == 1000
    assert windows.calls == 4  # 172 + 172 + 86 frames, then the held-back tail
    assert [p.size for p in pieces[:2]] == [(172 - LATENCY) * HOP, 172 * HOP]
    assert np.abs(np.concatenate(pieces) - vocoder(mel).numpy()).max() < EXACT


def paced_stream(server, mel: np.ndarray, chunk: int, **connect_options):
    """Send ``mel`` in ``chunk``-frame messages at real-time pace while another thread reads the
    audio as it comes, as a live client does (one that stops reading stops answering pings).

    Returns: the audio messages, the close code, how many arrived before the last frames
    were sent.
    """
    pieces: list[np.ndarray] = []
    closed: list[ConnectionClosed] = []
    with connect(f"{server.ws_url}/v1/stream?model={MODEL}", **connect_options) as ws:

        def read() -> None:
            try:
                while True:
                    pieces.append(np.frombuffer(ws.recv(timeout=60), dtype="<f4"))
            except ConnectionClosed as e:
                closed.append(e)

        reader = threading.Thread(target=read)
        reader.start()
        pace = chunk * HOP / RATE
        start = time.perf_counter()
        for i, at in enumerate(range(0, mel.shape[1], chunk)):
            time.sleep(max(0.0, start + i * pace - time.perf_counter()))
            ws.send(frames_message(mel[:, at : at + chunk]))
        early = len(pieces)
        ws.send("end")
        reader.join(120)
    assert closed, "the stream did not end"
    code = closed[0].rcvd.code if closed[0].rcvd is not None else None
    return pieces, code, early


def test_one_frame_messages_at_real_time_pace_outlast_slow_syntheses(server, vocoder, monkeypatch):
    # every synthesis takes 0.4 s while the client pings every 0.1 s and gives up after 0.3 s
    # without a pong: a server that read messages (pings included) only between syntheses
    # would be dropped with 1011 within the first second
    windows = WindowCounter(monkeypatch, delay=0.4)
    mel = log_mel(215, seed=4).numpy()  # 2.5 s
    pieces, code, early = paced_stream(server, mel, 1, ping_interval=0.1, ping_timeout=0.3)
    assert code == 1000
    audio = np.concatenate(pieces)
    assert audio.shape == (215 * HOP,)
    assert np.abs(audio - vocoder(mel).numpy()).max() < EXACT
    assert early >= 2  # audio came while the frames did, not all at the end
    assert windows.calls <= 12, windows.calls  # 215 messages, coalesced


def test_pings_are_answered_while_the_model_works(server, vocoder, monkeypatch):
    # each synthesis takes 0.2 s: a server that read the next message only after computing
    # the previous one would answer the ping after about (200 - 13) x 0.2 s
    windows = WindowCounter(monkeypatch, delay=0.2)
    mel = log_mel(200, seed=5).numpy()
    pieces = []
    with connect(f"{server.ws_url}/v1/stream?model={MODEL}") as ws:
        for start in range(200):
            ws.send(frames_message(mel[:, start : start + 1]))
        pong = ws.ping()
        assert pong.wait(timeout=3.0), "the ping behind 200 messages was not answered"
        ws.send("end")
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                pieces.append(np.frombuffer(ws.recv(timeout=60), dtype="<f4"))
    assert closed.value.rcvd.code == 1000
    assert np.abs(np.concatenate(pieces) - vocoder(mel).numpy()).max() < EXACT
    assert windows.calls <= 10, windows.calls


def test_streams_and_batches_take_turns_on_the_model(server, vocoder, monkeypatch):
    # a stream whose every synthesis is slow, fed at real-time pace for 4 s, must not hold
    # the model's thread against /v1/vocode requests made meanwhile, nor they against it
    WindowCounter(monkeypatch, delay=0.05)
    mel = log_mel(344, seed=6).numpy()  # 4 s
    answers: list = []
    body = npy_bytes(log_mel(20, seed=7).numpy())
    stop = threading.Event()

    def requests() -> None:
        while not stop.is_set():
            answers.append((server.post(f"/v1/vocode?model={MODEL}", body), time.monotonic()))

    with connect(f"{server.ws_url}/v1/stream?model={MODEL}") as ws:
        ws.send(frames_message(mel[:, :20]))
        pieces = [np.frombuffer(ws.recv(timeout=60), dtype="<f4")]  # the stream is under way
        client = threading.Thread(target=requests)
        client.start()
        try:
            for start in range(20, 344, 4):
                ws.send(frames_message(mel[:, start : start + 4]))
                time.sleep(4 * HOP / RATE)
            ended = time.monotonic()
            ws.send("end")
            with contextlib.suppress(ConnectionClosed):
                while True:
                    pieces.append(np.frombuffer(ws.recv(timeout=60), dtype="<f4"))
        finally:
            stop.set()
            client.join(60)
    assert answers and all(reply.status == 200 for reply, _ in answers)
    during = sum(at < ended for _, at in answers)
    assert during >= 2, f"{during} requests answered while the stream ran"
    assert np.abs(np.concatenate(pieces) - vocoder(mel).numpy()).max() < EXACT


def test_a_flood_of_uploads_holds_a_stream_back_by_one_mel_at_most(server, monkeypatch):
    # the mels of uploads share the model's thread with streams; each takes 0.3 s here, so
    # a stream queued behind eight of them in order would wait 2.4 s
    import io

    import soundfile as sf

    from hifigan.serve.slots import ModelSlot

    order: list[str] = []
    mel_of = ModelSlot.mel

    def slow_mel(slot, audio):
        time.sleep(0.3)
        order.append("mel")
        return mel_of(slot, audio)

    monkeypatch.setattr(ModelSlot, "mel", slow_mel)
    window = Vocoder._synthesize_stream_window

    def noted_window(vocoder, mel):
        order.append("stream")
        return window(vocoder, mel)

    monkeypatch.setattr(Vocoder, "_synthesize_stream_window", noted_window)
    upload = io.BytesIO()
    sf.write(upload, np.random.default_rng(0).normal(0, 0.1, RATE // 4), RATE, format="WAV")
    replies: list = []
    uploads = [
        threading.Thread(
            target=lambda: replies.append(
                server.post(f"/v1/vocode?model={MODEL}", upload.getvalue())
            )
        )
        for _ in range(8)
    ]
    mel = log_mel(40, seed=9).numpy()
    with connect(f"{server.ws_url}/v1/stream?model={MODEL}") as ws:
        ws.send(frames_message(mel[:, :20]))
        ws.recv(timeout=60)  # the stream is under way
        for thread in uploads:
            thread.start()
        server.wait_for_metric(8, "hifigan_queue_depth", model=MODEL)
        time.sleep(0.2)  # their audio decoded, their mels queued on the model's thread
        sent = len(order)
        ws.send(frames_message(mel[:, 20:]))
        ws.recv(timeout=60)
        turn = order.index("stream", sent)
        ws.send("end")
    for thread in uploads:
        thread.join(60)
    assert [reply.status for reply in replies] == [200] * 8
    assert order.count("mel") == 8
    assert order[sent:turn].count("mel") <= 2, order  # the one running, then the stream's turn


def test_sessions_are_counted_by_the_code_that_closed_them(server):
    def count(status: str) -> float:
        return server.metric("hifigan_requests_total", endpoint="/v1/stream", status=status)

    before = count("1011")
    with connect(f"{server.ws_url}/v1/stream?model={MODEL}") as ws:
        ws.send(frames_message(log_mel(20).numpy()))
        ws.recv(timeout=60)
        ws.close(1011, "keepalive ping timeout")  # what a client whose pings went unanswered sends
    deadline = time.monotonic() + 30
    while count("1011") != before + 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert count("1011") == before + 1
    assert count("101") == 0  # no session is left counted as merely opened


def test_a_client_that_hangs_up_right_after_end_is_counted_by_its_close_code(server):
    # the server is still computing the held-back tail when the client's close arrives
    def count(status: str) -> float:
        return server.metric("hifigan_requests_total", endpoint="/v1/stream", status=status)

    before = count("1000")
    for seed in range(4):
        with connect(f"{server.ws_url}/v1/stream?model={MODEL}") as ws:
            ws.send(frames_message(log_mel(60, seed=seed).numpy()))
            ws.send("end")
        # leaving the block closes with 1000 without reading a single answer
    deadline = time.monotonic() + 30
    while count("1000") != before + 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert count("1000") == before + 4
    assert count("101") == 0
    server.wait_for_metric(0, "hifigan_active_streams", model=MODEL)


def test_a_client_that_hangs_up_after_a_bad_message_is_counted_by_a_close_code(server):
    def counts() -> dict[str, float]:
        return {
            status: server.metric("hifigan_requests_total", endpoint="/v1/stream", status=status)
            for status in ("1000", "1007", "101")
        }

    before = counts()
    for _ in range(4):
        with connect(f"{server.ws_url}/v1/stream?model={MODEL}") as ws:
            ws.send(b"\x00" * 7)  # not a whole frame: the server closes with 1007 ...
        # ... unless the client's own close (1000) came first
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        now = counts()
        if now["1000"] + now["1007"] == before["1000"] + before["1007"] + 4:
            break
        time.sleep(0.05)
    assert now["1000"] + now["1007"] == before["1000"] + before["1007"] + 4
    assert now["101"] == 0


def stream_error(server, messages: list, query: str = f"model={MODEL}") -> tuple[int, str]:
    """Send ``messages``; return the close code and the JSON error the server sent."""
    with connect(f"{server.ws_url}/v1/stream?{query}") as ws:
        for message in messages:
            ws.send(message)
        error = None
        try:
            while True:
                reply = ws.recv(timeout=30)
                if isinstance(reply, str):
                    error = json.loads(reply)["error"]
        except ConnectionClosed as e:
            return e.rcvd.code, error


def test_stream_errors_close_with_a_code_and_a_message(server):
    mel = frames_message(log_mel(3).numpy())
    code, error = stream_error(server, [mel[:-4]])
    assert code == 1007
    assert error == (
        "message of 956 bytes is not a whole number of frames (a frame is 320 bytes: "
        "80 float32 values)"
    )
    nan = np.full((1, 80), np.nan, dtype="<f4").tobytes()
    assert stream_error(server, [mel, nan]) == (1007, "mel contains 80 NaN or infinite values")
    code, error = stream_error(server, ["hello"])
    assert code == 1007 and "unexpected text message 'hello'" in error
    assert stream_error(server, ["end"]) == (1007, "mel has no frames")
    code, error = stream_error(server, [], query="model=nope")
    assert code == 4404 and error == "unknown model 'nope' (served here: lj-v2)"
    too_long = frames_message(np.zeros((80, 431), np.float32))  # 5 s is 430 frames
    code, error = stream_error(server, [too_long])
    assert code == 1009 and "over this server's limit of 5 s (430 frames)" in error
    assert server.get("/health").status == 200


def test_a_client_that_leaves_mid_stream_frees_its_stream(server):
    with (
        contextlib.suppress(OSError, ConnectionClosed),
        connect(f"{server.ws_url}/v1/stream") as ws,
    ):
        ws.send(frames_message(log_mel(20).numpy()))
        ws.recv(timeout=60)  # the server is streaming for it
        server.wait_for_metric(1, "hifigan_active_streams", model=MODEL)  # earlier ones closed
        ws.socket.close()  # gone without a closing handshake
    server.wait_for_metric(0, "hifigan_active_streams", model=MODEL)
    with connect(f"{server.ws_url}/v1/stream") as ws:  # and the next one works
        ws.send(frames_message(log_mel(20).numpy()))
        assert np.frombuffer(ws.recv(timeout=60), dtype="<f4").size == (20 - LATENCY) * HOP


def test_stream_needs_the_api_key():
    with running_server(api_key="s3cret") as server:
        with pytest.raises(InvalidStatus) as denied:
            connect(f"{server.ws_url}/v1/stream")
        assert denied.value.response.status_code == 401
        url = f"{server.ws_url}/v1/stream"
        with connect(url, additional_headers={"Authorization": "Bearer s3cret"}) as ws:
            ws.send(frames_message(log_mel(15).numpy()))
            ws.send("end")
            assert sum(np.frombuffer(ws.recv(timeout=60), "<f4").size for _ in range(2)) == (
                15 * HOP
            )


@pytest.fixture(scope="module")
def small_checkpoint(tmp_path_factory):
    """A randomly initialised V3 generator in our checkpoint format: fast on any CPU."""
    import torch

    from hifigan import Generator, HiFiGANConfig
    from hifigan.checkpoint import save_checkpoint

    config = HiFiGANConfig.preset("v3")
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "small.pt"
    save_checkpoint(path, config, Generator.from_config(config))
    return path


@pytest.mark.parametrize(
    ("options", "sent", "expected"),
    [
        ([], "", [("1", "86", "1000"), ("7", "13", "1000"), ("32", "3", "1000")]),
        (["--mel-convention", "coqui", "--frames", "7"], "of coqui ", [("7", "13", "1000")]),
    ],
)
def test_stream_latency_script_runs_end_to_end(small_checkpoint, options, sent, expected):
    # a check that the script works, on 1 s of audio: its timings are not looked at
    command = [sys.executable, str(REPO / "scripts" / "stream_latency.py"), str(small_checkpoint)]
    command += ["--seconds", "1", "--threads", "1", *options]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"model {small_checkpoint} (small), 86 frames {sent}(1.00 s)")
    header = [cell.strip() for cell in lines[2].strip("|").split("|")]
    assert header[:6] == [
        "frames per message",
        "messages",
        "first audio ms",
        "last audio after last frame ms",
        "last audio after start ms",
        "close",
    ]
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[4:]]
    assert [(row[0], row[1], row[5]) for row in rows] == expected
    for row in rows:
        assert float(row[6]) < EXACT  # max |difference| from offline synthesis
        assert all(float(cell) >= 0 for cell in row[2:5])
