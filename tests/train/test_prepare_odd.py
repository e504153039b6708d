"""Data preparation on odd datasets: names that are not UTF-8, byte-order marks and line ends,
other list formats, links that lead nowhere, unreadable entries, output folders inside the
data, and datasets of which nothing is usable."""

import codecs
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from hifigan.config import HiFiGANConfig
from hifigan.errors import InputError
from hifigan.evaluation import dataset_files
from hifigan.io import AUDIO_SUFFIXES, HiFiGANWarning, load_audio
from hifigan.train.manifest import (
    DataError,
    filelist_ids,
    find_clips,
    prepare,
    read_manifest,
    read_text_lines,
    scan_audio,
)

from conftest import LJ_V2, need

RATE = 22050
# a file name that is not valid UTF-8 (Latin-1 "café"): Python holds it as a surrogate
CAFE = os.fsdecode(b"caf\xe9")


def tone(path: Path, seconds: float = 0.2, rate: int = RATE, channels: int = 1) -> Path:
    """A quiet sine wave file (different pitch per file name, so no two are alike)."""
    t = np.arange(int(seconds * rate)) / rate
    pitch = 200 + sum(os.fsencode(path.name)) % 300
    audio = 0.1 * np.sin(2 * np.pi * pitch * t)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(os.fsencode(path), np.stack([audio] * channels, axis=1), rate)
    return path


def skipped_lines(folder: Path) -> dict[str, str]:
    """``skipped.tsv`` as {file name: reason}; it must be UTF-8 text."""
    text = (folder / "skipped.tsv").read_bytes().decode("utf-8")
    return {p.rsplit("/", 1)[-1]: r for p, r in (line.split("\t") for line in text.splitlines())}


# ---------------------------------------------------------------------- names that are not UTF-8
def test_a_name_that_is_not_utf8_is_used_and_named_not_fatal(tmp_path, run_cli):
    data = tmp_path / os.fsdecode(b"d\xe0")  # only the names of the files count as odd
    for i in range(4):
        tone(data / f"c{i}.wav")
    odd = tone(data / f"{CAFE}.wav")
    tone(data / f"{CAFE}-48k.wav", rate=48000, channels=2)  # converted into the cache
    (data / f"{CAFE}-bad.wav").write_bytes(b"RIFF" + bytes(60))  # skipped, named
    out = tmp_path / os.fsdecode(b"out\xff")  # the output folder's name is not UTF-8 either
    code, _, err = run_cli("prepare", data, "-o", out)
    assert code == 0, err
    assert "used 2 files whose name is not valid UTF-8" in err
    assert "escapes, also in the ids): caf\\xe9-48k.wav, caf\\xe9.wav\n" in err
    clips = {c.id: c for c in read_manifest(out)}
    assert set(clips) == {"c0", "c1", "c2", "c3", "caf\\xe9", "caf\\xe9-48k"}
    # the manifest keeps the exact bytes of the names; the ids show them escaped
    assert os.fsencode(clips["caf\\xe9"].path) == os.fsencode(odd.resolve())
    assert os.fsencode(clips["caf\\xe9-48k"].source).endswith(b"/caf\xe9-48k.wav")
    assert clips["caf\\xe9-48k"].path.name == "caf\\xe9-48k.wav"
    assert sf.info(os.fsencode(clips["caf\\xe9-48k"].path)).samplerate == RATE
    reasons = skipped_lines(out)
    assert list(reasons) == ["caf\\xe9-bad.wav"]
    assert reasons["caf\\xe9-bad.wav"].startswith("not a valid WAV file")
    audio, rate = load_audio(clips["caf\\xe9"].path)  # what training and vocode read
    assert rate == RATE and audio.shape == (int(0.2 * RATE),)
    # prepared again (another rate) from the prepared folder: the names still resolve
    again = prepare(out, tmp_path / "at16k", sample_rate=16000)
    assert {c.id for c in again.clips} == set(clips) and not again.skipped


def test_train_runs_on_names_that_are_not_utf8(tmp_path, run_cli):
    data = tmp_path / os.fsdecode(b"voice\xe9")
    for i in range(4):
        tone(data / os.fsdecode(b"clip\xe9%d.wav" % i), seconds=0.5)
    run = tmp_path / os.fsdecode(b"run\xff")
    args = ["--max-steps", "1", "--batch-size", "2", "--no-progress"]
    # TensorBoard cannot write below such a name: the run says so and goes on without it
    logs = f"{tmp_path}/run\\xff/tensorboard: the name is not valid UTF-8: no TensorBoard logs"
    with pytest.warns(HiFiGANWarning) as warned:
        code, _, err = run_cli("train", "--config", "debug", "--data", data, "--out", run, *args)
    assert code == 0, err
    assert "used 4 files whose name is not valid UTF-8" in err
    assert logs in [str(w.message) for w in warned]
    assert os.path.isfile(os.fsencode(run / "checkpoints" / "step_00000001.pt"))
    assert len(read_manifest(run / "data")) == 4


def test_vocode_reads_and_writes_a_wav_whose_name_is_not_utf8(tmp_path, run_cli):
    clip = tone(tmp_path / f"{CAFE}.wav", seconds=0.1)
    code, _, err = run_cli("vocode", clip, "-o", tmp_path / "out", "--checkpoint", need(LJ_V2))
    assert code == 0, err
    written = os.listdir(os.fsencode(tmp_path / "out"))
    assert written == [b"caf\xe9.wav"]
    info = sf.info(os.fsencode(tmp_path / "out") + b"/caf\xe9.wav")
    assert info.samplerate == RATE and info.frames > 0


# ---------------------------------------------------------------------- text inputs
def test_text_inputs_lose_no_line_to_a_bom_or_line_ends(tmp_path):
    ids = ["LJ001-0001", "LJ001-0002", "LJ001-0003"]
    lines = [f"{i}|text|text" for i in ids]
    cases = {
        "utf8-bom-crlf": codecs.BOM_UTF8 + "\r\n".join(lines).encode() + b"\r\n",
        "utf16-bom": "\r\n".join(lines).encode("utf-16"),  # Windows Notepad's "Unicode"
        "utf16be-bom": codecs.BOM_UTF16_BE + "\n".join(lines).encode("utf-16-be"),
        "cr-only": "\r".join(lines).encode() + b"\r",
        "no-final-newline": "\n".join(lines).encode(),
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        assert [i for _, i in filelist_ids(tmp_path / name)] == ids, name
    # only line ends end a line: a transcript may hold U+2028 or a form feed
    (tmp_path / "sep").write_text("a|one\u2028two\x0cthree\nb|x\n", encoding="utf-8")
    assert filelist_ids(tmp_path / "sep") == [(1, "a"), (2, "b")]
    # tab-separated lists, and a Latin-1 list: its id names the Latin-1 file of the same bytes
    (tmp_path / "tabs").write_bytes(b"a\ttext\n\xef\xbb\xbfb\ttext\n" + b"caf\xe9|x\n")
    assert [i for _, i in filelist_ids(tmp_path / "tabs")] == ["a", "b", CAFE]  # joined files
    assert read_text_lines(tmp_path / "tabs")[2] == f"{CAFE}|x"
    with pytest.raises(DataError, match="absent: filelist not found"):
        read_text_lines(tmp_path / "absent")
    # a JSON config saved with a BOM and CRLF reads as the same config
    config = HiFiGANConfig.load("debug")
    text = json.dumps(config.to_dict(), indent=2).replace("\n", "\r\n")
    (tmp_path / "bom.json").write_bytes(codecs.BOM_UTF8 + text.encode())
    assert HiFiGANConfig.load(str(tmp_path / "bom.json")).to_dict() == config.to_dict()


def test_list_layouts_with_a_bom_find_every_clip(tmp_path):
    root = tmp_path / "LJ"
    ids = [f"LJ001-000{i}" for i in range(1, 9)]
    for i, clip_id in enumerate(ids):
        tone(root / "wavs" / (f"{clip_id}.WAV" if i % 2 else f"{clip_id}.wav"))  # suffix case
    metadata = "\r\n".join(f"{i}|text|text" for i in ids) + "\r\n"
    (root / "metadata.csv").write_bytes(codecs.BOM_UTF8 + metadata.encode())
    result = prepare(root, tmp_path / "p", sample_rate=RATE)
    assert [c.id for c in result.clips] == ids and not result.skipped
    # the authors' lists: UTF-16 with tabs and DUMMY/ folders; Latin-1 text (not UTF-8)
    (root / "training.txt").write_text(
        "".join(f"DUMMY/{i}.wav\ttext\r\n" for i in ids[:6]), encoding="utf-16"
    )
    (root / "validation.txt").write_bytes(b"".join(b"%s|caf\xe9\n" % i.encode() for i in ids[6:]))
    result = prepare(root, tmp_path / "q", sample_rate=RATE)
    assert [(c.id, c.split) for c in result.clips] == [
        *((i, "train") for i in ids[:6]),
        *((i, "val") for i in ids[6:]),
    ]
    # a manifest edited and saved with a BOM and CRLF still reads; an empty list says so
    manifest = (tmp_path / "q" / "manifest.jsonl").read_text().replace("\n", "\r\n")
    (tmp_path / "q" / "manifest.jsonl").write_bytes(codecs.BOM_UTF8 + manifest.encode())
    assert read_manifest(tmp_path / "q") == result.clips
    (root / "empty.txt").write_bytes(codecs.BOM_UTF8 + b"\r\n# no clips yet\r\n")
    with pytest.raises(DataError) as e:
        prepare(root / "empty.txt", tmp_path / "r", sample_rate=RATE)
    assert str(e.value) == f"{root / 'empty.txt'}: no clips: the filelist (empty.txt) lists none"
    # a list written on Windows: backslashes, drive letters
    (root / "win.txt").write_text("C:\\corpus\\wavs\\LJ001-0001.wav|x\r\nwavs\\LJ001-0002|x\r\n")
    result = prepare(root / "win.txt", tmp_path / "w", sample_rate=RATE)
    assert [c.path.name for c in result.clips] == ["LJ001-0001.wav", "LJ001-0002.WAV"]
    assert [c.id for c in result.clips] == ["LJ001-0001", "LJ001-0002"]
    # comma-separated lines (a header is a line whose audio is missing, listed)
    (root / "clips.csv").write_text("file,text\nLJ001-0003,one, two\nLJ001-0004.WAV,three\n")
    result = prepare(root / "clips.csv", tmp_path / "c", sample_rate=RATE)
    assert [c.id for c in result.clips] == ["LJ001-0003", "LJ001-0004"]
    assert [r for _, r in result.skipped] == [
        f"no audio file found (listed in {root / 'clips.csv'} line 1)"
    ]
    # the evaluation's dataset lists are read the same way
    (root / "test.txt").write_bytes(codecs.BOM_UTF8 + b"LJ001-0001|x\r\nLJ001-0002|x\r\n")
    name, files = dataset_files(root / "test.txt")
    assert name == "LJ-test"
    assert [f.name for f in files] == ["LJ001-0001.wav", "LJ001-0002.WAV"]


def test_repeated_entries_are_skipped_with_where_they_were_listed(tmp_path):
    root = tmp_path / "d"
    ids = [f"c{i}" for i in range(6)]
    for clip_id in ids:
        tone(root / "wavs" / f"{clip_id}.wav")
    (root / "training.txt").write_text("c0|a\nc1|b\nc2|c\nc0|again\nc3.wav|d\nc3|e\n")
    (root / "validation.txt").write_text("c4|x\nc1|in both\nc5|y\n")
    result = prepare(root, tmp_path / "p", sample_rate=RATE)
    assert [(c.id, c.split) for c in result.clips] == [
        ("c0", "train"),
        ("c1", "train"),
        ("c2", "train"),
        ("c3", "train"),
        ("c4", "val"),
        ("c5", "val"),
    ]
    train, val = root / "training.txt", root / "validation.txt"
    assert [r for _, r in result.skipped] == [
        f"repeated file: listed again ({train} line 4; first at {train} line 1)",
        f"repeated file: listed again ({train} line 6; first at {train} line 5)",
        f"repeated file: listed again ({val} line 2; first at {train} line 2); kept in train",
    ]


# ---------------------------------------------------------------------- links, hidden, unreadable
def test_links_hidden_files_and_empty_files_are_reported_for_what_they_are(tmp_path):
    data = tmp_path / "d"
    for name in ("a/1.wav", "a/2.wav", "b/3.wav", "b/4.wav"):
        tone(data / name)
    (data / "a" / "._1.wav").write_bytes(b"\0\5\x16\7" + bytes(80))  # macOS metadata
    tone(data / ".trash" / "old.wav")
    (data / "b" / "up").symlink_to("..")  # back to an ancestor
    (data / "again").symlink_to("a")  # the same folder twice
    (data / "b" / "same.wav").symlink_to("3.wav")  # the same file twice
    (data / "x.wav").symlink_to("y.wav")
    (data / "y.wav").symlink_to("x.wav")
    (data / "gone.wav").symlink_to(tmp_path / "nowhere.wav")
    (data / "c").symlink_to(tmp_path / "unmounted")
    (data / "notes.txt").symlink_to(tmp_path / "missing.txt")  # not audio: not reported
    (data / "empty.flac").write_bytes(b"")
    scan = scan_audio(data)
    assert [p.relative_to(data).as_posix() for p in scan.files] == [
        "a/1.wav",
        "a/2.wav",
        "b/3.wav",
        "b/4.wav",
        "empty.flac",
    ]
    assert scan.hidden == 1
    assert {Path(p).relative_to(data).as_posix(): r for p, r in scan.problems} == {
        "again": f"repeated folder: same as {data / 'a'} (not scanned again)",
        "b/up": f"symlink loop: leads back to {data} (not scanned again)",
        "b/same.wav": f"repeated file: links to {data / 'b' / '3.wav'}",
        "c": f"dangling symlink (to {tmp_path / 'unmounted'}, which does not exist)",
        "gone.wav": f"dangling symlink (to {tmp_path / 'nowhere.wav'}, which does not exist)",
        "x.wav": "symlink loop (the links lead back to themselves)",
        "y.wav": "symlink loop (the links lead back to themselves)",
    }
    result = prepare(data, tmp_path / "p", sample_rate=RATE)
    assert len(result.clips) == 4
    assert result.layout == (
        "folder of speaker subfolders (3 speakers); not scanned: 1 file hidden (named .*)"
    )
    reasons = skipped_lines(tmp_path / "p")
    assert reasons["empty.flac"] == "empty file (0 bytes)" and len(reasons) == 8


def test_a_dataset_of_dangling_links_says_so_and_leaves_nothing(tmp_path, run_cli):
    data = tmp_path / "d"
    data.mkdir()
    for name in ("a.wav", "b.wav"):
        (data / name).symlink_to(f"/nonexistent/{name}")
    out = tmp_path / "o"
    code, _, err = run_cli("prepare", data, "-o", out)
    assert (code, err) == (
        1,
        f"error: {data}: no usable audio files: 2 files skipped (dangling symlink: 2); first: "
        f"{data / 'a.wav'}: dangling symlink (to /nonexistent/a.wav, which does not exist)\n",
    )
    assert not out.exists()
    run = tmp_path / "run"
    code, _, err = run_cli("train", "--config", "debug", "--data", data, "--out", run)
    assert code == 1 and err.endswith("which does not exist)\n")
    assert not run.exists()  # no partial run folder
    # an LJSpeech folder whose wavs/ (or metadata.csv) links to a disk that is not there
    lj = tmp_path / "LJ"
    lj.mkdir()
    (lj / "metadata.csv").write_text("LJ001-0001|text\n")
    (lj / "wavs").symlink_to("/mnt/unmounted/wavs")
    with pytest.raises(DataError) as e:
        prepare(lj, out, sample_rate=RATE)
    assert str(e.value).endswith(
        f"no audio file found (listed in {lj / 'metadata.csv'} line 1; {lj / 'wavs'}: dangling "
        "symlink (to /mnt/unmounted/wavs, which does not exist))"
    )
    (lj / "metadata.csv").unlink()
    (lj / "metadata.csv").symlink_to("/mnt/unmounted/metadata.csv")
    with pytest.raises(DataError) as e:
        prepare(lj, out, sample_rate=RATE)
    assert str(e.value) == (
        f"{lj / 'metadata.csv'}: dangling symlink (to /mnt/unmounted/metadata.csv, which does "
        "not exist)"
    )
    hidden = tmp_path / "hidden"
    tone(hidden / "._a.wav")
    with pytest.raises(
        DataError, match=r"in this folder \(passed over 1 file hidden, named \.\*\)"
    ):
        prepare(hidden, out, sample_rate=RATE)
    with pytest.raises(InputError) as e:  # the evaluation's datasets are scanned the same way
        dataset_files(data)
    assert str(e.value) == (
        f"{data}: folder holds no audio files ({', '.join(AUDIO_SUFFIXES)}): "
        f"2 files skipped (dangling symlink: 2); first: {data / 'a.wav'}: dangling symlink (to "
        "/nonexistent/a.wav, which does not exist)"
    )
    (tmp_path / "link").symlink_to(tmp_path / "none")
    with pytest.raises(DataError, match="link: dangling symlink"):
        find_clips(tmp_path / "link")
    (data / "a.wav").unlink()
    (data / "a.wav").symlink_to("a.wav")
    with pytest.raises(DataError, match=r"a.wav: symlink loop"):
        prepare(data / "a.wav", out, sample_rate=RATE)
    with pytest.raises(Exception, match=r"b.wav: dangling symlink \(to /nonexistent/b.wav"):
        load_audio(data / "b.wav")


def test_files_that_vanish_after_the_scan_are_skipped(tmp_path):
    data = tmp_path / "d"
    files = [tone(data / f"c{i}.wav") for i in range(5)]

    def progress(items, total):  # runs between the scan and the reading of the files
        files[2].unlink()
        return items

    result = prepare(data, tmp_path / "p", sample_rate=RATE, progress=progress)
    assert len(result.clips) == 4
    assert result.skipped == [(str(files[2]), "vanished: deleted or moved since it was listed")]


UNPRIVILEGED = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
# runs the hifigan commands given as arguments (separated by --) in one process (torch is
# imported once), printing the exit status of each
TWO_COMMANDS = """
import sys
from hifigan.cli import main
args = sys.argv[1:]
while args:
    end = args.index("--") if "--" in args else len(args)
    print(main(args[:end]), flush=True)
    args = args[end + 1 :]
"""


def test_unreadable_files_and_folders_are_reported_as_permission_denied():
    """As root (who reads everything) the preparation runs as user nobody."""
    if os.geteuid() == 0 and shutil.which("setpriv") is None:
        pytest.skip("needs setpriv to drop root's right to read every file")
    with tempfile.TemporaryDirectory() as folder:  # pytest's folders are root's alone
        os.chmod(folder, 0o777)
        check_permission_denied(Path(folder))


def check_permission_denied(top: Path) -> None:
    data = top / "d"
    for i in range(4):
        tone(data / "ok" / f"c{i}.wav")
    tone(data / "locked" / "hidden-away.wav")
    tone(data / "ok" / "secret.wav").chmod(0)
    tone(top / "wavs-locked" / "x.wav")
    (data / "list.txt").write_text("x|text\n")
    for p in [data, *data.rglob("*"), top / "wavs-locked"]:
        if p.name not in ("secret.wav",):
            p.chmod(0o755 if p.is_dir() else 0o644)
    (data / "locked").chmod(0)
    (top / "wavs-locked").chmod(0o600)
    # one process (as nobody when root) runs both: a folder with unreadable entries, and a
    # filelist whose audio folder cannot be read (refused, saying why)
    command = [sys.executable, "-c", TWO_COMMANDS, "prepare", data, "-o", top / "o", "--"]
    command += ["prepare", data / "list.txt", "-o", top / "o2", "--wavs", top / "wavs-locked"]
    command = UNPRIVILEGED + command if os.geteuid() == 0 else command
    try:
        done = subprocess.run(command, capture_output=True, text=True)
        assert done.stdout == "0\n1\n", done.stderr
        assert skipped_lines(top / "o") == {
            "locked": "folder cannot be read: permission denied",
            "secret.wav": "cannot read audio (permission denied)",
        }
        assert len(read_manifest(top / "o")) == 4
        assert done.stderr.splitlines()[-1] == (
            f"error: {data / 'list.txt'}: none of the listed clips was found: 1 file skipped "
            f"(no audio file found: 1); first: {top / 'wavs-locked' / 'x'}: no audio file found "
            f"(listed in {data / 'list.txt'} line 1; {top / 'wavs-locked'} cannot be read: "
            "permission denied)"
        )
        assert not (top / "o2").exists()
    finally:
        for p in (data / "locked", top / "wavs-locked"):
            p.chmod(0o755)


# ---------------------------------------------------------------------- output inside the data
def test_output_and_run_folders_inside_the_data_are_not_scanned(tmp_path):
    data = tmp_path / "d"
    for i in range(10):
        tone(data / f"c{i}.wav")
    first = prepare(data, data / "run" / "data", sample_rate=24000)  # converted into its cache
    assert len(first.clips) == 10 and first.converted == 10
    again = prepare(data, data / "run2" / "data", sample_rate=24000)
    assert [(c.id, c.split) for c in again.clips] == [(c.id, c.split) for c in first.clips]
    prepared = data / "run" / "data"
    assert again.layout == f"folder of audio files; not scanned: {prepared} (prepared data)"
    # a run folder, an interrupted preparation's cache, the output folder itself
    (data / "run" / "checkpoints").mkdir()
    (data / "run" / "config.json").write_text("{}")
    (data / "run" / "data" / "manifest.jsonl").unlink()
    (data / "run" / "data" / "skipped.tsv").unlink()
    (data / "run2" / "data" / "manifest.jsonl").unlink()
    (data / "run2" / "data" / "skipped.tsv").unlink()
    third = prepare(data, data / "run2" / "data", sample_rate=RATE)
    assert len(third.clips) == 10
    assert third.layout == (
        f"folder of audio files; not scanned: {data / 'run'} (a run folder), "
        f"{data / 'run2' / 'data'} (the output folder)"
    )
    (data / "run2" / "data" / "manifest.jsonl").unlink()
    (data / "run2" / "data" / "skipped.tsv").unlink()
    fourth = prepare(data, tmp_path / "elsewhere", sample_rate=RATE)
    assert fourth.layout.endswith(f"{data / 'run2' / 'data' / 'cache'} (a conversion cache)")
    assert len(fourth.clips) == 10


def test_a_refused_preparation_leaves_nothing_behind(tmp_path, run_cli):
    data = tmp_path / "d"
    for i in range(3):
        tone(data / f"c{i}.wav", rate=48000)  # converted, into the cache
    (data / "broken.wav").write_bytes(b"RIFF" + bytes(60))
    out = tmp_path / "new" / "prepared"
    # refused once the clips are converted: 3 usable clips, all asked for validation
    with pytest.raises(DataError, match=r"--val-size 3 leaves no training clip \(3 clips; 1 sk"):
        prepare(data, out, sample_rate=RATE, val_size=3)
    assert not (tmp_path / "new").exists()  # nor the converted clips, nor the folders
    # into a folder that holds earlier work: that work is kept, the new conversions are not
    old = prepare(data, out, sample_rate=RATE)
    tone(data / "c3.wav", rate=48000)
    tone(data / "sub" / "c0.wav", rate=48000)  # a repeated name: its id (and cache) is sub/c0
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    with pytest.raises(DataError, match=r"--val-size 5 leaves no training clip \(5 clips; 1 sk"):
        prepare(data, out, sample_rate=RATE, val_size=5)
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before
    assert read_manifest(out) == old.clips
    for path in (data / "sub" / "c0.wav", data / "broken.wav"):
        path.unlink()
    (data / "sub").rmdir()
    # train: the run folder is removed when the data are refused, here for want of one batch
    (data / f"{CAFE}.wav").write_bytes(bytes(100))
    code, _, err = run_cli("train", "--config", "debug", "--data", data, "--out", tmp_path / "r")
    assert code == 1
    assert err.splitlines()[-1] == "error: the training set has 3 clips, fewer than one batch (8)"
    assert "caf\\xe9.wav: not a valid WAV file" in err
    assert not (tmp_path / "r").exists()
