"""Data preparation: find the clips of a dataset, check and convert them once, write a manifest.

Accepted layouts (:func:`find_clips`; the options that choose among them are
:data:`DATA_OPTIONS`):

* a prepared folder (``manifest.jsonl``) or a manifest file (its clips are converted again
  when the sample rate differs);
* the authors' filelists: ``id|text`` lines for training and validation, audio in ``wavs/<id>.*``
  (given explicitly, or found in the folder as ``training.txt``/``validation.txt``,
  ``train.txt``/``eval.txt`` ...);
* one ``id|text`` filelist file (the split is drawn), audio in ``wavs/`` beside it;
* an LJSpeech folder: ``metadata.csv`` (``id|text|...``) and ``wavs/``;
* any folder of audio files, searched recursively (following symbolic links, each folder
  once); a file's speaker is its parent folder (a VCTK-style folder of speaker subfolders).
  Hidden files and folders (names starting with ``.``), the output folder and the folders this
  package writes (prepared folders, run folders, conversion caches) are not scanned.

Filelists and ``metadata.csv`` are read by :func:`read_text_lines`: a byte-order mark (UTF-8
or UTF-16) is dropped, CRLF or CR line endings are accepted, and the id ends at the first
``|`` or tab. File names that are not valid UTF-8 are used as they are; in ids and in text for
people (the summary, ``skipped.tsv``) their undecodable bytes appear as ``\\xNN`` escapes
(:func:`shown`), while the manifest keeps the exact name.

Every clip is decoded once (:func:`inspect_clip`): unreadable, empty, silent or too-short files,
dangling links and repeats are skipped and listed, never fatal; a dataset of which nothing is
usable is refused with the reasons, and then nothing is left in the output folder. Clips at
another sample rate than the config's or with several channels are converted once (resampled,
mixed to mono) into ``cache/<rate>/`` and reused on later runs. When no split is given, a
deterministic one is drawn from a hash of each clip's id.

The manifest is one JSON object per line: ``id``, ``path`` (relative to the manifest's folder),
``duration`` (seconds), ``sample_rate``, ``split`` (``train`` or ``val``), ``speaker`` and, for
converted clips, ``source``. Paths below the manifest's folder are relative to it, others
absolute.
"""

from __future__ import annotations

import codecs
import concurrent.futures
import contextlib
import dataclasses
import errno
import hashlib
import json
import os
import re
import stat
import warnings
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import HiFiGANError, InputError
from ..io import AUDIO_SUFFIXES, atomic_write_text, load_audio, resample, save_wav, warn

MANIFEST = "manifest.jsonl"
SKIPPED = "skipped.tsv"
CACHE = "cache"
SPLITS = ("train", "val")
# the keyword arguments of prepare() that say where the clips and their split come from
DATA_OPTIONS = ("train_list", "val_list", "wavs", "val_size", "jobs")
TRAIN_LIST_NAMES = ("training.txt", "train.txt", "train_filelist.txt", "train_list.txt")
VAL_LIST_NAMES = (
    "validation.txt",
    "val.txt",
    "valid.txt",
    "eval.txt",
    "val_filelist.txt",
    "val_list.txt",
)


class DataError(HiFiGANError):
    """A dataset that cannot be used (no clips, a bad filelist or manifest)."""


@dataclass(frozen=True)
class Candidate:
    """A clip found in a dataset, not yet checked."""

    id: str
    source: Path
    split: str | None = None
    speaker: str = ""
    origin: str = ""  # where it was listed ("metadata.csv line 3"), for the messages on repeats


@dataclass(frozen=True)
class Clip:
    """A checked clip as listed in the manifest (``path`` is absolute in memory)."""

    id: str
    path: Path
    duration: float
    sample_rate: int
    split: str
    speaker: str = ""
    source: Path | None = None


@dataclass
class Prepared:
    """What :func:`prepare` found: the usable clips, the skipped files with the reason, and the
    conversions done (``resampled``: source rate -> clips resampled from it)."""

    clips: list[Clip]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    layout: str = ""
    converted: int = 0
    manifest: Path | None = None
    sample_rate: int = 0
    resampled: dict[int, int] = field(default_factory=dict)
    mixed: int = 0

    def split(self, name: str) -> list[Clip]:
        return [c for c in self.clips if c.split == name]

    def summary(self, max_listed: int | None = None) -> list[str]:
        """Lines for the user: clips per split, the layout, conversions, the skipped files (the
        first ``max_listed``, all by default)."""
        lines = []
        for name in SPLITS:
            clips = self.split(name)
            minutes = sum(c.duration for c in clips) / 60
            lines.append(f"{name}: {_clips(len(clips))}, {minutes:.1f} min")
        lines.append(f"layout: {self.layout}")
        odd = [c.source or c.path for c in self.clips]
        odd = [p for p in odd if _SURROGATE.search(p.name)]
        if odd:
            names = ", ".join(shown(p.name) for p in odd[:max_listed])
            more = ", ..." if len(odd) > len(odd[:max_listed]) else ""
            lines.append(
                f"used {_files(len(odd))} whose name is not valid UTF-8 (shown with \\xNN "
                f"escapes, also in the ids): {names}{more}"
            )
        folder = self.manifest.parent if self.manifest else Path(".")
        if self.converted:
            done = []
            if self.resampled:
                rates = ", ".join(f"{n} from {r} Hz" for r, n in sorted(self.resampled.items()))
                n = sum(self.resampled.values())
                done.append(f"resampled {_clips(n)} to {self.sample_rate} Hz ({rates})")
            if self.mixed:
                done.append(f"mixed {_clips(self.mixed)} down to mono")
            cache = shown(cache_folder(folder, self.sample_rate))
            lines.append(f"{'; '.join(done)}, into {cache}")
        if self.skipped:
            listing = shown(folder / SKIPPED)
            lines.append(f"skipped {_files(len(self.skipped))} (listed in {listing}):")
            lines += [f"  {path}: {reason}" for path, reason in self.skipped[:max_listed]]
            if len(self.skipped) > len(self.skipped[:max_listed]):
                lines.append("  ...")
        return lines


def _clips(n: int) -> str:
    return f"{n} clip" if n == 1 else f"{n} clips"


def cache_folder(prepared: Path, sample_rate: int) -> Path:
    """Where the clips converted to ``sample_rate`` are kept (one folder per rate, so that
    preparing for another rate never replaces them)."""
    return Path(prepared) / CACHE / str(sample_rate)


# ---------------------------------------------------------------------- names and text files
def shown(path: str | os.PathLike[str]) -> str:
    """``path`` as text for people and text files: bytes of the name that are not valid UTF-8
    appear as ``\\xNN`` escapes (Python holds them as surrogates, which cannot be written)."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def read_text_lines(path: Path, what: str = "filelist") -> list[str]:
    """The lines of a text input (filelist, ``metadata.csv``, manifest), without line ends.

    A byte-order mark is dropped (UTF-8, or UTF-16 whose text is then decoded as such); LF,
    CRLF and CR line ends are all accepted, and only they end a line (not the other separators
    of :meth:`str.splitlines`, which may occur inside a transcript). Bytes that are not valid
    UTF-8 are kept as surrogate escapes, so that an id names the file of the same bytes.
    ``what`` names the file in the errors.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError as e:
        reason = _broken_link(path, e) if path.is_symlink() else f"{what} not found"
        raise DataError(reason, shown(path)) from None
    except IsADirectoryError:
        raise DataError(f"is a folder, not a {what}", shown(path)) from None
    except OSError as e:
        reason = (e.strerror or str(e)).lower()
        raise DataError(f"cannot read {what} ({reason})", shown(path)) from None
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                text = data[len(bom) :].decode(encoding, "surrogateescape")
            except UnicodeDecodeError:
                raise DataError(f"not valid {encoding.upper()} text", shown(path)) from None
            break
    else:
        text = data.decode("utf-8", "surrogateescape")
    newline = "\n" if "\n" in text else "\r"
    lines = [line.removesuffix("\r") for line in text.split(newline)]
    return lines[:-1] if lines and not lines[-1] else lines


# byte-order marks and the encodings of the text after them (UTF-16 as saved by Windows editors)
_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


def line_id(line: str) -> str:
    """The id of an ``id|text...`` or ``id<TAB>text...`` line (surrounding spaces dropped, and
    a byte-order mark, which files joined with ``cat`` carry inside)."""
    end = min((i for i in (line.find("|"), line.find("\t")) if i >= 0), default=len(line))
    return line[:end].strip().lstrip("\ufeff").strip()


# ---------------------------------------------------------------------- finding clips
def find_clips(
    data: Path,
    *,
    train_list: Path | None = None,
    val_list: Path | None = None,
    wavs: Path | None = None,
    exclude: Iterable[Path] = (),
) -> tuple[list[Candidate], list[tuple[str, str]], str]:
    """The clips of a dataset folder, the files that cannot be used (missing, dangling links,
    repeats, unreadable folders: ``(path, reason)``), and the layout name.

    ``train_list``/``val_list`` are the authors' filelists (``id|text`` lines); their audio is
    looked up in ``wavs`` (default ``data/wavs``, else ``data``). A folder scan passes over the
    folders in ``exclude`` (the output folder) and those this package writes.
    """
    data = Path(data)
    try:
        is_folder = stat.S_ISDIR(os.stat(data).st_mode)
        if is_folder:
            os.listdir(data)  # a folder that cannot be read is refused here, in one line
    except OSError as e:
        if os.path.islink(data):
            raise DataError(_broken_link(data, e), shown(data)) from None
        if isinstance(e, FileNotFoundError):
            raise DataError("dataset folder not found", shown(data)) from None
        raise DataError(f"cannot read ({_strerror(e)})", shown(data)) from None
    train_list, val_list, wavs = (
        None if p is None else Path(p) for p in (train_list, val_list, wavs)
    )
    if not is_folder:
        return _clips_of_file(data, wavs)
    if train_list is None and val_list is None and (data / MANIFEST).is_file():
        return _clips_of_manifest(data / MANIFEST)
    if train_list is None and val_list is None:
        train_list = _first_existing(data, TRAIN_LIST_NAMES)
        val_list = _first_existing(data, VAL_LIST_NAMES) if train_list else None
    if wavs is None:  # a wavs/ that is a dangling link is named in the reasons, not passed over
        wavs = data / "wavs"
        wavs = wavs if wavs.is_dir() or wavs.is_symlink() else data
    finder = AudioFinder()
    if train_list is not None:
        lists = [(train_list, "train")] + ([(val_list, "val")] if val_list else [])
        found, missing = [], []
        for path, split in lists:
            f, m = _read_filelist(path, wavs, split, finder)
            found += f
            missing += m
        names = " + ".join(p.name for p, _ in lists)
        return _unique(found, missing), missing, f"filelists ({names})"
    if os.path.lexists(data / "metadata.csv"):
        found, missing = _read_filelist(data / "metadata.csv", wavs, None, finder)
        return _unique(found, missing), missing, "LJSpeech folder (metadata.csv + wavs/)"
    return _clips_of_folder(data, exclude)


# what a dataset may be, for the messages that refuse something else
ACCEPTED_DATA = (
    "expected a dataset folder, a prepared folder or its manifest.jsonl, or an id|text filelist"
)


def _clips_of_folder(
    data: Path, exclude: Iterable[Path]
) -> tuple[list[Candidate], list[tuple[str, str]], str]:
    """Every audio file below ``data`` (:func:`scan_audio`) as a clip without a split."""
    scan = scan_audio(data, exclude)
    files, problems = scan.files, list(scan.problems)
    if not files:
        if problems:
            raise DataError(f"no usable audio files: {why_unusable(problems)}", shown(data))
        hidden = f" (passed over {_files(scan.hidden)} hidden, named .*)" if scan.hidden else ""
        raise DataError(
            f"no audio files, metadata.csv, filelists or manifest.jsonl in this folder{hidden}",
            shown(data),
        )
    # ids are the file names, or the paths below DATA when names repeat; a file's speaker is
    # its folder when the files sit in several folders (speaker subfolders)
    stems = [p.stem for p in files]
    unique = len(set(stems)) == len(stems)
    folders = {p.parent for p in files}
    found = [
        Candidate(
            shown(p.stem if unique else p.relative_to(data).with_suffix("").as_posix()),
            p,
            None,
            shown(p.parent.name) if len(folders) > 1 else "",
        )
        for p in files
    ]
    layout = (
        f"folder of speaker subfolders ({len(folders)} speakers)"
        if len(folders) > 1
        else "folder of audio files"
    )
    notes = [f"{_files(scan.hidden)} hidden (named .*)"] if scan.hidden else []
    notes += [f"{shown(p)} ({kind})" for p, kind in scan.excluded]
    if notes:
        layout += f"; not scanned: {', '.join(notes)}"
    return _unique(found, problems), problems, layout


def _clips_of_file(
    path: Path, wavs: Path | None
) -> tuple[list[Candidate], list[tuple[str, str]], str]:
    """A manifest file, or one ``id|text`` filelist whose audio is in ``wavs`` (default
    ``wavs/`` beside it, else its folder); any other file is refused."""
    if path.suffix.lower() in AUDIO_SUFFIXES:
        raise DataError(f"is an audio file, not a dataset: {ACCEPTED_DATA}", shown(path))
    if path.suffix.lower() == ".jsonl":
        return _clips_of_manifest(path)
    if not _is_text(path):
        raise DataError(f"not a text file: {ACCEPTED_DATA}", shown(path))
    if wavs is None:
        wavs = path.parent / "wavs" if (path.parent / "wavs").is_dir() else path.parent
    found, missing = _read_filelist(path, wavs, None, AudioFinder())
    return _unique(found, missing), missing, f"filelist ({shown(path.name)})"


def _is_text(path: Path) -> bool:
    """Whether the start of a file looks like text: a byte-order mark, or no NUL byte and
    UTF-8 (a multi-byte character may be cut) or a single-byte encoding without control
    characters."""
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError as e:
        reason = (e.strerror or str(e)).lower()
        raise DataError(f"cannot read ({reason})", shown(path)) from None
    if any(head.startswith(bom) for bom, _ in _BOMS):
        return True
    if b"\0" in head:
        return False
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
        return True
    except UnicodeDecodeError:
        # Latin-1 or Windows-1252 text: only its letters are undecodable, not control bytes
        return not any(b < 32 and b not in b"\t\n\r\f" for b in head)


def _clips_of_manifest(path: Path) -> tuple[list[Candidate], list[tuple[str, str]], str]:
    """The clips of a prepared manifest, with their split; each is read again from its
    original file when that still exists (a converted clip's ``source``)."""
    candidates = [
        Candidate(c.id, c.source if c.source and c.source.is_file() else c.path, c.split, c.speaker)
        for c in read_manifest(path)
    ]
    return candidates, [], f"prepared manifest ({shown(path)})"


@dataclass
class Scan:
    """What :func:`scan_audio` found: the audio files (sorted), the entries that cannot be
    used (``(path, reason)``: dangling links, loops, unreadable folders), the number of hidden
    audio files passed over, and the folders not scanned (``(path, what it is)``)."""

    files: list[Path] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)
    hidden: int = 0
    excluded: list[tuple[Path, str]] = field(default_factory=list)


def scan_audio(folder: Path, exclude: Iterable[Path] = ()) -> Scan:
    """Every audio file (:data:`~hifigan.io.AUDIO_SUFFIXES`, any case) below ``folder``.

    Symbolic links are followed, each folder and each file once (a link back to a folder
    already scanned is a loop, reported); dangling links and folders that cannot be read are
    reported for what they are. Hidden entries (``.*``), the folders in ``exclude`` and the
    folders written by this package (:func:`written_here`) are passed over.
    """
    folder = Path(folder)
    scan = Scan()
    skip = {Path(p).resolve() for p in exclude}
    skip.discard(folder.resolve())  # preparing into the dataset folder itself scans it still
    folders: dict[tuple[int, int], Path] = {}
    files: dict[tuple[int, int], Path] = {}

    def visit(path: Path, ancestors: tuple[Path, ...]) -> None:
        try:
            st = path.stat()
            entries = sorted(os.scandir(path), key=lambda e: e.name)
        except OSError as e:
            scan.problems.append((shown(path), f"folder cannot be read: {_strerror(e)}"))
            return
        key = (st.st_dev, st.st_ino)
        if key in folders:
            first = folders[key]
            what = (
                "symlink loop: leads back to" if first in ancestors else "repeated folder: same as"
            )
            scan.problems.append((shown(path), f"{what} {shown(first)} (not scanned again)"))
            return
        folders[key] = path
        for entry in entries:
            child = Path(entry.path)
            audio = child.suffix.lower() in AUDIO_SUFFIXES
            if entry.name.startswith("."):
                scan.hidden += audio
                continue
            try:
                st = child.stat()
            except OSError as e:
                if entry.is_symlink() and (audio or not child.suffix):
                    scan.problems.append((shown(child), _broken_link(child, e)))
                elif audio:
                    scan.problems.append((shown(child), f"cannot be read: {_strerror(e)}"))
                continue
            if stat.S_ISDIR(st.st_mode):
                kind = "the output folder" if child.resolve() in skip else written_here(child)
                if kind:
                    scan.excluded.append((child, kind))
                else:
                    visit(child, (*ancestors, path))
            elif audio and stat.S_ISREG(st.st_mode):
                first = files.setdefault((st.st_dev, st.st_ino), child)
                if first != child:
                    scan.problems.append((shown(child), f"repeated file: links to {shown(first)}"))

    visit(folder, ())
    scan.files = sorted(files.values())
    return scan


def _broken_link(link: Path, error: OSError) -> str:
    """Why a symbolic link leads nowhere."""
    if error.errno == errno.ELOOP:
        return "symlink loop (the links lead back to themselves)"
    if error.errno == errno.ENOENT:
        return f"dangling symlink (to {shown(os.readlink(link))}, which does not exist)"
    return f"symlink cannot be followed ({_strerror(error)})"


def _strerror(error: OSError) -> str:
    return (error.strerror or str(error)).lower()


def written_here(folder: Path) -> str:
    """What ``folder`` is when this package wrote it (a prepared folder, a run folder, a
    conversion cache), else ``""``; such folders are never read as a dataset's audio."""
    try:
        names = set(os.listdir(folder))
    except OSError:
        return ""
    if MANIFEST in names or SKIPPED in names:
        return "prepared data"
    if "checkpoints" in names and "config.json" in names:
        return "a run folder"
    if folder.name == CACHE and names and all(n.isdigit() for n in names):
        return "a conversion cache"
    return ""


def audio_files(folder: Path) -> list[Path]:
    """Every audio file (:data:`~hifigan.io.AUDIO_SUFFIXES`) below ``folder``, recursively,
    sorted (see :func:`scan_audio`, which also says what it passed over)."""
    return scan_audio(folder).files


def filelist_ids(path: Path) -> list[tuple[int, str]]:
    """``(line number, id)`` for each ``id|text...`` line of a filelist (the authors' lists,
    LJSpeech's ``metadata.csv``; the id may also end at a tab); blank lines and ``#``
    comments are passed over. Read by :func:`read_text_lines`."""
    ids = []
    for n, line in enumerate(read_text_lines(path), 1):
        if not line.strip() or line.startswith("#"):
            continue
        clip_id = line_id(line)
        if not clip_id:
            raise DataError(f"line {n} has an empty id", shown(path))
        ids.append((n, clip_id))
    return ids


class AudioFinder:
    """Finds the audio file of a listed id in folders, whatever the case of its suffix.
    Each folder is listed once (per finder: one dataset)."""

    def __init__(self) -> None:
        self.listings: dict[Path, dict[str, str] | OSError] = {}

    def listing(self, folder: Path) -> dict[str, str] | OSError:
        """The names of the entries of ``folder``, and those of its audio files with the suffix
        in lower case, -> the real name."""
        if folder not in self.listings:
            try:
                names = sorted(os.listdir(folder))
            except OSError as e:
                self.listings[folder] = e
            else:
                names_of = {name: name for name in names}
                for name in names:
                    stem, suffix = os.path.splitext(name)
                    if suffix.lower() in AUDIO_SUFFIXES:
                        names_of.setdefault(stem + suffix.lower(), name)
                self.listings[folder] = names_of
        return self.listings[folder]

    def find(self, clip_id: str, folders: list[Path]) -> tuple[Path | None, str]:
        """The file for ``clip_id`` (with or without suffix; a relative path, or one whose
        folders are not there, as the authors' ``DUMMY/`` lists have, also with Windows'
        backslashes) in the first folder that has it, or ``None`` and why (a folder that cannot
        be read)."""
        trials = []
        for variant in dict.fromkeys([clip_id, clip_id.replace("\\", "/")]):
            relative = Path(variant)
            if relative.is_absolute():
                trials += [(relative.parent, relative.name)]
                continue
            trials += [(folder / relative.parent, relative.name) for folder in folders]
            if relative.parent != Path("."):
                trials += [(folder, relative.name) for folder in folders]
        problem = ""
        for where, name in trials:
            names = self.listing(where)
            if isinstance(names, OSError):
                if where.is_symlink():
                    problem = f"; {shown(where)}: {_broken_link(where, names)}"
                elif not isinstance(names, FileNotFoundError | NotADirectoryError):
                    problem = f"; {shown(where)} cannot be read: {_strerror(names)}"
                continue
            stem, suffix = os.path.splitext(name)
            keys = [name] + ([stem + suffix.lower()] if suffix.lower() in AUDIO_SUFFIXES else [])
            keys += [name + s for s in AUDIO_SUFFIXES]
            real = next((names[k] for k in keys if k in names), None)
            if real is not None and not (where / real).is_dir():
                return where / real, ""
        return None, problem


def locate_audio(clip_id: str, folders: list[Path]) -> Path | None:
    """The audio file for ``clip_id`` (with or without suffix, in any case) in the first folder
    that has it."""
    return AudioFinder().find(clip_id, folders)[0]


def _first_existing(folder: Path, names: Iterable[str]) -> Path | None:
    """The first of ``names`` in ``folder`` (a dangling link too, to be named when read)."""
    return next((folder / n for n in names if os.path.lexists(folder / n)), None)


def _read_filelist(
    path: Path, wavs: Path, split: str | None, finder: AudioFinder
) -> tuple[list[Candidate], list[tuple[str, str]]]:
    """``id|text...`` lines -> candidates; ids whose audio is absent are returned as missing.
    A line without ``|`` or tab may be comma-separated (``id,text``): when no file has the
    whole line's name, the part before the first comma is the id."""
    found, missing = [], []
    where = f"{shown(path)} line"
    for n, clip_id in filelist_ids(path):
        audio, problem = finder.find(clip_id, [wavs, Path(path).parent])
        if audio is None and "," in clip_id:
            first = clip_id.split(",", 1)[0].strip()
            audio, problem = finder.find(first, [wavs, Path(path).parent])
        if audio is None:
            missing.append(
                (shown(wavs / clip_id), f"no audio file found (listed in {where} {n}{problem})")
            )
            continue
        # the id is the name of the file found (the list's may carry folders, backslashes)
        stem, suffix = os.path.splitext(audio.name)
        stem = stem if suffix.lower() in AUDIO_SUFFIXES else audio.name
        found.append(Candidate(shown(stem), audio, split, "", f"{where} {n}"))
    return found, missing


def _unique(found: list[Candidate], skipped: list[tuple[str, str]]) -> list[Candidate]:
    """Drop repeated ids and repeated audio files (the first one wins), recording the repeats
    as skipped."""
    seen: dict[str, Candidate] = {}
    files: dict[Path, Candidate] = {}
    for c in found:
        real = _real(c.source)
        first = seen.get(c.id) or files.get(real)
        if first is None:
            seen[c.id] = c
            files[real] = c
            continue
        if first.source == c.source or real == _real(first.source):
            same = "listed again" if first.id == c.id else f"listed again as id {c.id!r}"
            listed = f"repeated file: {same}"
        else:
            listed = f"repeated id: {c.id!r} is already {shown(first.source)}"
        places = f" ({c.origin}; first at {first.origin})" if c.origin and first.origin else ""
        kept = f"; kept in {first.split}" if first.split and first.split != c.split else ""
        skipped.append((shown(c.source), f"{listed}{places}{kept}"))
    return list(seen.values())


def _real(path: Path) -> Path:
    try:
        return path.resolve()
    except OSError:  # a loop of links: itself
        return path


# ---------------------------------------------------------------------- split
def default_val_size(n: int) -> int:
    """2% of the clips, at least 5 and at most 100; of fewer than 25 clips a fifth (rounded
    down, at least one; none of a single clip)."""
    return min(100, max(round(0.02 * n), min(5, n // 5), 1 if n >= 2 else 0))


def assign_split(candidates: list[Candidate], val_size: int | None = None) -> list[Candidate]:
    """Give every candidate without a split one: the ``val_size`` clips whose id hashes lowest
    are validation clips. Deterministic and independent of the order of the files."""
    todo = [c for c in candidates if c.split is None]
    if not todo:
        return candidates
    n_val = default_val_size(len(todo)) if val_size is None else min(val_size, len(todo))
    ranked = sorted(todo, key=lambda c: hashlib.sha1(c.id.encode()).hexdigest())
    val_ids = {c.id for c in ranked[:n_val]}
    return [
        c
        if c.split is not None
        else dataclasses.replace(c, split="val" if c.id in val_ids else "train")
        for c in candidates
    ]


# ---------------------------------------------------------------------- checking and converting
def inspect_clip(
    candidate: Candidate, sample_rate: int, cache_dir: Path, min_samples: int
) -> tuple[Clip, tuple[int, int] | None]:
    """Decode a clip completely, check it, and convert it into ``cache_dir`` when its rate or
    channel count differ. Returns ``(clip, (source rate, channels))``, the second ``None`` unless
    the clip was converted now; raises :class:`InputError` (naming the file) for a file that
    cannot be used."""
    import soundfile as sf

    source = candidate.source
    if not os.path.lexists(source):
        raise InputError("vanished: deleted or moved since it was listed", source)
    cached = cache_dir / f"{candidate.id}.wav"
    try:
        fresh = cached.is_file() and cached.stat().st_mtime >= source.stat().st_mtime
    except OSError:  # the source cannot be read: load_audio says why
        fresh = False
    if fresh:
        info = sf.info(os.fsencode(cached))
        if info.samplerate == sample_rate and info.channels == 1 and info.frames >= min_samples:
            return _clip(candidate, cached, info.frames, sample_rate, source), None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the mix-down is reported in the summary
        audio, rate = load_audio(source)
    try:
        channels = sf.info(os.fsencode(source)).channels
    except Exception:
        channels = 1
    if rate != sample_rate:
        audio = resample(audio, rate, sample_rate)
    if not np.any(audio):
        raise InputError("silent: every sample is zero", source)
    if audio.shape[0] < min_samples:
        raise InputError(
            f"too short: {audio.shape[0]} samples at {sample_rate} Hz, at least {min_samples} "
            "needed",
            source,
        )
    if rate == sample_rate and channels == 1:
        return _clip(candidate, source, audio.shape[0], sample_rate, None), None
    save_wav(cached, audio, sample_rate)
    return _clip(candidate, cached, audio.shape[0], sample_rate, source), (rate, channels)


def _clip(c: Candidate, path: Path, frames: int, rate: int, source: Path | None) -> Clip:
    return Clip(c.id, path.resolve(), frames / rate, rate, c.split or "train", c.speaker, source)


def _inspect_or_reason(
    args: tuple[Candidate, int, Path, int],
) -> tuple[Clip, tuple[int, int] | None] | str:
    """:func:`inspect_clip`, or the reason why the clip cannot be used."""
    try:
        return inspect_clip(*args)
    except HiFiGANError as e:
        return reason_of(e)
    except OSError as e:
        return f"cannot read ({_strerror(e)})"
    except Exception as e:  # one odd file must not stop the preparation of all the others
        detail = str(e).strip().splitlines()
        return f"cannot be used ({detail[0] if detail else type(e).__name__})"


def reason_of(error: HiFiGANError) -> str:
    """The message of ``error`` without the file name in front."""
    return str(error)[len(error.path) + 2 :] if error.path else str(error)


# ---------------------------------------------------------------------- prepare
def prepare(
    data: Path,
    out_dir: Path,
    *,
    sample_rate: int,
    min_samples: int = 1024,
    train_list: Path | None = None,
    val_list: Path | None = None,
    wavs: Path | None = None,
    val_size: int | None = None,
    jobs: int = 1,
    progress: Callable[[Iterable, int], Iterable] | None = None,
) -> Prepared:
    """Find, check and convert the clips of ``data`` and write ``out_dir/manifest.jsonl`` and
    ``out_dir/skipped.tsv``. Clips converted to ``sample_rate`` go to ``out_dir/cache/<rate>``.
    ``val_size`` validation clips are drawn when the data give no split (default
    :func:`default_val_size`). When the data are refused (:class:`DataError`), what this call
    wrote is removed again: the folders it created and the clips it converted."""
    out_dir = Path(out_dir)
    if val_size is not None and val_size < 0:
        raise DataError(f"--val-size must be 0 or more, got {val_size}")
    if jobs < 1:
        raise DataError(f"--jobs must be at least 1, got {jobs}")
    candidates, skipped, layout = find_clips(
        data, train_list=train_list, val_list=val_list, wavs=wavs, exclude=[out_dir]
    )
    if not candidates and not skipped:
        raise DataError(f"no clips: the {layout} lists none", shown(data))
    if not candidates:
        raise DataError(f"none of the listed clips was found: {why_unusable(skipped)}", shown(data))
    if val_size is not None and all(c.split is not None for c in candidates):
        warn(f"{shown(data)}: --val-size is not used: the data give the split")
    _check_val_size(val_size, candidates, data)
    cache = cache_folder(out_dir, sample_rate)
    new_folders = [f for f in (cache, *cache.parents) if not f.exists()]
    cached_before = set(cache.resolve().rglob("*")) if cache.is_dir() else set()
    work = [(c, sample_rate, cache, min_samples) for c in candidates]
    outcomes: list = []
    try:
        if jobs > 1:
            with concurrent.futures.ProcessPoolExecutor(jobs) as pool:
                results: Iterable = pool.map(_inspect_or_reason, work, chunksize=8)
                results = progress(results, len(work)) if progress else results
                outcomes = list(results)
        else:
            items: Iterable = progress(work, len(work)) if progress else work
            outcomes = [_inspect_or_reason(w) for w in items]
        return _finish(candidates, outcomes, skipped, layout, out_dir, data, sample_rate, val_size)
    except DataError:
        # refused data leave nothing behind: the clips converted now, the folders made now
        made = [
            o[0].path
            for o in outcomes
            if not isinstance(o, str) and o[1] is not None and o[0].path not in cached_before
        ]
        for path in made:
            path.unlink(missing_ok=True)
        # folders made now, deepest first (ids with folders make folders in the cache)
        root = cache.resolve()
        made_folders = {p for path in made for p in path.parents if p not in cached_before}
        made_folders = {p for p in made_folders if p.is_relative_to(root) and p != root}
        for folder in sorted(made_folders, key=lambda p: -len(p.parts)) + new_folders:
            with contextlib.suppress(OSError):  # not empty: something else is there now
                folder.rmdir()
        raise


def _finish(
    candidates: list[Candidate],
    outcomes: list[tuple[Clip, tuple[int, int] | None] | str],
    skipped: list[tuple[str, str]],
    layout: str,
    out_dir: Path,
    data: Path,
    sample_rate: int,
    val_size: int | None,
) -> Prepared:
    """The split of the usable clips, and the manifest and ``skipped.tsv`` written, unless no
    usable training clip is left."""
    result = Prepared([], skipped, layout, sample_rate=sample_rate)
    usable = {}
    for c, outcome in zip(candidates, outcomes):
        if isinstance(outcome, str):
            skipped.append((shown(c.source), outcome))
            continue
        usable[c.id] = outcome[0]
        if outcome[1] is not None:
            rate, channels = outcome[1]
            result.converted += 1
            result.mixed += channels > 1
            if rate != sample_rate:
                result.resampled[rate] = result.resampled.get(rate, 0) + 1
    # the split is drawn among the usable clips only
    kept = [c for c in candidates if c.id in usable]
    if not kept:
        raise DataError(f"no usable training clips: {why_unusable(skipped)}", shown(data))
    _check_val_size(val_size, kept, data, f"; {len(skipped)} skipped")
    split = {c.id: c.split for c in assign_split(kept, val_size)}
    result.clips = [dataclasses.replace(clip, split=split[i]) for i, clip in usable.items()]
    if not any(c.split == "train" for c in result.clips):
        raise DataError(
            f"no usable training clips ({len(result.clips)} validation clips; "
            f"{why_unusable(skipped)})",
            shown(data),
        )
    write_skipped(out_dir / SKIPPED, skipped)
    result.manifest = out_dir / MANIFEST
    write_manifest(result.manifest, result.clips)
    return result


def why_unusable(skipped: list[tuple[str, str]]) -> str:
    """The skipped files in a few words: how many, for which reasons, and the first one
    (``3 files skipped (dangling symlink: 2, silent: 1); first: a.wav: dangling ...``)."""
    if not skipped:
        return "no files"
    kinds = Counter(_kind(reason) for _, reason in skipped)
    counts = ", ".join(f"{kind}: {n}" for kind, n in kinds.most_common())
    path, reason = skipped[0]
    return f"{_files(len(skipped))} skipped ({counts}); first: {shown(path)}: {reason}"


def _kind(reason: str) -> str:
    """The kind of a skip reason, without the details of one file (after a colon, or in
    parentheses that hold a path or a number): ``dangling symlink (to x.wav, ...)`` ->
    ``dangling symlink``, ``too short: 200 samples ...`` -> ``too short``."""
    kind = re.sub(r"\s*\([^()]*[/\d][^()]*\)", "", reason).split(":", 1)[0].strip()
    return kind or reason


def _files(n: int) -> str:
    return f"{n} file" if n == 1 else f"{n} files"


def write_skipped(path: Path, skipped: list[tuple[str, str]], append: bool = False) -> None:
    """Write ``path<TAB>reason`` lines (atomically; after the lines already there when
    ``append``). Names that are not valid UTF-8 are shown with ``\\xNN`` escapes
    (:func:`shown`), so that the file is UTF-8 text."""
    path = Path(path)
    old = path.read_text(encoding="utf-8", errors="replace") if append and path.is_file() else ""
    lines = "".join(f"{shown(p)}\t{reason}\n" for p, reason in skipped)
    atomic_write_text(path, old + lines.encode("utf-8", "backslashreplace").decode("utf-8"))


def _check_val_size(
    val_size: int | None, candidates: list[Candidate], data: Path, note: str = ""
) -> None:
    """Refuse a ``val_size`` that leaves none of the clips without a split for training."""
    unsplit = sum(c.split is None for c in candidates)
    if val_size is not None and unsplit and val_size >= unsplit:
        raise DataError(
            f"--val-size {val_size} leaves no training clip ({unsplit} clips{note})", data
        )


# ---------------------------------------------------------------------- manifest files
def write_manifest(path: Path, clips: list[Clip]) -> None:
    """Write clips as JSON lines, paths relative to the manifest's folder (atomically)."""
    base = Path(path).resolve().parent
    lines = []
    for c in clips:
        row: dict[str, object] = {
            "id": c.id,
            "path": _relative(c.path, base),
            "duration": c.duration,
            "sample_rate": c.sample_rate,
            "split": c.split,
            "speaker": c.speaker,
        }
        if c.source is not None:
            row["source"] = _relative(c.source, base)
        line = json.dumps(row, ensure_ascii=False)
        if _SURROGATE.search(line):  # a name that is not UTF-8: JSON's \udcXX keeps its bytes
            line = json.dumps(row)
        lines.append(line)
    atomic_write_text(path, "\n".join(lines) + "\n")


# the characters Python uses for the bytes of a file name that are not valid UTF-8
_SURROGATE = re.compile("[\ud800-\udfff]")


def _relative(path: Path, base: Path) -> str:
    """``path`` relative to ``base`` when it lies below it (the folder can move), else absolute."""
    path = Path(path).resolve()
    return path.relative_to(base).as_posix() if path.is_relative_to(base) else str(path)


def read_manifest(path: Path) -> list[Clip]:
    """Read a manifest written by :func:`write_manifest` (or by hand, same fields)."""
    path = Path(path)
    if path.is_dir():
        path = path / MANIFEST
    lines = read_text_lines(path, "manifest")
    if any(_SURROGATE.search(line) for line in lines):
        raise DataError("not a manifest: not UTF-8 text", shown(path))
    base = path.resolve().parent
    clips = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            split = str(row.get("split", "train"))
            if split not in SPLITS:
                raise ValueError(f"split must be train or val, got {split!r}")
            source = row.get("source")
            clips.append(
                Clip(
                    id=str(row["id"]),
                    path=(base / row["path"]).resolve(),
                    duration=float(row["duration"]),
                    sample_rate=int(row["sample_rate"]),
                    split=split,
                    speaker=str(row.get("speaker", "")),
                    source=None if source is None else (base / source).resolve(),
                )
            )
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            reason = f"missing field {e}" if isinstance(e, KeyError) else str(e)
            raise DataError(f"line {n} is not a valid manifest entry ({reason})", path) from None
    if not clips:
        raise DataError("manifest lists no clips", path)
    return clips
