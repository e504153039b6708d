"""``WS /v1/stream``: exact streaming synthesis, audio as soon as it is final, errors."""

from __future__ import annotations

import contextlib
import json

import numpy as np
import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
pytest.importorskip("websockets")

from serve_helpers import MODEL, running_server
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from hifigan import Vocoder
from inference_helpers import log_mel

from conftest import LJ_V2, need

HOP = 256
LATENCY = 13  # LJ_V2's receptive field reaches 13 frames ahead


@pytest.fixture(scope="module")
def server():
    with running_server(max_seconds=5.0) as s:
        yield s


@pytest.fixture(scope="module")
def vocoder():
    return Vocoder.from_checkpoint(need(LJ_V2))


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
    assert np.abs(audio - offline).max() < 1e-4


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
