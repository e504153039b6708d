"""The stimuli of a listening test: audio files paired by stem across the systems' folders.

Raters only ever see opaque ids (an HMAC of utterance and system under a secret kept in the
ratings database), and every stimulus is served as 16-bit mono WAV, so neither URLs nor file
formats tell systems apart. By default each clip is scaled to a common RMS level: the paper
normalised its clips too, so that loudness differences would not sway the raters.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from threading import Lock

import numpy as np

from ..errors import HiFiGANError, InputError
from ..evaluation.clips import pair_by_stem
from ..evaluation.render import GROUND_TRUTH
from ..io import load_audio, to_int16, warn
from .store import RequestFailure

TARGET_RMS_DB = -23.0  # dBFS; loud enough for speech, with headroom for its peaks
PEAK_LIMIT = 0.99  # a clip's gain is lowered rather than let it clip
RESERVED_NAMES = (GROUND_TRUTH, "reference")


class StimulusGone(RequestFailure):
    """A stimulus file deleted, emptied or made unreadable after the test started (410)."""

    status = 410


def parse_systems(specs: list[str]) -> dict[str, Path]:
    """``NAME=DIR`` options as ``{name: folder}`` (order kept); names must be unique."""
    systems: dict[str, Path] = {}
    for spec in specs:
        name, sep, folder = spec.partition("=")
        name = name.strip()
        if not sep or not name or not folder:
            raise HiFiGANError(f"--system expects NAME=DIR, got {spec!r}")
        if name.lower() in RESERVED_NAMES:
            raise HiFiGANError(f"--system {spec!r}: {name!r} is reserved for the --ref folder")
        if name in systems:
            raise HiFiGANError(f"--system {spec!r}: the name {name!r} is given twice")
        systems[name] = Path(folder)
    return systems


@dataclass
class StimulusSet:
    """Utterances (stems) × systems (the ground truth first) and their audio files."""

    utterances: list[str]
    systems: list[str]
    files: dict[tuple[str, str], Path]
    secret: bytes = b""
    normalize: bool = True
    _ids: dict[str, tuple[str, str]] = field(default_factory=dict, repr=False)
    _cache: OrderedDict = field(default_factory=OrderedDict, repr=False)
    _lock: Lock = field(default_factory=Lock, repr=False)
    _gone: set = field(default_factory=set, repr=False)

    def __post_init__(self) -> None:
        self.use_secret(self.secret)

    def use_secret(self, secret: bytes) -> None:
        """Key the stimulus ids with ``secret`` (the ratings database keeps it)."""
        self.secret = secret
        self._ids = {self.stimulus_id(u, s): (u, s) for (u, s) in self.files}

    def stimulus_id(self, utterance: str, system: str) -> str:
        """The opaque id under which one stimulus is served."""
        message = f"{utterance}\0{system}".encode()
        return hmac.new(self.secret, message, hashlib.sha256).hexdigest()[:24]

    def playable(self, utterance: str, system: str) -> bool:
        """Whether the stimulus is in the test and its file has not failed since start."""
        return (utterance, system) in self.files and (utterance, system) not in self._gone

    def lookup(self, stimulus_id: str) -> tuple[str, str] | None:
        """``(utterance, system)`` of an id, or None for an unknown one."""
        return self._ids.get(stimulus_id)

    def wav_bytes(self, stimulus_id: str) -> bytes | None:
        """The stimulus as a 16-bit mono WAV file (None for an unknown id); recently served
        clips are kept in memory. Raises :class:`StimulusGone` when its file no longer reads
        as it did at start."""
        key = self.lookup(stimulus_id)
        if key is None:
            return None
        with self._lock:
            if stimulus_id in self._cache:
                self._cache.move_to_end(stimulus_id)
                return self._cache[stimulus_id]
        path = self.files[key]
        try:
            data = render_wav(path, normalize=self.normalize)
        except (HiFiGANError, OSError) as e:
            reason = str(e).removeprefix(f"{path}: ")
            with self._lock:
                self._gone.add(key)  # later trials skip it: a reload moves the rater on
            raise StimulusGone(
                f"stimulus no longer readable since the test started ({reason})",
                path,
                public="this recording is no longer available",
            ) from None
        with self._lock:
            self._cache[stimulus_id] = data
            while len(self._cache) > 64:
                self._cache.popitem(last=False)
        return data


def collect_stimuli(reference: Path, systems: dict[str, Path]) -> StimulusSet:
    """Pair the files of ``reference`` and each system folder by stem.

    Stems missing in some folder are warned about and left out: the test uses the stems that
    every folder has. The reference joins as the system ``ground truth``.
    """
    if not systems:
        raise HiFiGANError("give at least one --system NAME=DIR to compare with the reference")
    common: set[str] | None = None
    files: dict[tuple[str, str], Path] = {}
    all_refs: set[str] = set()
    for name, folder in systems.items():
        pairs = pair_by_stem(Path(reference), folder)
        stems = {stem for stem, _, _ in pairs}
        common = stems if common is None else common & stems
        for stem, ref_path, path in pairs:
            files[(stem, GROUND_TRUTH)] = ref_path
            files[(stem, name)] = path
            all_refs.add(stem)
    if not common:
        raise InputError(
            f"no file stem is present in every --system folder ({', '.join(systems)})", reference
        )
    dropped = sorted(all_refs - common)
    if dropped:
        warn(
            f"{reference}: {len(dropped)} stems are missing in some --system folder "
            f"({dropped[0]}, ...); the test uses the {len(common)} stems all folders share"
        )
    names = [GROUND_TRUTH, *systems]
    utterances = sorted(common)
    kept = {(u, s): files[(u, s)] for u in utterances for s in names}
    return StimulusSet(utterances=utterances, systems=names, files=kept)


def render_wav(path: Path, *, normalize: bool = True) -> bytes:
    """One audio file as 16-bit mono WAV bytes at its own sample rate, optionally scaled to
    :data:`TARGET_RMS_DB` (less if its peak would pass :data:`PEAK_LIMIT`)."""
    import soundfile as sf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # channel mixing was already reported at start-up
        audio, rate = load_audio(path)
    if normalize:
        audio = normalized(audio)
    buffer = io.BytesIO()
    sf.write(buffer, to_int16(audio), rate, subtype="PCM_16", format="WAV")
    return buffer.getvalue()


def normalized(audio: np.ndarray) -> np.ndarray:
    """``audio`` (shape ``(samples,)``) scaled to the target RMS level, peak-limited."""
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))
    peak = float(np.max(np.abs(audio)))
    if rms == 0.0:
        return audio
    gain = min(10 ** (TARGET_RMS_DB / 20) / rms, PEAK_LIMIT / peak)
    return (audio * gain).astype(np.float32)


def check_readable(stimuli: StimulusSet) -> None:
    """Read every file once, whole, so that a file no rater could hear (unreadable, empty, or
    with NaN or infinite samples) stops the server before raters come, naming the file."""
    import soundfile as sf

    for path in stimuli.files.values():
        try:
            info = sf.info(str(path))
        except Exception as e:  # libsndfile raises several types for unreadable files
            reason = str(e).split(":")[-1].strip() or type(e).__name__
            raise InputError(f"cannot read audio ({reason})", path) from None
        if info.frames == 0:
            raise InputError("audio file has no samples", path)
        if info.channels > 1:
            warn(f"{path}: {info.channels} channels are mixed down to mono for the raters")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the mixing was just reported
            load_audio(path)  # raises for undecodable, empty or non-finite audio
