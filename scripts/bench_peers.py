"""Peer speed table: each toolkit's own HiFi-GAN generator against this package's paths.

    python scripts/make_toolkit_fixtures.py --env /tmp/hifigan-toolkit-env   # the toolkits
    /tmp/hifigan-toolkit-env/bin/python scripts/bench_peers.py [--seconds 10] [--threads 2]

Times, in one process and alternating round by round, on the same random weights and the same
mel: the authors' arithmetic (this package's eager generator with weight norm folded, which is
their ``models.py`` op for op), each toolkit's generator in its recommended inference mode
(ParallelWaveGAN: ``remove_weight_norm`` + ``inference``; Coqui and SpeechBrain:
``remove_weight_norm`` + ``inference``, with their 5-frame edge padding; NeMo: weight norm kept,
as ``convert_spectrogram_to_audio`` runs it; DLE's arithmetic is NeMo's generator with weight
norm folded), and this package's ``eager``, ``fast``, ``fast`` bf16 and ``onnx`` backends. For V1,
V2 and V3 shapes; prints a Markdown table of median times and ratios to the authors' eager, with
the machine's load average before and after (a loaded machine makes the figures meaningless).
Toolkits that are not installed are left out, and said so.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

# the fixture script's helpers, and this checkout's package (the toolkit environment sees only
# the outer environment's site-packages)
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from hifigan.config import HiFiGANConfig
from hifigan.generator import Generator
from hifigan.inference.backends import make_backend
from hifigan.toolkits import keys

Runner = Callable[[torch.Tensor], torch.Tensor]


def authors_state(generator: Generator) -> dict[str, torch.Tensor]:
    """Folded weights in the authors' names (the generator must have weight norm removed)."""
    return {k: v.detach().clone() for k, v in generator.state_dict().items()}


def weight_normed(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Plain weights -> ``weight_g``/``weight_v`` pairs (``g = ||w||`` per output filter)."""
    out = {}
    for key, value in state.items():
        if key.endswith(".weight") and value.dim() == 3:
            out[key[:-6] + "weight_g"] = value.norm(dim=(1, 2), keepdim=True)
            out[key[:-6] + "weight_v"] = value.clone()
        else:
            out[key] = value
    return out


def peers(config: HiFiGANConfig, state: dict[str, torch.Tensor]) -> dict[str, Runner]:
    """Each installed toolkit's generator with ``state``, in its inference mode."""
    import make_toolkit_fixtures as fixtures

    fixtures.install_stand_ins()
    g = config.generator
    runners: dict[str, Runner] = {}
    missing = []
    dil = [list(d) for d in g.resblock_dilation_sizes]
    try:
        from parallel_wavegan.models import HiFiGANGenerator

        m = HiFiGANGenerator(
            in_channels=config.mel.n_mels,
            channels=g.upsample_initial_channel,
            upsample_scales=list(g.upsample_rates),
            upsample_kernel_sizes=list(g.upsample_kernel_sizes),
            resblock_kernel_sizes=list(g.resblock_kernel_sizes),
            resblock_dilations=dil,
            use_additional_convs=g.resblock == 1,
        )
        m.remove_weight_norm()
        m.load_state_dict(keys.to_parallel_wavegan(state, g.resblock == 1))
        m.eval()
        runners["ParallelWaveGAN inference()"] = lambda x, m=m: m.inference(x[0].T)
    except ImportError:
        missing.append("parallel_wavegan")
    try:
        from TTS.vocoder.models.hifigan_generator import HifiganGenerator

        m = HifiganGenerator(
            config.mel.n_mels, 1, str(g.resblock), dil, list(g.resblock_kernel_sizes),
            list(g.upsample_kernel_sizes), g.upsample_initial_channel, list(g.upsample_rates),
        )  # fmt: skip
        m.remove_weight_norm()
        m.load_state_dict(state)
        m.eval()
        runners["Coqui inference()"] = m.inference
    except ImportError:
        missing.append("coqui-tts")
    try:
        from speechbrain.lobes.models.HifiGAN import HifiganGenerator as SBGenerator

        m = SBGenerator(
            config.mel.n_mels, 1, str(g.resblock), dil, list(g.resblock_kernel_sizes),
            list(g.upsample_kernel_sizes), g.upsample_initial_channel, list(g.upsample_rates),
        )  # fmt: skip
        m.remove_weight_norm()
        sb = {k.rsplit(".", 1)[0] + ".conv." + k.rsplit(".", 1)[1]: v for k, v in state.items()}
        m.load_state_dict(sb)
        m.eval()
        runners["SpeechBrain inference() (reflection padding)"] = m.inference
    except ImportError:
        missing.append("speechbrain")
    try:
        from nemo.collections.tts.modules.hifigan_modules import Generator as NeMoGenerator

        kernels = len(g.resblock_kernel_sizes)
        nested = {}
        for key, value in weight_normed(state).items():
            parts = key.split(".")
            if parts[0] == "resblocks":
                k = int(parts[1])
                parts[1:2] = [str(k // kernels), str(k % kernels)]
            nested[".".join(parts)] = value
        m = NeMoGenerator(
            g.resblock, list(g.upsample_rates), list(g.upsample_kernel_sizes),
            g.upsample_initial_channel, list(g.resblock_kernel_sizes), dil,
            initial_input_size=config.mel.n_mels,
        )  # fmt: skip
        m.load_state_dict(nested)
        m.eval()
        runners["NeMo forward (weight norm kept)"] = lambda x, m=m: m(x=x)
    except ImportError:
        missing.append("nemo_toolkit")
    if missing:
        print(f"not installed, left out: {', '.join(missing)}", file=sys.stderr)
    return runners


def time_all(runners: dict[str, Runner], mel: torch.Tensor, rounds: int) -> dict[str, float]:
    """Median seconds per call, the runners alternating within each round."""
    times: dict[str, list[float]] = {name: [] for name in runners}
    with torch.inference_mode():
        for run in runners.values():
            run(mel)  # warm-up (oneDNN primitives, ONNX Runtime session)
        for _ in range(rounds):
            for name, run in runners.items():
                start = time.perf_counter()
                run(mel)
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="audio per call (default 10)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--shapes", nargs="+", default=["v1", "v2", "v3"])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    print("| shape | path | median s | ratio to the authors' eager |")
    print("|---|---|---|---|")
    for shape in args.shapes:
        config = HiFiGANConfig.preset(shape)
        torch.manual_seed(0)
        generator = Generator.from_config(config).remove_weight_norm().eval()
        state = authors_state(generator)
        frames = int(args.seconds * config.mel.sample_rate / config.mel.hop_length)
        mel = torch.randn(1, config.mel.n_mels, frames) - 5.0
        runners: dict[str, Runner] = {"authors' eager": generator}
        runners.update(peers(config, state))
        for name, backend, precision in (
            ("hifigan fast", "fast", "fp32"),
            ("hifigan fast bf16", "fast", "bf16"),
            ("hifigan onnx", "onnx", "fp32"),
        ):
            try:
                runners[name] = make_backend(
                    backend, generator, precision=precision, device=torch.device("cpu")
                )
            except Exception as e:  # bf16 without CPU support, onnxruntime absent
                print(f"{name}: left out ({e})", file=sys.stderr)
        medians = time_all(runners, mel, args.rounds)
        base = medians["authors' eager"]
        for name, seconds in medians.items():
            print(f"| {shape} | {name} | {seconds:.3f} | {base / seconds:.2f}x |")
    load_after = os.getloadavg()
    print(f"\nload average before {load_before[0]:.2f}, after {load_after[0]:.2f}; "
          f"{args.threads} threads, {args.seconds:g} s of audio per call")  # fmt: skip


if __name__ == "__main__":
    main()
