"""The listening-test web server (Starlette, served by uvicorn).

Routes:

* ``/``: the single-page test (``static/index.html``); ``/static/...``: its script and style;
* ``POST /api/start`` ``{"rater": name, "resume": bool}``: register a rater; an empty name
  gets a generated id. Names are compared without case and surrounding spaces; a name that
  already has ratings in this test answers 409 with ``existing`` (the stored name and its
  progress) unless ``resume`` is true (the page's "continue as ..." and its remembered rater);
* ``GET /api/next?rater=...``: the rater's next trial: its plan index, progress and audio URLs;
* ``POST /api/rate`` ``{"rater", "trial", "score" | "choice"}``: store a rating, answer the
  next trial;
* ``/audio/{id}``: a stimulus by opaque id (404 for anything else);
* ``/results?token=...``: the results so far (403 without the token printed at start-up);
* ``/favicon.ico``: the pages' icon.

A database may hold several tests (a MOS test, later an A/B test on the same files, ...): each
has its identity (:func:`identity_of`), and raters, their plans and progress belong to one
test. The page keeps its rater per test identity, so a new test starts with its own
instructions.

Responses never name systems or files; the page loads nothing from other origins. Every
request passes :class:`hifigan.serve.guard.WebGuard` first: its ``Host`` must name the address
served, a ``POST`` from a page of another site is refused, and a body over
:data:`MAX_BODY_BYTES` is refused with 413 before it is read.
"""

from __future__ import annotations

import hashlib
import html
import json
import logging
import re
import secrets
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import HiFiGANError
from ..serve.guard import WebGuard, WebPolicy
from .design import Trial, ab_plan, mos_plan, plan_size
from .results import ab_results, mos_results, results_html
from .stimuli import StimulusSet
from .store import RequestFailure, Store

STATIC = Path(__file__).parent / "static"
MAX_BODY_BYTES = 64 * 1024  # the API's JSON bodies are a few hundred bytes
MODES = ("mos", "ab")
CHOICES = ("A", "B", "none")
_RATER = re.compile(r"[^\x00-\x1f\x7f]{1,64}")
_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'self'; media-src 'self'; frame-ancestors 'none'",
}


@dataclass
class ListeningTest:
    """A running test: what is played, where ratings go, and how raters are served."""

    stimuli: StimulusSet
    store: Store
    mode: str = "mos"
    per_rater: int | None = None  # None: every trial of the test
    title: str = "Listening test"
    token: str = field(default_factory=lambda: secrets.token_urlsafe(18))

    identity: str = field(init=False)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise HiFiGANError(f"unknown mode {self.mode!r} (choose mos or ab)")
        self.identity = identity_of(self.mode, self.stimuli)
        self.stimuli.use_secret(self.store.secret())
        self.store.claim_untagged(self.mode, self.identity, self.stimuli.systems)
        self.store.set_meta("systems", json.dumps(self.stimuli.systems))

    @property
    def kind(self) -> str:
        return "MOS" if self.mode == "mos" else "A/B"

    def ratings(self) -> list[dict]:
        """This test's ratings, oldest first."""
        return self.store.ratings(self.mode, self.identity)

    def others(self) -> str:
        """The other tests the database holds, in words (empty if none)."""
        tests = self.store.tests()
        tests.pop(self.identity, None)
        if not tests:
            return ""
        ratings = sum(n for _, n in tests.values())
        kinds = sorted({"MOS" if mode == "mos" else "A/B" for mode, _ in tests.values()})
        plural = "s" if len(tests) != 1 else ""
        return (
            f"{len(tests)} other test{plural} ({' and '.join(kinds)}) with {ratings} "
            f"rating{'s' if ratings != 1 else ''}"
        )

    def start(self, name: str, resume: bool) -> tuple[int, dict]:
        """Register or find the rater called ``name``; ``(HTTP status, answer)``: the next trial,
        or 409 when the name already has ratings here and ``resume`` is false."""
        known = self.store.find_rater(name, self.identity)
        if known is not None and not resume and self.store.rated_trials(known, self.identity):
            progress = self.next_trial(known)
            existing = {k: progress[k] for k in ("rater", "done", "total", "finished")}
            error = f"the name {known!r} already has ratings in this test"
            return 409, {"error": error, "existing": existing}
        rater = self.store.register(name, self.mode, self.identity, self.make_plan)
        return 200, self.next_trial(rater)

    def resolve(self, name: str) -> str | None:
        """The registered rater called ``name`` (any case), or None."""
        return self.store.find_rater(name, self.identity)

    def make_plan(self, rater: str, number: int) -> list[Trial]:
        make = mos_plan if self.mode == "mos" else ab_plan
        s = self.stimuli
        size = self.per_rater or plan_size(self.mode, len(s.utterances), len(s.systems))
        return make(s.utterances, s.systems, size, rater, number)

    def playable(self, trial: Trial) -> bool:
        """Whether every stimulus of a planned trial is still in the test (a restart with other
        folders may have dropped some, a file may have gone since start)."""
        utterance, *systems = trial
        return all(self.stimuli.playable(utterance, system) for system in systems)

    def next_trial(self, rater: str) -> dict | None:
        """The next unrated trial of a registered rater, as sent to the page (None: unknown)."""
        plan = self.store.plan(rater, self.identity)
        if plan is None:
            return None
        rated = self.store.rated_trials(rater, self.identity)
        open_trials = [i for i, t in enumerate(plan) if i not in rated and self.playable(t)]
        total = len([t for t in plan if self.playable(t)])
        answer = {"rater": rater, "mode": self.mode, "done": total - len(open_trials)}
        answer["total"] = total
        if not open_trials:
            return {**answer, "finished": True}
        index = open_trials[0]
        utterance, *systems = plan[index]
        audio = [f"/audio/{self.stimuli.stimulus_id(utterance, s)}" for s in systems]
        return {**answer, "finished": False, "trial": index, "audio": audio}

    def rate(self, rater: str, body: dict) -> tuple[int, dict]:
        """Store one rating from the page; ``(HTTP status, answer)``."""
        plan = self.store.plan(rater, self.identity)
        if plan is None:
            return 404, {"error": "unknown rater"}
        trial = body.get("trial")
        if (
            not isinstance(trial, int)
            or not 0 <= trial < len(plan)
            or not self.playable(plan[trial])
        ):
            return 400, {"error": "no such trial"}
        if self.mode == "mos":
            score = body.get("score")
            if not isinstance(score, int) or isinstance(score, bool) or not 1 <= score <= 5:
                return 400, {"error": "score must be an integer from 1 to 5"}
            stored = self.store.add_rating(
                rater, self.mode, trial, plan[trial], score=score, test=self.identity
            )
        else:
            choice = body.get("choice")
            if choice not in CHOICES:
                return 400, {"error": "choice must be A, B or none"}
            stored = self.store.add_rating(
                rater, self.mode, trial, plan[trial], choice=choice, test=self.identity
            )
        answer = self.next_trial(rater)
        return (200 if stored else 409), answer

    def results_page(self) -> str:
        """This test's results (the page behind the token)."""
        order = self.store.systems()
        ratings = self.ratings()
        mos = mos_results(ratings, order) if self.mode == "mos" else []
        body = results_html(mos, ab_results(ratings, order) if self.mode == "ab" else [])
        progress = self.store.progress(self.identity)
        finished = sum(rated >= planned for planned, rated in progress)
        status = (
            f"This {self.kind} test: raters {len(progress)} started, "
            f"{finished} finished; ratings {sum(r for _, r in progress)}."
        )
        others = self.others()
        if others:
            status += f" The database also holds {others} (hifigan listen --results)."
        body = f'<p class="status">{html.escape(status)}</p>\n{body}'
        template = (STATIC / "results.html").read_text(encoding="utf-8")
        return template.replace("__TITLE__", html.escape(self.title)).replace("__BODY__", body)

    def index_page(self) -> str:
        template = (STATIC / "index.html").read_text(encoding="utf-8")
        page = template.replace("__TITLE__", html.escape(self.title))
        return page.replace("__MODE__", self.mode).replace("__TEST__", self.identity)


def identity_of(mode: str, stimuli: StimulusSet) -> str:
    """A short id of a test: its mode, its systems and the folders they are read from (not
    which files the folders hold, so a restart after a file went keeps the test)."""
    folders: dict[str, set[str]] = {}
    for (_, system), path in stimuli.files.items():
        folders.setdefault(system, set()).add(str(Path(path).absolute().parent))
    described = [mode, sorted((system, sorted(f)) for system, f in folders.items())]
    return hashlib.sha256(json.dumps(described).encode()).hexdigest()[:16]


def valid_rater(value: object) -> str | None:
    """A rater id from the page: 1-64 printable characters, surrounding spaces dropped."""
    if not isinstance(value, str):
        return None
    value = value.strip()
    return value if _RATER.fullmatch(value) else None


def create_app(test: ListeningTest, policy: WebPolicy | None = None):
    """The Starlette application serving ``test``, behind ``policy`` (default: loopback, no
    other names or origins, bodies up to :data:`MAX_BODY_BYTES`)."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.middleware import Middleware
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, JSONResponse, Response
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    def reply(data: dict, status: int = 200) -> JSONResponse:
        return JSONResponse(data, status_code=status, headers=_HEADERS)

    async def failed(request: Request, error: RequestFailure) -> Response:
        # the log line names the file; the answer names none (raters must not learn systems)
        print(f"warning: {request.method} {request.url.path}: {error}", file=sys.stderr, flush=True)
        headers = {**_HEADERS, **error.headers}
        return JSONResponse({"error": error.public}, status_code=error.status, headers=headers)

    async def index(request: Request) -> Response:
        return HTMLResponse(test.index_page(), headers=_HEADERS)

    async def start(request: Request) -> Response:
        body = await _json_body(request)
        name = body.get("rater") or f"rater-{secrets.token_hex(4)}"
        rater = valid_rater(name)
        if rater is None:
            return reply({"error": "a name is 1 to 64 printable characters"}, 400)
        status, answer = await run_in_threadpool(test.start, rater, body.get("resume") is True)
        return reply(answer, status)

    async def known(name: object) -> str | None:
        rater = valid_rater(name)
        return None if rater is None else await run_in_threadpool(test.resolve, rater)

    async def next_trial(request: Request) -> Response:
        rater = await known(request.query_params.get("rater"))
        answer = None if rater is None else await run_in_threadpool(test.next_trial, rater)
        return reply({"error": "unknown rater"}, 404) if answer is None else reply(answer)

    async def rate(request: Request) -> Response:
        body = await _json_body(request)
        rater = await known(body.get("rater"))
        if rater is None:
            return reply({"error": "unknown rater"}, 404)
        status, answer = await run_in_threadpool(test.rate, rater, body)  # may wait on a lock
        return reply(answer, status)

    async def favicon(request: Request) -> Response:
        data = (STATIC / "favicon.ico").read_bytes()
        headers = {**_HEADERS, "Cache-Control": "public, max-age=86400"}
        return Response(data, media_type="image/x-icon", headers=headers)

    def audio(request: Request) -> Response:  # sync: decoding runs in the thread pool
        data = test.stimuli.wav_bytes(request.path_params["stimulus"])
        if data is None:
            return Response("not found", status_code=404, media_type="text/plain")
        headers = {**_HEADERS, "Cache-Control": "private, max-age=3600"}
        return Response(data, media_type="audio/wav", headers=headers)

    async def results(request: Request) -> Response:
        given = request.query_params.get("token", "")
        if not secrets.compare_digest(given.encode(), test.token.encode()):
            return HTMLResponse("<h1>403 Forbidden</h1>", status_code=403, headers=_HEADERS)
        return HTMLResponse(test.results_page(), headers=_HEADERS)

    routes = [
        Route("/", index),
        Route("/api/start", start, methods=["POST"]),
        Route("/api/next", next_trial),
        Route("/api/rate", rate, methods=["POST"]),
        Route("/audio/{stimulus}", audio),
        Route("/results", results),
        Route("/favicon.ico", favicon),
        Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
    ]
    policy = policy or WebPolicy(max_body_bytes=MAX_BODY_BYTES)
    guard = Middleware(WebGuard, policy=policy, logger=logging.getLogger("hifigan.listen"))
    return Starlette(routes=routes, middleware=[guard], exception_handlers={RequestFailure: failed})


async def _json_body(request) -> dict:
    try:
        body = await request.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def bind(host: str, port: int) -> socket.socket:
    """A listening socket, or a one-line error (port taken, unknown host)."""
    try:
        info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(info[0], socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(info[4])
        sock.listen(128)
    except OSError as e:
        raise HiFiGANError(f"cannot listen on {host}:{port} ({e.strerror or e})") from None
    return sock


def make_server(test: ListeningTest, policy: WebPolicy | None = None):
    """A uvicorn server for ``test`` (behind ``policy``, see :func:`create_app`): run it on a
    socket from :func:`bind` with ``server.run([sock])``, stop it with
    ``server.should_exit = True``."""
    import uvicorn

    config = uvicorn.Config(create_app(test, policy), log_level="warning", access_log=False)
    return uvicorn.Server(config)
