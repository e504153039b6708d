"""The listening test taken end to end in a real browser: Debian's chromium driven by Playwright.

Screenshots of the rating and results pages go to the test's temporary folder, and also to
``$HIFIGAN_LISTEN_SCREENSHOTS`` when set (the documentation's images come from
``HIFIGAN_LISTEN_SCREENSHOTS=docs/images``).
"""

import importlib.util
import os
import shutil
import sqlite3
from pathlib import Path

import pytest
from listen_helpers import SYSTEMS, CliServer, make_stimuli, needs_serve, system_args

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = [
    needs_serve,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (/usr/bin/chromium)"),
    pytest.mark.skipif(
        importlib.util.find_spec("playwright") is None, reason="needs pip install playwright"
    ),
]
SCORES = [4, 5, 3, 4, 2, 5, 3, 4, 1]  # the browser rater's answers, in the order asked


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless", "--no-sandbox", "--autoplay-policy=no-user-gesture-required"],
        )
        yield browser
        browser.close()


def _screenshot(page, tmp_path: Path, name: str) -> Path:
    """A small palette PNG of the page, kept in tmp_path (and the screenshot folder if set)."""
    from PIL import Image

    raw = tmp_path / f"raw-{name}"
    page.screenshot(path=str(raw), full_page=True)
    path = tmp_path / name
    Image.open(raw).convert("RGB").quantize(colors=64).save(path, optimize=True)
    target = os.environ.get("HIFIGAN_LISTEN_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(target) / name)
    return path


def _rate_one(page, score: int) -> None:
    """Play the clip to the end, pick ``score`` and go on."""
    assert page.evaluate("document.getElementById('scale').disabled")  # no rating unheard
    from playwright.sync_api import expect

    page.click("#mos-trial button.play")
    expect(page.locator("#scale input").first).to_be_enabled(timeout=20000)
    assert page.locator("#next").is_disabled()  # nothing chosen yet
    page.locator("#scale label").nth(score - 1).click()


def _next(page, position: int) -> None:
    """Send the rating of clip ``position`` (from 1) and wait for the next clip or the end."""
    from playwright.sync_api import expect

    page.click("#next")
    if position < len(SCORES):
        expect(page.locator("#count")).to_have_text(f"{position + 1} of {len(SCORES)}")
    else:
        expect(page.locator("#finished")).to_be_visible()


def test_mos_test_in_the_browser(browser, run_cli, tmp_path):
    folders = make_stimuli(tmp_path / "stimuli", seconds=0.3)
    db = tmp_path / "ratings.sqlite"
    server = CliServer([*system_args(folders), "--db", str(db), "--title", "Vocoder MOS test"])
    requests = []
    try:
        page = browser.new_page(viewport={"width": 760, "height": 640})
        page.on("request", lambda r: requests.append(r.url))
        page.goto(server.base + "/")
        assert page.is_visible("#start") and not page.is_visible("#test")
        page.fill("#name", "Browser rater")
        page.click("#start-form button")
        page.wait_for_selector("#test", state="visible")
        assert page.text_content("#count") == "1 of 9"
        _rate_one(page, SCORES[0])
        shot = _screenshot(page, tmp_path, "listen.png")
        _next(page, 1)
        _rate_one(page, SCORES[1])
        _next(page, 2)

        page.reload()  # the browser remembers the rater: straight back to the third clip
        page.wait_for_selector("#test", state="visible")
        assert page.text_content("#count") == "3 of 9"
        assert page.text_content("#rater-name") == "Browser rater"
        for position, score in enumerate(SCORES[2:], start=3):
            _rate_one(page, score)
            _next(page, position)
        page.wait_for_selector("#finished", state="visible")
        assert "All 9 of your ratings are saved" in page.text_content("#finished")
        assert page.evaluate("document.getElementById('progress-bar').style.width") == "100%"
        assert not page.is_visible("#error")

        assert page.goto(server.base + "/results").status == 403
        page.goto(server.base + server.results_path)
        cells = page.locator("tbody tr").all_inner_texts()
        results_shot = _screenshot(page, tmp_path, "listen-results.png")
    finally:
        code, _, err = server.stop()
    assert code == 0, err
    assert all(url.startswith(server.base + "/") for url in requests)  # nothing from elsewhere
    for path in (shot, results_shot):
        assert path.read_bytes()[:4] == b"\x89PNG" and 2000 < path.stat().st_size < 150_000

    # the browser's ratings in --results and on the results page: 3 per system, one rater,
    # and the system means add up to the scores given
    code, out, err = run_cli("listen", "--results", "--db", db, "--no-plot")
    assert code == 0, err
    rows = [line.split("|")[1:-1] for line in out.splitlines()[2:]]
    assert [r[0].strip() for r in rows] == ["ground truth", *SYSTEMS]
    assert all(r[2].strip() == "3" and r[3].strip() == "1" for r in rows)
    with open(tmp_path / "results.csv") as f:
        means = [float(line.split(",")[1]) for line in f.readlines()[1:]]
    assert sum(3 * m for m in means) == pytest.approx(sum(SCORES))
    assert len(cells) == 3
    for row, cell in zip(rows, cells):
        assert cell.split("\t") == [c.strip() for c in row]


def test_ab_test_in_the_browser(browser, tmp_path):
    from playwright.sync_api import expect

    folders = make_stimuli(tmp_path / "stimuli", seconds=0.2)
    db = tmp_path / "ratings.sqlite"
    args = [*system_args(folders), "--db", str(db), "--mode", "ab", "--per-rater", "3"]
    server = CliServer(args)
    try:
        page = browser.new_page()
        page.goto(server.base + "/")
        assert page.is_visible("text=Choose the one that sounds more")
        page.click("#start-form button")  # no name: a generated id
        page.wait_for_selector("#test", state="visible")
        choices = ["A", "none", "B"]
        for position, choice in enumerate(choices, start=1):
            players = page.locator("#ab-trial button.play")
            players.nth(0).click()
            expect(players.nth(0)).to_have_text("Play again", timeout=20000)
            expect(page.locator("#choice input").first).to_be_disabled()  # B not heard yet
            players.nth(1).click()
            expect(page.locator("#choice input").first).to_be_enabled(timeout=20000)
            page.locator(f"#choice input[value='{choice}']").locator("..").click()
            page.click("#next")
            if position < len(choices):
                expect(page.locator("#count")).to_have_text(f"{position + 1} of 3")
        expect(page.locator("#finished")).to_be_visible()
        rater = page.text_content("#rater-name")
    finally:
        code, _, err = server.stop()
    assert code == 0, err
    db_rows = sqlite3.connect(db).execute("SELECT rater, choice FROM ratings ORDER BY id")
    assert db_rows.fetchall() == [(rater, c) for c in choices]
    assert rater.startswith("rater-")


def _rate_mos(page, count: int, total: int, score: int = 4) -> None:
    """Rate ``count`` clips with ``score``; the last of ``total`` leads to the thank-you."""
    from playwright.sync_api import expect

    for _ in range(count):
        position = int(page.text_content("#count").split()[0])
        _rate_one(page, score)
        page.click("#next")
        if position < total:
            expect(page.locator("#count")).to_have_text(f"{position + 1} of {total}")
        else:
            expect(page.locator("#finished")).to_be_visible()


def _choose_ab(page, choice: str) -> None:
    """Play both clips to the end, pick ``choice`` (A, B or none) and go on."""
    from playwright.sync_api import expect

    players = page.locator("#ab-trial button.play")
    players.nth(0).click()
    expect(players.nth(0)).to_have_text("Play again", timeout=20000)
    players.nth(1).click()
    expect(page.locator("#choice input").first).to_be_enabled(timeout=20000)
    page.locator(f"#choice input[value='{choice}']").locator("..").click()
    page.click("#next")


def test_one_computer_many_raters_and_a_later_ab_test(browser, tmp_path):
    """The next rater after a finished one, names in any case with the continue-or-choose
    question, then an A/B test on the same address and database: its own instructions, its
    own counts, results that name the systems, and no 404 (the icon) on any page."""
    from playwright.sync_api import expect

    folders = make_stimuli(tmp_path / "stimuli", seconds=0.2)
    db = tmp_path / "ratings.sqlite"
    common = [*system_args(folders), "--db", str(db), "--per-rater", "2"]
    server = CliServer([*common, "--title", "Vocoder MOS test"])
    statuses = {}
    try:
        page = browser.new_page(viewport={"width": 760, "height": 560})
        page.on("response", lambda r: statuses.setdefault(r.url.split("?")[0], r.status))
        page.goto(server.base + "/")
        icon = page.request.get(server.base + "/favicon.ico")
        assert icon.status == 200 and icon.headers["content-type"].startswith("image/")
        assert page.get_attribute("link[rel=icon]", "href") == "/favicon.ico"
        page.fill("#name", "Ann")
        page.click("#start-form button")
        page.wait_for_selector("#test", state="visible")
        _rate_mos(page, 2, 2)
        assert page.is_visible("#next-rater")
        thanks = _screenshot(page, tmp_path, "listen-thanks.png")

        page.reload()  # a reload after finishing opens the start page, not the thank-you
        expect(page.locator("#start")).to_be_visible()
        assert not page.is_visible("#finished") and page.input_value("#name") == ""

        page.goto(server.base + "/")
        page.fill("#name", "  ANN ")  # Ann's name in other case: asked, not merged
        page.click("#start-form button")
        expect(page.locator("#existing")).to_be_visible()
        assert "\u201cAnn\u201d has finished this test (2 ratings)" in page.text_content(
            "#existing-text"
        )
        assert page.text_content("#continue") == "Continue as Ann"
        page.click("#other-name")
        assert not page.is_visible("#existing") and page.input_value("#name") == ""
        page.fill("#name", "ann")
        page.click("#start-form button")
        page.click("#continue")
        expect(page.locator("#finished")).to_be_visible()
        assert "All 2 of your ratings are saved" in page.text_content("#finished")

        page.click("#next-rater")  # the button: straight to a fresh start page
        expect(page.locator("#start")).to_be_visible()
        assert page.input_value("#name") == "" and page.is_visible("text=Rate how")
        fresh = _screenshot(page, tmp_path, "listen-next-rater.png")
        page.fill("#name", "Bo")
        page.click("#start-form button")
        page.wait_for_selector("#test", state="visible")
        _rate_mos(page, 1, 2)  # Bo stops halfway: this browser remembers Bo for the MOS test
    finally:
        code, _, err = server.stop()
    assert code == 0, err

    # an A/B test on the same address and database
    ab = CliServer([*common, "--mode", "ab", "--title", "Vocoder A/B test"], port=server.port)
    try:
        announced = "".join(ab.lines)
        assert (
            f"ratings: {db} (0 so far in this test; the database also holds 1 other test (MOS) "
            "with 3 ratings)" in announced
        )
        page.goto(ab.base + "/")
        expect(page.locator("#start")).to_be_visible()  # not Bo's MOS place: A/B instructions
        assert page.is_visible("text=Choose the one that sounds more")
        page.fill("#name", "bo")  # Bo has no A/B ratings: no question
        page.click("#start-form button")
        page.wait_for_selector("#test", state="visible")
        assert page.text_content("#rater-name") == "bo"  # a rater of this test, as typed
        _choose_ab(page, "A")
        expect(page.locator("#count")).to_have_text("2 of 2")
        _choose_ab(page, "none")
        expect(page.locator("#finished")).to_be_visible()

        page.goto(ab.base + ab.results_path)
        status = page.text_content("p.status")
        header = page.locator("thead th").all_inner_texts()
        rows = [row.split("\t") for row in page.locator("tbody tr").all_inner_texts()]
    finally:
        code, _, err = ab.stop()
    assert code == 0, err
    assert status == (
        "This A/B test: raters 1 started, 1 finished; ratings 2. The database also holds "
        "1 other test (MOS) with 3 ratings (hifigan listen --results)."
    )
    assert header[:5] == [
        "system 1",
        "system 2",
        "prefer system 1",
        "no preference",
        "prefer system 2",
    ]
    assert header[-1] == "chose A / B (as heard)"
    assert sum(int(row[5]) for row in rows) == 2
    for row in rows:  # each preference names its system
        assert row[2].startswith(f"{row[0]}: ") and row[4].startswith(f"{row[1]}: ")
    assert [url for url, code in statuses.items() if code >= 400] == []
    for path in (thanks, fresh):
        assert path.read_bytes()[:4] == b"\x89PNG" and 2000 < path.stat().st_size < 150_000
