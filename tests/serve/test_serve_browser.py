"""The web page in a real browser: each flow a person meets, from upload to download.

Uses the system's Chromium (``/usr/bin/chromium``, or ``HIFIGAN_CHROMIUM``) driven by
Playwright's Python package; skips without either. With ``HIFIGAN_SCREENSHOT=PATH`` it also
saves a screenshot of the page vocoding a TTS mel with the built-in lj-v1
(``docs/images/serve.png`` is made this way; skipped without the variable).
The answers the page relies on (``X-Model``, ``X-Warnings``, the rounded JSON mel) are checked
over HTTP at the end.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
pytest.importorskip("playwright")

from playwright.sync_api import expect, sync_playwright
from serve_helpers import MODEL, lj_v2_spec, npy_bytes, running_server

from hifigan.bundled import demo_clip_file
from hifigan.conventions import load_convention
from hifigan.io import load_audio

from conftest import LJ_V2, LJSPEECH, need

CHROMIUM = Path(os.environ.get("HIFIGAN_CHROMIUM", "/usr/bin/chromium"))
CLIP = LJSPEECH / "wavs" / "LJ001-0001.flac"
TIMEOUT_MS = 120_000
TWIN = "twin"  # the same weights served under a second name
WAIT_MS = 1000  # every request waits this long for its batch: time to act while it runs
HOP_LENGTH, RATE = 256, 22050


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent (apt-get install chromium, or set HIFIGAN_CHROMIUM)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--headless", "--no-sandbox"]
        )
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def server():
    models = [lj_v2_spec(), f"{TWIN}={need(LJ_V2)}"]
    with running_server(models=models, max_batch=2, max_wait_ms=WAIT_MS) as s:
        yield s


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """The first 2 s of an LJ Speech recording (FLAC, 22050 Hz mono)."""
    audio, rate = load_audio(need(CLIP))
    path = tmp_path_factory.mktemp("clips") / "LJ001-0001.flac"
    sf.write(str(path), audio[: 2 * rate], rate)
    return path


@pytest.fixture
def page(browser, server):
    page = browser.new_page(viewport={"width": 1100, "height": 980})
    page.goto(server.url + "/")
    expect(page.locator("#model")).to_have_value(MODEL, timeout=TIMEOUT_MS)
    yield page
    page.close()


def status(page):
    return page.locator("#status")


def drawn_frames(page, canvas: str) -> int:
    """Frames of the spectrogram drawn on ``canvas`` (0: blank)."""
    return int(page.locator(f"#{canvas}").get_attribute("data-frames") or 0)


def upload(page, path: Path) -> None:
    page.set_input_files("#file", str(path))


def vocode_and_wait(page) -> None:
    page.click("#vocode")
    expect(status(page)).to_have_text("done", timeout=TIMEOUT_MS)


def test_page_vocodes_an_upload_plays_and_downloads(page, server, clip, tmp_path):
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    download = page.locator("#download")
    # nothing to play or download yet: no dead controls
    for control in ("#download", "#input-audio", "#output-audio", "#cancel"):
        expect(page.locator(control)).to_be_hidden()
    expect(page.locator("#vocode")).to_be_disabled()
    upload(page, clip)
    expect(status(page)).to_have_text("ready: press Vocode", timeout=TIMEOUT_MS)
    expect(page.locator("#input-audio")).to_be_visible()
    expect(download).to_be_hidden()
    expect(page.locator("#output-audio")).to_be_hidden()
    expect(page.locator("#warnings")).to_be_hidden()  # a 22050 Hz mono file: nothing to say
    vocode_and_wait(page)
    output = page.locator("#output-audio")
    expect(output).to_be_visible()
    expect(download).to_be_visible()
    assert output.get_attribute("src").startswith("blob:")
    page.wait_for_function(
        "document.getElementById('output-audio').duration > 0", timeout=TIMEOUT_MS
    )
    duration = output.evaluate("a => a.duration")
    assert abs(duration - sf.info(str(clip)).duration) < 0.02
    assert "× real time" in page.locator("#stat-speed").inner_text()
    expect(page.locator("#output-model")).to_have_text(f"made by {MODEL}")
    with page.expect_download(timeout=TIMEOUT_MS) as download_info:
        download.click()
    saved = tmp_path / download_info.value.suggested_filename
    assert saved.name == f"LJ001-0001_{MODEL}.wav"
    download_info.value.save_as(saved)
    info = sf.info(str(saved))
    assert (info.format, info.subtype, info.samplerate) == ("WAV", "PCM_16", 22050)
    assert info.frames % 256 == 0 and abs(info.frames - sf.info(str(clip)).frames) < 512
    assert all(url.startswith((server.url, "blob:", "data:")) for url in requests)


def test_output_is_labelled_with_the_model_that_made_it(page, clip):
    upload(page, clip)
    expect(status(page)).to_have_text("ready: press Vocode", timeout=TIMEOUT_MS)
    page.click("#vocode")
    expect(status(page)).to_contain_text("vocoding")
    page.select_option("#model", TWIN)  # while lj-v2 is working on the request
    expect(status(page)).to_have_text("done", timeout=TIMEOUT_MS)
    expect(page.locator("#output-model")).to_have_text(f"made by {MODEL}")
    expect(page.locator("#stat-model")).to_have_text(MODEL)
    assert page.locator("#download").get_attribute("download") == f"LJ001-0001_{MODEL}.wav"
    # and a request made after the switch is the twin's
    vocode_and_wait(page)
    expect(page.locator("#output-model")).to_have_text(f"made by {TWIN}")
    assert page.locator("#download").get_attribute("download") == f"LJ001-0001_{TWIN}.wav"


def test_a_running_request_shows_its_time_and_can_be_cancelled(page, clip):
    upload(page, clip)
    expect(status(page)).to_have_text("ready: press Vocode", timeout=TIMEOUT_MS)
    page.click("#vocode")
    cancel = page.locator("#cancel")
    expect(cancel).to_be_visible()
    expect(page.locator("#vocode")).to_be_disabled()
    expect(status(page)).to_have_text(re.compile(r"vocoding… (0\.[1-9]|[1-9]\d*\.\d) s"))
    cancel.click()
    expect(status(page)).to_have_text(re.compile(r"cancelled after \d+\.\d s"))
    expect(cancel).to_be_hidden()
    expect(page.locator("#vocode")).to_be_enabled()
    expect(page.locator("#download")).to_be_hidden()
    page.wait_for_timeout(WAIT_MS + 500)  # the withdrawn request's time has passed
    expect(status(page)).to_have_text(re.compile(r"^cancelled"))
    assert page.locator("#output-audio").get_attribute("src") is None


def test_a_refused_upload_leaves_nothing_of_the_previous_input(page, clip, tmp_path):
    upload(page, clip)
    expect(status(page)).to_have_text("ready: press Vocode", timeout=TIMEOUT_MS)
    vocode_and_wait(page)
    assert drawn_frames(page, "input-mel") > 0 and drawn_frames(page, "output-mel") > 0
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF not really a wav file")
    upload(page, bad)
    # the server's words (hifigan vocode's, e.g. "is a text file, not audio"), with the file
    expect(status(page)).to_have_text(
        re.compile(r"^broken\.wav: [^\n]*(audio|text)[^\n]*$"), timeout=TIMEOUT_MS
    )
    expect(status(page)).to_have_class(re.compile("error"))
    expect(page.locator("#input-name")).to_have_text("broken.wav (refused)")
    expect(page.locator("#vocode")).to_be_disabled()
    expect(page.locator("#download")).to_be_hidden()
    assert drawn_frames(page, "input-mel") == 0 and drawn_frames(page, "output-mel") == 0
    assert page.locator("#input-audio").get_attribute("src") is None
    expect(page.locator("#input-audio")).to_be_hidden()
    expect(page.locator("#output-audio")).to_be_hidden()
    expect(page.locator("#stat-audio")).to_have_text("–")


@pytest.fixture(scope="module")
def tts_mel(tmp_path_factory) -> Path:
    """A TTS model's mel as it comes: coqui's convention (dB, [-4, 4]) of the first 2 s of
    the bundled demo clip, as ``hifigan mel --convention coqui`` computes it."""
    convention = load_convention("coqui")
    with demo_clip_file() as path:
        audio, _ = load_audio(path, convention.sample_rate)
    with torch.inference_mode():
        mel = convention.mel_spectrogram()(torch.from_numpy(audio[: 2 * RATE])).numpy()
    out = tmp_path_factory.mktemp("tts") / "tts_coqui.npy"
    out.write_bytes(npy_bytes(mel.astype(np.float32)))
    return out


def test_a_tts_mel_is_checked_converted_and_vocoded(page, tts_mel, clip, tmp_path):
    # the page's icon is served (no 404 in the browser's console)
    icon = "fetch(document.querySelector('link[rel=icon]').href).then(r => r.status)"
    assert page.evaluate(icon) == 200
    expect(page.locator("#model-info")).to_have_text("22050 Hz · 80 bands · hop_length 256")
    assert ".npy" in page.locator("#file").get_attribute("accept").split(",")
    expect(page.locator("#mel-options")).to_be_hidden()
    expect(page.locator("#verdict")).to_be_hidden()
    upload(page, tts_mel)
    expect(status(page)).to_have_text("ready: press Vocode", timeout=TIMEOUT_MS)
    frames = np.load(tts_mel).shape[1]
    assert drawn_frames(page, "input-mel") == frames
    expect(page.locator("#input-audio")).to_be_hidden()  # a mel has nothing to play
    # mel-check's verdict, from the server
    verdict = page.locator("#verdict")
    expect(verdict).to_be_visible()
    expect(verdict).to_have_class(re.compile("misfit"))
    expect(page.locator("#verdict-summary")).to_have_text(
        f"mel-check: coqui (detected from statistics); does not fit {MODEL}: choose coqui"
    )
    page.click("#verdict-summary")
    expect(page.locator("#verdict-text")).to_contain_text("likely: coqui")
    # the choice: the model's own by default, then auto, then every named convention
    select = page.locator("#convention")
    expect(select).to_have_value("")
    options = select.locator("option")
    expect(options.first).to_have_text("the model's own (hifigan)")
    expect(options.nth(1)).to_have_text("auto: detect it from the mel")
    expect(select.locator("option[value=coqui]")).to_have_text("coqui (80 bands, 22050 Hz)")
    select.select_option("coqui")
    vocode_and_wait(page)
    duration = page.locator("#output-audio").evaluate(
        "a => new Promise(r => a.duration > 0 ? r(a.duration) : a.onloadedmetadata = "
        "() => r(a.duration))"
    )
    # converted from centred frames to the model's: the 2 s the mel was made from
    assert abs(duration - 2.0) < HOP_LENGTH / RATE
    # the facts of the output: model, input, convention applied
    expect(page.locator("#stat-model")).to_have_text(MODEL)
    expect(page.locator("#stat-input")).to_have_text(f"mel 80 × {frames}")
    expect(page.locator("#stat-convention")).to_have_text("coqui (request)")
    assert page.locator("#download").get_attribute("download") == f"tts_coqui_{MODEL}.wav"
    # another convention gives other audio: the output of this one goes
    select.select_option("auto")
    expect(page.locator("#download")).to_be_hidden()
    expect(page.locator("#stat-convention")).to_have_text("–")
    vocode_and_wait(page)
    expect(page.locator("#stat-convention")).to_have_text("coqui (detected)")
    # a new input starts afresh: no verdict, the default choice, no output facts
    upload(page, clip)
    expect(status(page)).to_have_text("ready: press Vocode", timeout=TIMEOUT_MS)
    expect(verdict).to_be_hidden()
    expect(page.locator("#mel-options")).to_be_hidden()
    expect(select).to_have_value("")
    expect(page.locator("#stat-convention")).to_have_text("–")
    # a mel the model cannot take as it is: refused with the server's words and the file name
    wrong = tmp_path / "wrong.npy"
    wrong.write_bytes(npy_bytes(np.full((100, 20), -5.0, np.float32)))
    upload(page, wrong)
    expect(status(page)).to_have_text("ready: press Vocode", timeout=TIMEOUT_MS)
    page.click("#vocode")
    expect(status(page)).to_have_text(
        "wrong.npy: mel has shape (100, 20), but the model expects 80 bands (shape (80, frames))",
        timeout=TIMEOUT_MS,
    )


def test_resampling_and_mixing_are_shown_with_the_input(page, clip, tmp_path):
    audio, rate = load_audio(clip)
    stereo = tmp_path / "stereo44k.wav"
    resampled = np.interp(np.arange(0, len(audio), rate / 44100), np.arange(len(audio)), audio)
    sf.write(str(stereo), np.stack([resampled, resampled], 1), 44100)
    upload(page, stereo)
    expect(status(page)).to_have_text("ready: press Vocode", timeout=TIMEOUT_MS)
    warnings = page.locator("#warnings li")
    expect(warnings).to_have_text(
        [
            "stereo44k.wav: mixed 2 channels down to mono",
            "stereo44k.wav: resampled from 44100 Hz to 22050 Hz",
        ]
    )
    vocode_and_wait(page)
    expect(warnings).to_have_count(2)
    upload(page, clip)  # a new input starts with no warning of the previous one
    expect(status(page)).to_have_text("ready: press Vocode", timeout=TIMEOUT_MS)
    expect(page.locator("#warnings")).to_be_hidden()


def test_a_wrong_api_key_is_said_and_enter_submits_the_key(browser):
    with running_server(api_key="s3cret") as server:
        page = browser.new_page()
        page.goto(server.url + "/")
        bar = page.locator("#key-bar")
        expect(bar).to_be_visible(timeout=TIMEOUT_MS)
        expect(status(page)).to_have_text("this server needs an API key: enter it above")
        page.fill("#api-key", "wrong")
        page.press("#api-key", "Enter")
        expect(page.locator("#key-label")).to_have_text(
            "The API key was refused; enter the right one:"
        )
        expect(status(page)).to_have_text("the API key was refused: enter the right one above")
        expect(bar).to_be_visible()
        page.fill("#api-key", "s3cret")
        page.press("#api-key", "Enter")
        expect(page.locator("#model")).to_have_value(MODEL, timeout=TIMEOUT_MS)
        expect(bar).to_be_hidden()
        expect(status(page)).to_have_text("upload a recording or a mel, or use the demo clip")
        page.close()


def test_the_answers_the_page_reads(server, clip, tmp_path):
    audio, rate = load_audio(clip)
    stereo = tmp_path / "stereo.wav"
    sf.write(str(stereo), np.stack([audio, audio], 1), rate)
    reply = server.post(f"/v1/vocode?model={TWIN}", stereo.read_bytes())
    assert reply.status == 200
    assert reply.headers["X-Model"] == TWIN
    assert reply.headers["X-Warnings"] == "mixed 2 channels down to mono"
    assert "X-Warnings" not in server.post("/v1/vocode", clip.read_bytes()).headers
    reply = server.post("/v1/mel?format=json", stereo.read_bytes())
    payload = json.loads(reply.body)
    assert payload["warnings"] == ["mixed 2 channels down to mono"]
    # rounded to 0.01, as documented: no float32 noise such as -5.099999904632568
    numbers = re.findall(rb"-?\d+\.\d+", reply.body)
    assert numbers and all(len(n.split(b".")[1]) <= 2 for n in numbers)
    mel = np.array(payload["mel"])
    assert mel.shape == (80, payload["frames"])
    assert np.allclose(mel, np.round(mel, 2))


def test_screenshot_of_a_tts_mel_vocoded_by_a_built_in_model(browser, tts_mel):
    """``HIFIGAN_SCREENSHOT=PATH``: the page after vocoding a coqui mel with lj-v1."""
    screenshot = os.environ.get("HIFIGAN_SCREENSHOT")
    if not screenshot:
        pytest.skip("set HIFIGAN_SCREENSHOT=PATH to take the docs' screenshot")
    with running_server(models=["lj-v1"]) as server:
        page = browser.new_page(viewport={"width": 1100, "height": 980})
        page.goto(server.url + "/")
        expect(page.locator("#model")).to_have_value("lj-v1", timeout=TIMEOUT_MS)
        upload(page, tts_mel)
        expect(status(page)).to_have_text("ready: press Vocode", timeout=TIMEOUT_MS)
        page.select_option("#convention", "coqui")
        vocode_and_wait(page)
        vocode_and_wait(page)  # the second time, with the model's first-call costs paid
        expect(page.locator("#stat-convention")).to_have_text("coqui (request)")
        page.screenshot(path=screenshot, full_page=True)
        page.close()
