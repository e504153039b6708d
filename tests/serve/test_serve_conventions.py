"""The service reads mels of other conventions: ``?mel_convention=NAME|auto``, the per-model
default of ``serve --mel-convention``, the statistics of ``serve --mel-stats``, and the verdict
of ``POST /v1/mel-check``; each against ``hifigan vocode`` / ``hifigan mel-check``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

from serve_helpers import MODEL, lj_v2_spec, npy_bytes, running_server

from hifigan import HiFiGANError
from hifigan.bundled import demo_clip_file
from hifigan.conventions import convention_names
from hifigan.io import load_audio
from hifigan.serve.conventions import MelConventions

from conftest import LJ_V2, need

TWIN = "twin"  # the same weights served under a second name
SECONDS = 1.0  # of the demo clip: enough for every convention's statistics, cheap to vocode


def wav_of(server, mel_file: Path, query: str = "", status: int = 200):
    reply = server.post(f"/v1/vocode{query}", mel_file.read_bytes())
    assert reply.status == status, reply.body[:300]
    return reply


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("conventions")


@pytest.fixture(scope="module")
def clip(folder) -> Path:
    """The first second of the bundled demo clip."""
    with demo_clip_file() as path:
        audio, rate = load_audio(path)
    out = folder / "demo.flac"
    sf.write(str(out), audio[: int(SECONDS * rate)], rate)
    return out


@pytest.fixture(scope="module")
def pwg_stats(folder) -> Path:
    """Per-band statistics for parallel-wavegan, a ``(2, 80)`` .npy (mean, scale)."""
    rng = np.random.default_rng(0)
    stats = np.stack([rng.uniform(-6, -3, 80), rng.uniform(0.5, 2.0, 80)]).astype(np.float32)
    path = folder / "pwg_stats.npy"
    np.save(path, stats)
    return path


@pytest.fixture(scope="module")
def server():
    """One model, batching off (exact parity with the CLI), no option about conventions."""
    with running_server(backend="eager", max_batch=1) as s:
        yield s


@pytest.fixture(scope="module")
def configured(pwg_stats):
    """Two models with their defaults (coqui for all, nemo-log1p for the twin), and statistics
    for parallel-wavegan."""
    models = [lj_v2_spec(), f"{TWIN}={need(LJ_V2)}"]
    with running_server(
        models=models,
        backend="eager",
        max_batch=1,
        mel_conventions=["coqui", f"{TWIN}=nemo-log1p"],
        mel_stats=[f"parallel-wavegan={pwg_stats}"],
    ) as s:
        yield s


def mel_file(run_cli, clip: Path, folder: Path, convention: str, *extra: str) -> Path:
    """``hifigan mel --convention convention`` of ``clip``."""
    out = folder / f"mel-{convention}{'-stats' if extra else ''}"
    if (out / f"{clip.stem}.npy").exists():  # made by an earlier test
        return out / f"{clip.stem}.npy"
    code, _, err = run_cli("mel", clip, "-o", out, "--convention", convention, *extra)
    assert code == 0, err
    return out / f"{clip.stem}.npy"


def cli_wav(run_cli, mel: Path, folder: Path, *options: str) -> bytes:
    out = folder / f"wav-{mel.parent.name}"
    code, _, err = run_cli(
        "vocode",
        mel,
        "-o",
        out,
        "--checkpoint",
        need(LJ_V2),
        "--backend",
        "eager",
        "--overwrite",
        *options,
    )
    assert code == 0, err
    return (out / f"{mel.stem}.wav").read_bytes()


# one of each kind in the default run (values only, normalised kind, another rate and band
# count); every named convention with -m slow
QUICK = ("coqui", "parallel-wavegan", "vocos")


@pytest.mark.parametrize(
    "name",
    [n if n in QUICK else pytest.param(n, marks=pytest.mark.slow) for n in convention_names()],
)
def test_each_named_convention_gives_the_audio_of_hifigan_vocode(
    name, server, run_cli, clip, folder
):
    mel = mel_file(run_cli, clip, folder, name)
    reply = wav_of(server, mel, f"?mel_convention={name}")
    assert reply.headers["X-Mel-Convention"] == name
    assert reply.headers["X-Mel-Convention-From"] == "request"
    # the same backend and no batching: byte for byte what the CLI writes
    assert reply.body == cli_wav(run_cli, mel, folder, "--mel-convention", name)


def test_auto_detects_the_convention_as_vocode_does(server, run_cli, clip, folder):
    mel = mel_file(run_cli, clip, folder, "coqui")
    reply = wav_of(server, mel, "?mel_convention=auto")
    assert reply.headers["X-Mel-Convention"] == "coqui"
    assert reply.headers["X-Mel-Convention-From"] == "detected"
    assert reply.body == wav_of(server, mel, "?mel_convention=coqui").body
    assert reply.body == cli_wav(run_cli, mel, folder, "--mel-convention", "auto")


def test_statistics_given_at_start_undo_the_normalisation(
    configured, run_cli, clip, folder, pwg_stats
):
    server = configured
    mel = mel_file(run_cli, clip, folder, "parallel-wavegan", "--stats", pwg_stats)
    options = ("--mel-convention", "parallel-wavegan", "--mel-stats", pwg_stats)
    reply = wav_of(server, mel, "?mel_convention=parallel-wavegan")
    assert reply.body == cli_wav(run_cli, mel, folder, *options)
    listed = {c["name"]: c for c in server.get("/v1/conventions").json()["conventions"]}
    assert listed["parallel-wavegan"]["stats"] and not listed["espnet"]["stats"]


def one_line_error(reply, status: int = 400) -> str:
    assert reply.status == status
    assert reply.headers["Content-Type"] == "application/json"
    message = reply.json()["error"]
    assert "\n" not in message and "Traceback" not in message
    return message


def test_an_unknown_convention_is_refused_with_the_names(server, run_cli, clip, folder):
    mel = mel_file(run_cli, clip, folder, "hifigan")
    message = one_line_error(server.post("/v1/vocode?mel_convention=coqi", mel.read_bytes()))
    assert message.startswith("unknown mel convention 'coqi' (known: auto, ")
    for name in convention_names():
        assert name in message
    # a path is a name like any other here: the service reads no file a request names
    reply = server.post("/v1/vocode?mel_convention=/etc/passwd", mel.read_bytes())
    assert one_line_error(reply).startswith("unknown mel convention '/etc/passwd'")


def test_a_mel_that_does_not_fit_the_convention_is_refused(server, run_cli, clip, folder):
    mel = mel_file(run_cli, clip, folder, "hifigan")  # 80 bands
    reply = server.post("/v1/vocode?mel_convention=vocos", mel.read_bytes())
    message = one_line_error(reply)
    # the library's words, with the query parameter in place of vocode's option
    assert message == (
        "mel has 80 bands, convention vocos has 100; it looks like hifigan: vocode it with "
        "?mel_convention=hifigan"
    )


def test_a_normalised_mel_without_statistics_is_refused(server, run_cli, clip, folder):
    mel = np.load(mel_file(run_cli, clip, folder, "espnet"))
    normalised = (mel - mel.mean(1, keepdims=True)) / mel.std(1, keepdims=True)
    path = folder / "espnet_normalised.npy"
    np.save(path, normalised.astype(np.float32))
    message = one_line_error(server.post("/v1/vocode?mel_convention=espnet", path.read_bytes()))
    assert "convention espnet needs its statistics" in message
    assert "--mel-stats espnet=FILE" in message


def test_an_audio_body_ignores_the_convention_and_says_so(server, clip):
    reply = server.post("/v1/vocode?mel_convention=coqui", clip.read_bytes())
    assert reply.status == 200
    assert reply.headers["X-Mel-Convention"] == "hifigan"
    assert reply.headers["X-Mel-Convention-From"] == "audio"


def test_the_default_per_model_of_serve_mel_convention(configured, run_cli, clip, folder):
    server = configured
    coqui = mel_file(run_cli, clip, folder, "coqui")
    nemo = mel_file(run_cli, clip, folder, "nemo-log1p")
    reply = wav_of(server, coqui)
    assert reply.headers["X-Mel-Convention"] == "coqui"
    assert reply.headers["X-Mel-Convention-From"] == "default"
    assert reply.body == cli_wav(run_cli, coqui, folder, "--mel-convention", "coqui")
    reply = wav_of(server, nemo, f"?model={TWIN}")
    assert reply.headers["X-Mel-Convention"] == "nemo-log1p"
    assert reply.body == cli_wav(run_cli, nemo, folder, "--mel-convention", "nemo-log1p")
    # the request's choice wins over the default; the model's own name turns it off
    own = mel_file(run_cli, clip, folder, "hifigan")
    reply = wav_of(server, own, "?mel_convention=hifigan")
    assert (reply.headers["X-Mel-Convention"], reply.headers["X-Mel-Convention-From"]) == (
        "hifigan",
        "request",
    )
    assert reply.body == cli_wav(run_cli, own, folder)
    described = server.get("/v1/conventions").json()
    assert described["models"] == {
        MODEL: {"own": "hifigan", "default": "coqui"},
        TWIN: {"own": "hifigan", "default": "nemo-log1p"},
    }


@pytest.mark.parametrize(
    ("conventions", "stats", "expected"),
    [
        (["nope"], [], "unknown mel convention 'nope'"),
        (["other=coqui"], [], "--mel-convention other=coqui: no model 'other' is served"),
        (["coqui", "vocos"], [], "--mel-convention vocos: a default for every model is given"),
        ([], ["stats.npy"], "--mel-stats stats.npy: say which convention"),
        ([], ["coqui=stats.npy"], "convention coqui has no normalisation"),
        ([], ["parallel-wavegan=absent.npy"], "absent.npy: stats file not found"),
    ],
)
def test_wrong_start_options_are_one_line_errors(
    conventions, stats, expected, monkeypatch, tmp_path
):
    monkeypatch.chdir(tmp_path)
    np.save(tmp_path / "stats.npy", np.ones((2, 80), np.float32))
    with pytest.raises(HiFiGANError) as error:
        MelConventions.check_options(conventions, stats, [MODEL])
    assert expected in str(error.value) and "\n" not in str(error.value)


def test_mel_check_gives_the_verdict_of_hifigan_mel_check(server, run_cli, clip, folder):
    mel = mel_file(run_cli, clip, folder, "coqui")
    reply = server.post(f"/v1/mel-check?model={MODEL}", mel.read_bytes())
    assert reply.status == 200
    report = reply.json()
    assert report["convention"] == "coqui" and report["fits_model"] is False
    assert report["mel_convention"] == "coqui" and report["model"] == MODEL
    alone = folder / "alone" / mel.name  # without the mel_convention.json hifigan mel wrote
    alone.parent.mkdir(exist_ok=True)
    alone.write_bytes(mel.read_bytes())
    code, out, _ = run_cli("mel-check", alone, "--model", need(LJ_V2))
    assert code == 1
    # the same library report: every line alike but the file's name, the model's label and
    # the command line
    printed = out.splitlines()
    served = report["text"].splitlines()
    assert served[0] == "mel" + printed[0][len(str(alone)) :]
    assert served[1:-1] == printed[1:-2]
    assert served[-1].startswith("  convention: coqui (detected from statistics); does NOT fit")
    # and the model's own mel fits
    own = mel_file(run_cli, clip, folder, "hifigan")
    report = server.post("/v1/mel-check", own.read_bytes()).json()
    assert report["fits_model"] is True and report["mel_convention"] is None
    # not a mel: one line
    message = one_line_error(server.post("/v1/mel-check", clip.read_bytes()))
    assert message == "send a mel (.npy) to /v1/mel-check (this body is audio)"


def test_the_page_has_an_icon(server):
    reply = server.get("/favicon.ico")
    assert reply.status == 200 and reply.headers["Content-Type"].startswith("image/svg+xml")
    assert reply.body.startswith(b"<svg")
    page = server.get("/").body.decode()
    assert '<link rel="icon" href="/static/favicon.svg"' in page
    assert server.get("/static/favicon.svg").body == reply.body
    assert json.loads(server.get("/v1/conventions").body)["auto"] == "auto"


def test_serve_edge_padding_toolkit_gives_the_toolkits_own_output():
    """A Coqui checkpoint (tests/fixtures/toolkits) served with --edge-padding toolkit answers
    what Coqui's inference computes, edges included."""
    folder = Path(__file__).resolve().parents[1] / "fixtures" / "toolkits" / "coqui-v1"
    mel, expected = np.load(folder / "mel.npy"), np.load(folder / "toolkit_output.npy")
    model = f"coqui={folder / 'checkpoint_2500.pth'}"
    with running_server(models=[model], edge_padding="toolkit", backend="eager") as server:
        hop_length = server.get("/v1/models").json()["models"][0]["hop_length"]
        reply = server.post("/v1/vocode?format=f32", npy_bytes(mel))
    assert reply.status == 200, reply.body[:300]
    audio = np.frombuffer(reply.body, "<f4")
    # 5 frames repeated at each end, as Coqui does (the authors' edges: frames x hop_length)
    assert audio.shape == expected.shape == ((mel.shape[1] + 10) * hop_length,)
    assert np.abs(audio - expected).max() < 1e-4


def streamed(server, mel: np.ndarray, query: str, per_message: int = 7) -> np.ndarray:
    """``mel`` (bands, frames) streamed to ``/v1/stream?query`` in messages of
    ``per_message`` frames; the audio the server sent."""
    from websockets.sync.client import connect

    with connect(f"{server.ws_url}/v1/stream?{query}") as ws:
        for start in range(0, mel.shape[1], per_message):
            ws.send(np.ascontiguousarray(mel[:, start : start + per_message].T, "<f4").tobytes())
        ws.send("end")
        audio = [np.frombuffer(m, "<f4") for m in ws]
        assert ws.close_code == 1000
    return np.concatenate(audio)


def stream_refusal(server, query: str) -> tuple[int, str]:
    """The close code and JSON error of a stream opened with ``query``."""
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    with connect(f"{server.ws_url}/v1/stream?{query}") as ws:
        error = json.loads(ws.recv(timeout=60))["error"]
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=60)
        return ws.close_code, error


@pytest.mark.parametrize(
    "name, per_message",
    [
        ("coqui", 1),  # centred frames: re-timed, 3 frames held back
        ("vocos", 7),  # 24 kHz, 100 bands: re-banded and re-timed
        ("hifigan", 32),  # the model's own: nothing converted
        pytest.param("bigvgan-44k", 5, marks=pytest.mark.slow),  # same frame times
        pytest.param("nemo-log1p", 3, marks=pytest.mark.slow),
    ],
)
def test_a_stream_of_another_convention_equals_its_offline_conversion(
    name, per_message, server, run_cli, clip, folder
):
    pytest.importorskip("websockets")
    mel = np.load(mel_file(run_cli, clip, folder, name))
    reply = server.post(f"/v1/vocode?format=f32&mel_convention={name}", npy_bytes(mel))
    assert reply.status == 200, reply.body[:300]
    offline = np.frombuffer(reply.body, "<f4")
    audio = streamed(server, mel, f"mel_convention={name}", per_message)
    assert audio.shape == offline.shape
    assert np.abs(audio - offline).max() < 2e-5


def test_a_stream_follows_the_servers_default_and_statistics(
    configured, pwg_stats, run_cli, clip, folder
):
    """``serve --mel-convention coqui`` applies to streams as to requests, and ``--mel-stats``
    undoes a normalisation frame by frame."""
    pytest.importorskip("websockets")
    coqui = np.load(mel_file(run_cli, clip, folder, "coqui"))
    offline = np.frombuffer(configured.post("/v1/vocode?format=f32", npy_bytes(coqui)).body, "<f4")
    assert np.abs(streamed(configured, coqui, f"model={MODEL}") - offline).max() < 2e-5
    pwg = np.load(mel_file(run_cli, clip, folder, "parallel-wavegan", "--stats", pwg_stats))
    query = "mel_convention=parallel-wavegan"
    reply = configured.post(f"/v1/vocode?format=f32&{query}", npy_bytes(pwg))
    assert reply.status == 200, reply.body[:300]
    offline = np.frombuffer(reply.body, "<f4")
    assert np.abs(streamed(configured, pwg, query, 4) - offline).max() < 2e-5


def test_a_stream_refuses_what_it_cannot_convert_as_it_arrives(server):
    pytest.importorskip("websockets")
    assert stream_refusal(server, "mel_convention=auto") == (
        1007,
        "a stream cannot detect its mel convention (auto: that needs the whole mel): name it "
        "with ?mel_convention=NAME (GET /v1/conventions lists them)",
    )
    assert stream_refusal(server, "mel_convention=parallel-wavegan") == (
        1007,
        "convention parallel-wavegan is normalised, and this server has no statistics to undo "
        "that (start it with --mel-stats parallel-wavegan=FILE)",
    )
    code, error = stream_refusal(server, "mel_convention=coqi")
    assert code == 1007 and error.startswith("unknown mel convention 'coqi' (known: auto, ")


@pytest.mark.parametrize("workers", ["1", "2"])
def test_serve_refuses_wrong_convention_options_before_loading_a_model(run_cli, workers):
    code, _, err = run_cli(
        "serve", "--model", lj_v2_spec(), "--workers", workers, "--mel-convention", "other=coqui"
    )
    assert code == 1
    assert err.strip().splitlines()[-1] == (
        f"error: --mel-convention other=coqui: no model 'other' is served (served: {MODEL})"
    )
    assert "Traceback" not in err
