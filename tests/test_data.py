"""Data preparation (layouts, split, conversion cache, bad files) and the training dataset."""

import shutil

import numpy as np
import pytest
import soundfile as sf
import torch

from hifigan import HiFiGANConfig, MelSpectrogram
from hifigan.errors import InputError
from hifigan.train.dataset import (
    EpochBatchSampler,
    FineTuneMels,
    SegmentDataset,
    load_validation,
)
from hifigan.train.manifest import (
    DataError,
    assign_split,
    find_clips,
    prepare,
    read_manifest,
)

from conftest import GOLDEN, LJSPEECH, need

MEL = HiFiGANConfig.preset("v1").mel


def lj_files(n):
    files = sorted((need(LJSPEECH) / "wavs").glob("*.flac"))[:n]
    assert len(files) == n
    return files


@pytest.fixture
def lj_folder(tmp_path):
    """An LJSpeech-style folder with 10 real clips."""
    root = tmp_path / "LJSpeech"
    (root / "wavs").mkdir(parents=True)
    lines = []
    for f in lj_files(10):
        shutil.copy(f, root / "wavs" / f.name)
        lines.append(f"{f.stem}|some text|some text")
    (root / "metadata.csv").write_text("\n".join(lines) + "\n")
    return root


def test_ljspeech_folder_gives_a_manifest_and_a_deterministic_split(tmp_path, lj_folder):
    a = prepare(lj_folder, tmp_path / "a", sample_rate=22050)
    assert a.layout.startswith("LJSpeech folder")
    assert len(a.clips) == 10 and not a.skipped and a.converted == 0
    assert [c.split for c in a.clips].count("val") == 2  # 10 clips: a fifth
    for clip in a.clips:
        info = sf.info(clip.path)
        assert clip.path.parent == lj_folder / "wavs"
        assert clip.duration == pytest.approx(info.frames / 22050, abs=1e-6)
        assert clip.sample_rate == 22050
    assert read_manifest(tmp_path / "a") == a.clips  # the file round-trips
    # deterministic: another run, and another order of the files, give the same split
    b = prepare(lj_folder, tmp_path / "b", sample_rate=22050, jobs=2)  # in 2 processes
    assert [(c.id, c.split, c.duration) for c in b.clips] == [
        (c.id, c.split, c.duration) for c in a.clips
    ]
    cands, _, _ = find_clips(lj_folder)
    shuffled = assign_split(list(reversed(cands)))
    assert {c.id for c in shuffled if c.split == "val"} == {
        c.id for c in a.clips if c.split == "val"
    }


def test_authors_filelists_give_the_split_and_missing_audio_is_listed(tmp_path, lj_folder):
    ids = [f.stem for f in lj_files(10)]
    (lj_folder / "training.txt").write_text("\n".join(f"{i}|t|t" for i in ids[:7]) + "\n")
    (lj_folder / "validation.txt").write_text(
        "\n".join(f"{i}|t|t" for i in [*ids[7:], "LJ999-0001"]) + "\n"
    )
    result = prepare(lj_folder, tmp_path / "p", sample_rate=22050)
    assert result.layout == "filelists (training.txt + validation.txt)"
    assert [c.id for c in result.split("train")] == ids[:7]
    assert [c.id for c in result.split("val")] == ids[7:]
    assert len(result.skipped) == 1 and "LJ999-0001" in result.skipped[0][0]
    assert "no audio file found" in result.skipped[0][1]
    # explicit lists elsewhere, with ids carrying a suffix
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "tr.txt").write_text(f"{ids[0]}.flac|x\n{ids[1]}|x\n")
    (lists / "va.txt").write_text(f"{ids[2]}|x\n")
    result = prepare(
        lj_folder,
        tmp_path / "q",
        sample_rate=22050,
        train_list=lists / "tr.txt",
        val_list=lists / "va.txt",
    )
    assert [(c.id, c.split) for c in result.clips] == [
        (ids[0], "train"),
        (ids[1], "train"),
        (ids[2], "val"),
    ]


def test_speaker_folders_are_converted_once_and_cached(tmp_path):
    root = tmp_path / "vctk"
    clips = lj_files(6)
    for i, f in enumerate(clips):
        audio, rate = sf.read(f)
        speaker = root / f"p{225 + i % 2}"
        speaker.mkdir(parents=True, exist_ok=True)
        if i == 0:  # a 48 kHz stereo clip
            import soxr

            hi = soxr.resample(audio, rate, 48000)
            sf.write(speaker / f"{f.stem}.wav", np.stack([hi, 0.5 * hi], axis=1), 48000)
        else:
            shutil.copy(f, speaker / f.name)
    result = prepare(root, tmp_path / "data", sample_rate=22050)
    assert result.layout == "folder of speaker subfolders (2 speakers)"
    assert {c.speaker for c in result.clips} == {"p225", "p226"}
    assert result.converted == 1
    converted = next(c for c in result.clips if c.source is not None)
    assert converted.path.is_relative_to(tmp_path / "data" / "cache")
    info = sf.info(converted.path)
    assert (info.samplerate, info.channels) == (22050, 1)
    original = sf.info(clips[0])
    assert info.frames == pytest.approx(original.frames, abs=2)  # same duration
    mtime = converted.path.stat().st_mtime_ns
    again = prepare(root, tmp_path / "data", sample_rate=22050)
    assert again.converted == 0  # resampled once, reused
    assert converted.path.stat().st_mtime_ns == mtime
    listed = {c.id: c for c in read_manifest(tmp_path / "data")}
    assert listed[converted.id].source == (root / "p225" / f"{clips[0].stem}.wav").resolve()


def test_unusable_files_are_skipped_and_listed(tmp_path, run_cli):
    root = tmp_path / "mixed"
    root.mkdir()
    for f in lj_files(3):
        shutil.copy(f, root / f.name)
    (root / "corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt garbage" * 20)
    sf.write(root / "empty.wav", np.zeros(0, dtype=np.float32), 22050)
    sf.write(root / "silent.wav", np.zeros(22050, dtype=np.float32), 22050)
    sf.write(root / "short.wav", 0.1 * np.ones(200, dtype=np.float32), 22050)
    code, _, err = run_cli("prepare", root, "-o", tmp_path / "data")
    assert code == 0, err
    assert "skipped 4 files" in err
    skipped = dict(
        line.split("\t") for line in (tmp_path / "data" / "skipped.tsv").read_text().splitlines()
    )
    reasons = {k.rsplit("/", 1)[-1]: v for k, v in skipped.items()}
    assert set(reasons) == {"corrupt.wav", "empty.wav", "silent.wav", "short.wav"}
    assert reasons["corrupt.wav"].startswith("not a valid WAV file")
    assert reasons["empty.wav"] == "audio file has no samples"
    assert reasons["silent.wav"].startswith("silent")
    assert reasons["short.wav"].startswith("too short: 200 samples")
    assert len(read_manifest(tmp_path / "data")) == 3


def test_a_dataset_without_usable_clips_is_an_error(tmp_path):
    (tmp_path / "d").mkdir()
    sf.write(tmp_path / "d" / "silent.wav", np.zeros(4000, dtype=np.float32), 22050)
    with pytest.raises(DataError, match="no usable training clips"):
        prepare(tmp_path / "d", tmp_path / "o", sample_rate=22050)
    with pytest.raises(DataError, match="dataset folder not found"):
        prepare(tmp_path / "none", tmp_path / "o", sample_rate=22050)
    (tmp_path / "o" / "manifest.jsonl").write_text('{"id": "a"}\n')
    with pytest.raises(DataError, match=r"manifest.jsonl: line 1 is not a valid manifest entry"):
        read_manifest(tmp_path / "o")


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
        mel, audio = ds[(0, seed)]
        assert audio.shape == (8192,) and mel.shape == (80, 32)
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
    _, audio = long[(0, 0)]
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
        m, a = ds[(0, seed)]
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
