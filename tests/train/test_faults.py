"""Faults around a run: resuming a run killed early or with a damaged checkpoint, another
config or data on --resume, clips that turn unreadable, a full disk, refused options, and what
the run says about its data and loader.

Every refusal is one line naming the file and the problem, with exit status 1, and leaves the
run's files as they were.
"""

import dataclasses
import json
import shutil

import pytest
import torch
from test_loop import (  # noqa: F401  (one_thread: an autouse fixture)
    TRAIN_IDS,
    VAL_IDS,
    one_thread,
    options,
    prepare_tiny_data,
    tiny_config,
)

from hifigan.checkpoint import read_checkpoint
from hifigan.errors import InputError
from hifigan.io import load_audio
from hifigan.train import read_manifest
from hifigan.train.distributed import Processes
from hifigan.train.manifest import reason_of, write_manifest
from hifigan.train.setup import available_cpus, make_loader, open_run

from conftest import LJSPEECH, need

QUIET = ("--no-progress", "--no-tensorboard", "--device", "cpu")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")
    prepare_tiny_data(folder)
    return folder


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    path = tmp_path_factory.mktemp("config") / "tiny.json"
    path.write_text(json.dumps(tiny_config(max_steps=2)))
    return path


def snapshot(folder):
    """Every file below ``folder`` with its bytes."""
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def last_line(err):
    return err.strip().splitlines()[-1]


def why_unreadable(path):
    """The reason :func:`hifigan.io.load_audio` gives for an audio file it cannot read."""
    with pytest.raises(InputError) as e:
        load_audio(path)
    return reason_of(e.value)


def test_resume_of_a_run_killed_before_its_first_checkpoint(run_cli, tmp_path, data):
    # what a run killed during its first steps leaves: its config and its prepared data
    run = tmp_path / "run"
    (run / "data").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps(tiny_config(max_steps=2)))
    write_manifest(run / "data" / "manifest.jsonl", read_manifest(data))
    before = snapshot(run)
    # a command that fails changes nothing of the run
    code, _, err = run_cli("train", "--out", run, "--resume", "--batch-size", "99", *QUIET)
    assert code == 1
    assert f"--resume: no checkpoint in {run / 'checkpoints'} yet, starting from its config" in err
    assert last_line(err) == "error: the training set has 6 clips, fewer than one batch (99)"
    assert snapshot(run) == before
    code, _, err = run_cli("train", "--out", run, "--resume", "--config", "debug", *QUIET)
    assert code == 1
    assert last_line(err) == (
        f"error: {run}: --config debug differs from the run's config (train.segment_size 4096, "
        "the run's 2048); --resume keeps the run's config: drop --config or start a new --out"
    )
    assert snapshot(run) == before
    # resuming trains with the run's own config and data (no --config, no --data)
    code, _, err = run_cli("train", "--out", run, "--resume", *QUIET)
    assert code == 0, err
    assert "starting from its config.json" in err and "starting a new run" not in err
    ckpt = read_checkpoint(run / "checkpoints" / "step_00000002.pt")
    assert ckpt["config"]["name"] == "tiny" and ckpt["config"]["train"]["segment_size"] == 2048
    assert json.loads((run / "config.json").read_text())["name"] == "tiny"


def test_resume_refuses_another_config_or_data_and_takes_the_same_again(run_cli, tmp_path, data):
    cfg = tmp_path / "tiny.json"
    cfg.write_text(json.dumps(tiny_config(max_steps=2)))
    run = tmp_path / "run"
    code, _, err = run_cli("train", "--config", cfg, "--data", data, "--out", run, *QUIET)
    assert code == 0, err
    before = snapshot(run)
    other = tiny_config(max_steps=2)
    other["generator"]["upsample_initial_channel"] = 64
    (tmp_path / "other.json").write_text(json.dumps(other))
    code, _, err = run_cli("train", "--out", run, "--resume", "--config", tmp_path / "other.json")
    assert (code, err.count("\n")) == (1, 1)
    assert err == (
        f"error: {run}: --config {tmp_path / 'other.json'} differs from the run's config "
        "(generator.upsample_initial_channel 64, the run's 128); --resume keeps the run's "
        "config: drop --config or start a new --out\n"
    )
    code, _, err = run_cli("train", "--out", run, "--resume", "--batch-size", "3")
    assert (code, err) == (
        1,
        f"error: {run}: --batch-size 3 differs from the run's (2); --resume keeps the run's "
        "batch size: drop --batch-size or start a new --out\n",
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copy(need(LJSPEECH) / "wavs" / f"{TRAIN_IDS[0]}.flac", elsewhere)
    code, _, err = run_cli("train", "--out", run, "--resume", "--data", elsewhere)
    assert (code, err.count("\n")) == (1, 1)
    assert err == (
        f"error: {run}: --data {elsewhere} is not the data of this run; --resume keeps the "
        f"run's data ({run / 'data' / 'manifest.jsonl'}): drop --data or start a new --out\n"
    )
    assert snapshot(run) == before
    # the command that started the run, relaunched with --resume, goes on; so does the dataset
    # the prepared folder came from
    for source in (data, LJSPEECH):
        code, _, err = run_cli("train", "--config", cfg, "--data", source, "--out", run,
                               "--resume", "--max-steps", "3", *QUIET)  # fmt: skip
        assert code == 0, err
    assert read_checkpoint(run / "checkpoints" / "step_00000003.pt")["state"]["step"] == 3


def test_a_damaged_newest_checkpoint_is_passed_over_and_leftovers_removed(
    run_cli, tmp_path, data, tiny
):
    run = tmp_path / "run"
    args = ("train", "--config", tiny, "--data", data, "--out", run, *QUIET)
    code, _, err = run_cli(*args, "--max-steps", "4", "--keep", "5")
    assert code == 0, err
    newest = run / "checkpoints" / "step_00000004.pt"
    truncated = newest.read_bytes()[: newest.stat().st_size // 2]
    newest.write_bytes(truncated)
    # the temporary files of writes killed by SIGKILL (hifigan.io.atomic_path's names)
    leftovers = [
        run / "checkpoints" / ".step_00000006.pt.x1y2z3_a.tmp",
        run / ".config.json.k9j8h7g6.tmp",
    ]
    for p in leftovers:
        p.write_bytes(b"partial")
    code, _, err = run_cli(*args, "--max-steps", "4", "--resume")
    assert code == 0, err
    assert (
        f"warning: {newest}: cannot read checkpoint: the file is corrupt or truncated; resuming "
        "from step_00000002.pt instead (the damaged file is kept as step_00000004.pt.damaged)\n"
    ) in err
    assert f"removed 2 temporary files of interrupted writes in {run}\n" in err
    assert "resuming from" in err and f"{run / 'checkpoints' / 'step_00000002.pt'} (step 2" in err
    assert not any(p.exists() for p in leftovers)
    assert (run / "checkpoints" / "step_00000004.pt.damaged").read_bytes() == truncated
    assert read_checkpoint(newest)["state"]["step"] == 4  # trained again from step 2
    # when no checkpoint is intact, resuming is refused and nothing changes
    older = run / "checkpoints" / "step_00000002.pt"
    older.write_bytes(older.read_bytes()[:1000])
    newest.write_bytes(truncated)
    before = snapshot(run)
    code, _, err = run_cli(*args, "--max-steps", "6", "--resume")
    assert code == 1
    assert err == (
        f"error: {newest}: cannot read checkpoint: the file is corrupt or truncated; no intact "
        "checkpoint to resume from (nor is the older one)\n"
    )
    assert snapshot(run) == before


def unreadable_setup(tmp_path, *bad_ids):
    """A dataset prepared from copies of the clips, then ``bad_ids`` overwritten."""
    raw = tmp_path / "raw"
    raw.mkdir()
    for i in TRAIN_IDS + VAL_IDS:
        shutil.copy(need(LJSPEECH) / "wavs" / f"{i}.flac", raw)
    prepared = tmp_path / "prepared"
    prepared.mkdir()
    prepare_tiny_data(prepared, raw)
    for i in bad_ids:
        (raw / f"{i}.flac").write_bytes(b"no longer audio")
    return raw, prepared


@pytest.mark.parametrize("workers", [0, 2])
def test_a_clip_that_turns_unreadable_is_skipped_and_training_goes_on(
    run_cli, tmp_path, tiny, workers
):
    raw, prepared = unreadable_setup(tmp_path, TRAIN_IDS[2])
    run = tmp_path / "run"
    code, _, err = run_cli("train", "--config", tiny, "--data", prepared, "--out", run,
                           "--max-steps", "4", "--num-workers", workers, *QUIET)  # fmt: skip
    assert code == 0, err
    bad = raw / f"{TRAIN_IDS[2]}.flac"
    listing = run / "data" / "skipped.tsv"
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    reason = why_unreadable(bad)  # what hifigan.io says of such a file
    assert warnings == [
        f"warning: {bad}: {reason}; skipped: training goes on without it (listed in {listing})"
    ]
    assert listing.read_text() == f"{bad}\t{reason}\n"
    assert read_checkpoint(run / "checkpoints" / "step_00000004.pt")["state"]["step"] == 4
    assert "Traceback" not in err and "DataLoader worker" not in err


def test_when_no_clip_can_be_read_the_run_stops_with_a_checkpoint(
    run_cli, tmp_path, tiny, monkeypatch
):
    from hifigan.train.validation import Validator

    raw, prepared = unreadable_setup(tmp_path)
    validate = Validator.__call__

    def validate_then_lose_the_clips(self, state, *args):
        validate(self, state, *args)
        if state.step == 3:
            for i in TRAIN_IDS:
                (raw / f"{i}.flac").write_bytes(b"gone")

    monkeypatch.setattr(Validator, "__call__", validate_then_lose_the_clips)
    run = tmp_path / "run"
    code, _, err = run_cli("train", "--config", tiny, "--data", prepared, "--out", run,
                           "--max-steps", "10", "--num-workers", "0", *QUIET)  # fmt: skip
    assert code == 1
    saved = run / "checkpoints" / "step_00000003.pt"
    assert last_line(err) == (
        f"error: none of the 6 training clips can be read any more (listed in "
        f"{run / 'data' / 'skipped.tsv'}); stopped at step 3, saved {saved}"
    )
    assert read_checkpoint(saved)["state"]["step"] == 3
    assert len((run / "data" / "skipped.tsv").read_text().splitlines()) == 6


def test_a_full_disk_while_writing_a_checkpoint_is_one_line_and_keeps_the_previous_one(
    run_cli, tmp_path, data, small_disk
):
    # narrow networks: best.pt and one step checkpoint fit on the 1 MiB disk, two do not
    cfg = tiny_config(max_steps=6, val_interval=100, checkpoint_interval=2)
    cfg["generator"].update(
        upsample_initial_channel=16, resblock_kernel_sizes=[3], resblock_dilation_sizes=[[1, 2]]
    )
    cfg["discriminator"].update(mpd_channels=[4] * 5, msd_channels=[16] * 7)
    (tmp_path / "micro.json").write_text(json.dumps(cfg))
    run = small_disk / "run"
    code, _, err = run_cli("train", "--config", tmp_path / "micro.json", "--data", data,
                           "--out", run, *QUIET)  # fmt: skip
    assert code == 1
    assert last_line(err) == (
        f"error: {run / 'checkpoints' / 'step_00000004.pt'}: cannot write (No space left on device)"
    )
    assert "Traceback" not in err and err.count("error:") == 1
    files = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert files == ["best.pt", "step_00000002.pt"]  # no partial or temporary file
    assert 2 * (run / "checkpoints" / "step_00000002.pt").stat().st_size > 1 << 20
    assert read_checkpoint(run / "checkpoints" / "step_00000002.pt")["state"]["step"] == 2


def test_options_and_data_that_cannot_work_are_refused_in_one_line(run_cli, tmp_path, data):
    run = tmp_path / "run"
    clip = need(LJSPEECH) / "wavs" / f"{TRAIN_IDS[0]}.flac"
    binary = tmp_path / "weights.bin"
    binary.write_bytes(bytes(range(256)) * 4)
    accepted = (
        "expected a dataset folder, a prepared folder or its manifest.jsonl, or an id|text filelist"
    )
    for path, problem in ((clip, "is an audio file, not a dataset"), (binary, "not a text file")):
        code, _, err = run_cli("train", "--config", "debug", "--data", path, "--out", run)
        assert (code, err) == (1, f"error: {path}: {problem}: {accepted}\n")
    assert not run.exists()  # nothing left behind
    for option in ("--num-workers=-1", "--keep=-2", "--val-clips=0"):
        with pytest.raises(SystemExit, match="2"):  # usage errors: tests/test_options.py
            run_cli("train", "--data", data, "--out", run, option)


def test_the_run_says_when_clips_are_mostly_padding_and_caps_the_workers(
    tmp_path, data, tiny, capsys, monkeypatch
):
    clips = [c for c in read_manifest(data) if c.split == "train"]
    samples = [round(c.duration * c.sample_rate) for c in clips]
    segment = 256 * 512
    assert max(samples) < segment
    padding = sum(segment - n for n in samples) / (segment * len(clips))
    assert 0.3 < padding < 0.9
    (tmp_path / "long.json").write_text(
        json.dumps(tiny_config(segment_size=segment, num_workers=4))
    )
    monkeypatch.setattr("hifigan.train.setup.available_cpus", lambda: 2)
    run = open_run(options(tmp_path / "run", data, tmp_path / "long.json"), Processes())
    loader, _ = make_loader(run, torch.device("cpu"), Processes())
    err = capsys.readouterr().err
    assert loader.num_workers == 2
    assert (
        "data loader: 2 workers, not 4 (train.num_workers): 2 CPUs are available to this process\n"
        f"warning: clips are shorter than the {segment}-sample segment: {padding:.0%} of each "
        "batch is padding (a smaller train.segment_size avoids it)\n"
    ) in err
    # the tiny config's segment: no padding, no warning; no more workers than CPUs
    run = open_run(options(tmp_path / "run2", data, tiny), Processes())
    make_loader(run, torch.device("cpu"), Processes())
    assert capsys.readouterr().err == ""


def test_the_run_says_when_training_clips_are_long_recordings(tmp_path, data, tiny, capsys):
    clips = read_manifest(data)
    first = next(c for c in clips if c.split == "train")
    clips = [dataclasses.replace(c, duration=7200.0) if c is first else c for c in clips]
    write_manifest(tmp_path / "data" / "manifest.jsonl", clips)
    run = open_run(options(tmp_path / "run", tmp_path / "data", tiny), Processes())
    make_loader(run, torch.device("cpu"), Processes())
    assert capsys.readouterr().err == (
        f"warning: 1 training clip is longer than 10 min (the longest: {first.path}, 120 min): "
        "each clip gives one segment per epoch, so most of a long one is seldom seen; split "
        "long recordings into utterances\n"
    )


def test_available_cpus_follow_the_affinity_of_the_process():
    import os

    expected = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert available_cpus() == expected
