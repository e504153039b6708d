"""Data preparation: layouts, filelists, the split, the conversion cache, bad files."""

import shutil

import numpy as np
import pytest
import soundfile as sf

from hifigan.cli import main
from hifigan.train.manifest import (
    DataError,
    assign_split,
    audio_files,
    default_val_size,
    filelist_ids,
    find_clips,
    locate_audio,
    prepare,
    read_manifest,
)

from conftest import LJSPEECH, REPO, need


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
    with pytest.raises(DataError) as e:
        prepare(tmp_path / "d", tmp_path / "o", sample_rate=22050)
    assert str(e.value) == (
        f"{tmp_path / 'd'}: no usable training clips: 1 file skipped (silent: 1); first: "
        f"{tmp_path / 'd' / 'silent.wav'}: silent: every sample is zero"
    )
    assert not (tmp_path / "o").exists()  # a refused preparation leaves nothing behind
    with pytest.raises(DataError, match="dataset folder not found"):
        prepare(tmp_path / "none", tmp_path / "o", sample_rate=22050)
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "manifest.jsonl").write_text('{"id": "a"}\n')
    with pytest.raises(DataError, match=r"manifest.jsonl: line 1 is not a valid manifest entry"):
        read_manifest(tmp_path / "o")


def test_filelists_are_read_line_by_line_and_ids_found_with_or_without_suffix(tmp_path):
    wavs = tmp_path / "wavs"
    wavs.mkdir()
    for name in ("a.flac", "b.wav", "c.wav"):
        (wavs / name).write_bytes(b"")
    (wavs / "sub").mkdir()
    (wavs / "sub" / "d.WAV").write_bytes(b"")
    (wavs / "notes.txt").write_text("not audio")
    listing = tmp_path / "list.txt"
    listing.write_text("# a comment\na|text|more\n\n  b.wav |text\nmissing|x\n")
    assert filelist_ids(listing) == [(2, "a"), (4, "b.wav"), (5, "missing")]
    assert locate_audio("a", [tmp_path, wavs]) == wavs / "a.flac"
    assert locate_audio("b.wav", [wavs]) == wavs / "b.wav"
    assert locate_audio("missing", [wavs, tmp_path]) is None
    # a folder scan finds every audio file below it, whatever the case of the suffix
    assert audio_files(tmp_path) == [
        wavs / "a.flac",
        wavs / "b.wav",
        wavs / "c.wav",
        wavs / "sub" / "d.WAV",
    ]
    listing.write_text("a|x\n|no id\n")
    with pytest.raises(DataError, match=r"list.txt: line 2 has an empty id"):
        filelist_ids(listing)
    with pytest.raises(DataError, match="filelist not found"):
        filelist_ids(tmp_path / "absent.txt")


def test_the_summary_names_the_splits_the_layout_and_the_skipped_files(tmp_path, lj_folder):
    (lj_folder / "wavs" / "broken.wav").write_bytes(b"RIFF" + bytes(100))
    with (lj_folder / "metadata.csv").open("a") as f:
        f.write("broken|x\nLJ999-0001|x\n")
    result = prepare(lj_folder, tmp_path / "p", sample_rate=22050)
    lines = result.summary(max_listed=1)
    minutes = sum(c.duration for c in result.split("train")) / 60
    assert lines[0] == f"train: 8 clips, {minutes:.1f} min"
    assert lines[1].startswith("val: 2 clips")
    assert lines[2] == "layout: LJSpeech folder (metadata.csv + wavs/)"
    assert lines[3] == f"skipped 2 files (listed in {tmp_path / 'p' / 'skipped.tsv'}):"
    assert lines[4].startswith("  ") and lines[5] == "  ..."
    assert len(result.summary()) == 6  # all skipped files listed by default


def test_clips_are_kept_at_the_rate_asked_for_in_a_cache_per_rate(tmp_path):
    root = tmp_path / "mixed"
    root.mkdir()
    clips = lj_files(4)
    for f in clips[:3]:
        shutil.copy(f, root / f.name)
    audio, rate = sf.read(clips[3])
    import soxr

    hi = soxr.resample(audio, rate, 48000)
    sf.write(root / "stereo48k.wav", np.stack([hi, hi], axis=1), 48000)
    out = tmp_path / "data"
    at24 = prepare(root, out, sample_rate=24000)
    assert at24.summary()[3] == (
        "resampled 4 clips to 24000 Hz (3 from 22050 Hz, 1 from 48000 Hz); mixed 1 clip down to "
        f"mono, into {out / 'cache' / '24000'}"
    )
    for clip in at24.clips:
        assert clip.sample_rate == 24000 and clip.path.parent == out / "cache" / "24000"
        assert sf.info(clip.path).samplerate == 24000
    # another rate into the same folder leaves the 24 kHz clips as they were
    cached = {c.path: c.path.read_bytes() for c in at24.clips}
    at16 = prepare(root, out, sample_rate=16000)
    assert {sf.info(c.path).samplerate for c in at16.clips} == {16000}
    assert all(path.read_bytes() == data for path, data in cached.items())
    # a prepared folder at one rate, prepared for another: converted from the original files
    again = prepare(tmp_path / "data", tmp_path / "at48", sample_rate=48000)
    assert again.layout == f"prepared manifest ({out / 'manifest.jsonl'})"
    assert again.resampled == {22050: 3} and again.mixed == 1
    stereo = next(c for c in again.clips if c.id == "stereo48k")
    assert stereo.source == (root / "stereo48k.wav").resolve()
    assert [c.split for c in again.clips] == [c.split for c in at16.clips]


def test_one_filelist_file_is_a_dataset_and_other_files_are_refused(tmp_path, lj_folder):
    ids = [f.stem for f in lj_files(10)]
    listing = lj_folder / "list.txt"
    listing.write_text("".join(f"{i}|text\n" for i in ids))
    result = prepare(listing, tmp_path / "p", sample_rate=22050)
    assert result.layout == "filelist (list.txt)"
    assert [c.id for c in result.clips] == ids and len(result.split("val")) == 2
    accepted = (
        "expected a dataset folder, a prepared folder or its manifest.jsonl, or an id|text filelist"
    )
    clip = lj_folder / "wavs" / f"{ids[0]}.flac"
    with pytest.raises(DataError) as e:
        prepare(clip, tmp_path / "q", sample_rate=22050)
    assert str(e.value) == f"{clip}: is an audio file, not a dataset: {accepted}"
    blob = tmp_path / "model.bin"
    blob.write_bytes(bytes(range(256)))
    with pytest.raises(DataError) as e:
        prepare(blob, tmp_path / "q", sample_rate=22050)
    assert str(e.value) == f"{blob}: not a text file: {accepted}"
    with pytest.raises(DataError) as e:
        read_manifest(blob)
    assert str(e.value) == f"{blob}: not a manifest: not UTF-8 text"
    assert not (tmp_path / "q").exists()


def test_val_size_is_checked_and_the_default_rule_is_the_documented_one(
    tmp_path, lj_folder, run_cli, capsys
):
    out = tmp_path / "p"
    with pytest.raises(DataError, match="--val-size must be 0 or more, got -3"):
        prepare(lj_folder, out, sample_rate=22050, val_size=-3)
    code, _, err = run_cli("prepare", lj_folder, "-o", out, "--val-size", "10")
    assert (code, err) == (
        1,
        f"error: {lj_folder}: --val-size 10 leaves no training clip (10 clips)\n",
    )
    assert not out.exists()
    (lj_folder / "wavs" / "broken.wav").write_bytes(b"RIFF" + bytes(100))
    with open(lj_folder / "metadata.csv", "a") as f:
        f.write("broken|x\n")
    code, _, err = run_cli("prepare", lj_folder, "-o", out, "--val-size", "10")
    assert code == 1
    assert err.endswith(
        f"error: {lj_folder}: --val-size 10 leaves no training clip (10 clips; 1 skipped)\n"
    )
    assert not out.exists()
    code, _, err = run_cli("prepare", lj_folder, "-o", out, "--val-size", "9")
    assert code == 0, err
    assert len(prepared_split(out, "train")) == 1 and len(prepared_split(out, "val")) == 9
    # 2%, at least 5 and at most 100; of fewer than 25 clips a fifth, at least one
    sizes = {n: default_val_size(n) for n in (1, 2, 9, 10, 24, 25, 200, 300, 5000, 9000)}
    assert sizes == {1: 0, 2: 1, 9: 1, 10: 2, 24: 4, 25: 5, 200: 5, 300: 6, 5000: 100, 9000: 100}
    rule = "at least 5 and at most 100; of fewer than 25 clips a fifth, at least one"
    with pytest.raises(SystemExit):
        main(["prepare", "--help"])
    assert rule in " ".join(capsys.readouterr().out.split())
    assert rule in " ".join((REPO / "docs" / "training.md").read_text().split())


def prepared_split(folder, name):
    return [c for c in read_manifest(folder) if c.split == name]
