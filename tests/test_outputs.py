"""No command replaces a file the user has without --overwrite, and none replaces an input.

The rule (hifigan.outputs.OutputPlan) is tested on its own, through the two cases that lost
files (real subprocesses), and for every command that writes: an existing output survives
byte for byte with a one-line refusal naming it and the flag; with the flag it is replaced;
an input is never replaced, also not through a symbolic or a hard link.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from hifigan.checkpoint import save_checkpoint
from hifigan.config import HiFiGANConfig
from hifigan.conventions import load_convention
from hifigan.discriminators import MultiPeriodDiscriminator, MultiScaleDiscriminator
from hifigan.generator import Generator
from hifigan.outputs import OutputError, OutputPlan

PRECIOUS = b"the user's own file, not to be lost"


def _speech(path: Path, seconds: float = 0.4, rate: int = 22050) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * rate)) / rate
    sf.write(path, (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), rate)
    return path


def _precious(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(PRECIOUS)
    return path


def _link(kind: str, target: Path, at: Path) -> None:
    at.parent.mkdir(parents=True, exist_ok=True)
    if kind == "symlink":
        at.symlink_to(target.resolve())
    else:
        os.link(target, at)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A small generator checkpoint of ours (the debug preset, config inside): ``g.pt``;
    beside it a training checkpoint (step 2, with discriminators and optimizer states)."""
    torch.manual_seed(0)
    config = HiFiGANConfig.preset("debug")
    folder = tmp_path_factory.mktemp("model")
    generator = Generator.from_config(config)
    save_checkpoint(folder / "g.pt", config, generator)
    save_checkpoint(
        folder / "step_00000002.pt",
        config,
        generator,
        mpd=MultiPeriodDiscriminator.from_config(config),
        msd=MultiScaleDiscriminator.from_config(config),
        optim_g={"state": {}, "param_groups": []},
        optim_d={"state": {}, "param_groups": []},
        state={"step": 2, "epoch": 0},
    )
    return folder / "g.pt"


# ---------------------------------------------------------------------- the rule itself
def test_an_existing_file_is_refused_in_one_line_naming_it_and_the_flag(tmp_path):
    kept = _precious(tmp_path / "out" / "a.wav")
    plan = OutputPlan()
    with pytest.raises(OutputError) as e:
        plan.claim(kept)
    assert str(e.value) == (
        f"{kept}: already exists; pass --overwrite to replace it, or choose another output"
    )
    fresh = [tmp_path / "out" / f"{n}.wav" for n in "bcd"]
    _precious(fresh[1])
    _precious(fresh[2])
    with pytest.raises(OutputError, match=r"b\.wav|c\.wav") as e:
        plan.claim_all(fresh)
    assert str(e.value) == (
        f"{fresh[1]}: already exists, as does 1 more output; pass --overwrite to replace "
        "them, or choose another output"
    )
    # a refused batch records nothing: b.wav, which does not exist, is not claimed either
    assert plan.input_behind(fresh[0]) is None
    OutputPlan(overwrite=True).claim_all([kept, *fresh])
    assert kept.read_bytes() == PRECIOUS  # claiming writes nothing


def test_a_path_claimed_in_this_run_may_be_written_again(tmp_path):
    plan = OutputPlan()
    out = tmp_path / "stats.npz"
    plan.write_text(out, "first")
    plan.write_text(out, "second")  # created by this run: no flag needed
    assert out.read_text() == "second"
    with pytest.raises(OutputError, match="already exists"):
        OutputPlan().claim(out)  # a later run did not create it


@pytest.mark.parametrize("kind", ["same path", "symlink", "hardlink", "symlinked folder"])
def test_an_input_is_never_replaced_even_with_the_flag(tmp_path, kind):
    source = _precious(tmp_path / "in" / "x.wav")
    out = tmp_path / "out" / "x.wav"
    if kind == "same path":
        out = source
    elif kind == "symlinked folder":
        (tmp_path / "out").symlink_to(tmp_path / "in")
    else:
        _link(kind, source, out)
    plan = OutputPlan(overwrite=True, inputs=[source])
    with pytest.raises(OutputError) as e:
        plan.claim(out)
    message = str(e.value)
    assert message.startswith(f"{out}: exists and is one of the inputs")
    assert message.endswith("(--overwrite never replaces an input)")
    if kind != "same path":
        assert f"({source}, the same file)" in message
    assert source.read_bytes() == PRECIOUS


def test_an_input_given_through_a_link_is_protected_at_its_target(tmp_path):
    real = _precious(tmp_path / "out" / "x.wav")
    alias = tmp_path / "in" / "alias.wav"
    _link("symlink", real, alias)
    with pytest.raises(OutputError, match="is one of the inputs"):
        OutputPlan(overwrite=True, inputs=[alias]).claim(real)


def test_two_inputs_for_one_output_are_refused_before_anything(tmp_path):
    a, b = tmp_path / "a" / "x.wav", tmp_path / "b" / "x.flac"
    out = tmp_path / "out" / "x.wav"
    plan = OutputPlan(overwrite=True)
    with pytest.raises(OutputError) as e:
        plan.claim_all([(out, a), (tmp_path / "out" / "y.wav", b), (out, b)])
    assert str(e.value) == (
        f"{out}: two inputs would both be written here ({a} and {b}); rename one or write "
        "them to separate folders"
    )
    plan.claim_all([(out, a), (out, a)])  # the same input named twice is one output
    with pytest.raises(OutputError, match="two inputs"):
        plan.claim(out, b)  # also against an earlier claim of this run


def test_an_input_is_named_before_a_collision(tmp_path):
    # vocode wavs -o wavs, with x.wav and x.npy in wavs: both write wavs/x.wav, an input
    audio, mel = _precious(tmp_path / "x.wav"), _precious(tmp_path / "x.npy")
    plan = OutputPlan(overwrite=True, inputs=[audio, mel])
    with pytest.raises(OutputError, match=r"x\.wav: exists and is one of the inputs"):
        plan.claim_all([(tmp_path / "x.wav", audio), (tmp_path / "x.wav", mel)])


def test_a_folder_where_a_file_goes_and_a_file_where_a_folder_goes(tmp_path):
    folder = tmp_path / "model.onnx"
    folder.mkdir()
    with pytest.raises(OutputError) as e:
        OutputPlan(overwrite=True).claim(folder)
    assert str(e.value) == (
        f"{folder}: exists and is a folder, not a file; choose another output "
        "(--overwrite never replaces a folder)"
    )
    afile = _precious(tmp_path / "afile")
    for plan_call in (
        lambda p: p.claim_folder(afile),
        lambda p: p.claim(afile / "x.npy"),
        lambda p: p.claim(afile / "deeper" / "x.npy"),
    ):
        with pytest.raises(OutputError) as e:
            plan_call(OutputPlan(overwrite=True))
        assert str(e.value) == (
            f"{afile}: exists and is a file, not a folder; choose another output "
            "(--overwrite never replaces a file with a folder)"
        )
    assert afile.read_bytes() == PRECIOUS


# ---------------------------------------------------------------------- the two reported cases
def _hifigan(*args: object, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "hifigan", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_export_onto_its_own_checkpoint_is_refused(tmp_path, checkpoint):
    (tmp_path / "ex").mkdir()
    ckpt = tmp_path / "ex" / "g_v2"
    ckpt.write_bytes(checkpoint.read_bytes())
    args = ("export", "--checkpoint", "ex/g_v2", "-o", "ex/g_v2", "--overwrite")
    done = _hifigan(*args, cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert done.stderr == (
        "error: ex/g_v2: exists and is one of the inputs; choose another output "
        "(--overwrite never replaces an input)\n"
    )
    assert ckpt.read_bytes() == checkpoint.read_bytes()
    assert sorted(p.name for p in (tmp_path / "ex").iterdir()) == ["g_v2"]


def test_vocoding_mels_into_their_folder_keeps_the_recording(tmp_path, checkpoint, run_cli):
    recording = _speech(tmp_path / "ow" / "u1.wav")
    original = recording.read_bytes()
    code, _, err = run_cli("mel", recording, "-o", tmp_path / "ow")
    assert code == 0, err
    done = _hifigan("vocode", "ow/u1.npy", "-o", "ow", "--checkpoint", checkpoint, cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr == (
        "error: ow/u1.wav: already exists; pass --overwrite to replace it, or choose another "
        "output\n"
    )
    assert recording.read_bytes() == original
    assert sorted(p.name for p in recording.parent.iterdir()) == [
        "mel_convention.json",
        "u1.npy",
        "u1.wav",
    ]


# ---------------------------------------------------------------------- every writing command
@dataclass
class Case:
    """How one command writes: ``run`` makes its inputs under a folder and returns the
    arguments and one output they write; ``onto_input`` returns arguments whose output is one
    of their inputs, and that input; ``linked`` (given ``symlink`` or ``hardlink``) makes an
    output path a link to an input and returns the arguments, the output and the input."""

    run: Callable[[Path, Path], tuple[list, Path]]
    onto_input: Callable[[Path, Path], tuple[list, Path]]
    linked: Callable[[Path, Path, str], tuple[list, Path, Path]]


def _mel_run(tmp: Path, ckpt: Path) -> tuple[list, Path]:
    return ["mel", _speech(tmp / "in" / "a.wav"), "-o", tmp / "out"], tmp / "out" / "a.npy"


def _mel_onto(tmp: Path, ckpt: Path) -> tuple[list, Path]:
    conv = tmp / "out" / "mel_convention.json"
    conv.parent.mkdir(parents=True)
    conv.write_text(load_convention("hifigan").to_json())
    return ["mel", _speech(tmp / "in" / "a.wav"), "-o", tmp / "out", "--convention", conv], conv


def _mel_linked(tmp: Path, ckpt: Path, kind: str) -> tuple[list, Path, Path]:
    args, out = _mel_run(tmp, ckpt)
    _link(kind, args[1], out)
    return args, out, args[1]


def _vocode_run(tmp: Path, ckpt: Path) -> tuple[list, Path]:
    clip = _speech(tmp / "in" / "a.wav")
    return ["vocode", clip, "-o", tmp / "out", "--checkpoint", ckpt], tmp / "out" / "a.wav"


def _vocode_onto(tmp: Path, ckpt: Path) -> tuple[list, Path]:
    clip = _speech(tmp / "in" / "a.wav")
    return ["vocode", clip, "-o", tmp / "in", "--checkpoint", ckpt], clip


def _vocode_linked(tmp: Path, ckpt: Path, kind: str) -> tuple[list, Path, Path]:
    args, out = _vocode_run(tmp, ckpt)
    _link(kind, args[1], out)
    return args, out, args[1]


def _export_run(tmp: Path, ckpt: Path) -> tuple[list, Path]:
    return ["export", "--checkpoint", ckpt, "-o", tmp / "out" / "g.onnx"], tmp / "out" / "g.onnx"


def _export_onto(tmp: Path, ckpt: Path) -> tuple[list, Path]:
    mine = tmp / "in" / "g.pt"
    mine.parent.mkdir(parents=True)
    mine.write_bytes(ckpt.read_bytes())
    return ["export", "--checkpoint", mine, "-o", mine], mine


def _export_linked(tmp: Path, ckpt: Path, kind: str) -> tuple[list, Path, Path]:
    args, out = _export_run(tmp, ckpt)
    _link(kind, ckpt, out)
    return args, out, ckpt


def _demo_args(clip: Path, out: Path, ckpt: Path) -> list:
    return ["demo", "--input", clip, "-o", out, "--checkpoint", ckpt, "--device", "cpu"]


def _demo_run(tmp: Path, ckpt: Path) -> tuple[list, Path]:
    return _demo_args(_speech(tmp / "in" / "a.wav"), tmp / "out", ckpt), tmp / "out" / "report.txt"


def _demo_onto(tmp: Path, ckpt: Path) -> tuple[list, Path]:
    clip = _speech(tmp / "out" / "input.wav")  # the last demo's input, vocoded again in place
    return _demo_args(clip, tmp / "out", ckpt), clip


def _demo_linked(tmp: Path, ckpt: Path, kind: str) -> tuple[list, Path, Path]:
    args, _ = _demo_run(tmp, ckpt)
    _link(kind, args[2], tmp / "out" / "input.wav")
    return args, tmp / "out" / "input.wav", args[2]


def _evaluate_run(tmp: Path, ckpt: Path) -> tuple[list, Path]:
    ref, gen = _speech(tmp / "ref" / "a.wav"), _speech(tmp / "gen" / "a.wav", seconds=0.3)
    args = ["evaluate", "--ref", ref.parent, "--gen", gen.parent, "--metrics", "mel_l1"]
    return [*args, "--no-plots", "-o", tmp / "out"], tmp / "out" / "metrics.csv"


def _evaluate_onto(tmp: Path, ckpt: Path) -> tuple[list, Path]:
    # the audio of an earlier report, evaluated again into that report: dataset g, system g
    clip = _speech(tmp / "out" / "audio" / "g" / "g" / "a.wav")
    args = ["evaluate", "--data", clip.parent, "--checkpoint", ckpt, "--no-griffin-lim"]
    return [*args, "--metrics", "mel_l1", "--no-plots", "-o", tmp / "out"], clip


def _evaluate_linked(tmp: Path, ckpt: Path, kind: str) -> tuple[list, Path, Path]:
    args, out = _evaluate_run(tmp, ckpt)
    _link(kind, tmp / "ref" / "a.wav", out)
    return args, out, tmp / "ref" / "a.wav"


def _ratings(db: Path) -> Path:
    from hifigan.listen.store import Store

    db.parent.mkdir(parents=True, exist_ok=True)
    store = Store(db)
    store.set_meta("systems", '["ground truth", "v1"]')
    for trial, (system, score) in enumerate([("ground truth", 5), ("v1", 4), ("v1", 3)]):
        store.add_rating("ann", "mos", trial, ("utt", system), score=score)
    store.close()
    return db


def _listen_run(tmp: Path, ckpt: Path) -> tuple[list, Path]:
    db = _ratings(tmp / "in" / "ratings.sqlite")
    return ["listen", "--results", "--db", db, "-o", tmp / "out", "--no-plot"], (
        tmp / "out" / "results.csv"
    )


def _listen_onto(tmp: Path, ckpt: Path) -> tuple[list, Path]:
    db = _ratings(tmp / "out" / "results.csv")  # a database that took the CSV's name
    return ["listen", "--results", "--db", db, "-o", tmp / "out", "--no-plot"], db


def _listen_linked(tmp: Path, ckpt: Path, kind: str) -> tuple[list, Path, Path]:
    args, out = _listen_run(tmp, ckpt)
    _link(kind, args[3], out)
    return args, out, args[3]


def _training_run(run: Path, ckpt: Path) -> Path:
    """A run folder holding a copy of the training checkpoint beside ``ckpt``."""
    source = ckpt.parent / "step_00000002.pt"
    step = run / "checkpoints" / source.name
    step.parent.mkdir(parents=True)
    step.write_bytes(source.read_bytes())
    (run / "config.json").write_text(json.dumps(HiFiGANConfig.preset("debug").to_dict()))
    return step


def _train_run(tmp: Path, ckpt: Path) -> tuple[list, Path]:
    _training_run(tmp / "run", ckpt)
    args = ["train", "--out", tmp / "run", "--export-authors", tmp / "out"]
    return args, tmp / "out" / "g_00000002"


def _train_onto(tmp: Path, ckpt: Path) -> tuple[list, Path]:
    _training_run(tmp / "run", ckpt)  # exported into the run folder: its config.json is the run's
    return ["train", "--out", tmp / "run", "--export-authors", tmp / "run"], (
        tmp / "run" / "config.json"
    )


def _train_linked(tmp: Path, ckpt: Path, kind: str) -> tuple[list, Path, Path]:
    args, out = _train_run(tmp, ckpt)
    step = tmp / "run" / "checkpoints" / "step_00000002.pt"
    _link(kind, step, out)
    return args, out, step


CASES = {
    "mel": Case(_mel_run, _mel_onto, _mel_linked),
    "vocode": Case(_vocode_run, _vocode_onto, _vocode_linked),
    "export": Case(_export_run, _export_onto, _export_linked),
    "demo": Case(_demo_run, _demo_onto, _demo_linked),
    "evaluate": Case(_evaluate_run, _evaluate_onto, _evaluate_linked),
    "listen": Case(_listen_run, _listen_onto, _listen_linked),
    "train": Case(_train_run, _train_onto, _train_linked),
}


def _needs(command: str) -> None:
    extras = {"export": ["onnx", "onnxruntime"], "evaluate": ["pesq"], "listen": ["scipy"]}
    for module in extras.get(command, []):
        pytest.importorskip(module)


def _tree(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() if p.is_file() else b"<folder>"
        for p in sorted(folder.rglob("*"))
    }


@pytest.mark.parametrize("command", list(CASES))
def test_an_existing_output_survives_without_the_flag(command, tmp_path, checkpoint, run_cli):
    _needs(command)
    args, victim = CASES[command].run(tmp_path, checkpoint)
    _precious(victim)
    before = _tree(tmp_path)
    code, _, err = run_cli(*args)
    assert code == 1
    (line,) = err.strip().splitlines()
    assert line.startswith("error: ") and "pass --overwrite to replace" in line
    assert str(victim) in line or (str(victim.parent) in line and victim.name in line)
    assert _tree(tmp_path) == before  # nothing written, nothing replaced


# the ONNX export and its check, and the demo's metrics, take several seconds
SLOW = {"export", "demo"}


@pytest.mark.parametrize(
    "command", [pytest.param(c, marks=[pytest.mark.slow] if c in SLOW else []) for c in CASES]
)
def test_with_the_flag_an_existing_output_is_replaced(command, tmp_path, checkpoint, run_cli):
    _needs(command)
    args, victim = CASES[command].run(tmp_path, checkpoint)
    _precious(victim)
    code, _, err = run_cli(*args, "--overwrite")
    assert code == 0, err
    assert victim.read_bytes() != PRECIOUS


@pytest.mark.parametrize("command", list(CASES))
def test_an_input_is_not_replaced_by_any_command(command, tmp_path, checkpoint, run_cli):
    _needs(command)
    args, source = CASES[command].onto_input(tmp_path, checkpoint)
    before = _tree(tmp_path)
    code, _, err = run_cli(*args, "--overwrite")
    assert code == 1
    assert err.strip() == (
        f"error: {source}: exists and is one of the inputs; choose another output "
        "(--overwrite never replaces an input)"
    )
    assert _tree(tmp_path) == before


@pytest.mark.parametrize("kind", ["symlink", "hardlink"])
@pytest.mark.parametrize("command", list(CASES))
def test_a_link_to_an_input_is_caught(command, kind, tmp_path, checkpoint, run_cli):
    _needs(command)
    args, out, source = CASES[command].linked(tmp_path, checkpoint, kind)
    kept = source.read_bytes()
    before = _tree(tmp_path)
    code, _, err = run_cli(*args, "--overwrite")
    assert code == 1
    assert f"error: {out}: exists and is one of the inputs" in err
    assert "--overwrite never replaces an input" in err
    assert _tree(tmp_path) == before and source.read_bytes() == kept


def test_evaluate_checks_its_figures_and_audio_before_synthesis(tmp_path, checkpoint, run_cli):
    _needs("evaluate")
    clips = [_speech(tmp_path / "lj" / f"{n}.wav") for n in "ab"]
    figure = _precious(tmp_path / "out" / "mels" / "lj_a_g.png")  # dataset lj, clip a, system g
    args = ["evaluate", "--data", tmp_path / "lj", "--checkpoint", checkpoint]
    args += ["--no-griffin-lim", "--metrics", "mel_l1", "--plots", "1", "-o", tmp_path / "out"]
    code, _, err = run_cli(*args)
    assert code == 1
    assert err.strip() == (
        f"error: {figure}: already exists; pass --overwrite to replace it, or choose another output"
    )
    assert [p.name for p in (tmp_path / "out").rglob("*")] == ["mels", figure.name]
    figure.unlink()
    _precious(tmp_path / "out" / "audio" / "lj" / "g" / "b.wav")
    code, _, err = run_cli(*args)
    assert code == 1 and "audio/lj/g/b.wav: already exists; pass --overwrite" in err
    assert clips[0].exists() and not (tmp_path / "out" / "metrics.csv").exists()
