"""The training loop: outputs of a run, exact resume, signals, faults, fine-tuning, precision.

Runs use a tiny variant of the ``debug`` preset (2048-sample segments, batch 2) on a few short
LJSpeech clips, so that each step takes a fraction of a second on the CPU.
"""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf
import torch

from hifigan import (
    Generator,
    HiFiGANConfig,
    MultiPeriodDiscriminator,
    MultiScaleDiscriminator,
    Vocoder,
)
from hifigan.checkpoint import read_checkpoint, to_authors_keys
from hifigan.errors import HiFiGANError
from hifigan.train import TrainingDiverged, TrainOptions, read_metrics, train
from hifigan.train.adapt import bf16_supported
from hifigan.train.loop import Intervals
from hifigan.train.manifest import prepare

from conftest import LJ_V2, LJSPEECH, REPO, need

TRAIN_IDS = ["LJ001-0008", "LJ001-0002", "LJ050-0030", "LJ001-0013", "LJ001-0011", "LJ001-0020"]
VAL_IDS = ["LJ050-0029"]


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny networks gain nothing from more threads, and a busy machine makes them slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_config(**train):
    """The debug preset, smaller and faster, as a dict."""
    cfg = HiFiGANConfig.preset("debug").to_dict()
    cfg["name"] = "tiny"
    cfg["train"].update(
        segment_size=2048,
        batch_size=2,
        num_workers=0,
        log_interval=1,
        val_interval=3,
        checkpoint_interval=2,
        max_steps=6,
    )
    cfg["train"].update(train)
    return cfg


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    path = tmp_path_factory.mktemp("config") / "tiny.json"
    path.write_text(json.dumps(tiny_config()))
    return path


def prepare_tiny_data(folder, source=LJSPEECH, sample_rate=22050):
    """Prepare 6 short clips of ``source`` for training, one for validation, into ``folder``."""
    (folder / "train.txt").write_text("".join(f"{i}|x\n" for i in TRAIN_IDS))
    (folder / "val.txt").write_text("".join(f"{i}|x\n" for i in VAL_IDS))
    return prepare(
        need(source),
        folder,
        sample_rate=sample_rate,
        train_list=folder / "train.txt",
        val_list=folder / "val.txt",
    )


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A prepared folder: 6 short LJSpeech clips for training, one for validation."""
    folder = tmp_path_factory.mktemp("data")
    prepare_tiny_data(folder)
    return folder


def options(out, data, config, **kw):
    kw.setdefault("tensorboard", False)
    kw.setdefault("device", "cpu")
    return TrainOptions(out=out, data=data, config=str(config), progress=False, **kw)


def state_of(path):
    """Every tensor of a training checkpoint, flattened to ``{name: tensor}``."""
    ckpt = read_checkpoint(path)
    flat = {}

    def walk(prefix, obj):
        if isinstance(obj, torch.Tensor):
            flat[prefix] = obj
        elif isinstance(obj, dict):
            for k, v in obj.items():
                walk(f"{prefix}.{k}", v)
        elif isinstance(obj, (list, tuple)):
            for i, v in enumerate(obj):
                walk(f"{prefix}.{i}", v)

    for key in ("generator", "mpd", "msd", "optim_g", "optim_d"):
        walk(key, ckpt[key])
    return flat, ckpt


def test_intervals_say_when_to_log_validate_and_checkpoint():
    every = Intervals(log=2, validation=3, checkpoint=4, max_steps=10)
    steps = range(1, 11)
    assert [s for s in steps if every.log_at(s)] == [2, 4, 6, 8, 10]
    assert [s for s in steps if every.validate_at(s, stopping=False)] == [3, 6, 9, 10]
    assert [s for s in steps if every.checkpoint_at(s, stopping=False)] == [4, 8, 10]
    # a signal: a checkpoint now, and a validation only when one is due anyway
    assert every.checkpoint_at(5, stopping=True) and not every.validate_at(5, stopping=True)
    assert every.validate_at(6, stopping=True) and not every.validate_at(10, stopping=True)


def test_a_run_writes_checkpoints_metrics_and_tensorboard_logs(run_cli, tmp_path, tiny):
    # a raw dataset folder with a corrupt clip: prepared by the train command, clip skipped
    raw = tmp_path / "raw"
    raw.mkdir()
    for i in TRAIN_IDS + VAL_IDS:
        (raw / f"{i}.flac").write_bytes((need(LJSPEECH) / "wavs" / f"{i}.flac").read_bytes())
    (raw / "broken.wav").write_bytes(b"RIFF....WAVEfmt " + os.urandom(300))
    run = tmp_path / "run"
    code, _, err = run_cli(
        "train", "--config", tiny, "--data", raw, "--out", run, "--keep", "2", "--no-progress",
        "--device", "cpu",
    )  # fmt: skip
    assert code == 0, err
    assert "skipped 1 file" in err and "broken.wav: not a valid WAV file" in err
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == [
        "best.pt",
        "step_00000004.pt",
        "step_00000006.pt",
    ]
    assert (run / "config.json").is_file() and (run / "data" / "manifest.jsonl").is_file()
    records = read_metrics(run / "metrics.jsonl")
    assert [r["step"] for r in records] == [0, 3, 6]
    assert all(r["val_mel_l1"] > 0 and r["val_clips"] == 1 for r in records)
    assert {"train_mel", "train_loss_g", "train_loss_d", "train_grad_norm_g"} <= set(records[-1])
    best = min(records, key=lambda r: r["val_mel_l1"])
    assert read_checkpoint(run / "checkpoints" / "best.pt")["step"] == best["step"]
    vocoder = Vocoder.from_checkpoint(run / "checkpoints" / "best.pt")
    assert vocoder(torch.zeros(80, 10)).shape == (2560,)
    ckpt = read_checkpoint(run / "checkpoints" / "step_00000006.pt")
    assert ckpt["state"]["step"] == 6 and ckpt["state"]["epoch"] == 2  # 3 batches per epoch
    assert ckpt["optim_g"]["param_groups"][0]["lr"] == pytest.approx(2e-4 * 0.999**2)

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run / "tensorboard"), size_guidance={"scalars": 0}).Reload()
    tags = events.Tags()
    for name in ("mel", "adv_mpd", "fm_msd", "disc_mpd", "loss_g", "loss_d"):
        assert f"train/{name}" in tags["scalars"]
    for name in ("lr_g", "lr_d", "grad_norm_g", "grad_norm_d", "steps_per_s"):
        assert f"train/{name}" in tags["scalars"]
    assert [e.step for e in events.Scalars("train/mel")] == [1, 2, 3, 4, 5, 6]
    assert [e.step for e in events.Scalars("val/mel_l1")] == [0, 3, 6]
    assert any(t.startswith("audio_generated/") for t in tags["audio"])
    assert any(t.startswith("mel/") for t in tags["images"])

    # the same folder again without --resume is refused; the authors' format is exported
    code, _, err = run_cli("train", "--config", tiny, "--data", raw, "--out", run)
    assert code == 1 and "already holds a run (step_00000006.pt); pass --resume" in err
    code, _, err = run_cli("train", "--out", run, "--export-authors", tmp_path / "authors")
    assert code == 0, err
    g = torch.load(tmp_path / "authors" / "g_00000006", weights_only=True)
    do = torch.load(tmp_path / "authors" / "do_00000006", weights_only=True)
    assert set(g) == {"generator"} and "conv_pre.weight_g" in g["generator"]
    assert set(do) == {"mpd", "msd", "optim_g", "optim_d", "steps", "epoch"}
    assert (do["steps"], do["epoch"]) == (6, 2)
    # the authors' optim_d runs over msd's then mpd's parameters: the Adam moments line up
    cfg = HiFiGANConfig.from_file(run / "config.json")
    order = [
        *MultiScaleDiscriminator.from_config(cfg).parameters(),
        *MultiPeriodDiscriminator.from_config(cfg).parameters(),
    ]
    moments = do["optim_d"]["state"]
    assert len(moments) == len(order)
    assert all(moments[i]["exp_avg"].shape == p.shape for i, p in enumerate(order))
    assert json.loads((tmp_path / "authors" / "config.json").read_text())["resblock"] == "2"


def test_resume_is_exact(tmp_path, data, tiny):
    # 6 clips, batch 2: 3 batches per epoch; stopping at step 2 stops mid-epoch, and the
    # learning-rate decay at step 3 happens after the resume
    straight = train(options(tmp_path / "a", data, tiny, max_steps=4, keep_checkpoints=5))
    half = train(options(tmp_path / "b", data, tiny, max_steps=2, keep_checkpoints=5))
    assert half.state.step == 2 and half.state.batch_in_epoch == 2
    resumed = train(options(tmp_path / "b", None, tiny, max_steps=4, resume=True))
    assert resumed.state.step == straight.state.step == 4
    a, ckpt_a = state_of(straight.checkpoint)
    b, ckpt_b = state_of(resumed.checkpoint)
    assert a.keys() == b.keys() and len(a) > 100
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, different[:5]
    assert ckpt_a["state"]["epoch"] == ckpt_b["state"]["epoch"] == 1
    assert ckpt_a["scheduler_g"] == ckpt_b["scheduler_g"]
    # the weights did change during those steps (the comparison is not vacuous)
    first, _ = state_of(tmp_path / "b" / "checkpoints" / "step_00000002.pt")
    assert not torch.equal(first["generator.conv_post.weight_v"], b["generator.conv_post.weight_v"])
    # metrics of the resumed run continue those of the first part
    assert [r["step"] for r in read_metrics(tmp_path / "b" / "metrics.jsonl")] == [0, 2, 3, 4]


@pytest.mark.slow  # test_signals.py's matrix stops and resumes runs in the default run
def test_sigterm_writes_a_loadable_checkpoint_and_the_run_resumes(tmp_path, data, tiny):
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "hifigan", "train", "--config", str(tiny), "--data", str(data)]
    cmd += ["--out", str(run), "--max-steps", "10000", "--checkpoint-interval", "10000"]
    cmd += ["--val-interval", "10000", "--no-progress", "--threads", "1", "--device", "cpu"]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, cwd=REPO)
    seen = []
    deadline = time.time() + 120
    for line in proc.stderr:
        seen.append(line)
        if line.startswith("step 3/") or time.time() > deadline:
            break
    proc.send_signal(signal.SIGTERM)
    _, rest = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, "".join(seen) + rest
    assert "stopped by SIGTERM" in rest
    (saved,) = (run / "checkpoints").glob("step_*.pt")
    step = read_checkpoint(saved)["state"]["step"]
    assert step >= 3
    assert Vocoder.from_checkpoint(saved).generator is not None
    assert not list((run / "checkpoints").glob(".*.tmp"))
    result = train(options(run, None, tiny, max_steps=step + 1, resume=True))
    assert result.state.step == step + 1


def test_nan_losses_skip_steps_and_stop_the_run_after_several(tmp_path, data, tiny, monkeypatch):
    import hifigan.train.step as step_module

    calls = {"n": 0}
    real_terms = step_module.generator_loss_terms

    def poisoned(*args, **kw):
        calls["n"] += 1
        terms = real_terms(*args, **kw)
        if calls["n"] == 3 or calls["n"] >= 5:  # a transient NaN at step 3, then for good
            terms["mel"] = terms["mel"] * float("nan")
        return terms

    monkeypatch.setattr(step_module, "generator_loss_terms", poisoned)
    run = tmp_path / "run"
    with pytest.raises(TrainingDiverged) as e:
        train(options(run, data, tiny, max_steps=20, max_bad_steps=3, checkpoint_interval=4))
    msg = str(e.value)
    assert "NaN/inf for 3 steps in a row (up to step 7)" in msg
    assert msg.endswith(f"last good checkpoint: {run / 'checkpoints' / 'step_00000004.pt'}")
    (saved,) = (run / "checkpoints").glob("step_*.pt")  # nothing written after the failures
    ckpt = read_checkpoint(saved)
    assert ckpt["state"]["skipped_steps"] == 1  # step 3 was skipped, the run went on
    assert all(torch.isfinite(v).all() for v in ckpt["generator"].values())


def test_a_full_disk_gives_an_error_and_keeps_the_previous_checkpoint(
    tmp_path, data, tiny, monkeypatch
):
    real_save = torch.save

    def save(obj, f, *a, **kw):
        if "step_00000004" in str(f):
            with open(f, "wb") as fh:
                fh.write(b"partial")
            raise OSError(28, "No space left on device")
        return real_save(obj, f, *a, **kw)

    monkeypatch.setattr(torch, "save", save)
    run = tmp_path / "run"
    with pytest.raises(HiFiGANError) as e:
        train(options(run, data, tiny, max_steps=6))
    assert str(e.value) == (
        f"{run / 'checkpoints' / 'step_00000004.pt'}: cannot write (No space left on device)"
    )
    files = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert files == ["best.pt", "step_00000002.pt"]  # no partial file, the previous one intact
    assert read_checkpoint(run / "checkpoints" / "step_00000002.pt")["state"]["step"] == 2
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(HiFiGANError, match="cannot create the run folder"):
        train(options(blocker / "run", data, tiny))


def test_fine_tuning_from_the_authors_checkpoint_on_given_mels(run_cli, tmp_path, data, tiny):
    cfg = tiny_config(max_steps=2, val_interval=2)
    cfg["generator"] = HiFiGANConfig.preset("v2").to_dict()["generator"]
    (tmp_path / "v2tiny.json").write_text(json.dumps(cfg))
    mels = tmp_path / "mels"
    wavs = [str(LJSPEECH / "wavs" / f"{i}.flac") for i in TRAIN_IDS + VAL_IDS]
    code, _, err = run_cli("mel", *wavs, "-o", mels)
    assert code == 0, err
    args = ["train", "--config", tmp_path / "v2tiny.json", "--data", data, "--no-progress"]
    args += ["--device", "cpu"]
    args += ["--checkpoint", need(LJ_V2), "--fine-tune-mels", mels]
    code, _, err = run_cli(*args, "--out", tmp_path / "ft")
    assert code == 0, err
    assert f"starting from {LJ_V2} (generator only; discriminators initialised afresh)" in err
    records = read_metrics(tmp_path / "ft" / "metrics.jsonl")
    # the authors' LJ_V2 generator is a good vocoder from step 0 (a random one scores ~1.8)
    assert records[0]["val_mel_l1"] < 0.5
    # a mel whose length does not match its audio is reported by name, with both lengths
    bad = mels / f"{TRAIN_IDS[0]}.npy"
    np.save(bad, np.zeros((80, 30), dtype=np.float32))
    code, _, err = run_cli(*args, "--out", tmp_path / "ft2")
    frames = sf.info(LJSPEECH / "wavs" / f"{TRAIN_IDS[0]}.flac").frames
    assert code == 1
    assert err.splitlines()[-1].startswith(f"error: {bad}: mel has 30 frames but its audio")
    assert f"has {frames} samples = {frames // 256} frames of 256" in err


def test_bf16_autocast_trains_on_cpu_and_fp16_needs_cuda(tmp_path, data, tiny):
    result = train(options(tmp_path / "bf16", data, tiny, max_steps=2, precision="bf16"))
    ckpt = read_checkpoint(result.checkpoint)
    assert ckpt["state"]["skipped_steps"] == 0
    assert all(v.dtype == torch.float32 for v in ckpt["generator"].values())
    records = read_metrics(tmp_path / "bf16" / "metrics.jsonl")
    assert all(np.isfinite(r["val_mel_l1"]) for r in records)
    if not torch.cuda.is_available():
        with pytest.raises(HiFiGANError, match="fp16 needs a CUDA device"):
            train(options(tmp_path / "fp16", data, tiny, precision="fp16", device="cpu"))


def test_torchrun_with_two_processes_matches_one_process(tmp_path, data, tiny):
    """Two gloo processes with batch 1 each against one process with batch 2: the same
    examples and crops, gradients averaged by DDP. Equal up to float32 rounding (the sums run
    in another order), which Adam amplifies for gradient elements near zero (the update is
    about lr * g / eps there, eps = 1e-8): measured 2.8e-6 after three steps, tolerance 2e-5
    (a tenth of one step's lr = 2e-4), while the weights move by up to 6e-4."""
    common = ["--config", str(tiny), "--data", str(data), "--max-steps", "3", "--no-progress"]
    common += ["--val-interval", "3", "--checkpoint-interval", "3", "--device", "cpu"]
    common += ["--precision", "fp32", "--disc-pass", "separate"]  # the exact step
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    single = [sys.executable, "-m", "hifigan", "train", *common, "--out", str(tmp_path / "one")]
    done = subprocess.run(
        [*single, "--threads", "1"], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone"]  # a free port
    torchrun += ["--nproc_per_node", "2", "-m", "hifigan", "train"]
    done = subprocess.run(
        [*torchrun, *common, "--out", str(tmp_path / "two")],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stderr.count("step 3: val_mel_l1") == 1, done.stderr  # only rank 0 reports
    for run in ("one", "two"):
        assert sorted(p.name for p in (tmp_path / run / "checkpoints").iterdir()) == [
            "best.pt",
            "step_00000003.pt",
        ]
        assert len(read_metrics(tmp_path / run / "metrics.jsonl")) == 2
    a, _ = state_of(tmp_path / "one" / "checkpoints" / "step_00000003.pt")
    b, _ = state_of(tmp_path / "two" / "checkpoints" / "step_00000003.pt")
    weights = [k for k in a if k.split(".")[0] in ("generator", "mpd", "msd")]
    worst = max((a[k].float() - b[k].float()).abs().max().item() for k in weights)
    assert worst < 2e-5, worst
    # the networks did move in those 3 steps, far more than the tolerance
    torch.manual_seed(1234)
    initial = to_authors_keys(Generator.from_config(HiFiGANConfig.from_file(tiny)).state_dict())
    change = max((a[f"generator.{k}"] - v).abs().max().item() for k, v in initial.items())
    assert change > 3e-4  # Adam moves a weight by at most about lr = 2e-4 per step
    print(f"largest difference {worst:.2e}, largest change of a weight {change:.2e}")
    metrics = [
        read_metrics(tmp_path / r / "metrics.jsonl")[-1]["val_mel_l1"] for r in ("one", "two")
    ]
    assert metrics[0] == pytest.approx(metrics[1], rel=1e-4), metrics


@pytest.mark.slow
def test_the_readme_commands(run_cli, tmp_path, monkeypatch):
    """README: train the debug preset on the LJSpeech folder, resume it, vocode with best.pt."""
    monkeypatch.chdir(tmp_path)
    data = str(need(LJSPEECH))
    code, _, err = run_cli("train", "--config", "debug", "--data", data, "--out", "runs/debug",
                           "--max-steps", "10")  # fmt: skip
    assert code == 0, err
    # on a CPU with bf16 kernels the default step is bf16 with the joint pass, and says so
    step = "training step: bf16, joint discriminator pass (--precision fp32 --disc-pass separate"
    assert (step in err) == bf16_supported("cpu"), err
    code, _, err = run_cli("train", "--out", "runs/debug", "--max-steps", "20", "--resume")
    assert code == 0, err
    assert "training step:" not in err
    assert json.loads((tmp_path / "runs/debug/recipe.json").read_text())["precision"] == (
        "bf16" if bf16_supported("cpu") else "fp32"
    )
    assert "resuming from runs/debug/checkpoints/step_00000010.pt (step 10, epoch 2)" in err
    code, _, err = run_cli("vocode", f"{data}/wavs/LJ001-0001.flac", "-o", "out",
                           "--checkpoint", "runs/debug/checkpoints/best.pt")  # fmt: skip
    assert code == 0, err
    assert sf.info(tmp_path / "out" / "LJ001-0001.wav").frames == 831 * 256
    assert [r["step"] for r in read_metrics(tmp_path / "runs/debug/metrics.jsonl")] == [0, 10, 20]


@pytest.mark.slow
def test_compiled_networks_train_like_eager_ones(tmp_path, data, tiny):
    eager = train(options(tmp_path / "eager", data, tiny, max_steps=3))
    compiled = train(options(tmp_path / "compiled", data, tiny, max_steps=3, compile=True))
    a, _ = state_of(eager.checkpoint)
    b, _ = state_of(compiled.checkpoint)
    worst = max((a[k] - b[k]).abs().max().item() for k in a if k.startswith("generator."))
    assert worst < 2e-5  # fused kernels round differently; see the torchrun test
