"""The web page in a real browser: upload a clip, vocode it, play and download the result.

Uses the system's Chromium (``/usr/bin/chromium``, or ``HIFIGAN_CHROMIUM``) driven by
Playwright's Python package; skips without either. With ``HIFIGAN_SCREENSHOT=PATH`` it also
saves a screenshot of the page after vocoding (``docs/images/serve.png`` is made this way).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import soundfile as sf

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
pytest.importorskip("playwright")

from playwright.sync_api import expect, sync_playwright
from serve_helpers import running_server

from conftest import LJSPEECH, need

CHROMIUM = Path(os.environ.get("HIFIGAN_CHROMIUM", "/usr/bin/chromium"))
CLIP = LJSPEECH / "wavs" / "LJ001-0001.flac"
TIMEOUT_MS = 120_000


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


def test_page_vocodes_an_upload_plays_and_downloads(browser, tmp_path):
    clip = need(CLIP)
    with running_server() as server:
        page = browser.new_page(viewport={"width": 1100, "height": 980})
        requests: list[str] = []
        page.on("request", lambda r: requests.append(r.url))
        page.goto(server.url + "/")
        expect(page.locator("#model")).to_have_value("lj-v2", timeout=TIMEOUT_MS)
        page.set_input_files("#file", str(clip))
        expect(page.locator("#status")).to_have_text("ready: press Vocode", timeout=TIMEOUT_MS)
        page.click("#vocode")
        expect(page.locator("#status")).to_have_text("done", timeout=TIMEOUT_MS)
        output = page.locator("#output-audio")
        assert output.get_attribute("src").startswith("blob:")
        page.wait_for_function(
            "document.getElementById('output-audio').duration > 0", timeout=TIMEOUT_MS
        )
        duration = output.evaluate("a => a.duration")
        assert abs(duration - sf.info(str(clip)).duration) < 0.02
        assert "× real time" in page.locator("#stat-speed").inner_text()
        with page.expect_download(timeout=TIMEOUT_MS) as download_info:
            page.click("#download")
        download = download_info.value
        assert download.suggested_filename == "LJ001-0001_lj-v2.wav"
        saved = tmp_path / download.suggested_filename
        download.save_as(saved)
        info = sf.info(str(saved))
        assert (info.format, info.subtype, info.samplerate) == ("WAV", "PCM_16", 22050)
        assert info.frames % 256 == 0 and abs(info.frames - sf.info(str(clip)).frames) < 512
        screenshot = os.environ.get("HIFIGAN_SCREENSHOT")
        if screenshot:
            page.screenshot(path=screenshot, full_page=True)
        assert all(url.startswith((server.url, "blob:", "data:")) for url in requests)
        page.close()
