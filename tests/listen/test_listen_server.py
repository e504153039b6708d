"""``hifigan listen`` served for real on a loopback port: a MOS test taken over HTTP, a restart
that keeps ratings and positions, the results token, path traversal, A/B mode, the CLI."""

import io
import itertools
import logging
import socket
import sqlite3
import time

import numpy as np
import pytest
import soundfile as sf
from listen_helpers import (
    SYSTEMS,
    CliServer,
    ThreadServer,
    make_stimuli,
    needs_serve,
    system_args,
    take_trials,
)

from hifigan.evaluation.render import GROUND_TRUTH

pytestmark = needs_serve


@pytest.fixture
def folders(tmp_path):
    return make_stimuli(tmp_path / "stimuli")


@pytest.fixture
def serve(folders, tmp_path):
    servers = []

    def start(**options) -> ThreadServer:
        server = ThreadServer(folders, tmp_path / "ratings.sqlite", **options)
        servers.append(server)
        return server

    yield start
    for server in servers:
        if server.thread.is_alive():
            server.stop()


def _score(answer: dict) -> dict:
    return {"score": 1 + answer["trial"] % 5}


def test_mos_test_taken_over_http(serve, tmp_path):
    server = serve(title="Vocoder <test>")
    client = server.client
    page = client.get("/")
    assert page.status == 200 and "Vocoder &lt;test&gt;" in page.text
    assert 'data-mode="mos"' in page.text and "Excellent" in page.text
    assert client.get("/static/app.js").status == 200
    first = client.post("/api/start", {"rater": "  Ann  "}).json()
    assert first["rater"] == "Ann" and first["done"] == 0 and first["total"] == 9  # 3 utt x 3
    seen, last = take_trials(client, "Ann", first, _score)
    assert last["finished"] and last["done"] == 9 == len(seen)
    assert [a["done"] for a in seen] == list(range(9))  # progress moves one at a time

    # raters never see system names or file names
    for answer in seen:
        text = str(answer)
        assert not any(name in text for name in (*SYSTEMS, "ground", "utt", "ref"))
    assert not any(name in page.text for name in SYSTEMS)

    # every (utterance, system) once, scores as sent, never one utterance twice in a row
    db = sqlite3.connect(tmp_path / "ratings.sqlite")
    rows = db.execute("SELECT trial, utterance, system, score, mode FROM ratings").fetchall()
    assert sorted((u, s) for _, u, s, _, _ in rows) == sorted(
        itertools.product(["utt0", "utt1", "utt2"], [GROUND_TRUTH, *SYSTEMS])
    )
    assert all(score == 1 + trial % 5 and mode == "mos" for trial, _, _, score, mode in rows)
    order = [u for (_, u, *_) in sorted(rows)]
    assert all(a != b for a, b in itertools.pairwise(order))


def test_audio_is_uniform_normalised_wav(serve, folders):
    server = serve()
    answer = server.client.post("/api/start", {"rater": "x"}).json()
    levels = {}
    while not answer["finished"]:
        reply = server.client.get(answer["audio"][0])
        assert reply.headers["content-type"] == "audio/wav"
        audio, rate = sf.read(io.BytesIO(reply.body), dtype="float64")
        assert rate == 16000 and audio.ndim == 1
        _, system = server.test.stimuli.lookup(answer["audio"][0].rsplit("/", 1)[1])
        levels[system] = 20 * np.log10(np.sqrt(np.mean(audio**2)))
        answer = server.client.post(
            "/api/rate", {"rater": "x", "trial": answer["trial"], "score": 3}
        ).json()
    # the quiet system (-20 dB) is served at the same level as the others: -23 dBFS
    assert levels.keys() == {GROUND_TRUTH, *SYSTEMS}
    np.testing.assert_allclose(list(levels.values()), -23.0, atol=0.05)


def test_ratings_and_positions_survive_a_restart(serve):
    server = serve()
    first = server.client.post("/api/start", {"rater": "Bo"}).json()
    _, answer = take_trials(server.client, "Bo", first, _score, limit=4)
    assert answer["done"] == 4
    server.stop()

    server = serve()
    again = server.client.get("/api/next?rater=Bo").json()
    assert again == answer  # same trial, same audio ids, same progress
    asked = server.client.post("/api/start", {"rater": "Bo"})  # a name with ratings: asked
    assert asked.status == 409 and asked.json()["existing"]["done"] == 4
    assert server.client.post("/api/start", {"rater": "Bo", "resume": True}).json() == answer
    _, last = take_trials(server.client, "Bo", again, _score)
    assert last["finished"] and last["done"] == 9
    assert len(server.store.ratings("mos")) == 9
    # a second rater starts at the next place of the rotation
    other = server.client.post("/api/start", {"rater": "Cy"}).json()
    assert other["done"] == 0 and other["total"] == 9


def test_a_restart_without_some_files_skips_their_trials(serve, folders):
    server = serve()
    first = server.client.post("/api/start", {"rater": "Hal"}).json()
    seen, _ = take_trials(server.client, "Hal", first, _score, limit=3)
    rated = [server.test.stimuli.lookup(a["audio"][0].rsplit("/", 1)[1]) for a in seen]
    server.stop()
    (folders["vocoder_beta"] / "utt2.wav").unlink()  # utt2 leaves the test

    with pytest.warns(UserWarning, match=r"\(utt2, \.\.\.\)"):
        server = serve()
    answer = server.client.get("/api/next?rater=Hal").json()
    assert answer["total"] == 6  # 2 utterances x 3 systems of the plan's 9 trials
    assert answer["done"] == sum(utterance != "utt2" for utterance, _ in rated)
    seen, last = take_trials(server.client, "Hal", answer, _score)
    assert last["finished"] and last["done"] == 6
    heard = {server.test.stimuli.lookup(a["audio"][0].rsplit("/", 1)[1])[0] for a in seen}
    assert "utt2" not in heard


def test_results_page_needs_the_token(serve):
    server = serve()
    client = server.client
    answer = client.post("/api/start", {"rater": "Di"}).json()
    take_trials(client, "Di", answer, lambda a: {"score": 4})
    assert client.get("/results").status == 403
    assert client.get("/results?token=").status == 403
    assert client.get(f"/results?token={server.test.token}x").status == 403
    client.post("/api/start", {"rater": "Eve"})
    page = client.get(f"/results?token={server.test.token}")
    assert page.status == 200
    assert "This MOS test: raters 2 started, 1 finished; ratings 9." in page.text
    for system in (GROUND_TRUTH, *SYSTEMS):
        assert f"<td>{system}</td><td>4.00 (±0.00)</td><td>3</td><td>1</td>" in page.text


@pytest.mark.parametrize(
    "path",
    [
        "/audio/../../../etc/passwd",
        "/audio/..%2F..%2F..%2Fetc%2Fpasswd",
        "/audio/%2e%2e/%2e%2e/etc/passwd",
        "/static/../store.py",
        "/static/..%2Fstore.py",
        "/static/%2e%2e/store.py",
        "/static/%2e%2e%2fstore.py",
        "/static//etc/passwd",
        "/audio/utt0",
        "/audio/",
    ],
)
def test_path_traversal_is_not_found(serve, path):
    reply = serve().client.get(path)
    assert reply.status == 404
    assert b"root:" not in reply.body and b"sqlite3" not in reply.body


def test_bad_requests(serve):
    client = serve().client
    assert client.post("/api/start", {"rater": "x" * 65}).status == 400
    assert client.post("/api/start", {"rater": "a\nb"}).status == 400
    assert client.get("/api/next?rater=nobody").status == 404
    assert client.post("/api/rate", {"rater": "nobody", "trial": 0, "score": 3}).status == 404
    answer = client.post("/api/start", {"rater": "Ed"}).json()
    trial = answer["trial"]
    for bad in (0, 6, "5", 2.5, True, None):
        reply = client.post("/api/rate", {"rater": "Ed", "trial": trial, "score": bad})
        assert reply.status == 400
    assert client.post("/api/rate", {"rater": "Ed", "trial": 99, "score": 3}).status == 400
    assert client.post("/api/rate", {"rater": "Ed", "trial": trial, "score": 3}).status == 200
    again = client.post("/api/rate", {"rater": "Ed", "trial": trial, "score": 5})
    assert again.status == 409 and again.json()["done"] == 1  # the first rating stands
    generated = client.post("/api/start", {}).json()
    assert generated["rater"].startswith("rater-") and generated["done"] == 0


def test_ab_mode(serve, tmp_path):
    server = serve(mode="ab", per_rater=6)
    client = server.client
    page = client.get("/")
    assert 'data-mode="ab"' in page.text
    answer = client.post("/api/start", {"rater": "Flo"}).json()
    assert answer["total"] == 6  # --per-rater; the test has 3 utterances x 3 pairs = 9
    sides = []

    def choose(a):
        left, right = (server.test.stimuli.lookup(u.rsplit("/", 1)[1]) for u in a["audio"])
        assert left[0] == right[0] and left[1] != right[1]  # one utterance, two systems
        sides.append((left[1], right[1]))
        # the rater prefers vocoder_alpha whenever it plays, and has no preference otherwise
        return {
            "choice": "A" if left[1] == SYSTEMS[0] else "B" if right[1] == SYSTEMS[0] else "none"
        }

    _, last = take_trials(client, "Flo", answer, choose)
    assert last["finished"] and len(sides) == 6
    assert client.post("/api/rate", {"rater": "Flo", "trial": 0, "choice": "C"}).status == 400

    from hifigan.listen.results import ab_results

    rows = ab_results(server.store.ratings("ab"), server.store.systems())
    assert sum(r.trials for r in rows) == 6
    for r in rows:
        if SYSTEMS[0] in (r.system_1, r.system_2):
            wins = r.prefer_1 if r.system_1 == SYSTEMS[0] else r.prefer_2
            assert wins == r.trials and r.no_preference == 0
        else:
            assert r.no_preference == r.trials
    # pairs are oriented ground truth first, whatever side they were heard on
    assert all(r.system_1 == GROUND_TRUTH for r in rows if GROUND_TRUTH in (r.system_1, r.system_2))


def test_cli_serves_prints_token_and_stops_cleanly(folders, tmp_path):
    db = tmp_path / "cli.sqlite"
    server = CliServer([*system_args(folders), "--db", str(db), "--title", "CLI test"])
    try:
        text = "".join(server.lines)
        assert "3 systems (ground truth, vocoder_alpha, vocoder_beta) x 3 utterances" in text
        assert server.client.get("/").status == 200
        assert server.client.get(server.results_path).status == 200
        assert server.client.get("/results").status == 403
        answer = server.client.post("/api/start", {"rater": "Gus"}).json()
        take_trials(server.client, "Gus", answer, _score, limit=2)
    finally:
        code, out, err = server.stop()
    assert code == 0, err
    assert f"stopped; 2 MOS ratings of this test in {db}" in out
    assert "1 files have no reference (extra, ...)" in err


@pytest.mark.filterwarnings("ignore::UserWarning")  # the stems each folder lacks
def test_cli_errors_are_one_line(run_cli, folders, tmp_path):
    db = ["--db", str(tmp_path / "r.sqlite")]
    ref = ["--ref", str(folders["ref"])]

    def error(*args) -> str:
        code, _, err = run_cli("listen", *args)
        lines = [line for line in err.splitlines() if not line.startswith("warning:")]
        assert code == 1 and len(lines) == 1, err
        return lines[0]

    assert error(*db) == "error: give --ref DIR and --system NAME=DIR (or --results to summarise)"
    assert error(*ref, *db) == (
        "error: give at least one --system NAME=DIR to compare with the reference"
    )
    assert error(*ref, "--system", "v1", *db) == "error: --system expects NAME=DIR, got 'v1'"
    assert "is reserved" in error(*ref, "--system", f"Reference={folders['vocoder_beta']}", *db)
    assert "given twice" in error(*ref, "--system", "a=x", "--system", "a=y", *db)
    missing = tmp_path / "missing"
    assert error(*ref, "--system", f"m={missing}", *db) == f"error: {missing}: not a folder"
    # each system shares stems with the reference, but none is shared by all
    odd, even = tmp_path / "odd", tmp_path / "even"
    odd.mkdir(), even.mkdir()
    (odd / "utt1.wav").write_bytes((folders["ref"] / "utt1.wav").read_bytes())
    (even / "utt0.wav").write_bytes((folders["ref"] / "utt0.wav").read_bytes())
    assert error(*ref, "--system", f"o={odd}", "--system", f"e={even}", *db) == (
        f"error: {folders['ref']}: no file stem is present in every --system folder (o, e)"
    )
    (even / "utt1.wav").write_text("not audio")
    assert f"error: {even / 'utt1.wav'}: cannot read audio" in error(
        *ref, "--system", f"o={odd}", "--system", f"e={even}", *db
    )
    args = [*system_args(folders), *db]
    # --per-rater 0 is refused by the parser (exit 2): tests/test_options.py
    from hifigan.listen.server import bind

    taken = bind("127.0.0.1", 0)
    try:
        port = taken.getsockname()[1]
        message = error(*args, "--port", str(port))
        assert message.startswith(f"error: cannot listen on 127.0.0.1:{port} (")
    finally:
        taken.close()


def test_other_hosts_and_other_sites_pages_are_refused(serve):
    server = serve()
    client, port = server.client, server.client.port
    reply = client.get("/api/next?rater=x", headers={"Host": f"evil.example:{port}"})
    assert reply.status == 403
    assert reply.json()["error"].startswith(f"Host 'evil.example:{port}' is not an address")
    assert client.get("/", headers={"Host": f"localhost:{port}"}).status == 200
    for origin in ("https://evil.example", "null", f"http://127.0.0.1:{port + 1}"):
        reply = client.post("/api/start", {"rater": "Mallory"}, headers={"Origin": origin})
        assert reply.status == 403 and "refused" in reply.json()["error"], origin
    assert server.store.plan("Mallory", "mos") is None  # nothing was written
    own = {"Origin": f"http://127.0.0.1:{port}"}
    assert client.post("/api/start", {"rater": "Ann"}, headers=own).status == 200
    assert client.post("/api/start", {"rater": "Bea"}).status == 200  # no Origin: a script


def raw_post(port: int, path: str, length: int, extra: str = "") -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{extra}"
        f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


def test_request_bodies_are_bounded_before_they_are_read(serve):
    from hifigan.listen.server import MAX_BODY_BYTES

    server = serve()
    client = server.client
    limit = "request body is over this server's limit of 64 KiB"
    assert MAX_BODY_BYTES == 64 * 1024
    # 400 MB declared, 256 KB sent: refused at once, without waiting for the rest
    reply = client.raw(raw_post(client.port, "/api/rate", 400 * 2**20) + b"{" * 2**18)
    assert reply is not None and reply.status == 413 and reply.json() == {"error": limit}
    # no Content-Length: cut as it arrives, once past the bound (the body never ends here)
    head = (
        f"POST /api/rate HTTP/1.1\r\nHost: 127.0.0.1:{client.port}\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    ).encode()
    reply = client.raw(head + (b"4000\r\n" + b" " * 0x4000 + b"\r\n") * 8)
    assert reply is not None and reply.status == 413 and reply.json() == {"error": limit}
    # within the bound, answered as before
    answer = client.post("/api/start", {"rater": "Cal"}).json()
    rating = {"rater": "Cal", "trial": answer["trial"], "score": 4, "padding": " " * 60_000}
    assert client.post("/api/rate", rating).status == 200


def test_a_rater_leaving_mid_upload_is_one_line(serve, caplog):
    server = serve()
    port = server.client.port
    with caplog.at_level(logging.INFO):
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(raw_post(port, "/api/rate", 5000) + b'{"rater": "x", ')
            time.sleep(0.3)  # the server is reading the body
        deadline = time.monotonic() + 30
        while not any("disconnected" in r.getMessage() for r in caplog.records):
            assert time.monotonic() < deadline, caplog.text
            time.sleep(0.05)
        time.sleep(0.2)  # anything else it would log comes now
    gone = [r for r in caplog.records if "disconnected" in r.getMessage()]
    assert len(gone) == 1 and gone[0].exc_info is None and gone[0].name == "hifigan.listen"
    assert gone[0].getMessage().startswith("POST /api/rate: client 127.0.0.1:")
    assert gone[0].getMessage().endswith("(15 of 5000 bytes); answered 499")
    assert not [r for r in caplog.records if r.exc_info or "Exception" in r.getMessage()]
    assert server.client.get("/").status == 200


def test_cli_allow_options_are_checked(run_cli, folders, tmp_path):
    args = [*system_args(folders), "--db", str(tmp_path / "r.sqlite")]
    with pytest.warns(UserWarning, match="extra"):
        code, _, err = run_cli("listen", *args, "--allow-origin", "ftp://files.example")
    assert code == 1
    assert err.strip().splitlines()[-1] == (
        "error: --allow-origin 'ftp://files.example' is not an origin (scheme://host[:port], "
        "e.g. https://tts.example.org)"
    )
