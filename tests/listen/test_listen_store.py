"""The ratings database and the stimuli under failure: files of other applications, read-only
files and folders, a database locked by another program (at start and while raters rate), and
stimuli that are broken at start or vanish while the test runs."""

from __future__ import annotations

import sqlite3
import time

import numpy as np
import pytest
import soundfile as sf
from listen_helpers import (
    CliServer,
    ThreadServer,
    make_stimuli,
    needs_serve,
    system_args,
)

from hifigan.errors import HiFiGANError
from hifigan.listen.store import APPLICATION_ID, SCHEMA_VERSION, Store, StoreUnavailable


@pytest.fixture
def folders(tmp_path):
    return make_stimuli(tmp_path / "stimuli")


def one_line_error(run_cli, *args) -> str:
    """The error line of a ``hifigan`` run that must fail with exit status 1."""
    code, _, err = run_cli(*args)
    lines = [line for line in err.splitlines() if not line.startswith("warning:")]
    assert code == 1 and len(lines) == 1, err
    return lines[0]


def snapshot(folder):
    """Every file in ``folder`` with its bytes: a refused database leaves all of them alone
    (no journal, no -wal, not one changed byte)."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def pragma(path, name: str) -> int:
    db = sqlite3.connect(path)
    try:
        return db.execute(f"PRAGMA {name}").fetchone()[0]
    finally:
        db.close()


# ---------------------------------------------------------------------- whose database
def other_app_db(path, application_id: int = 0) -> None:
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
        "CREATE TABLE users (name TEXT);"
        "INSERT INTO meta VALUES ('version', '7');"
        "INSERT INTO users VALUES ('ann');"
    )
    if application_id:
        db.execute(f"PRAGMA application_id = {application_id}")
    db.commit()
    db.close()


@pytest.mark.filterwarnings("ignore::UserWarning")  # the stem only one folder has
@pytest.mark.parametrize(
    ("kind", "held"),
    [
        ("tables", "another application's SQLite database (tables: meta, users)"),
        ("marked", "another application's SQLite database (application_id 0x0000abcd; tables"),
        ("text", "it holds 320 bytes of other data, not SQLite"),
    ],
)
def test_a_database_of_another_application_is_refused_untouched(
    run_cli, folders, tmp_path, kind, held
):
    home = tmp_path / "app"
    home.mkdir()
    db = home / "other_app.sqlite"
    if kind == "text":
        db.write_text("not a database at all, just text" * 10)
    else:
        other_app_db(db, 0xABCD if kind == "marked" else 0)
    before = snapshot(home)
    for args in (["--results"], system_args(folders)):
        line = one_line_error(run_cli, "listen", *args, "--db", db)
        assert line.startswith(f"error: {db}: not a usable ratings database: ")
        assert held in line
    if kind != "text":
        assert "nothing was written to it (choose another --db)" in line
    assert snapshot(home) == before
    with pytest.raises(HiFiGANError, match="not a usable ratings database"):
        Store(db)
    assert snapshot(home) == before


def test_our_databases_carry_the_mark_and_the_schema_version(tmp_path):
    empty = tmp_path / "empty.sqlite"
    empty.touch()  # an empty file is a new database
    for path in (tmp_path / "new.sqlite", empty):
        Store(path).close()
        assert pragma(path, "application_id") == APPLICATION_ID
        assert pragma(path, "user_version") == SCHEMA_VERSION
    store = Store(empty)  # and is ours when opened again
    store.close()
    newer = sqlite3.connect(empty)
    newer.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    newer.commit()
    newer.close()
    with pytest.raises(HiFiGANError, match=rf"of a newer hifigan \(schema {SCHEMA_VERSION + 1};"):
        Store(empty)


def test_a_database_from_before_the_mark_is_adopted(tmp_path):
    """Ratings databases written before the application id existed: exactly our three
    tables and schema 1 in ``meta``."""
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
        "CREATE TABLE raters (rater TEXT NOT NULL, mode TEXT NOT NULL, number INTEGER NOT NULL,"
        " plan TEXT NOT NULL, created TEXT NOT NULL, PRIMARY KEY (rater, mode));"
        "CREATE TABLE ratings (id INTEGER PRIMARY KEY, rater TEXT NOT NULL, mode TEXT NOT NULL,"
        " trial INTEGER NOT NULL, utterance TEXT NOT NULL, system TEXT NOT NULL, system_b TEXT,"
        " score INTEGER, choice TEXT, time TEXT NOT NULL, UNIQUE (rater, mode, trial));"
        "INSERT INTO meta VALUES ('schema', '1');"
        "INSERT INTO meta VALUES ('systems', '[\"ground truth\", \"s\"]');"
        "INSERT INTO raters VALUES ('Ann', 'mos', 0, '[[\"u\", \"s\"]]', 't');"
        "INSERT INTO raters VALUES ('Ann', 'ab', 0, '[]', 't');"
        "INSERT INTO ratings VALUES (1, 'Ann', 'mos', 0, 'u', 's', NULL, 4, NULL, 't');"
    )
    db.commit()
    db.close()
    store = Store(path, read_only=True)  # --results reads it as it is
    assert [r["score"] for r in store.ratings("mos")] == [4]
    assert store.tests() == {"schema-1 mos": ("mos", 1), "schema-1 ab": ("ab", 0)}
    store.close()
    assert pragma(path, "application_id") == 0
    store = Store(path)  # upgraded to schema 2: rows wait for their test
    assert [r["score"] for r in store.ratings("mos")] == [4]
    assert pragma(path, "user_version") == SCHEMA_VERSION == 2
    assert store.find_rater("ann", "t1") is None
    # a test with other systems does not take them; one with these systems does
    assert not store.claim_untagged("mos", "t0", ["ground truth", "other"])
    assert store.claim_untagged("mos", "t1", ["s", "ground truth"])
    assert not store.claim_untagged("mos", "t2", ["s", "ground truth"])  # claimed once
    assert store.find_rater(" ANN", "t1") == "Ann" and store.plan("Ann", "t1") == [("u", "s")]
    assert [r["score"] for r in store.ratings("mos", "t1")] == [4]
    assert store.tests() == {"t1": ("mos", 1), "schema-1 ab": ("ab", 0)}
    store.close()
    assert pragma(path, "application_id") == APPLICATION_ID


# ---------------------------------------------------------------------- read-only, locked
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_read_only_database_or_folder_is_refused_at_start(run_cli, folders, tmp_path):
    home = tmp_path / "ro"
    home.mkdir()
    db = home / "ratings.sqlite"
    store = Store(db)
    store.add_rating("ann", "mos", 0, ("utt0", "vocoder_alpha"), score=3)
    store.close()
    db.chmod(0o444)
    before = snapshot(home)
    try:
        line = one_line_error(run_cli, "listen", *system_args(folders), "--db", db)
        assert line == (
            f"error: {db}: the ratings database is read-only; ratings are written to it as "
            "they arrive (make it writable, or choose another --db)"
        )
        assert snapshot(home) == before
        code, out, _ = run_cli("listen", "--results", "--db", db, "-o", tmp_path / "res")
        # reading the results needs no writing
        assert code == 0 and "| vocoder_alpha | 3.00 (–) | 1 | 1 |" in out
        db.chmod(0o644)
        home.chmod(0o555)  # SQLite could not write its journal here
        line = one_line_error(run_cli, "listen", *system_args(folders), "--db", db)
        assert line.startswith(f"error: {home}: the folder is read-only; SQLite writes its ")
        fresh = home / "new.sqlite"
        assert "the folder is read-only" in one_line_error(
            run_cli, "listen", *system_args(folders), "--db", fresh
        )
        assert not fresh.exists()
    finally:
        home.chmod(0o755)
        db.chmod(0o644)


def hold_write_lock(path) -> sqlite3.Connection:
    """Another program in the middle of a write transaction on ``path``."""
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO meta VALUES ('other', 'busy')")
    return other


def test_a_database_locked_at_start_is_one_line(tmp_path):
    path = tmp_path / "ratings.sqlite"
    Store(path).close()
    other = hold_write_lock(path)
    try:
        started = time.monotonic()
        with pytest.raises(StoreUnavailable) as failure:
            Store(path, timeout=0.3)
        assert time.monotonic() - started < 10
        assert str(failure.value) == (
            f"{path}: could not prepare the ratings database (database is locked: another "
            "program is writing to it)"
        )
    finally:
        other.rollback()
        other.close()
    Store(path, timeout=0.3).close()  # free again


@pytest.fixture
def live(folders, tmp_path):
    servers = []

    def start(lock_timeout: float = 0.3) -> ThreadServer:
        # a short wait for locks, so that the locked cases answer at once
        servers.append(
            ThreadServer(folders, tmp_path / "ratings.sqlite", lock_timeout=lock_timeout)
        )
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


@needs_serve
def test_a_lock_while_rating_answers_503_and_the_rating_can_be_sent_again(live, tmp_path, capsys):
    server = live()
    client, db = server.client, tmp_path / "ratings.sqlite"
    answer = client.post("/api/start", {"rater": "ann"}).json()
    capsys.readouterr()
    other = hold_write_lock(db)
    try:
        rating = {"rater": "ann", "trial": answer["trial"], "score": 4}
        refused = client.post("/api/rate", rating)
        assert refused.status == 503 and refused.headers["retry-after"] == "5"
        assert refused.headers["content-type"] == "application/json"
        assert refused.json() == {
            "error": "the server could not save the rating (database is locked: another "
            "program is writing to it); please try again in a moment"
        }
        newcomer = client.post("/api/start", {"rater": "bob"})
        assert newcomer.status == 503 and "register the rater" in newcomer.json()["error"]
        # audio is still served while the database waits
        assert client.get(answer["audio"][0]).status == 200
    finally:
        other.rollback()
        other.close()
    log = [line for line in capsys.readouterr().err.splitlines() if line]
    assert log == [
        f"warning: POST /api/rate: {db}: could not save the rating (database is locked: "
        "another program is writing to it)",
        f"warning: POST /api/start: {db}: could not register the rater (database is locked: "
        "another program is writing to it)",
    ]
    again = client.post("/api/rate", rating)  # what the page does when the rater retries
    assert again.status == 200 and again.json()["done"] == 1
    rows = sqlite3.connect(db).execute("SELECT rater, trial, score FROM ratings").fetchall()
    assert rows == [("ann", answer["trial"], 4)]
    assert client.post("/api/start", {"rater": "bob"}).status == 200


# ---------------------------------------------------------------------- stimuli
@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize(
    ("samples", "problem"),
    [
        (np.array([0.1, np.nan, 0.2] * 100, np.float32), "audio contains NaN or infinite"),
        (np.array([0.1, np.inf, 0.2] * 100, np.float32), "audio contains NaN or infinite"),
        (np.zeros(0, np.float32), "audio file has no samples"),
    ],
    ids=["nan", "inf", "empty"],
)
def test_a_broken_stimulus_is_refused_at_start(run_cli, folders, tmp_path, samples, problem):
    broken = folders["vocoder_beta"] / "utt1.wav"
    sf.write(broken, samples, 16000, subtype="FLOAT")
    db = tmp_path / "ratings.sqlite"
    line = one_line_error(run_cli, "listen", *system_args(folders), "--db", db)
    assert line == f"error: {broken}: {problem}" + (" samples" if "NaN" in problem else "")
    assert not db.exists()  # refused before anything was written


@needs_serve
def test_a_stimulus_made_unreadable_while_serving_answers_410(live, folders, capsys):
    server = live()
    client = server.client
    answer = client.post("/api/start", {"rater": "ann"}).json()
    capsys.readouterr()
    for folder in folders.values():  # whichever file the trial plays
        for path in folder.iterdir():
            path.write_bytes(b"no longer audio")
    reply = client.get(answer["audio"][0])
    assert reply.status == 410 and reply.json() == {
        "error": "this recording is no longer available"
    }
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"warning: GET {answer['audio'][0]}: {folders['ref'].parent}")
    assert "stimulus no longer readable since the test started (" in line
    assert client.get("/audio/" + "0" * 24).status == 404  # unknown ids stay 404
    # a reload (the page's advice) moves the rater on to trials that can still be played
    after = client.get("/api/next?rater=ann").json()
    assert after["trial"] != answer["trial"] and after["total"] == answer["total"] - 1


@needs_serve
def test_a_stimulus_deleted_while_serving_answers_410_through_the_cli(folders, tmp_path):
    db = tmp_path / "cli.sqlite"
    server = CliServer([*system_args(folders), "--db", str(db)])
    try:
        answer = server.client.post("/api/start", {"rater": "ann"}).json()
        for folder in folders.values():
            for path in folder.iterdir():
                path.unlink()
        reply = server.client.get(answer["audio"][0])
        assert reply.status == 410, reply.text
        assert reply.json() == {"error": "this recording is no longer available"}
    finally:
        code, _, err = server.stop()
    assert code == 0, err
    logged = [line for line in err.splitlines() if "/audio/" in line]
    assert len(logged) == 1 and logged[0].endswith(
        "stimulus no longer readable since the test started (not found)"
    ), err
