"""One computer, many raters, several tests: names compared without case, a taken name asked
about, raters and counts kept per test, the pages' icon. Served for real on loopback."""

import sqlite3

import pytest
from listen_helpers import SYSTEMS, ThreadServer, make_stimuli, needs_serve, take_trials

from hifigan.listen.server import identity_of
from hifigan.listen.stimuli import collect_stimuli, parse_systems
from hifigan.listen.store import Store, name_key

pytestmark = needs_serve


@pytest.fixture
def folders(tmp_path):
    return make_stimuli(tmp_path / "stimuli")


def _score(answer: dict) -> dict:
    return {"score": 3}


def test_names_ignore_case_and_a_name_with_ratings_is_asked_about(folders, tmp_path):
    server = ThreadServer(folders, tmp_path / "ratings.sqlite", per_rater=4)
    client = server.client
    try:
        first = client.post("/api/start", {"rater": "Ann"}).json()
        _, answer = take_trials(client, "Ann", first, _score, limit=2)
        for typed in ("ann", "  ANN ", "aNn"):
            asked = client.post("/api/start", {"rater": typed})
            assert asked.status == 409, typed
            body = asked.json()
            assert body["existing"] == {"rater": "Ann", "done": 2, "total": 4, "finished": False}
            assert body["error"] == "the name 'Ann' already has ratings in this test"
        resumed = client.post("/api/start", {"rater": "ANN", "resume": True})
        assert resumed.status == 200 and resumed.json() == answer  # Ann's place, Ann's name
        assert client.get("/api/next?rater=ann").json() == answer
        rated = client.post("/api/rate", {"rater": " aNN", "trial": answer["trial"], "score": 5})
        assert rated.status == 200 and rated.json()["rater"] == "Ann"

        # a name registered without ratings is simply taken (nothing to mix up)
        zed = client.post("/api/start", {"rater": "Zed"}).json()
        again = client.post("/api/start", {"rater": "zed"})
        assert again.status == 200 and again.json() == zed
        assert client.get("/api/next?rater=nobody").status == 404
    finally:
        server.stop()
    db = sqlite3.connect(tmp_path / "ratings.sqlite")
    raters = db.execute("SELECT rater FROM raters ORDER BY number").fetchall()
    assert raters == [("Ann",), ("Zed",)]  # one row per person, as first typed
    ratings = db.execute("SELECT rater, COUNT(*) FROM ratings GROUP BY rater").fetchall()
    assert ratings == [("Ann", 3)]


def test_a_later_test_on_the_same_database_has_its_own_raters_and_counts(folders, tmp_path):
    db = tmp_path / "ratings.sqlite"
    mos = ThreadServer(folders, db, per_rater=3)
    try:
        first = mos.client.post("/api/start", {"rater": "Ann"}).json()
        take_trials(mos.client, "Ann", first, _score)
        mos_page = mos.client.get("/").text
        mos_id = mos.test.identity
    finally:
        mos.stop()

    ab = ThreadServer(folders, db, mode="ab", per_rater=2)
    try:
        client = ab.client
        assert ab.test.identity != mos_id
        page = client.get("/").text
        assert f'data-test="{ab.test.identity}"' in page and f'data-test="{mos_id}"' in mos_page
        assert client.get("/api/next?rater=Ann").status == 404  # a rater of the MOS test only
        start = client.post("/api/start", {"rater": "ann"})  # no ratings here: no question
        assert start.status == 200 and start.json()["done"] == 0 and start.json()["total"] == 2
        results = client.get(f"/results?token={ab.test.token}").text
        assert (
            "This A/B test: raters 1 started, 0 finished; ratings 0. The database also holds "
            "1 other test (MOS) with 3 ratings (hifigan listen --results)." in results
        )
        assert "Mean opinion score" not in results  # the other test's table is not this one's
        assert ab.test.ratings() == [] and len(ab.store.ratings("mos")) == 3
    finally:
        ab.stop()

    mos = ThreadServer(folders, db, per_rater=3)  # the MOS test again: Ann is known there
    try:
        assert mos.test.identity == mos_id
        again = mos.client.post("/api/start", {"rater": "Ann", "resume": True}).json()
        assert again["finished"] and again["done"] == 3
        assert "1 other test (A/B) with 0 ratings" in mos.test.others()
    finally:
        mos.stop()


@pytest.mark.filterwarnings("ignore::UserWarning")  # the stem only one folder has
def test_identity_is_mode_systems_and_folders(folders, tmp_path):
    def identity(mode, names=SYSTEMS, where=folders):
        systems = parse_systems([f"{name}={where[name]}" for name in names])
        return identity_of(mode, collect_stimuli(where["ref"], systems))

    base = identity("mos")
    assert identity("mos", names=SYSTEMS[::-1]) == base  # the order given does not matter
    assert identity("ab") != base
    assert identity("mos", names=SYSTEMS[:1]) != base
    elsewhere = make_stimuli(tmp_path / "round2")
    assert identity("mos", where=elsewhere) != base  # the same names on other recordings
    (folders["vocoder_beta"] / "utt2.wav").unlink()
    assert identity("mos") == base  # a file gone: the same test, its trials are skipped


def test_the_pages_have_an_icon(folders, tmp_path):
    server = ThreadServer(folders, tmp_path / "ratings.sqlite")
    try:
        icon = server.client.get("/favicon.ico")
        index = server.client.get("/").text
        results = server.client.get(f"/results?token={server.test.token}").text
    finally:
        server.stop()
    assert icon.status == 200 and icon.headers["content-type"] == "image/x-icon"
    assert icon.body[:4] == b"\x00\x00\x01\x00" and len(icon.body) < 8000  # an ICO file
    for page in (index, results):
        assert '<link rel="icon" href="/favicon.ico"' in page


def test_name_keys_ignore_case_spaces_and_letter_forms():
    assert name_key("  Ann  Lee ") == name_key("ann lee") == name_key("ＡＮＮ\tLEE")
    assert name_key("Straße") == name_key("STRASSE")
    assert name_key("Ann") != name_key("Anna")


def test_results_say_when_they_pool_several_tests(run_cli, tmp_path):
    db = tmp_path / "ratings.sqlite"
    store = Store(db)
    store.set_meta("systems", '["ground truth", "v1"]')
    for test, score in (("first", 4), ("second", 2)):
        store.add_rating("ann", "mos", 0, ("utt", "v1"), score=score, test=test)
    store.add_rating("ann", "ab", 0, ("utt", "v1", "ground truth"), choice="A", test="third")
    store.close()
    with pytest.warns(UserWarning) as record:
        code, out, err = run_cli("listen", "--results", "--db", db, "--no-plot")
    assert code == 0, err
    # one A/B test: nothing to say about it
    assert [str(w.message) for w in record] == [
        f"{db}: 2 MOS tests; their ratings are pooled per system"
    ]
    assert "| v1 | 3.00 (±12.71) | 2 | 1 |" in out
