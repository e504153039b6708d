"""Training and validation data: random segments, whole utterances, and the batch order.

Training examples follow the authors' recipe: audio read as int16 / 32768, peak-normalised
(``audio / max|audio| * 0.95``, not when fine-tuning), a random crop of ``segment_size`` samples
(zero-padded when the clip is shorter), and the input mel of that crop computed by the shared
:class:`~hifigan.mel.MelSpectrogram`. When fine-tuning, the input mel is read from
``<mels>/<id>.npy`` (a TTS model's teacher-forced output) and the matching audio is cropped at
``frame * hop_length``.

A training example reads only its segment from disk (:class:`ClipFile` seeks to it), so a
clip of two hours costs what a short one does; the peak of each clip, which the normalisation
needs, is found once per dataset copy (loader worker) by scanning the clip in blocks of
:data:`READ_BLOCK` frames. Validation uses whole utterances, up to :data:`VALIDATION_SECONDS`
each (longer clips are cut, with one warning).

The batch order comes from :class:`EpochBatchSampler`: global batches over a seeded
permutation per epoch, each process taking its slice, with every example's crop drawn from its
own seed ``(seed, epoch, position)``. The data are therefore the same whatever the number of
loader workers or processes, and a run resumes at any batch.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..config import MelConfig
from ..errors import HiFiGANError, InputError
from ..io import PEAK, load_audio, load_mel, peak_normalize, warn
from ..mel import MelSpectrogram
from .manifest import Clip, reason_of, shown

MEL_TOLERANCE_FRAMES = 2
LOG_MEL_FLOOR = math.log(1e-5)  # the log-mel of silence, used to pad short fine-tuning mels


def read_clip(clip: Clip, *, normalize: bool) -> np.ndarray:
    """A clip's samples, float32 ``(samples,)``, peak-normalised to 0.95 when ``normalize``."""
    audio, rate = load_audio(clip.path)
    check_rate(clip, rate)
    if normalize:
        audio = peak_normalize(audio)
    return audio.astype(np.float32, copy=False)


def check_rate(clip: Clip, rate: int) -> None:
    if rate != clip.sample_rate:
        raise InputError(
            f"sample rate is {rate} Hz but the manifest says {clip.sample_rate} Hz; "
            "prepare the data again",
            clip.path,
        )


# frames read at a time when a clip is scanned for its peak (bounds the memory it takes)
READ_BLOCK = 1 << 16
# the longest validation utterance, in seconds: longer clips are cut to their beginning
VALIDATION_SECONDS = 30.0
# libsndfile's frame count for a stream whose header does not record its length
_UNKNOWN_FRAMES = 1 << 62
_ALL = 1 << 62  # a frame count beyond any clip's


class ClipFile:
    """A clip opened for reading parts of it, as float32 mono (channels averaged, 16-bit PCM
    scaled by 1/32768, as :func:`~hifigan.io.load_audio` does).

    Files whose header does not give their length (or that libsndfile cannot seek in) are
    decoded whole by :func:`~hifigan.io.load_audio`, which also gives the reason for a file
    that cannot be read at all. Use as a context manager.
    """

    def __init__(self, clip: Clip) -> None:
        import soundfile as sf

        self.clip = clip
        self._file: sf.SoundFile | None = None
        self._whole: np.ndarray | None = None
        try:
            f = sf.SoundFile(os.fsencode(clip.path))
        except Exception:
            f = None
        if f is not None and 0 < f.frames < _UNKNOWN_FRAMES and f.seekable():
            if f.samplerate != clip.sample_rate:
                f.close()
                check_rate(clip, f.samplerate)
            self._file = f
            self.frames = int(f.frames)
        else:
            if f is not None:
                f.close()
            audio, rate = load_audio(clip.path)  # raises for a file that cannot be read
            check_rate(clip, rate)
            self._whole = audio
            self.frames = int(audio.shape[0])

    def __enter__(self) -> ClipFile:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._file is not None:
            self._file.close()

    def read(self, start: int, frames: int) -> np.ndarray:
        """Frames ``start ... start + frames - 1`` (fewer at the end of the clip),
        ``(frames,)`` float32."""
        start = max(0, min(start, self.frames))
        if self._whole is not None:
            return self._whole[start : start + frames]
        try:
            self._file.seek(start)
            data = self._file.read(min(frames, self.frames - start), "float32", always_2d=True)
        except Exception as e:  # libsndfile raises several types for damaged data
            raise InputError(f"cannot read audio ({e})", self.clip.path) from None
        audio = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
        if not np.isfinite(audio).all():
            raise InputError("audio contains NaN or infinite samples", self.clip.path)
        return np.ascontiguousarray(audio, dtype=np.float32)

    def peak(self) -> float:
        """The largest magnitude of the clip, read in blocks of :data:`READ_BLOCK` frames."""
        if self._whole is not None:
            return float(np.abs(self._whole).max())
        return max(
            float(np.abs(self.read(at, READ_BLOCK)).max())
            for at in range(0, self.frames, READ_BLOCK)
        )


def normalized(audio: np.ndarray, peak: float) -> np.ndarray:
    """``audio`` scaled as :func:`~hifigan.io.peak_normalize` scales the whole clip of
    largest magnitude ``peak`` (silence stays silent)."""
    return (audio / peak * PEAK).astype(np.float32) if peak > 0 else audio


def crop_seed(seed: int, epoch: int, position: int) -> int:
    """The seed of one example's random crop: a function of the run's seed and the example's
    place in the epoch, so that crops do not depend on loader workers, processes or resumes."""
    return int(np.random.SeedSequence([seed, epoch, position]).generate_state(1)[0])


class FineTuneMels:
    """The fine-tuning mels ``<folder>/<id>.npy``, checked against their clips' lengths."""

    def __init__(
        self, folder: Path, clips: list[Clip], mel: MelConfig, tolerance: int = MEL_TOLERANCE_FRAMES
    ) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise InputError("fine-tuning mel folder not found", self.folder)
        self.n_mels = mel.n_mels
        for clip in clips:
            path = self.path(clip)
            if not path.is_file():
                raise InputError(f"no fine-tuning mel for clip {clip.id!r}", path)
            try:
                shape = np.load(path, mmap_mode="r", allow_pickle=False).shape
            except Exception as e:
                raise InputError(f"cannot read mel file ({e})", path) from None
            shape = shape[1:] if len(shape) == 3 and shape[0] == 1 else shape
            if len(shape) != 2 or shape[0] != mel.n_mels:
                raise InputError(
                    f"mel has shape {tuple(shape)}, expected ({mel.n_mels}, frames)", path
                )
            samples = round(clip.duration * clip.sample_rate)
            expected = samples // mel.hop_length
            if abs(shape[1] - expected) > tolerance:
                raise InputError(
                    f"mel has {shape[1]} frames but its audio {clip.path} has {samples} samples "
                    f"= {expected} frames of {mel.hop_length} (tolerance {tolerance} frames)",
                    path,
                )

    def path(self, clip: Clip) -> Path:
        return self.folder / f"{clip.id}.npy"

    def load(self, clip: Clip) -> np.ndarray:
        """``(n_mels, frames)`` float32."""
        return load_mel(self.path(clip))

    def frames(self, clip: Clip, start: int, count: int) -> tuple[np.ndarray, int]:
        """Frames ``start ... start + count - 1`` of the clip's mel (fewer at its end),
        ``(n_mels, count)`` float32, read from the ``.npy`` file without loading the rest,
        and the mel's length in frames."""
        path = self.path(clip)
        try:
            mel = np.load(path, mmap_mode="r", allow_pickle=False)
        except Exception as e:
            raise InputError(f"cannot read mel file ({e})", path) from None
        mel = mel[0] if mel.ndim == 3 and mel.shape[0] == 1 else mel
        part = np.array(mel[:, start : start + count], dtype=np.float32)
        if not np.isfinite(part).all():
            raise InputError("mel contains NaN or infinite values", path)
        return part, int(mel.shape[1])


class SegmentDataset(torch.utils.data.Dataset):
    """Random training segments. Keys are ``(clip index, crop seed)`` pairs, as produced by
    :class:`EpochBatchSampler`; an item is ``(mel (n_mels, segment / hop), audio (segment,),
    unreadable)``.

    A clip that cannot be read (deleted or damaged since it was prepared) is replaced by the
    next readable clip of the list, with the same crop seed, so that a batch stays full and
    the data stay independent of the loader workers. ``unreadable`` lists the ``(path,
    reason)`` of the clips this copy of the dataset found unreadable while making the item
    (each is reported once per loader worker); when no clip at all can be read, the item is
    silence and every clip is listed.

    Only the segment is read from disk (and, once per copy of the dataset, the whole clip in
    blocks for its peak), so the cost of an item does not depend on the clip's length.
    """

    def __init__(
        self,
        clips: list[Clip],
        mel: MelConfig,
        segment_size: int,
        fine_tune: FineTuneMels | None = None,
    ) -> None:
        self.clips = clips
        self.segment_size = segment_size
        self.hop_length = mel.hop_length
        self.fine_tune = fine_tune
        self.mel = MelSpectrogram.from_config(mel)
        self.unreadable: set[int] = set()
        self.peaks: dict[Path, float] = {}  # the peak of each clip met so far

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, key: tuple[int, int]) -> tuple[Tensor, Tensor, list[tuple[str, str]]]:
        index, seed = key
        found = []
        for i in range(index, index + len(self.clips)):
            i %= len(self.clips)
            if i in self.unreadable:
                continue
            try:
                return (*self.segment(self.clips[i], seed), found)
            except HiFiGANError as e:
                self.unreadable.add(i)
                found.append((e.path or str(self.clips[i].path), reason_of(e)))
        silence = torch.zeros(self.segment_size)
        with torch.no_grad():
            return self.mel(silence), silence, found

    def segment(self, clip: Clip, seed: int) -> tuple[Tensor, Tensor]:
        """The input mel and the audio of one random segment of ``clip``."""
        rng = np.random.default_rng(seed)
        seg = self.segment_size
        with ClipFile(clip) as f:
            if self.fine_tune is not None:
                frames = seg // self.hop_length
                _, mel_frames = self.fine_tune.frames(clip, 0, 0)
                usable = min(mel_frames, f.frames // self.hop_length)
                start = int(rng.integers(0, usable - frames + 1)) if usable > frames else 0
                mel, _ = self.fine_tune.frames(clip, start, frames)
                audio = f.read(start * self.hop_length, seg)
                mel = np.pad(
                    mel, ((0, 0), (0, frames - mel.shape[1])), constant_values=LOG_MEL_FLOOR
                )
                audio = np.pad(audio, (0, seg - audio.shape[0]))
                return torch.from_numpy(np.ascontiguousarray(mel)), torch.from_numpy(audio)
            start = int(rng.integers(0, f.frames - seg + 1)) if f.frames >= seg else 0
            audio = f.read(start, seg)
            if clip.path not in self.peaks:
                self.peaks[clip.path] = f.peak()
            audio = normalized(audio, self.peaks[clip.path])
        audio = np.pad(audio, (0, seg - audio.shape[0]))
        segment = torch.from_numpy(np.ascontiguousarray(audio))
        with torch.no_grad():
            return self.mel(segment), segment


def collate_segments(
    items: list[tuple[Tensor, Tensor, list[tuple[str, str]]]],
) -> tuple[Tensor, Tensor, list[tuple[str, str]]]:
    """A batch of :class:`SegmentDataset` items: ``(mel (B, n_mels, frames), audio (B,
    segment), the unreadable clips found while making it)``."""
    mels, audios, unreadable = zip(*items)
    return torch.stack(mels), torch.stack(audios), [u for found in unreadable for u in found]


def padding_share(clips: list[Clip], segment_size: int) -> float:
    """The expected share of zero padding in a training batch: clips shorter than the segment
    are padded to it, and every clip is drawn equally often."""
    if not clips:
        return 0.0
    missing = (max(0, segment_size - round(c.duration * c.sample_rate)) for c in clips)
    return sum(missing) / (segment_size * len(clips))


@dataclass
class Utterance:
    """One whole validation clip: the generator input ``mel (n_mels, frames)``, the loss mel of
    the real audio ``real_mel (n_mels, frames')`` and the audio ``(samples,)``."""

    id: str
    mel: Tensor
    real_mel: Tensor
    audio: Tensor


def load_validation(
    clips: list[Clip], mel: MelConfig, fine_tune: FineTuneMels | None = None
) -> list[Utterance]:
    """The whole utterances of ``clips``, prepared once for validation; a clip longer than
    :data:`VALIDATION_SECONDS` is cut to its beginning (its frames beyond are not read), with
    one warning for all of them."""
    mel_in = MelSpectrogram.from_config(mel)
    mel_loss = MelSpectrogram.from_config(mel, for_loss=True)
    out, cut = [], []
    for clip in clips:
        limit = round(VALIDATION_SECONDS * clip.sample_rate)
        with ClipFile(clip) as f:
            audio = f.read(0, limit)
            if f.frames > limit:
                cut.append((clip, f.frames / clip.sample_rate))
            if fine_tune is None:
                peak = f.peak() if cut and cut[-1][0] is clip else float(np.abs(audio).max())
                audio = normalized(audio, peak)
        audio_t = torch.from_numpy(np.ascontiguousarray(audio))
        with torch.no_grad():
            if fine_tune is not None:
                frames = limit // mel.hop_length if cut and cut[-1][0] is clip else _ALL
                inp = torch.from_numpy(fine_tune.frames(clip, 0, frames)[0])
            else:
                inp = mel_in(audio_t)
            out.append(Utterance(clip.id, inp, mel_loss(audio_t), audio_t))
    if cut:
        clip, seconds = max(cut, key=lambda c: c[1])
        which = "1 validation clip is" if len(cut) == 1 else f"{len(cut)} validation clips are"
        warn(
            f"{which} longer than {VALIDATION_SECONDS:g} s (the longest: {shown(clip.path)}, "
            f"{seconds:.0f} s): validation uses their first {VALIDATION_SECONDS:g} s"
        )
    return out


def check_batches(num_clips: int, batch_size: int, world_size: int = 1) -> None:
    """Refuse a global batch that ``world_size`` processes cannot share evenly, or that is
    larger than the training set."""
    if batch_size % world_size:
        raise InputError(
            f"the batch size ({batch_size}) must be divisible by the number of processes "
            f"({world_size}); it is the global batch"
        )
    if num_clips < batch_size:
        raise InputError(
            f"the training set has {num_clips} clips, fewer than one batch ({batch_size})"
        )


class EpochBatchSampler(torch.utils.data.Sampler[list[tuple[int, int]]]):
    """Global batches of ``batch_size`` examples over a seeded permutation of the clips, one
    epoch at a time (the last incomplete batch is dropped, as in the authors' loader).

    With ``world_size`` processes, ``batch_size`` is the global batch and process ``rank`` takes
    examples ``rank * b, ..., rank * b + b - 1`` of each batch (``b = batch_size / world_size``).
    :meth:`set_position` chooses the epoch and the first batch, for resuming.
    """

    def __init__(
        self, num_clips: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1
    ) -> None:
        check_batches(num_clips, batch_size, world_size)
        self.num_clips = num_clips
        self.batch_size = batch_size
        self.per_process = batch_size // world_size
        self.seed = seed
        self.rank = rank
        self.epoch = 0
        self.start = 0

    @property
    def batches_per_epoch(self) -> int:
        return self.num_clips // self.batch_size

    def set_position(self, epoch: int, start: int = 0) -> None:
        """Iterate epoch ``epoch`` from its batch ``start``."""
        self.epoch, self.start = epoch, start

    def __len__(self) -> int:
        return self.batches_per_epoch - self.start

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        order = np.random.default_rng([self.seed, self.epoch]).permutation(self.num_clips)
        for b in range(self.start, self.batches_per_epoch):
            first = b * self.batch_size + self.rank * self.per_process
            yield [
                (int(order[p]), crop_seed(self.seed, self.epoch, p))
                for p in range(first, first + self.per_process)
            ]
