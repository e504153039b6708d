"""Training examples, validation utterances and the batch order."""

import shutil
import tracemalloc

import numpy as np
import pytest
import soundfile as sf
import torch

from hifigan import HiFiGANConfig, MelSpectrogram
from hifigan.errors import InputError
from hifigan.io import HiFiGANWarning, peak_normalize
from hifigan.train.dataset import (
    READ_BLOCK,
    VALIDATION_SECONDS,
    EpochBatchSampler,
    FineTuneMels,
    SegmentDataset,
    load_validation,
)
from hifigan.train.manifest import Clip, prepare

from conftest import GOLDEN, LJSPEECH, need

MEL = HiFiGANConfig.preset("v1").mel


@pytest.fixture(scope="module")
def lj001(tmp_path_factory):
    """The manifest clip of LJ001-0001 (whose golden training input is known)."""
    folder = tmp_path_factory.mktemp("lj001")
    shutil.copy(need(LJSPEECH / "wavs" / "LJ001-0001.flac"), folder / "LJ001-0001.flac")
    return prepare(folder, folder / "data", sample_rate=22050).clips[0]


def find(signal, piece):
    """Where ``piece`` starts in ``signal`` (matching to 1e-6), or -1."""
    for s in np.nonzero(np.abs(signal - piece[0]) < 1e-6)[0]:
        if s + 32 <= signal.size and np.abs(signal[s : s + 32] - piece[:32]).max() < 1e-6:
            return int(s)
    return -1


def test_segments_are_random_crops_of_the_peak_normalised_clip(lj001):
    golden = np.load(need(GOLDEN / "mel_LJ001-0001.npz"))["wav_train_normalized"]
    ds = SegmentDataset([lj001], MEL, 8192)
    mel_fn = MelSpectrogram.from_config(MEL)
    starts = set()
    for seed in range(4):
        mel, audio, unreadable = ds[(0, seed)]
        assert audio.shape == (8192,) and mel.shape == (80, 32) and unreadable == []
        # the crop is a contiguous piece of the authors' training input
        start = find(golden, audio.numpy())
        assert np.abs(golden[start : start + 8192] - audio.numpy()).max() < 1e-6
        assert torch.allclose(mel, mel_fn(audio), atol=1e-5)
        starts.add(start)
        again = ds[(0, seed)]
        assert torch.equal(again[1], audio)  # the crop depends on the seed only
    assert len(starts) == 4
    # a segment longer than the clip: the whole clip, padded with zeros
    n = golden.size
    long = SegmentDataset([lj001], MEL, 256 * ((n // 256) + 8))
    _, audio, _ = long[(0, 0)]
    assert np.abs(audio[:n].numpy() - golden).max() < 1e-6
    assert not audio[n:].any()


def test_validation_uses_whole_normalised_utterances(lj001):
    golden = np.load(need(GOLDEN / "mel_LJ001-0001.npz"))
    (u,) = load_validation([lj001], MEL)
    assert np.abs(u.audio.numpy() - golden["wav_train_normalized"]).max() < 1e-6
    loss_mel = MelSpectrogram.from_config(MEL, for_loss=True)
    assert torch.allclose(u.real_mel, loss_mel(u.audio), atol=1e-5)
    assert u.mel.shape == (80, 831)


def test_fine_tuning_crops_mel_and_audio_together(tmp_path, lj001):
    audio, _ = sf.read(lj001.path, dtype="float32")
    mel = MelSpectrogram.from_config(MEL)(torch.from_numpy(audio)).numpy()
    mel = mel + np.arange(mel.shape[1], dtype=np.float32)  # mark each frame with its index
    np.save(tmp_path / "LJ001-0001.npy", mel)
    ds = SegmentDataset([lj001], MEL, 8192, FineTuneMels(tmp_path, [lj001], MEL))
    for seed in range(3):
        m, a, _ = ds[(0, seed)]
        assert m.shape == (80, 32) and a.shape == (8192,)
        start = int(np.argmin(np.abs(mel[0] - m[0, 0].item())))
        assert np.array_equal(m.numpy(), mel[:, start : start + 32])
        # not normalised when fine-tuning, and aligned at frame * hop
        assert np.array_equal(a.numpy(), audio[start * 256 : start * 256 + 8192])


def test_a_mismatched_fine_tuning_mel_is_reported_by_name(tmp_path, lj001):
    frames = sf.info(lj001.path).frames // 256
    np.save(tmp_path / "LJ001-0001.npy", np.zeros((80, frames + 1), dtype=np.float32))
    FineTuneMels(tmp_path, [lj001], MEL)  # within the tolerance
    np.save(tmp_path / "LJ001-0001.npy", np.zeros((80, frames + 40), dtype=np.float32))
    with pytest.raises(InputError) as e:
        FineTuneMels(tmp_path, [lj001], MEL)
    msg = str(e.value)
    assert msg.startswith(f"{tmp_path / 'LJ001-0001.npy'}: mel has {frames + 40} frames")
    assert f"{sf.info(lj001.path).frames} samples = {frames} frames" in msg
    (tmp_path / "LJ001-0001.npy").unlink()
    with pytest.raises(InputError, match="no fine-tuning mel for clip 'LJ001-0001'"):
        FineTuneMels(tmp_path, [lj001], MEL)


def test_the_batch_order_splits_global_batches_across_processes():
    one = EpochBatchSampler(23, 4, seed=7)
    ranks = [EpochBatchSampler(23, 4, seed=7, rank=r, world_size=2) for r in range(2)]
    assert one.batches_per_epoch == 5
    for epoch in (0, 1):
        for s in (one, *ranks):
            s.set_position(epoch)
        full = list(one)
        parts = [list(r) for r in ranks]
        assert [a + b for a, b in zip(*parts)] == full
        assert len({i for batch in full for i, _ in batch}) == 20  # no repeats within an epoch
    one.set_position(0)
    epoch0 = list(one)
    one.set_position(1)
    assert list(one) != epoch0
    one.set_position(0, 3)  # resuming at batch 3
    assert list(one) == epoch0[3:] and len(one) == 2
    with pytest.raises(InputError, match="divisible by the number of processes"):
        EpochBatchSampler(23, 3, seed=7, rank=0, world_size=2)
    with pytest.raises(InputError, match="3 clips, fewer than one batch"):
        EpochBatchSampler(3, 4, seed=7)


@pytest.fixture(scope="module")
def long_and_short(tmp_path_factory):
    """A 2 s clip and a 300 s one (16-bit WAV at 22.05 kHz), the long one loudest near its
    end, as manifest clips."""
    folder = tmp_path_factory.mktemp("long")
    rng = np.random.default_rng(1)
    clips = []
    for name, seconds in (("short", 2), ("long", 300)):
        audio = 0.1 * rng.standard_normal(seconds * 22050).astype(np.float32)
        audio[-22050] = 0.9  # the peak, in the last second
        sf.write(folder / f"{name}.wav", audio, 22050, subtype="PCM_16")
        clips.append(Clip(name, folder / f"{name}.wav", float(seconds), 22050, "train"))
    return clips


def count_frames_read(monkeypatch):
    """The frame counts of every read of an audio file from now on."""
    reads = []
    read = sf.SoundFile.read

    def counted(self, *args, **kwargs):
        out = read(self, *args, **kwargs)
        reads.append(len(out))
        return out

    monkeypatch.setattr(sf.SoundFile, "read", counted)
    return reads


def test_a_long_clip_costs_what_a_short_one_does(long_and_short, monkeypatch):
    ds = SegmentDataset(long_and_short, MEL, 8192)
    reads = count_frames_read(monkeypatch)
    # the first draw of a clip finds its peak, reading it in blocks of bounded size
    ds[(1, 0)]
    assert max(reads) <= READ_BLOCK and sum(reads) == 300 * 22050 + 8192
    ds[(0, 0)]
    memory = {}
    for index, name in enumerate(("short", "long")):
        reads.clear()
        tracemalloc.start()
        _, audio, _ = ds[(index, 5)]
        memory[name] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert reads == [8192], name  # the segment and nothing else
        # the same crop as from the whole normalised clip (the authors' recipe)
        whole = peak_normalize(sf.read(long_and_short[index].path, dtype="float32")[0])
        start = int(np.random.default_rng(5).integers(0, whole.size - 8192 + 1))
        assert np.array_equal(audio.numpy(), whole[start : start + 8192]), name
    # the long clip decodes to 26 MB of float32; an item takes what a short clip's does
    assert memory["long"] < 2 * memory["short"] + 100_000, memory


def test_validation_cuts_long_clips_and_says_so_once(long_and_short, monkeypatch):
    reads = count_frames_read(monkeypatch)
    with pytest.warns(HiFiGANWarning) as warned:
        short, long = load_validation(long_and_short, MEL)
    assert [str(w.message) for w in warned] == [
        f"1 validation clip is longer than {VALIDATION_SECONDS:g} s (the longest: "
        f"{long_and_short[1].path}, 300 s): validation uses their first {VALIDATION_SECONDS:g} s"
    ]
    assert short.audio.shape == (2 * 22050,)
    assert long.audio.shape == (VALIDATION_SECONDS * 22050,)
    assert max(reads) <= VALIDATION_SECONDS * 22050  # never the whole clip at once
    whole = peak_normalize(sf.read(long_and_short[1].path, dtype="float32")[0])
    assert np.array_equal(long.audio.numpy(), whole[: long.audio.shape[0]])
