"""``hifigan serve`` over HTTP: parity with ``hifigan vocode``, batching, errors, limits, keys."""

from __future__ import annotations

import io
import socket
import threading
import time

import numpy as np
import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

import soundfile as sf
from serve_helpers import (
    MODEL,
    npy_bytes,
    read_wav_bytes,
    running_server,
)

from hifigan import Vocoder
from hifigan.io import to_int16
from hifigan.serve.payload import RequestError, read_npy_header
from inference_helpers import log_mel

from conftest import LJ_V2, LJSPEECH, need

CLIP = LJSPEECH / "wavs" / "LJ001-0001.flac"


@pytest.fixture(scope="module")
def server():
    with running_server(max_batch=16, max_wait_ms=100.0) as s:
        yield s


@pytest.fixture(scope="module")
def vocoder():
    return Vocoder.from_checkpoint(need(LJ_V2))


def cli_wav(run_cli, path, outdir):
    code, _, err = run_cli("vocode", path, "-o", outdir, "--checkpoint", need(LJ_V2))
    assert code == 0, err
    return (outdir / f"{path.stem}.wav").read_bytes()


def assert_same_wav(served: bytes, written: bytes) -> None:
    """Same header and length, samples within 1 LSB (batching reorders float sums)."""
    assert served[:44] == written[:44]
    a, rate_a = read_wav_bytes(served)
    b, rate_b = read_wav_bytes(written)
    assert rate_a == rate_b == 22050 and a.shape == b.shape
    assert np.abs(a.astype(int) - b).max() <= 1


@pytest.mark.parametrize(
    "make",
    [
        lambda: log_mel(45).numpy(),
        lambda: log_mel(30, seed=2).numpy().astype(np.float16),
        lambda: log_mel(20, batch=1, seed=3).numpy(),
        lambda: np.asfortranarray(log_mel(25, seed=4).numpy()),
    ],
    ids=["float32", "float16", "batch-axis", "fortran-order"],
)
def test_vocode_npy_equals_the_cli(server, run_cli, tmp_path, make):
    path = tmp_path / "mel.npy"
    np.save(path, make())
    reply = server.post(f"/v1/vocode?model={MODEL}", path.read_bytes())
    assert reply.status == 200, reply.body
    assert reply.headers["Content-Type"] == "audio/wav"
    assert_same_wav(reply.body, cli_wav(run_cli, path, tmp_path / "cli"))


def test_vocode_audio_equals_the_cli(server, run_cli, tmp_path):
    clip = need(CLIP)
    reply = server.post("/v1/vocode", clip.read_bytes())  # the default model
    assert reply.status == 200, reply.body
    assert reply.headers["X-Model"] == MODEL
    assert_same_wav(reply.body, cli_wav(run_cli, clip, tmp_path / "cli"))
    # stereo at another rate: mixed to mono and resampled exactly as the CLI does
    audio, _ = sf.read(clip, dtype="float32", frames=int(1.5 * 22050))
    stereo = tmp_path / "stereo.wav"
    sf.write(stereo, np.stack([audio, 0.5 * audio], axis=1), 16000, subtype="PCM_16")
    reply = server.post("/v1/vocode", stereo.read_bytes())
    assert reply.status == 200, reply.body
    assert_same_wav(reply.body, cli_wav(run_cli, stereo, tmp_path / "cli"))


def test_vocode_f32_is_the_offline_synthesis(server, vocoder):
    mel = log_mel(33, seed=5).numpy()
    reply = server.post("/v1/vocode?format=f32", npy_bytes(mel))
    assert reply.status == 200 and reply.headers["Content-Type"] == "application/octet-stream"
    audio = np.frombuffer(reply.body, dtype="<f4")
    offline = vocoder(mel).numpy()
    assert audio.shape == offline.shape == (33 * 256,)
    assert np.abs(audio - offline).max() < 1e-4
    assert float(reply.headers["X-Audio-Seconds"]) == pytest.approx(33 * 256 / 22050, abs=1e-5)


def test_health_models_mel_and_demo_clip(server, vocoder):
    assert server.get("/health").json() == {"status": "ok", "models": [MODEL], "default": MODEL}
    info = server.get("/v1/models").json()
    assert info["default"] == MODEL
    assert info["models"] == [
        {
            "name": MODEL,
            "sample_rate": 22050,
            "n_mels": 80,
            "hop_length": 256,
            "hop": 256,
            "mel": "hifigan",
            "latency_frames": 13,
            "backend": "fast",  # what auto runs on the CPU
            "precision": "fp32",
        }
    ]
    clip = server.get("/v1/demo-clip")
    assert clip.status == 200 and clip.body[:4] == b"fLaC"
    audio, _ = sf.read(need(CLIP), dtype="float32")
    reply = server.post("/v1/mel?format=json", need(CLIP).read_bytes())
    mel = np.array(reply.json()["mel"])
    expected = vocoder.mel(audio).numpy()
    assert mel.shape == expected.shape and np.abs(mel - expected).max() <= 0.005 + 1e-6
    npy = server.post("/v1/mel", need(CLIP).read_bytes())
    assert np.abs(np.load(io.BytesIO(npy.body)) - expected).max() < 1e-4
    page = server.get("/")
    assert page.status == 200 and b"<title>HiFi-GAN vocoder</title>" in page.body
    assert server.get("/static/app.js").status == 200


def test_concurrent_clients_are_batched_and_exact(server, vocoder):
    mels = [log_mel(20 + 3 * i, seed=10 + i).numpy() for i in range(16)]
    before = server.metric("hifigan_batch_size_count", model=MODEL)
    replies: list = [None] * len(mels)

    def client(i: int) -> None:
        replies[i] = server.post(f"/v1/vocode?model={MODEL}", npy_bytes(mels[i]))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(mels))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    for mel, reply in zip(mels, replies):
        assert reply.status == 200, reply.body
        audio, _ = read_wav_bytes(reply.body)
        assert np.abs(audio.astype(int) - to_int16(vocoder(mel).numpy())).max() <= 1
    batches = server.metric("hifigan_batch_size_count", model=MODEL) - before
    assert 1 <= batches < len(mels)  # at least one call synthesized several requests
    assert max(int(r.headers["X-Batch-Size"]) for r in replies) > 1
    assert server.metric("hifigan_queue_depth", model=MODEL) == 0
    assert server.metric("hifigan_requests_total", endpoint="/v1/vocode", status="200") >= 16


BAD_MELS = {
    "bands": (
        np.zeros((100, 20), np.float32),
        "mel has shape (100, 20), but the model expects 80 bands (shape (80, frames))",
    ),
    "transposed": (
        np.zeros((20, 80), np.float32),
        "it looks transposed: save it as (n_mels, frames)",
    ),
    "int": (np.zeros((80, 20), np.int32), "mel must hold floating-point values, got int32"),
    "3-d": (
        np.zeros((2, 80, 10), np.float32),
        "mel must have shape (n_mels, frames), got (2, 80, 10)",
    ),
    "nan": (np.full((80, 5), np.nan, np.float32), "mel contains 400 NaN or infinite values"),
    "empty": (np.zeros((80, 0), np.float32), "mel has no frames"),
}


@pytest.mark.parametrize("case", list(BAD_MELS))
def test_bad_mels_get_the_cli_message(server, run_cli, tmp_path, case):
    mel, message = BAD_MELS[case]
    path = tmp_path / f"{case}.npy"
    np.save(path, mel)
    reply = server.post("/v1/vocode", path.read_bytes())
    assert reply.status == 400
    assert reply.headers["Content-Type"] == "application/json"
    served = reply.json()["error"]
    assert message in served
    code, _, err = run_cli("vocode", path, "-o", tmp_path / "out", "--checkpoint", need(LJ_V2))
    assert code == 1 and f"{path}: {served}" in err  # the CLI's words, without the file name


def test_bad_requests_leave_the_server_healthy(server, tmp_path):
    short = tmp_path / "short.wav"
    sf.write(short, np.zeros(100, np.float32), 22050, subtype="PCM_16")
    pickled = npy_bytes(np.zeros((80, 4), np.float32)).replace(b"'<f4'", b"'|O' ")
    cases = [
        ("/v1/vocode", b"not audio at all", 400, "not a valid audio file"),
        ("/v1/vocode", b"", 400, "empty request body"),
        ("/v1/vocode", short.read_bytes(), 400, "audio is too short: 100 samples"),
        ("/v1/vocode", pickled, 400, "mel must hold floating-point values, got object"),
        ("/v1/vocode", npy_bytes(np.zeros((80, 9), np.float32))[:-7], 400, "cannot read mel"),
        ("/v1/vocode?model=nope", b"x", 404, "unknown model 'nope' (served here: lj-v2)"),
        ("/v1/vocode?format=mp3", b"x", 400, "unknown format 'mp3' (available: wav, f32)"),
        ("/v1/mel", npy_bytes(np.zeros((80, 9), np.float32)), 400, "send an audio file"),
        ("/v1/nothing", b"x", 404, "Not Found"),
    ]
    for path, body, status, message in cases:
        reply = server.post(path, body)
        assert (reply.status, path) == (status, path), reply.body
        assert message in reply.json()["error"], (path, reply.body)
    assert server.get("/v1/vocode").status == 405
    assert server.get("/health").status == 200
    reply = server.post("/v1/vocode", npy_bytes(log_mel(10).numpy()))
    assert reply.status == 200


def npy_declaring(shape: tuple, data: bytes = b"\0" * 64, descr: str = "<f4") -> bytes:
    header = repr({"descr": descr, "fortran_order": False, "shape": shape}).encode()
    header += b" " * (63 - (len(header) + 10) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + data


def test_huge_npy_headers_are_refused_before_allocating(server):
    reply = server.post("/v1/vocode", npy_declaring((80, 10**12)))
    assert reply.status == 413
    assert "over this server's limit of 300 s" in reply.json()["error"]
    reply = server.post("/v1/vocode", npy_declaring((10**9, 10**9)))
    assert reply.status == 400
    assert "declares shape (1000000000, 1000000000)" in reply.json()["error"]
    evil = b"{'descr': __import__('os').system('false'), 'fortran_order': False, 'shape': (1,)}"
    with pytest.raises(RequestError, match="malformed"):
        read_npy_header(b"\x93NUMPY\x01\x00" + len(evil).to_bytes(2, "little") + evil)
    with pytest.raises(RequestError, match="floating-point"):
        read_npy_header(npy_declaring((80, 3), descr="|O"))
    assert server.get("/health").status == 200


def test_limits_and_queue(tmp_path):
    with running_server(
        max_body_mb=0.5, max_seconds=2.0, max_queue=1, max_batch=4, max_wait_ms=5000.0
    ) as server:
        reply = server.post("/v1/vocode", b"\0" * (600 * 1024))
        assert reply.status == 413
        assert reply.json()["error"] == "request body is over this server's limit of 0.5 MB"
        reply = server.post("/v1/vocode", npy_bytes(log_mel(200).numpy()))
        assert reply.status == 413 and "mel of 200 frames is 2.3 s of audio" in reply.body.decode()
        long_wav = tmp_path / "long.wav"
        sf.write(long_wav, np.zeros(3 * 22050, np.float32), 22050, subtype="PCM_16")
        reply = server.post("/v1/vocode", long_wav.read_bytes())
        assert reply.status == 413 and "audio is 3.0 s long" in reply.json()["error"]
        # one request waits in the batcher (max-wait 5 s): a second one finds the queue full
        first: list = []
        waiting = threading.Thread(
            target=lambda: first.append(server.post("/v1/vocode", npy_bytes(log_mel(8).numpy())))
        )
        waiting.start()
        server.wait_for_metric(1, "hifigan_queue_depth", model=MODEL)
        reply = server.post("/v1/vocode", npy_bytes(log_mel(8).numpy()))
        waiting.join(60)
        assert reply.status == 503 and reply.headers["Retry-After"] == "1"
        assert "has 1 requests waiting" in reply.json()["error"]
        assert first[0].status == 200
        assert server.get("/health").status == 200


def test_a_client_that_disconnects_is_dropped(tmp_path):
    with running_server(max_batch=2, max_wait_ms=3000.0) as server:
        body = npy_bytes(log_mel(8).numpy())
        host, port = server.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port))) as sock:
            sock.sendall(
                f"POST /v1/vocode HTTP/1.1\r\nHost: {host}:{port}\r\n".encode()
                + b"Content-Type: application/octet-stream"
                + f"\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            server.wait_for_metric(1, "hifigan_queue_depth", model=MODEL)
        server.wait_for_metric(0, "hifigan_queue_depth", model=MODEL)
        time.sleep(3.0)  # the batch it was waiting for would have run by now
        assert server.metric("hifigan_batch_size_count", model=MODEL) == 0  # withdrawn
        assert server.metric("hifigan_requests_total", endpoint="/v1/vocode", status="499") == 1


def test_api_key_is_required_except_for_health_and_the_page():
    with running_server(api_key="s3cret") as server:
        assert server.get("/health").status == 200
        assert server.get("/").status == 200
        for path in ("/v1/models", "/metrics", "/v1/demo-clip"):
            reply = server.get(path)
            assert reply.status == 401 and reply.headers["WWW-Authenticate"] == "Bearer"
            assert "missing or wrong API key" in reply.json()["error"]
        assert server.get("/v1/models", headers={"Authorization": "Bearer nope"}).status == 401
        assert server.get("/v1/models", headers={"Authorization": "Bearer s3cret"}).status == 200
        assert server.get("/v1/models", headers={"X-API-Key": "s3cret"}).status == 200
        body = npy_bytes(log_mel(8).numpy())
        assert server.post("/v1/vocode", body).status == 401
        assert server.post("/v1/vocode", body, headers={"X-API-Key": "s3cret"}).status == 200
