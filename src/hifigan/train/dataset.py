"""Training and validation data: random segments, whole utterances, and the batch order.

Training examples follow the authors' recipe: audio read as int16 / 32768, peak-normalised
(``audio / max|audio| * 0.95``, not when fine-tuning), a random crop of ``segment_size`` samples
(zero-padded when the clip is shorter), and the input mel of that crop computed by the shared
:class:`~hifigan.mel.MelSpectrogram`. When fine-tuning, the input mel is read from
``<mels>/<id>.npy`` (a TTS model's teacher-forced output) and the matching audio is cropped at
``frame * hop_length``.

The batch order comes from :class:`EpochBatchSampler`: global batches over a seeded
permutation per epoch, each process taking its slice, with every example's crop drawn from its
own seed ``(seed, epoch, position)``. The data are therefore the same whatever the number of
loader workers or processes, and a run resumes at any batch.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..config import MelConfig
from ..errors import HiFiGANError, InputError
from ..io import load_audio, load_mel, peak_normalize
from ..mel import MelSpectrogram
from .manifest import Clip, reason_of

MEL_TOLERANCE_FRAMES = 2
LOG_MEL_FLOOR = math.log(1e-5)  # the log-mel of silence, used to pad short fine-tuning mels


def read_clip(clip: Clip, *, normalize: bool) -> np.ndarray:
    """A clip's samples, float32 ``(samples,)``, peak-normalised to 0.95 when ``normalize``."""
    audio, rate = load_audio(clip.path)
    if rate != clip.sample_rate:
        raise InputError(
            f"sample rate is {rate} Hz but the manifest says {clip.sample_rate} Hz; "
            "prepare the data again",
            clip.path,
        )
    if normalize:
        audio = peak_normalize(audio)
    return audio.astype(np.float32, copy=False)


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
        self.hop = mel.hop_length
        self.fine_tune = fine_tune
        self.mel = MelSpectrogram.from_config(mel)
        self.unreadable: set[int] = set()

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
        audio = read_clip(clip, normalize=self.fine_tune is None)
        seg = self.segment_size
        if self.fine_tune is not None:
            mel = self.fine_tune.load(clip)
            frames = seg // self.hop
            usable = min(mel.shape[1], audio.shape[0] // self.hop)
            start = int(rng.integers(0, usable - frames + 1)) if usable > frames else 0
            mel = mel[:, start : start + frames]
            audio = audio[start * self.hop : start * self.hop + seg]
            mel = np.pad(mel, ((0, 0), (0, frames - mel.shape[1])), constant_values=LOG_MEL_FLOOR)
            audio = np.pad(audio, (0, seg - audio.shape[0]))
            return torch.from_numpy(np.ascontiguousarray(mel)), torch.from_numpy(audio)
        if audio.shape[0] >= seg:
            start = int(rng.integers(0, audio.shape[0] - seg + 1))
            audio = audio[start : start + seg]
        else:
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
    """The whole utterances of ``clips``, prepared once for validation."""
    mel_in = MelSpectrogram.from_config(mel)
    mel_loss = MelSpectrogram.from_config(mel, for_loss=True)
    out = []
    for clip in clips:
        audio = torch.from_numpy(read_clip(clip, normalize=fine_tune is None))
        with torch.no_grad():
            inp = torch.from_numpy(fine_tune.load(clip)) if fine_tune else mel_in(audio)
            out.append(Utterance(clip.id, inp, mel_loss(audio), audio))
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
