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
* any folder of audio files, searched recursively; a file's speaker is its parent folder
  (a VCTK-style folder of speaker subfolders).

Every clip is decoded once (:func:`inspect_clip`): unreadable, empty, silent or too-short files
are skipped and listed, never fatal. Clips at another sample rate than the config's or with
several channels are converted once (resampled, mixed to mono) into ``cache/<rate>/`` and reused
on later runs. When no split is given, a deterministic one is drawn from a hash of each clip's
id.

The manifest is one JSON object per line: ``id``, ``path`` (relative to the manifest's folder),
``duration`` (seconds), ``sample_rate``, ``split`` (``train`` or ``val``), ``speaker`` and, for
converted clips, ``source``. Paths below the manifest's folder are relative to it, others
absolute.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import json
import warnings
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
            lines.append(
                f"{name}: {len(clips)} clips, {sum(c.duration for c in clips) / 60:.1f} min"
            )
        lines.append(f"layout: {self.layout}")
        folder = self.manifest.parent if self.manifest else Path(".")
        if self.converted:
            done = []
            if self.resampled:
                rates = ", ".join(f"{n} from {r} Hz" for r, n in sorted(self.resampled.items()))
                n = sum(self.resampled.values())
                done.append(f"resampled {_clips(n)} to {self.sample_rate} Hz ({rates})")
            if self.mixed:
                done.append(f"mixed {_clips(self.mixed)} down to mono")
            lines.append(f"{'; '.join(done)}, into {cache_folder(folder, self.sample_rate)}")
        if self.skipped:
            lines.append(f"skipped {len(self.skipped)} files (listed in {folder / SKIPPED}):")
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


# ---------------------------------------------------------------------- finding clips
def find_clips(
    data: Path,
    *,
    train_list: Path | None = None,
    val_list: Path | None = None,
    wavs: Path | None = None,
) -> tuple[list[Candidate], list[tuple[str, str]], str]:
    """The clips of a dataset folder, the listed files that are missing, and the layout name.

    ``train_list``/``val_list`` are the authors' filelists (``id|text`` lines); their audio is
    looked up in ``wavs`` (default ``data/wavs``, else ``data``).
    """
    data = Path(data)
    if not data.exists():
        raise DataError("dataset folder not found", data)
    if data.is_file():
        return _clips_of_file(data, wavs)
    if train_list is None and val_list is None and (data / MANIFEST).is_file():
        return _clips_of_manifest(data / MANIFEST)
    if train_list is None and val_list is None:
        train_list = _first_existing(data, TRAIN_LIST_NAMES)
        val_list = _first_existing(data, VAL_LIST_NAMES) if train_list else None
    if wavs is None:
        wavs = data / "wavs" if (data / "wavs").is_dir() else data
    if train_list is not None:
        lists = [(train_list, "train")] + ([(val_list, "val")] if val_list else [])
        found, missing = [], []
        for path, split in lists:
            f, m = _read_filelist(path, wavs, split)
            found += f
            missing += m
        names = " + ".join(p.name for p, _ in lists)
        return _unique(found, missing), missing, f"filelists ({names})"
    if (data / "metadata.csv").is_file():
        found, missing = _read_filelist(data / "metadata.csv", wavs, None)
        return _unique(found, missing), missing, "LJSpeech folder (metadata.csv + wavs/)"
    files = audio_files(data)
    if not files:
        raise DataError(
            "no audio files, metadata.csv, filelists or manifest.jsonl in this folder", data
        )
    # ids are the file names, or the paths below DATA when names repeat; a file's speaker is
    # its folder when the files sit in several folders (speaker subfolders)
    stems = [p.stem for p in files]
    unique = len(set(stems)) == len(stems)
    folders = {p.parent for p in files}
    found = [
        Candidate(
            p.stem if unique else p.relative_to(data).with_suffix("").as_posix(),
            p,
            None,
            p.parent.name if len(folders) > 1 else "",
        )
        for p in files
    ]
    layout = (
        f"folder of speaker subfolders ({len(folders)} speakers)"
        if len(folders) > 1
        else "folder of audio files"
    )
    return _unique(found, []), [], layout


# what a dataset may be, for the messages that refuse something else
ACCEPTED_DATA = (
    "expected a dataset folder, a prepared folder or its manifest.jsonl, or an id|text filelist"
)


def _clips_of_file(
    path: Path, wavs: Path | None
) -> tuple[list[Candidate], list[tuple[str, str]], str]:
    """A manifest file, or one ``id|text`` filelist whose audio is in ``wavs`` (default
    ``wavs/`` beside it, else its folder); any other file is refused."""
    if path.suffix.lower() in AUDIO_SUFFIXES:
        raise DataError(f"is an audio file, not a dataset: {ACCEPTED_DATA}", path)
    if path.suffix.lower() == ".jsonl":
        return _clips_of_manifest(path)
    if not _is_text(path):
        raise DataError(f"not a text file: {ACCEPTED_DATA}", path)
    if wavs is None:
        wavs = path.parent / "wavs" if (path.parent / "wavs").is_dir() else path.parent
    found, missing = _read_filelist(path, wavs, None)
    return _unique(found, missing), missing, f"filelist ({path.name})"


def _is_text(path: Path) -> bool:
    """Whether the start of a file decodes as UTF-8 (a multi-byte character may be cut)."""
    import codecs

    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError as e:
        raise DataError(f"cannot read ({(e.strerror or str(e)).lower()})", path) from None
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return False
    return b"\0" not in head


def _clips_of_manifest(path: Path) -> tuple[list[Candidate], list[tuple[str, str]], str]:
    """The clips of a prepared manifest, with their split; each is read again from its
    original file when that still exists (a converted clip's ``source``)."""
    candidates = [
        Candidate(c.id, c.source if c.source and c.source.is_file() else c.path, c.split, c.speaker)
        for c in read_manifest(path)
    ]
    return candidates, [], f"prepared manifest ({path})"


def audio_files(folder: Path) -> list[Path]:
    """Every audio file (:data:`~hifigan.io.AUDIO_SUFFIXES`) below ``folder``, recursively,
    sorted."""
    found = Path(folder).rglob("*")
    return sorted(p for p in found if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)


def filelist_ids(path: Path) -> list[tuple[int, str]]:
    """``(line number, id)`` for each ``id|text...`` line of a filelist (the authors' lists,
    LJSpeech's ``metadata.csv``); blank lines and ``#`` comments are passed over."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise DataError("filelist not found", path) from None
    except UnicodeDecodeError:
        raise DataError("not a UTF-8 text file (a filelist holds id|text lines)", path) from None
    except OSError as e:
        raise DataError(f"cannot read filelist ({(e.strerror or str(e)).lower()})", path) from None
    ids = []
    for n, line in enumerate(lines, 1):
        if not line.strip() or line.startswith("#"):
            continue
        clip_id = line.split("|", 1)[0].strip()
        if not clip_id:
            raise DataError(f"line {n} has an empty id", path)
        ids.append((n, clip_id))
    return ids


def locate_audio(clip_id: str, folders: list[Path]) -> Path | None:
    """The audio file for ``clip_id`` (with or without suffix) in the first folder that has it."""
    for folder in folders:
        direct = folder / clip_id
        if direct.is_file():
            return direct
        for suffix in AUDIO_SUFFIXES:
            p = folder / f"{clip_id}{suffix}"
            if p.is_file():
                return p
    return None


def _first_existing(folder: Path, names: Iterable[str]) -> Path | None:
    return next((folder / n for n in names if (folder / n).is_file()), None)


def _read_filelist(
    path: Path, wavs: Path, split: str | None
) -> tuple[list[Candidate], list[tuple[str, str]]]:
    """``id|text...`` lines -> candidates; ids whose audio is absent are returned as missing."""
    found, missing = [], []
    for _, clip_id in filelist_ids(path):
        audio = locate_audio(clip_id, [wavs, Path(path).parent])
        if audio is None:
            missing.append((str(wavs / clip_id), f"listed in {path} but no audio file found"))
            continue
        stem = Path(clip_id).name
        stem = stem[: -len(Path(stem).suffix)] if Path(stem).suffix in AUDIO_SUFFIXES else stem
        found.append(Candidate(stem, audio, split, ""))
    return found, missing


def _unique(found: list[Candidate], skipped: list[tuple[str, str]]) -> list[Candidate]:
    """Drop repeated ids (the first one wins), recording the repeats as skipped."""
    seen: dict[str, Candidate] = {}
    for c in found:
        if c.id in seen:
            skipped.append((str(c.source), f"id {c.id!r} already used by {seen[c.id].source}"))
        else:
            seen[c.id] = c
    return list(seen.values())


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
        else Candidate(c.id, c.source, "val" if c.id in val_ids else "train", c.speaker)
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
    cached = cache_dir / f"{candidate.id}.wav"
    if cached.is_file() and cached.stat().st_mtime >= source.stat().st_mtime:
        info = sf.info(str(cached))
        if info.samplerate == sample_rate and info.channels == 1 and info.frames >= min_samples:
            return _clip(candidate, cached, info.frames, sample_rate, source), None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the mix-down is reported in the summary
        audio, rate = load_audio(source)
    try:
        channels = sf.info(str(source)).channels
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
        return f"cannot convert ({e.strerror or e})"


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
    :func:`default_val_size`)."""
    out_dir = Path(out_dir)
    if val_size is not None and val_size < 0:
        raise DataError(f"--val-size must be 0 or more, got {val_size}")
    if jobs < 1:
        raise DataError(f"--jobs must be at least 1, got {jobs}")
    candidates, skipped, layout = find_clips(
        data, train_list=train_list, val_list=val_list, wavs=wavs
    )
    if not candidates:
        raise DataError("none of the listed clips was found", data)
    if val_size is not None and all(c.split is not None for c in candidates):
        warn(f"{data}: --val-size is not used: the data give the split")
    _check_val_size(val_size, candidates, data)
    work = [(c, sample_rate, cache_folder(out_dir, sample_rate), min_samples) for c in candidates]
    if jobs > 1:
        with concurrent.futures.ProcessPoolExecutor(jobs) as pool:
            results: Iterable = pool.map(_inspect_or_reason, work, chunksize=8)
            results = progress(results, len(work)) if progress else results
            outcomes = list(results)
    else:
        items: Iterable = progress(work, len(work)) if progress else work
        outcomes = [_inspect_or_reason(w) for w in items]
    result = Prepared([], skipped, layout, sample_rate=sample_rate)
    usable = {}
    for c, outcome in zip(candidates, outcomes):
        if isinstance(outcome, str):
            skipped.append((str(c.source), outcome))
            continue
        usable[c.id] = outcome[0]
        if outcome[1] is not None:
            rate, channels = outcome[1]
            result.converted += 1
            result.mixed += channels > 1
            if rate != sample_rate:
                result.resampled[rate] = result.resampled.get(rate, 0) + 1
    skipped_file = out_dir / SKIPPED
    atomic_write_text(skipped_file, "".join(f"{path}\t{reason}\n" for path, reason in skipped))
    # the split is drawn among the usable clips only
    kept = [c for c in candidates if c.id in usable]
    _check_val_size(val_size, kept, data, f"; {len(skipped)} skipped, in {skipped_file}")
    split = {c.id: c.split for c in assign_split(kept, val_size)}
    result.clips = [dataclasses.replace(clip, split=split[i]) for i, clip in usable.items()]
    if not any(c.split == "train" for c in result.clips):
        raise DataError(
            f"no usable training clips ({len(skipped)} files skipped, listed in {skipped_file})",
            data,
        )
    result.manifest = out_dir / MANIFEST
    write_manifest(result.manifest, result.clips)
    return result


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
        lines.append(json.dumps(row, ensure_ascii=False))
    atomic_write_text(path, "\n".join(lines) + "\n")


def _relative(path: Path, base: Path) -> str:
    """``path`` relative to ``base`` when it lies below it (the folder can move), else absolute."""
    path = Path(path).resolve()
    return path.relative_to(base).as_posix() if path.is_relative_to(base) else str(path)


def read_manifest(path: Path) -> list[Clip]:
    """Read a manifest written by :func:`write_manifest` (or by hand, same fields)."""
    path = Path(path)
    if path.is_dir():
        path = path / MANIFEST
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise DataError("manifest not found", path) from None
    except UnicodeDecodeError:
        raise DataError("not a manifest: not UTF-8 text", path) from None
    except OSError as e:
        raise DataError(f"cannot read manifest ({e.strerror})", path) from None
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
