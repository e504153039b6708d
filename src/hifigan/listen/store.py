"""The ratings database (SQLite): raters with their planned trials, and every rating.

Each rating is committed as it arrives, so a stopped or crashed server loses nothing, and a
rater who comes back (after a reload or a restart) continues at their first unrated trial.

Tables:

* ``meta(key, value)``: the schema version, the secret behind the stimulus ids, the systems
  in the order they were given;
* ``raters(rater, mode, number, plan, created)``: ``number`` counts raters in order of arrival
  per mode, ``plan`` is the JSON list of planned trials (see :mod:`hifigan.listen.design`);
* ``ratings(rater, mode, trial, utterance, system, system_b, score, choice, time)``: ``trial``
  indexes the rater's plan; MOS rows hold ``score`` (1-5), A/B rows hold the left system in
  ``system``, the right one in ``system_b`` and ``choice`` (``A``, ``B`` or ``none``).
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import threading
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from ..errors import HiFiGANError, InputError

SCHEMA_VERSION = "1"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS raters (
    rater TEXT NOT NULL, mode TEXT NOT NULL, number INTEGER NOT NULL, plan TEXT NOT NULL,
    created TEXT NOT NULL, PRIMARY KEY (rater, mode)
);
CREATE TABLE IF NOT EXISTS ratings (
    id INTEGER PRIMARY KEY, rater TEXT NOT NULL, mode TEXT NOT NULL, trial INTEGER NOT NULL,
    utterance TEXT NOT NULL, system TEXT NOT NULL, system_b TEXT, score INTEGER, choice TEXT,
    time TEXT NOT NULL, UNIQUE (rater, mode, trial)
);
"""


def now() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Store:
    """A ratings database; safe to share between threads (one connection behind a lock)."""

    def __init__(self, path: str | Path, *, read_only: bool = False) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        if read_only and not self.path.is_file():
            raise InputError("ratings database not found", self.path)
        try:
            if read_only:
                uri = self.path.resolve().as_uri() + "?mode=ro"
                self._db = sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=10)
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=10)
            self._db.row_factory = sqlite3.Row
            if not read_only:
                self._db.executescript(_SCHEMA)
            version = self.meta("schema")
        except sqlite3.Error as e:
            raise HiFiGANError(f"not a usable ratings database ({e})", self.path) from None
        if version is None and not read_only:
            self.set_meta("schema", SCHEMA_VERSION)
        elif version is None:
            raise HiFiGANError("not a ratings database of `hifigan listen`", self.path)
        elif version != SCHEMA_VERSION:
            raise HiFiGANError(f"ratings database of another version (schema {version})", self.path)

    def close(self) -> None:
        self._db.close()

    # ------------------------------------------------------------------ meta
    def meta(self, key: str) -> str | None:
        try:
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        except sqlite3.OperationalError:  # a read-only open of a database without our tables
            return None
        return None if row is None else row["value"]

    def set_meta(self, key: str, value: str) -> None:
        with self._db:
            self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def secret(self) -> bytes:
        """The key of the stimulus ids; made once, so ids stay valid across restarts."""
        value = self.meta("secret")
        if value is None:
            value = secrets.token_hex(32)
            self.set_meta("secret", value)
        return bytes.fromhex(value)

    # ------------------------------------------------------------------ raters
    def plan(self, rater: str, mode: str) -> list[tuple[str, ...]] | None:
        """A registered rater's planned trials, or None for an unknown rater."""
        with self._lock:
            row = self._db.execute(
                "SELECT plan FROM raters WHERE rater = ? AND mode = ?", (rater, mode)
            ).fetchone()
        return None if row is None else [tuple(t) for t in json.loads(row["plan"])]

    def register(
        self, rater: str, mode: str, make_plan: Callable[[int], list[tuple[str, ...]]]
    ) -> list[tuple[str, ...]]:
        """The rater's plan, made by ``make_plan(number)`` and stored on their first visit."""
        with self._lock, self._db:
            row = self._db.execute(
                "SELECT plan FROM raters WHERE rater = ? AND mode = ?", (rater, mode)
            ).fetchone()
            if row is not None:
                return [tuple(t) for t in json.loads(row["plan"])]
            (number,) = self._db.execute(
                "SELECT COUNT(*) FROM raters WHERE mode = ?", (mode,)
            ).fetchone()
            plan = make_plan(number)
            self._db.execute(
                "INSERT INTO raters VALUES (?, ?, ?, ?, ?)",
                (rater, mode, number, json.dumps(plan), now()),
            )
        return plan

    # ------------------------------------------------------------------ ratings
    def rated_trials(self, rater: str, mode: str) -> set[int]:
        with self._lock:
            rows = self._db.execute(
                "SELECT trial FROM ratings WHERE rater = ? AND mode = ?", (rater, mode)
            ).fetchall()
        return {row["trial"] for row in rows}

    def add_rating(
        self,
        rater: str,
        mode: str,
        trial: int,
        stimulus: tuple[str, ...],
        *,
        score: int | None = None,
        choice: str | None = None,
    ) -> bool:
        """Store one rating; False if this trial of this rater is already rated."""
        utterance, system, *rest = stimulus
        row = (rater, mode, trial, utterance, system, *(rest or [None]), score, choice, now())
        with self._lock:
            try:
                with self._db:
                    self._db.execute(
                        "INSERT INTO ratings (rater, mode, trial, utterance, system, system_b, "
                        "score, choice, time) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        row,
                    )
            except sqlite3.IntegrityError:
                return False
        return True

    def ratings(self, mode: str) -> list[dict]:
        """Every rating of ``mode`` as a dict of the ``ratings`` columns, oldest first."""
        with self._lock:
            try:
                rows = self._db.execute(
                    "SELECT * FROM ratings WHERE mode = ? ORDER BY id", (mode,)
                ).fetchall()
            except sqlite3.OperationalError as e:
                raise HiFiGANError(f"not a ratings database ({e})", self.path) from None
        return [dict(row) for row in rows]

    def progress(self, mode: str) -> list[tuple[int, int]]:
        """``(planned, rated)`` trials of each rater of ``mode``."""
        with self._lock:
            rows = self._db.execute(
                "SELECT r.plan AS plan, COUNT(g.id) AS rated FROM raters r LEFT JOIN ratings g "
                "ON g.rater = r.rater AND g.mode = r.mode WHERE r.mode = ? GROUP BY r.rater",
                (mode,),
            ).fetchall()
        return [(len(json.loads(row["plan"])), row["rated"]) for row in rows]

    def systems(self) -> list[str]:
        """The systems in the order the test was last started with (empty if unknown)."""
        value = self.meta("systems")
        return [] if value is None else json.loads(value)
