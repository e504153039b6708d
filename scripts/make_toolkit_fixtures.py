"""Write the toolkit fixtures of tests/toolkits with each toolkit's own code.

    python scripts/make_toolkit_fixtures.py [--env /tmp/toolkit-env] [--out tests/fixtures/toolkits]

Creates a throw-away virtual environment (``--env``) that sees this interpreter's packages
(torch, numpy) through a ``.pth`` file, installs the pinned toolkits there with ``pip
--no-deps`` plus the few light packages their generator and checkpoint code imports, and then
re-runs itself inside it (``--inside``) to write, per format and architecture shape, a small
checkpoint with random weights in the toolkit's own layout, an input mel and the toolkit's
own output:

==================  ==========================================================================
format              how the fixture is written
==================  ==========================================================================
parallel-wavegan    ``parallel_wavegan`` 0.6.1: ``HiFiGANGenerator``, saved in the layout of its
                    trainer's ``save_checkpoint`` (``model``/``optimizer``/``scheduler``/
                    ``steps``/``epochs``), ``config.yml`` via ``yaml.dump``, output from
                    ``load_model`` + ``remove_weight_norm`` + ``inference``
coqui               ``coqui-tts`` 0.27.5: ``HifiganGenerator`` inside a ``model_g``/``model_d``
                    container, saved by ``trainer.io.save_model`` with a ``HifiganConfig``;
                    outputs of ``forward`` and ``inference`` (5 edge frames repeated)
nemo                ``nemo_toolkit`` 2.5.3: its ``hifigan_modules.Generator`` source, with
                    stand-ins for the ``nemo.core`` type-checking imports; ``.nemo`` packed as
                    NeMo's ``SaveRestoreConnector`` does (uncompressed tar of
                    ``model_config.yaml`` and ``model_weights.ckpt``; the connector itself
                    needs all of NeMo and Lightning), and a Lightning-layout ``.ckpt`` whose
                    ``hyper_parameters.cfg`` is a pickled OmegaConf ``DictConfig``
speechbrain         ``speechbrain`` 1.0.3: ``HifiganGenerator`` (a stand-in for torchaudio, only
                    imported), ``generator.ckpt`` as its Checkpointer writes it (a state
                    dict) in ``save/CKPT+.../`` with ``hyperparams.yaml`` two folders up;
                    outputs of ``forward`` and ``inference``
dle                 NVIDIA DeepLearningExamples is not on the package index: a re-creation of
                    its ``Checkpointer.maybe_save`` layout (``generator``, ``gen_ema``,
                    ``config``, ``train_setup``, ``train_state``, nested ``resblocks.i.j``,
                    default kernels ``[11, 7, 3]``); its output is computed with NeMo's
                    generator, which has DLE's module layout and arithmetic
==================  ==========================================================================

Finally it reads back what ``hifigan export --format parallel-wavegan|coqui`` writes with the
toolkits' own loaders and records the differences in ``readback.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import sysconfig
import tarfile
import types
from pathlib import Path

PINS = [
    "parallel_wavegan==0.6.1",
    "coqui-tts==0.27.5",
    "coqui-tts-trainer==0.4.0",
    "coqpit-config==0.2.1",
    "speechbrain==1.0.3",
    "hyperpyyaml==1.2.2",
    "nemo_toolkit==2.5.3",
    "omegaconf==2.3.0",
    "antlr4-python3-runtime==4.9.3",
]
LIGHT = ["pyyaml", "h5py", "wheel", "ruamel.yaml"]
FRAMES = 32
SEED = 7

# two architecture shapes per toolkit: V1-like (residual block 1) and V3-like (block 2),
# tiny widths so that the fixtures stay small
SHAPES = {
    "v1": dict(
        resblock=1,
        rates=[8, 8],
        kernels=[16, 16],
        channels=16,
        rk=[3, 7, 11],
        rd=[[1, 3, 5], [1, 3, 5], [1, 3, 5]],
    ),
    # ParallelWaveGAN's 24 kHz recipes use odd rates (5, 5, 4, 3): padding u // 2 + u % 2 and
    # output padding u % 2 (kernels twice the rates); hop 60 here
    "v2-odd": dict(
        resblock=1,
        rates=[5, 4, 3],
        kernels=[10, 8, 6],
        channels=8,
        rk=[3, 5],
        rd=[[1, 3, 5], [1, 3, 5]],
    ),
    "v3": dict(
        resblock=2, rates=[8, 8], kernels=[16, 16], channels=16, rk=[3, 5], rd=[[1, 2], [2, 6]]
    ),
}
MEL = dict(sample_rate=16000, n_fft=256, hop_length=64, win=256, n_mels=80, fmin=0.0, fmax=8000.0)


# ---------------------------------------------------------------------- outside: the env
def make_env(env: Path) -> Path:
    python = env / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(env)], check=True)
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    # torch and numpy come from this interpreter's environment (no second torch download)
    Path(purelib, "_outer_env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    pip = [str(python), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, *LIGHT], check=True)
    subprocess.run([*pip, "--no-deps", "--no-build-isolation", *PINS], check=True)
    return python


# ---------------------------------------------------------------------- inside: stand-ins
def stub_module(name: str, **attrs: object) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__dict__.update(attrs)
    sys.modules[name] = module
    return module


def package_without_init(name: str) -> None:
    """Import ``name``'s submodules without running its heavy ``__init__``."""
    import importlib.util

    spec = importlib.util.find_spec(name)
    assert spec is not None and spec.submodule_search_locations
    pkg = stub_module(name)
    pkg.__path__ = list(spec.submodule_search_locations)


def install_stand_ins() -> None:
    """Stand-ins for what the toolkits' generator modules import but do not use (once per
    process: a second call finds them installed)."""
    if "nemo.core" in sys.modules:
        return
    import scipy.signal
    import scipy.signal.windows
    import torch

    if not hasattr(scipy.signal, "kaiser"):  # parallel_wavegan's PQMF imports the old name
        scipy.signal.kaiser = scipy.signal.windows.kaiser
    # torchaudio: imported by speechbrain's modules, not used by the generator
    ta = stub_module("torchaudio", __version__="2.13.0", list_audio_backends=lambda: ["soundfile"])
    stub_module("torchaudio.transforms")
    stub_module("torchaudio.functional")
    ta.transforms = sys.modules["torchaudio.transforms"]
    ta.functional = sys.modules["torchaudio.functional"]
    packages = ("TTS", "TTS.vocoder.configs", "speechbrain", "nemo", "nemo.collections")
    for name in (*packages, "nemo.collections.tts", "nemo.collections.tts.modules"):
        package_without_init(name)  # their __init__ imports every model (librosa, ...)
    # nemo.core: the type-checking layer of NeMo's modules, replaced by no-ops
    identity = lambda *a, **k: lambda f: f  # noqa: E731
    stub_module("nemo.core")
    stub_module("nemo.core.classes")
    stub_module("nemo.core.classes.common", typecheck=identity)
    stub_module("nemo.core.classes.module", NeuralModule=torch.nn.Module)
    stub_module("nemo.core.neural_types")
    stub_module(
        "nemo.core.neural_types.elements",
        AudioSignal=object,
        MelSpectrogramType=object,
        VoidType=object,
    )
    stub_module("nemo.core.neural_types.neural_type", NeuralType=lambda *a, **k: None)


def mel_input(n_mels: int, frames: int, low: float, high: float, seed: int):
    import torch

    g = torch.Generator().manual_seed(seed)
    x = torch.rand(1, n_mels, frames, generator=g)
    x = torch.nn.functional.avg_pool1d(x, 3, 1, 1, count_include_pad=False)
    return low + (high - low) * x


def randomize(module, seed: int) -> None:
    import torch

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            noise = torch.randn(p.shape, generator=g)
            if name.endswith(("weight_g", "original0")):  # weight norm: each filter's norm
                p.copy_(0.8 + 0.4 * noise.abs().clamp(max=1))
            elif name.endswith("bias"):
                p.copy_(0.02 * noise)
            else:
                p.copy_(noise)


def save_np(folder: Path, name: str, tensor) -> None:
    import numpy as np

    np.save(folder / name, tensor.detach().reshape(-1).numpy().astype(np.float32))


def write_parallel_wavegan(out: Path, shape: str) -> None:
    import numpy as np
    import torch
    import yaml
    from parallel_wavegan.models import HiFiGANGenerator
    from parallel_wavegan.utils import load_model

    s = SHAPES[shape]
    folder = out / f"parallel-wavegan-{shape}"
    folder.mkdir(parents=True, exist_ok=True)
    params = dict(
        in_channels=MEL["n_mels"],
        out_channels=1,
        channels=s["channels"],
        kernel_size=7,
        upsample_scales=s["rates"],
        upsample_kernel_sizes=s["kernels"],
        resblock_kernel_sizes=s["rk"],
        resblock_dilations=s["rd"],
        use_additional_convs=s["resblock"] == 1,
    )
    model = HiFiGANGenerator(**params)
    randomize(model, SEED)
    config = dict(
        sampling_rate=MEL["sample_rate"],
        fft_size=MEL["n_fft"],
        hop_size=math.prod(s["rates"]),
        win_length=None,
        window="hann",
        num_mels=MEL["n_mels"],
        fmin=80,
        fmax=7600,
        log_base=10.0,
        format="npy",
        generator_type="HiFiGANGenerator",
        generator_params=params,
        version="0.6.1",
    )
    with open(folder / "config.yml", "w") as f:
        yaml.dump(config, f, Dumper=yaml.Dumper)
    state = {
        "optimizer": {"generator": {"state": {}, "param_groups": []}},
        "scheduler": {"generator": {"last_epoch": 0}},
        "steps": 2500,
        "epochs": 1,
        "model": {"generator": model.state_dict(), "discriminator": {}},
    }
    torch.save(state, folder / "checkpoint-2500steps.pkl")
    stats = np.stack([np.linspace(-5, -2, MEL["n_mels"]), np.linspace(1, 2, MEL["n_mels"])])
    np.save(folder / "stats.npy", stats.astype(np.float32))
    mel = mel_input(MEL["n_mels"], FRAMES, -2.0, 2.0, SEED)
    loaded = load_model(str(folder / "checkpoint-2500steps.pkl"))
    loaded.remove_weight_norm()
    loaded.eval()
    with torch.no_grad():
        y = loaded.inference(mel[0].T)  # (T, 80) normalised mel, as decode.py gives it
    save_np(folder, "mel.npy", mel)
    np.save(folder / "mel.npy", mel[0].numpy())
    save_np(folder, "toolkit_output.npy", y)


def write_coqui(out: Path, shape: str) -> None:
    import numpy as np
    import torch
    from trainer.io import save_model
    from TTS.vocoder.configs.hifigan_config import HifiganConfig
    from TTS.vocoder.models.hifigan_generator import HifiganGenerator

    s = SHAPES[shape]
    folder = out / f"coqui-{shape}"
    folder.mkdir(parents=True, exist_ok=True)
    params = dict(
        upsample_factors=s["rates"],
        upsample_kernel_sizes=s["kernels"],
        upsample_initial_channel=s["channels"],
        resblock_kernel_sizes=s["rk"],
        resblock_dilation_sizes=s["rd"],
        resblock_type=str(s["resblock"]),
    )
    if s["resblock"] == 2:  # Coqui's block 2 takes exactly two dilations
        params["resblock_dilation_sizes"] = [d[:2] for d in s["rd"]]
    config = HifiganConfig(generator_model_params=params)
    config.audio.sample_rate = MEL["sample_rate"]
    config.audio.fft_size = MEL["n_fft"]
    config.audio.win_length = MEL["win"]
    config.audio.hop_length = MEL["hop_length"]
    config.audio.num_mels = MEL["n_mels"]
    g = HifiganGenerator(in_channels=MEL["n_mels"], out_channels=1, **params)
    randomize(g, SEED)

    class Container(torch.nn.Module):  # the GAN vocoder's attribute names
        def __init__(self) -> None:
            super().__init__()
            self.model_g = g
            self.model_d = torch.nn.Conv1d(1, 1, 3)

    save_model(config, Container(), str(folder / "checkpoint_2500.pth"), current_step=2500, epoch=1)
    config.save_json(str(folder / "config.json"))
    mel = mel_input(MEL["n_mels"], FRAMES, -4.0, 4.0, SEED)
    g.remove_weight_norm()
    g.eval()
    with torch.no_grad():
        save_np(folder, "toolkit_forward.npy", g(mel))
        save_np(folder, "toolkit_output.npy", g.inference(mel))
    np.save(folder / "mel.npy", mel[0].numpy())


def write_speechbrain(out: Path, shape: str) -> None:
    import numpy as np
    import torch
    from speechbrain.lobes.models.HifiGAN import HifiganGenerator

    s = SHAPES[shape]
    folder = out / f"speechbrain-{shape}"
    ckpt = folder / "save" / "CKPT+2025-01-01+00-00-00+00"
    ckpt.mkdir(parents=True, exist_ok=True)
    dil = s["rd"] if s["resblock"] == 1 else [d[:2] for d in s["rd"]]
    g = HifiganGenerator(
        in_channels=MEL["n_mels"],
        out_channels=1,
        resblock_type=str(s["resblock"]),
        resblock_dilation_sizes=dil,
        resblock_kernel_sizes=s["rk"],
        upsample_kernel_sizes=s["kernels"],
        upsample_initial_channel=s["channels"],
        upsample_factors=s["rates"],
    )
    randomize(g, SEED)
    torch.save(g.state_dict(), ckpt / "generator.ckpt")
    hp = f"""# SpeechBrain HiFi-GAN hyperparameters (fixture)
sample_rate: {MEL["sample_rate"]}
hop_length: {MEL["hop_length"]}
win_length: {MEL["win"]}
n_fft: {MEL["n_fft"]}
n_mel_channels: {MEL["n_mels"]}
mel_fmin: 0.0
mel_fmax: 8000.0
power: 1
norm: "slaney"
mel_scale: "slaney"
dynamic_range_compression: True
in_channels: {MEL["n_mels"]}
out_channels: 1
resblock_type: "{s["resblock"]}"
resblock_dilation_sizes: {dil}
resblock_kernel_sizes: {s["rk"]}
upsample_kernel_sizes: {s["kernels"]}
upsample_initial_channel: {s["channels"]}
upsample_factors: {s["rates"]}
inference_padding: 5
cond_channels: 0
conv_post_bias: True

generator: !new:speechbrain.lobes.models.HifiGAN.HifiganGenerator
    in_channels: !ref <in_channels>
    out_channels: !ref <out_channels>
    resblock_type: !ref <resblock_type>
    resblock_dilation_sizes: !ref <resblock_dilation_sizes>
    resblock_kernel_sizes: !ref <resblock_kernel_sizes>
    upsample_kernel_sizes: !ref <upsample_kernel_sizes>
    upsample_initial_channel: !ref <upsample_initial_channel>
    upsample_factors: !ref <upsample_factors>
    inference_padding: !ref <inference_padding>
    cond_channels: !ref <cond_channels>
    conv_post_bias: !ref <conv_post_bias>
"""
    (folder / "hyperparams.yaml").write_text(hp)
    from hyperpyyaml import load_hyperpyyaml

    loaded = load_hyperpyyaml(hp)["generator"]  # SpeechBrain's own reading of the file
    loaded.load_state_dict(torch.load(ckpt / "generator.ckpt"))
    loaded.remove_weight_norm()
    loaded.eval()
    mel = mel_input(MEL["n_mels"], FRAMES, -9.0, 1.0, SEED)
    with torch.no_grad():
        save_np(folder, "toolkit_forward.npy", loaded(mel))
        save_np(folder, "toolkit_output.npy", loaded.inference(mel))
    np.save(folder / "mel.npy", mel[0].numpy())


def nemo_config(s: dict) -> dict:
    return {
        "sample_rate": MEL["sample_rate"],
        "n_mels": MEL["n_mels"],
        "preprocessor": {
            "_target_": "nemo.collections.asr.parts.preprocessing.features.FilterbankFeatures",
            "nfilt": "${n_mels}",
            "lowfreq": 0,
            "highfreq": 8000,
            "n_fft": MEL["n_fft"],
            "n_window_size": MEL["win"],
            "n_window_stride": MEL["hop_length"],
            "pad_to": 0,
            "pad_value": -11.52,
            "sample_rate": "${sample_rate}",
            "window": "hann",
            "normalize": None,
            "preemph": None,
            "dither": 0.0,
            "frame_splicing": 1,
            "log": True,
            "log_zero_guard_type": "clamp",
            "log_zero_guard_value": 1e-05,
            "mag_power": 1.0,
            "exact_pad": True,
            "use_grads": False,
        },
        "generator": {
            "_target_": "nemo.collections.tts.modules.hifigan_modules.Generator",
            "resblock": s["resblock"],
            "upsample_rates": s["rates"],
            "upsample_kernel_sizes": s["kernels"],
            "upsample_initial_channel": s["channels"],
            "resblock_kernel_sizes": s["rk"],
            "resblock_dilation_sizes": s["rd"] if s["resblock"] == 1 else [d[:2] for d in s["rd"]],
        },
    }


def write_nemo(out: Path, shape: str) -> None:
    import io

    import numpy as np
    import torch
    from nemo.collections.tts.modules.hifigan_modules import Generator
    from omegaconf import OmegaConf

    s = SHAPES[shape]
    folder = out / f"nemo-{shape}"
    folder.mkdir(parents=True, exist_ok=True)
    cfg = nemo_config(s)
    g = Generator(**{k: v for k, v in cfg["generator"].items() if k != "_target_"})
    randomize(g, SEED)
    state = {f"generator.{k}": v for k, v in g.state_dict().items()}
    state["audio_to_melspec_precessor.featurizer.window"] = torch.hann_window(
        MEL["win"], periodic=False
    )
    # the .nemo archive, packed as NeMo's SaveRestoreConnector does (tar "w:", arcname ".")
    stage = folder / "_pack"
    stage.mkdir(exist_ok=True)
    OmegaConf.save(OmegaConf.create(cfg), stage / "model_config.yaml")
    torch.save(state, stage / "model_weights.ckpt")
    with tarfile.open(folder / "HifiGan.nemo", "w:") as tar:
        tar.add(stage, arcname=".")
    for f in stage.iterdir():
        f.unlink()
    stage.rmdir()
    # Lightning's checkpoint layout with the model's hyper-parameters as a DictConfig
    ckpt = {
        "epoch": 1,
        "global_step": 2500,
        "pytorch-lightning_version": "2.4.0",
        "state_dict": state,
        "loops": {},
        "callbacks": {},
        "optimizer_states": [],
        "lr_schedulers": [],
        "hparams_name": "cfg",
        "hyper_parameters": {"cfg": OmegaConf.create(cfg)},
    }
    buffer = io.BytesIO()
    torch.save(ckpt, buffer)
    (folder / "HifiGan--val_loss=0.5-epoch=1.ckpt").write_bytes(buffer.getvalue())
    mel = mel_input(MEL["n_mels"], FRAMES, -11.0, 1.0, SEED)
    g.eval()  # NeMo keeps weight norm at inference (convert_spectrogram_to_audio)
    with torch.no_grad():
        save_np(folder, "toolkit_output.npy", g(x=mel))
    np.save(folder / "mel.npy", mel[0].numpy())


def write_dle(out: Path, shape: str) -> None:
    import numpy as np
    import torch
    from nemo.collections.tts.modules.hifigan_modules import Generator

    s = dict(SHAPES[shape])
    folder = out / f"dle-{shape}"
    folder.mkdir(parents=True, exist_ok=True)
    kernels = list(reversed(s["rk"]))  # DLE's default order, the reverse of the authors'
    dil = s["rd"] if s["resblock"] == 1 else [d[:2] for d in s["rd"]]
    arch = dict(
        upsample_rates=s["rates"],
        upsample_kernel_sizes=s["kernels"],
        upsample_initial_channel=s["channels"],
        resblock=str(s["resblock"]),
        resblock_kernel_sizes=kernels,
        resblock_dilation_sizes=dil,
    )
    g = Generator(
        resblock=s["resblock"],
        upsample_rates=s["rates"],
        upsample_kernel_sizes=s["kernels"],
        upsample_initial_channel=s["channels"],
        resblock_kernel_sizes=kernels,
        resblock_dilation_sizes=dil,
    )
    randomize(g, SEED)
    setup = dict(
        segment_size=8192,
        filter_length=MEL["n_fft"],
        num_mels=80,
        hop_length=MEL["hop_length"],
        win_length=MEL["win"],
        sampling_rate=MEL["sample_rate"],
        mel_fmin=0.0,
        mel_fmax=8000.0,
        mel_fmax_loss=None,
        max_wav_value=32768.0,
        seed=1234,
        base_lr=3e-4,
        lr_decay=0.9998,
        epochs_all=2000,
    )
    ckpt = {
        "generator": g.state_dict(),
        "gen_ema": None,
        "config": arch,
        "train_setup": setup,
        "train_state": {"epoch": 2000, "iters_all": 250000},
    }
    torch.save(ckpt, folder / "hifigan_gen_checkpoint_2000.pt")
    mel = mel_input(MEL["n_mels"], FRAMES, -11.0, 1.0, SEED)
    g.remove_weight_norm()
    g.eval()
    with torch.no_grad():
        save_np(folder, "toolkit_output.npy", g(x=mel))
    np.save(folder / "mel.npy", mel[0].numpy())


def readback(out: Path, scratch: Path) -> dict:
    """Export fixtures with hifigan and read them back with the toolkits' own loaders."""
    import numpy as np
    import torch
    from parallel_wavegan.utils import load_model
    from TTS.vocoder.models.hifigan_generator import HifiganGenerator

    from hifigan.checkpoint import load_generator
    from hifigan.toolkits.writers import write_coqui as hf_write_coqui
    from hifigan.toolkits.writers import write_parallel_wavegan as hf_write_pwg

    results = {}
    source = out / "nemo-v1" / "HifiGan.nemo"
    generator, config = load_generator(source)
    generator.remove_weight_norm().eval()
    mel = torch.from_numpy(np.load(out / "nemo-v1" / "mel.npy"))[None]
    with torch.no_grad():
        ours = generator(mel).reshape(-1)
    pwg_dir = scratch / "pwg"
    pwg_dir.mkdir(parents=True, exist_ok=True)
    hf_write_pwg(generator, config, pwg_dir / "checkpoint-1steps.pkl")
    model = load_model(str(pwg_dir / "checkpoint-1steps.pkl"))
    model.remove_weight_norm()
    with torch.no_grad():
        theirs = model.inference(mel[0].T).reshape(-1)
    results["parallel-wavegan"] = float((theirs - ours).abs().max())
    coqui_dir = scratch / "coqui"
    coqui_dir.mkdir(parents=True, exist_ok=True)
    hf_write_coqui(generator, config, coqui_dir / "checkpoint_1.pth")
    saved = torch.load(coqui_dir / "checkpoint_1.pth", weights_only=True)
    p = saved["config"]["generator_model_params"]
    g = HifiganGenerator(in_channels=80, out_channels=1, **p)
    g.load_state_dict({k[len("model_g.") :]: v for k, v in saved["model"].items()})
    g.remove_weight_norm()
    with torch.no_grad():
        theirs = g(mel).reshape(-1)
    results["coqui"] = float((theirs - ours).abs().max())
    return {"source": "nemo-v1/HifiGan.nemo", "max_abs_diff": results}


def inside(out: Path) -> None:
    import tempfile

    import torch

    install_stand_ins()
    torch.manual_seed(SEED)
    for shape in SHAPES:
        write_parallel_wavegan(out, shape)
        if shape == "v2-odd":
            continue  # a ParallelWaveGAN-only shape
        write_coqui(out, shape)
        write_speechbrain(out, shape)
        write_nemo(out, shape)
        write_dle(out, shape)
    with tempfile.TemporaryDirectory() as tmp:
        report = readback(out, Path(tmp))
    (out / "readback.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", type=Path, default=Path("/tmp/hifigan-toolkit-env"))
    parser.add_argument("--out", type=Path, default=Path("tests/fixtures/toolkits"))
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inside:
        inside(args.out.resolve())
        return
    python = make_env(args.env)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    subprocess.run(
        [str(python), __file__, "--inside", "--out", str(args.out.resolve())], check=True, env=env
    )


if __name__ == "__main__":
    main()
