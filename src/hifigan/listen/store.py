"""The ratings database (SQLite): raters with their planned trials, and every rating.

Each rating is committed as it arrives, so a stopped or crashed server loses nothing, and a
rater who comes back (after a reload or a restart) continues at their first unrated trial.

Tables:

* ``meta(key, value)``: the schema version, the secret behind the stimulus ids, the systems
  in the order they were given;
* ``raters(rater, mode, test, name_key, number, plan, created)``: ``test`` is the identity of
  the test the rater took (see :func:`hifigan.listen.server.identity_of`: one database may
  hold several tests), ``name_key`` the name as compared (:func:`name_key`: case and
  surrounding spaces ignored), ``number`` counts raters in order of arrival per test, ``plan``
  is the JSON list of planned trials (see :mod:`hifigan.listen.design`);
* ``ratings(rater, mode, test, trial, utterance, system, system_b, score, choice, time)``:
  ``trial`` indexes the rater's plan; MOS rows hold ``score`` (1-5), A/B rows hold the system
  heard as A (left) in ``system``, the one heard as B (right) in ``system_b`` and ``choice``
  (``A``, ``B`` or ``none``, as heard).

Schema 1 (before tests had an identity) is upgraded in place: its rows get the test
:func:`untagged`, which :meth:`Store.claim_untagged` hands to the first test started with the
same mode and systems.

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
import unicodedata
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path

from ..errors import HiFiGANError, InputError

APPLICATION_ID = 0x48464C54  # "HFLT": a hifigan listening test
SCHEMA_VERSION = 2
BUSY_TIMEOUT = 5.0  # seconds a read or write waits for another program's lock
RETRY_AFTER = 5  # seconds the page is asked to wait before sending a refused request again
_TABLES = ("meta", "raters", "ratings")
_SQLITE_MAGIC = b"SQLite format 3\x00"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS raters (
    rater TEXT NOT NULL, mode TEXT NOT NULL, test TEXT NOT NULL, name_key TEXT NOT NULL,
    number INTEGER NOT NULL, plan TEXT NOT NULL, created TEXT NOT NULL,
    PRIMARY KEY (rater, test)
);
CREATE INDEX IF NOT EXISTS raters_by_name ON raters (test, name_key);
CREATE TABLE IF NOT EXISTS ratings (
    id INTEGER PRIMARY KEY, rater TEXT NOT NULL, mode TEXT NOT NULL, test TEXT NOT NULL,
    trial INTEGER NOT NULL, utterance TEXT NOT NULL, system TEXT NOT NULL, system_b TEXT,
    score INTEGER, choice TEXT, time TEXT NOT NULL, UNIQUE (rater, test, trial)
);
"""
_RATER_COLUMNS = "rater, mode, test, name_key, number, plan, created"
_RATING_COLUMNS = "id, rater, mode, test, trial, utterance, system, system_b, score, choice, time"


def untagged(mode: str) -> str:
    """The test of rows written before tests had an identity (schema 1)."""
    return f"schema-1 {mode}"


def name_key(name: str) -> str:
    """A rater's name as compared: ``" Ann "``, ``"ann"``, ``"ANN"`` (and full-width or
    composed forms of the same letters) are one rater."""
    return " ".join(unicodedata.normalize("NFKC", name).split()).casefold()


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
                if kind != "new" and self._schema(db) < 2:
                    _upgrade_from_1(db)
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
            if app == 0 and sorted(tables) == sorted(_TABLES):  # schema 1, unmarked
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

    @staticmethod
    def _schema(db: sqlite3.Connection) -> int:
        row = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        return 1 if row is None else int(row[0])

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
    def find_rater(self, name: str, test: str) -> str | None:
        """The registered rater of ``test`` whose name matches ``name`` as :func:`name_key`
        compares them (an exact match first), or None."""
        rows = self._read(
            "SELECT rater FROM raters WHERE test = ? AND name_key = ? ORDER BY rater = ? DESC, "
            "number",
            (test, name_key(name), name),
        )
        return rows[0]["rater"] if rows else None

    def plan(self, rater: str, test: str) -> list[tuple[str, ...]] | None:
        """A registered rater's planned trials, or None for an unknown rater."""
        rows = self._read("SELECT plan FROM raters WHERE rater = ? AND test = ?", (rater, test))
        return [tuple(t) for t in json.loads(rows[0]["plan"])] if rows else None

    def register(
        self,
        name: str,
        mode: str,
        test: str,
        make_plan: Callable[[str, int], list[tuple[str, ...]]],
    ) -> str:
        """The rater of ``test`` called ``name`` (compared as :func:`name_key`): found, or
        registered with the plan ``make_plan(name, number)``. Returns the rater as stored."""
        with self._write("register the rater") as db:
            row = db.execute(
                "SELECT rater FROM raters WHERE test = ? AND name_key = ? "
                "ORDER BY rater = ? DESC, number",
                (test, name_key(name), name),
            ).fetchone()
            if row is not None:
                return row["rater"]
            (number,) = db.execute("SELECT COUNT(*) FROM raters WHERE test = ?", (test,)).fetchone()
            db.execute(
                f"INSERT INTO raters ({_RATER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    name,
                    mode,
                    test,
                    name_key(name),
                    number,
                    json.dumps(make_plan(name, number)),
                    now(),
                ),
            )
        return name

    def claim_untagged(self, mode: str, test: str, systems: list[str]) -> bool:
        """Hand the raters and ratings of ``mode`` written before tests had an identity to
        ``test`` when the database's systems were these (same names, any order) and ``test``
        has no raters yet. Whether anything was handed over."""
        known = self.systems()
        with self._write("upgrade the ratings database") as db:
            if sorted(known) != sorted(systems):
                return False
            if db.execute("SELECT 1 FROM raters WHERE test = ?", (test,)).fetchone():
                return False
            moved = db.execute(
                "UPDATE raters SET test = ? WHERE test = ?", (test, untagged(mode))
            ).rowcount
            db.execute("UPDATE ratings SET test = ? WHERE test = ?", (test, untagged(mode)))
        return moved > 0

    # ------------------------------------------------------------------ ratings
    def rated_trials(self, rater: str, test: str) -> set[int]:
        rows = self._read("SELECT trial FROM ratings WHERE rater = ? AND test = ?", (rater, test))
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
        test: str = "",
    ) -> bool:
        """Store one rating of ``test``; False if this trial of this rater is already rated."""
        utterance, system, *rest = stimulus
        row = (rater, mode, test, trial, utterance, system, *(rest or [None]), score, choice)
        try:
            with self._write("save the rating") as db:
                db.execute(
                    "INSERT INTO ratings (rater, mode, test, trial, utterance, system, system_b, "
                    "score, choice, time) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (*row, now()),
                )
        except sqlite3.IntegrityError:
            return False
        return True

    def ratings(self, mode: str, test: str | None = None) -> list[dict]:
        """Every rating of ``mode`` (of one ``test``, or of all) as a dict of the ``ratings``
        columns, oldest first."""
        if test is None:
            rows = self._read("SELECT * FROM ratings WHERE mode = ? ORDER BY id", (mode,))
        else:
            rows = self._read(
                "SELECT * FROM ratings WHERE mode = ? AND test = ? ORDER BY id", (mode, test)
            )
        return [dict(row) for row in rows]

    def progress(self, test: str) -> list[tuple[int, int]]:
        """``(planned, rated)`` trials of each rater of ``test``."""
        rows = self._read(
            "SELECT r.plan AS plan, COUNT(g.id) AS rated FROM raters r LEFT JOIN ratings g "
            "ON g.rater = r.rater AND g.test = r.test WHERE r.test = ? GROUP BY r.rater",
            (test,),
        )
        return [(len(json.loads(row["plan"])), row["rated"]) for row in rows]

    def tests(self) -> dict[str, tuple[str, int]]:
        """``{test: (mode, ratings)}`` of every test with a rater or a rating."""
        # a schema 1 file opened read-only (``--results``) has no test column: one per mode
        columns = {row["name"] for row in self._read("PRAGMA table_info(ratings)")}
        test = "test" if "test" in columns else "'schema-1 ' || mode"
        rows = self._read(
            f"SELECT test, mode, SUM(n) AS n FROM (SELECT {test} AS test, mode, 0 AS n FROM raters "
            f"UNION ALL SELECT {test} AS test, mode, 1 AS n FROM ratings) GROUP BY test, mode"
        )
        return {row["test"]: (row["mode"], row["n"]) for row in rows}

    def systems(self) -> list[str]:
        """The systems in the order the test was last started with (empty if unknown)."""
        value = self.meta("systems")
        return [] if value is None else json.loads(value)


def _upgrade_from_1(db: sqlite3.Connection) -> None:
    """Schema 1 to 2, inside the caller's transaction: raters and ratings gain ``test``
    (:func:`untagged`: not known yet) and raters ``name_key``; a rater is unique per test, no
    longer per mode."""
    db.execute("ALTER TABLE raters RENAME TO raters_1")
    db.execute("ALTER TABLE ratings RENAME TO ratings_1")
    for statement in _SCHEMA.split(";"):
        if statement.strip():
            db.execute(statement)
    old = db.execute("SELECT rater, mode, number, plan, created FROM raters_1").fetchall()
    db.executemany(
        f"INSERT INTO raters ({_RATER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(r[0], r[1], untagged(r[1]), name_key(r[0]), r[2], r[3], r[4]) for r in old],
    )
    db.execute(
        f"INSERT INTO ratings ({_RATING_COLUMNS}) SELECT id, rater, mode, 'schema-1 ' || mode, "
        "trial, utterance, system, system_b, score, choice, time FROM ratings_1"
    )
    db.execute("DROP TABLE raters_1")
    db.execute("DROP TABLE ratings_1")
