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

Whose file it is: our databases carry ``PRAGMA application_id`` :data:`APPLICATION_ID` and
their schema version in ``PRAGMA user_version``. A new or empty file becomes ours; a database
written before the mark existed (exactly our three tables, schema 1) is adopted and marked.
Any other file, SQLite or not, is refused before anything is written to it.

Failures while serving (another program holding a write lock, a disk that filled up, a file
made read-only) raise :class:`StoreUnavailable`, which the server answers with 503 and a
``Retry-After``: the page keeps the rater's answer and sends it again.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import sqlite3
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path

from ..errors import HiFiGANError, InputError

APPLICATION_ID = 0x48464C54  # "HFLT": a hifigan listening test
SCHEMA_VERSION = 1
BUSY_TIMEOUT = 5.0  # seconds a read or write waits for another program's lock
RETRY_AFTER = 5  # seconds the page is asked to wait before sending a refused request again
_TABLES = ("meta", "raters", "ratings")
_SQLITE_MAGIC = b"SQLite format 3\x00"

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


class RequestFailure(HiFiGANError):
    """A request the server cannot answer now, through no fault of the client.

    The message (which names the file) goes to the server's log; the client gets ``status``,
    ``public`` (which names no file or system: raters must not learn them) and ``headers``.
    """

    status = 503

    def __init__(
        self,
        message: str,
        path: str | Path | None = None,
        *,
        public: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message, path)
        self.public = public
        self.headers = dict(headers or {})


class StoreUnavailable(RequestFailure):
    """The ratings database failed a read or a write (locked, read-only, full, unreadable)."""


def _reason(error: sqlite3.Error) -> str:
    """SQLite's error in words a user can act on."""
    code = getattr(error, "sqlite_errorname", "") or ""
    if code.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return "database is locked: another program is writing to it"
    if code.startswith("SQLITE_READONLY"):
        return "the database is read-only"
    if code == "SQLITE_FULL":
        return "the disk is full"
    if code.startswith("SQLITE_CANTOPEN"):
        return "the file cannot be opened"
    return str(error) or code or type(error).__name__


def _writable(path: Path) -> bool:
    """Whether ``path`` may be written: by the permission check, and (so that a file or
    folder marked read-only stays untouched even for root) by its mode bits."""
    try:
        return os.access(path, os.W_OK) and bool(path.stat().st_mode & 0o222)
    except OSError:
        return False


def _size(n: int) -> str:
    return f"{n} byte{'s' if n != 1 else ''}" if n < 10_000 else f"{n / 1e6:.1f} MB"


class Store:
    """A ratings database; safe to share between threads (one connection behind a lock).

    ``timeout``: seconds a read or write waits while another program holds a lock, before
    it fails with :class:`StoreUnavailable`.
    """

    def __init__(
        self, path: str | Path, *, read_only: bool = False, timeout: float = BUSY_TIMEOUT
    ) -> None:
        self.path = Path(path)
        self.timeout = timeout
        self._lock = threading.Lock()
        if read_only and not self.path.is_file():
            raise InputError("ratings database not found", self.path)
        kind = self._inspect()
        if read_only:
            if kind == "new":
                raise HiFiGANError("not a usable ratings database: it is empty", self.path)
            self._db = self._connect(read_only=True)
            return
        self._check_writable()
        self._db = self._connect(read_only=False)
        try:
            with self._write("prepare the ratings database") as db:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                db.execute(
                    "INSERT OR REPLACE INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),)
                )
        except BaseException:
            self._db.close()
            raise

    # ------------------------------------------------------------------ opening
    def _inspect(self) -> str:
        """``new`` (absent, empty, or SQLite without tables), ``ours``, or ``legacy`` (ours
        from before the mark); anything else raises, naming what the file holds."""
        path = self.path
        if path.is_dir():
            raise HiFiGANError("is a folder, not a ratings database", path)
        if not path.exists():
            return "new"
        try:
            with path.open("rb") as f:
                header = f.read(100)
            size = path.stat().st_size
        except OSError as e:
            raise HiFiGANError(f"cannot read the ratings database ({e.strerror})", path) from None
        if not header:
            return "new"
        if len(header) < 100 or not header.startswith(_SQLITE_MAGIC):
            raise HiFiGANError(
                f"not a usable ratings database: it holds {_size(size)} of other data, not "
                "SQLite; nothing was written to it (choose another --db)",
                path,
            )
        db = self._connect(read_only=True)
        try:
            app = db.execute("PRAGMA application_id").fetchone()[0]
            version = db.execute("PRAGMA user_version").fetchone()[0]
            tables = [
                row[0]
                for row in db.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
                )
            ]
            schema = None
            if app == 0 and sorted(tables) == sorted(_TABLES):
                row = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
                schema = None if row is None else row[0]
        except sqlite3.Error as e:
            raise self._failure(e, "read the ratings database") from None
        finally:
            db.close()
        if app == APPLICATION_ID:
            if version > SCHEMA_VERSION:
                raise HiFiGANError(
                    f"ratings database of a newer hifigan (schema {version}; this one knows "
                    f"schema {SCHEMA_VERSION} and older)",
                    path,
                )
            return "ours"
        if app == 0 and not tables:
            return "new"
        if app == 0 and version == 0 and schema == "1":
            return "legacy"
        owner = f"application_id 0x{app:08x}; " if app else ""
        listed = ", ".join(tables[:8]) + (", ..." if len(tables) > 8 else "")
        raise HiFiGANError(
            f"not a usable ratings database: another application's SQLite database ({owner}"
            f"tables: {listed or 'none'}); nothing was written to it (choose another --db)",
            path,
        )

    def _check_writable(self) -> None:
        """A one-line error now, rather than a failed write once raters are rating."""
        path, folder = self.path, self.path.absolute().parent
        if path.exists() and not _writable(path):
            raise HiFiGANError(
                "the ratings database is read-only; ratings are written to it as they arrive "
                "(make it writable, or choose another --db)",
                path,
            )
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise HiFiGANError(f"cannot create the folder ({e.strerror})", folder) from None
        if not _writable(folder):
            raise HiFiGANError(
                "the folder is read-only; SQLite writes its journal beside the ratings "
                f"database {path.name} (make it writable, or choose another --db)",
                folder,
            )

    def _connect(self, *, read_only: bool) -> sqlite3.Connection:
        try:
            if read_only:
                uri = self.path.resolve().as_uri() + "?mode=ro"
                db = sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=self.timeout)
            else:
                db = sqlite3.connect(
                    self.path, check_same_thread=False, timeout=self.timeout, isolation_level=None
                )
        except sqlite3.Error as e:
            raise self._failure(e, "open the ratings database") from None
        db.row_factory = sqlite3.Row
        return db

    def close(self) -> None:
        self._db.close()

    # ------------------------------------------------------------------ access
    def _failure(self, error: sqlite3.Error, doing: str) -> StoreUnavailable:
        reason = _reason(error)
        return StoreUnavailable(
            f"could not {doing} ({reason})",
            self.path,
            public=f"the server could not {doing} ({reason}); please try again in a moment",
            headers={"Retry-After": str(RETRY_AFTER)},
        )

    @contextlib.contextmanager
    def _write(self, doing: str) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken at once (``BEGIN IMMEDIATE``), so that a lock held by
        another program fails here, after :attr:`timeout`, rather than halfway through."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield self._db
                    self._db.execute("COMMIT")
                finally:
                    if self._db.in_transaction:
                        with contextlib.suppress(sqlite3.Error):
                            self._db.execute("ROLLBACK")
            except sqlite3.IntegrityError:
                raise
            except sqlite3.Error as e:
                raise self._failure(e, doing) from None

    def _read(self, sql: str, params: tuple = (), doing: str = "read the ratings database"):
        with self._lock:
            try:
                return self._db.execute(sql, params).fetchall()
            except sqlite3.Error as e:
                raise self._failure(e, doing) from None

    # ------------------------------------------------------------------ meta
    def meta(self, key: str) -> str | None:
        rows = self._read("SELECT value FROM meta WHERE key = ?", (key,))
        return rows[0]["value"] if rows else None

    def set_meta(self, key: str, value: str) -> None:
        with self._write("write the test's settings") as db:
            db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def secret(self) -> bytes:
        """The key of the stimulus ids; made once, so ids stay valid across restarts."""
        with self._write("write the test's settings") as db:
            row = db.execute("SELECT value FROM meta WHERE key = 'secret'").fetchone()
            value = secrets.token_hex(32) if row is None else row["value"]
            if row is None:
                db.execute("INSERT INTO meta VALUES ('secret', ?)", (value,))
        return bytes.fromhex(value)

    # ------------------------------------------------------------------ raters
    def plan(self, rater: str, mode: str) -> list[tuple[str, ...]] | None:
        """A registered rater's planned trials, or None for an unknown rater."""
        rows = self._read("SELECT plan FROM raters WHERE rater = ? AND mode = ?", (rater, mode))
        return [tuple(t) for t in json.loads(rows[0]["plan"])] if rows else None

    def register(
        self, rater: str, mode: str, make_plan: Callable[[int], list[tuple[str, ...]]]
    ) -> list[tuple[str, ...]]:
        """The rater's plan, made by ``make_plan(number)`` and stored on their first visit."""
        with self._write("register the rater") as db:
            row = db.execute(
                "SELECT plan FROM raters WHERE rater = ? AND mode = ?", (rater, mode)
            ).fetchone()
            if row is not None:
                return [tuple(t) for t in json.loads(row["plan"])]
            (number,) = db.execute("SELECT COUNT(*) FROM raters WHERE mode = ?", (mode,)).fetchone()
            plan = make_plan(number)
            db.execute(
                "INSERT INTO raters VALUES (?, ?, ?, ?, ?)",
                (rater, mode, number, json.dumps(plan), now()),
            )
        return plan

    # ------------------------------------------------------------------ ratings
    def rated_trials(self, rater: str, mode: str) -> set[int]:
        rows = self._read("SELECT trial FROM ratings WHERE rater = ? AND mode = ?", (rater, mode))
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
        try:
            with self._write("save the rating") as db:
                db.execute(
                    "INSERT INTO ratings (rater, mode, trial, utterance, system, system_b, "
                    "score, choice, time) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    row,
                )
        except sqlite3.IntegrityError:
            return False
        return True

    def ratings(self, mode: str) -> list[dict]:
        """Every rating of ``mode`` as a dict of the ``ratings`` columns, oldest first."""
        rows = self._read("SELECT * FROM ratings WHERE mode = ? ORDER BY id", (mode,))
        return [dict(row) for row in rows]

    def progress(self, mode: str) -> list[tuple[int, int]]:
        """``(planned, rated)`` trials of each rater of ``mode``."""
        rows = self._read(
            "SELECT r.plan AS plan, COUNT(g.id) AS rated FROM raters r LEFT JOIN ratings g "
            "ON g.rater = r.rater AND g.mode = r.mode WHERE r.mode = ? GROUP BY r.rater",
            (mode,),
        )
        return [(len(json.loads(row["plan"])), row["rated"]) for row in rows]

    def systems(self) -> list[str]:
        """The systems in the order the test was last started with (empty if unknown)."""
        value = self.meta("systems")
        return [] if value is None else json.loads(value)
