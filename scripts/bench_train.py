"""Training throughput on the CPU: our training step against a plain fp32 eager step of the
same networks, the way the authors' ``train.py`` does it, measured in one run.

Full V1 (generator, MPD and MSD at the paper's sizes), batch 2, segment 8192, real speech
(LJSpeech clips from ``../shared``). Every step includes the input mel of the batch and the
two loss mels. The paths:

* ``authors``: fp32 eager; the mel filterbank and window rebuilt on every mel call (their
  ``mel_basis`` cache never hits: it is keyed by ``str(fmax) + '_' + device`` but looked up by
  ``fmax``); the generator update also computes the discriminators' weight gradients and runs
  the real audio through them with autograd on; AdamW's per-parameter loop (torch's default
  on a CPU);
* ``ours``: :func:`hifigan.train.step.train_step` with ``--precision fp32 --disc-pass
  separate``, the authors' arithmetic (separate real/fake discriminator passes, filterbank
  built once, fused AdamW), the default on a GPU and on CPUs without bf16 kernels;
* ``ours-joint``, ``ours-bf16``, ``ours-compile``: the ``--disc-pass joint``,
  ``--precision bf16`` and ``--compile`` options (compilation happens in the warm-up step);
  ``ours-bf16-joint``: both, the default of ``hifigan train`` on CPUs with bf16 kernels;
  ``ours-bf16-joint-compile``: that default under ``--compile``;
* a suffix changes one thing of a path: ``+unfused`` AdamW's per-parameter loop (torch's
  default on a CPU) instead of the fused kernels the trainer uses, ``+flush`` denormals
  flushed to zero during the step (``torch.set_flush_denormal``), ``+cl`` the MPD's 2-D
  convolutions in channels-last layout, ``+nofold`` the MPD's periods 2 and 3 as 2-D
  convolutions under bf16 too (``hifigan.discriminators.FOLD_MAX_PERIOD = 0``), as in
  ``ours-bf16-joint+unfused+flush``.

Each round runs every path for ``--steps`` steps, in a rotating order; each path has its own
copy of the networks and optimizers, initialised identically. With ``--isolate`` each path of
each round runs in a fresh process instead (one warm-up step, then ``--steps`` timed): what a
user's own training process sees. In one shared process the other paths' networks and
allocator history slowed a path by up to a fifth (the same bf16 step took 1.34 s beside two
copies of itself and 1.67 s beside the fp32 paths) and reversed the fused optimizer's gain;
use ``--isolate`` for the figures you report. Prints the median time per step,
steps/s, and the median over rounds of each path's speed-up against ``authors``. With
``--profile N``, one more step of each path then runs under ``torch.profiler`` and the N
operators with the most self CPU time are printed (where the time goes, before changing
anything).

    python scripts/bench_train.py --threads 2 --rounds 5 --steps 3
    python scripts/bench_train.py --threads 2 --rounds 3 --isolate --paths authors,ours-bf16-joint
    python scripts/bench_train.py --threads 2 --rounds 1 --paths ours-bf16-joint --profile 25
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from hifigan import HiFiGANConfig, MelSpectrogram, discriminators
from hifigan.inference.benchmark import timed_call
from hifigan.losses import discriminator_loss_terms, generator_loss_terms, loss_weights
from hifigan.mel import mel_filterbank
from hifigan.train.dataset import SegmentDataset
from hifigan.train.manifest import Clip
from hifigan.train.step import Networks, build_networks, train_step

SHARED = Path(os.environ.get("HIFIGAN_SHARED", Path(__file__).resolve().parents[2] / "shared"))


def authors_mel(y: torch.Tensor, config: HiFiGANConfig, fmax: float | None) -> torch.Tensor:
    """The authors' ``mel_spectrogram``: filterbank and window rebuilt on every call."""
    m = config.mel
    basis = torch.from_numpy(mel_filterbank(m.sample_rate, m.n_fft, m.n_mels, m.fmin, fmax))
    basis = basis.to(y.device)
    window = torch.hann_window(m.win_length).to(y.device)
    pad = (m.n_fft - m.hop_length) // 2
    y = F.pad(y.unsqueeze(1), (pad, pad), mode="reflect").squeeze(1)
    spec = torch.stft(
        y, m.n_fft, m.hop_length, m.win_length, window, center=False, return_complex=True
    )
    spec = torch.sqrt(torch.view_as_real(spec).pow(2).sum(-1) + 1e-9)
    return torch.log(torch.clamp(torch.matmul(basis, spec), min=1e-5))


def authors_step(nets: Networks, y: torch.Tensor, config: HiFiGANConfig) -> None:
    """One step of the authors' loop (input mel and real loss mel as their loader computes
    them), on ``y (B, T)``."""
    w = loss_weights(config.train)
    x = authors_mel(y, config, config.mel.fmax)
    y_mel = authors_mel(y, config, config.mel.fmax_loss)
    y = y.unsqueeze(1)
    y_g_hat = nets.generator(x)
    y_g_hat_mel = authors_mel(y_g_hat.squeeze(1), config, config.mel.fmax_loss)
    nets.optim_d.zero_grad()
    mpd_r, mpd_g = nets.mpd(y)[0], nets.mpd(y_g_hat.detach())[0]
    msd_r, msd_g = nets.msd(y)[0], nets.msd(y_g_hat.detach())[0]
    d = discriminator_loss_terms(mpd_r, mpd_g, msd_r, msd_g)
    (d["disc_mpd"] + d["disc_msd"]).backward()
    nets.optim_d.step()
    nets.optim_g.zero_grad()
    mpd_out = nets.mpd(y), nets.mpd(y_g_hat)
    msd_out = nets.msd(y), nets.msd(y_g_hat)
    g = generator_loss_terms(mpd_out, msd_out, real_mel=y_mel, fake_mel=y_g_hat_mel)
    sum(w[k] * v for k, v in g.items()).backward()
    nets.optim_g.step()


def unfused(optimizer: torch.optim.Optimizer) -> dict:
    """The options of ``optimizer`` with the per-parameter loop instead of fused kernels."""
    group = optimizer.param_groups[0]
    keys = ("lr", "betas", "weight_decay", "eps")
    return {**{k: group[k] for k in keys}, "fused": False, "foreach": False}


def real_batches(config: HiFiGANConfig, batch: int, segment: int, n: int) -> list[torch.Tensor]:
    """``n`` batches ``(batch, segment)`` of peak-normalised LJSpeech segments."""
    import soundfile as sf

    files = sorted((SHARED / "data" / "ljspeech" / "wavs").glob("*.flac"))
    if not files:
        raise SystemExit(f"no LJSpeech clips in {SHARED}/data/ljspeech (set HIFIGAN_SHARED)")
    clips = [Clip(f.stem, f, sf.info(f).duration, 22050, "train") for f in files]
    ds = SegmentDataset(clips, config.mel, segment)
    keys = [(i % len(clips), i) for i in range(n * batch)]
    return [
        torch.stack([ds[k][1] for k in keys[j : j + batch]]) for j in range(0, len(keys), batch)
    ]


def isolated_times(args: argparse.Namespace, names: list[str]) -> dict[str, list[float]]:
    """Seconds per step of each path, each round, each path in its own fresh process (in a
    rotating order): without the other paths' networks and allocator history in the
    process, which changed the times of a path by up to a fifth in the shared one."""
    child = [sys.executable, __file__, "--emit", "--rounds", "1"]
    for flag in ("threads", "device", "config", "batch", "segment", "steps"):
        child += [f"--{flag}", str(getattr(args, flag))]
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(args.rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            done = subprocess.run([*child, "--paths", name], capture_output=True, text=True)
            if done.returncode:
                raise SystemExit(f"{name}: {done.stderr.strip()[-2000:]}")
            times[name].append(float(done.stdout.split()[-1]))
    return times


def report(args: argparse.Namespace, names: list[str], times: dict[str, list[float]]) -> None:
    """The median time per step of each path and its speed-up over ``authors``, per round."""
    how = "each path in its own process" if args.isolate else "one process"
    print(
        f"{args.config} on {args.device}: batch {args.batch}, segment {args.segment}, "
        f"{args.threads} threads, {args.rounds} rounds x {args.steps} steps per path ({how}), "
        f"torch {torch.__version__}"
    )
    for name in names:
        t = statistics.median(times[name])
        line = f"{name:>15}: {t:.3f} s/step, {1 / t:.3f} steps/s"
        if name != "authors" and "authors" in times:
            ratios = [a / b for a, b in zip(times["authors"], times[name])]
            line += f", speed-up over authors x{statistics.median(ratios):.2f} (rounds: "
            line += ", ".join(f"{x:.2f}" for x in ratios) + ")"
        print(line)
    print(f"load average during the run: {np.round(os.getloadavg(), 2).tolist()}")


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    ap.add_argument("--config", default="v1")
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--segment", type=int, default=8192)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=3, help="steps per path per round")
    ap.add_argument(
        "--paths",
        default="authors,ours",
        help="comma-separated: authors, ours, ours-joint, ours-bf16, ours-bf16-joint, "
        "ours-compile (default authors,ours)",
    )
    ap.add_argument(
        "--profile", type=int, default=0, metavar="N", help="print the top N operators per path"
    )
    ap.add_argument(
        "--isolate",
        action="store_true",
        help="run each path of each round in a fresh process (what a user's process sees)",
    )
    ap.add_argument("--emit", action="store_true", help=argparse.SUPPRESS)  # an --isolate child
    args = ap.parse_args()
    names = args.paths.split(",")
    if args.isolate and args.profile:
        ap.error("--profile runs in one process: drop --isolate")
    if args.isolate:
        report(args, names, isolated_times(args, names))
        return
    torch.set_num_threads(args.threads)
    config = HiFiGANConfig.load(args.config)
    device = torch.device(args.device)
    mel_in = MelSpectrogram.from_config(config.mel).to(device)
    batches = [b.to(device) for b in real_batches(config, args.batch, args.segment, args.steps)]
    options = {
        "authors": {},
        "ours": {},
        "ours-joint": {"disc_pass": "joint"},
        "ours-bf16": {"precision": "bf16"},
        "ours-compile": {"compile": True},
        "ours-bf16-joint": {"precision": "bf16", "disc_pass": "joint"},
        "ours-bf16-joint-compile": {"precision": "bf16", "disc_pass": "joint", "compile": True},
    }
    nets = {}
    for name in names:
        base, *suffixes = name.split("+")
        nets[name] = build_networks(config, device, **options[base])[0]
        if name == "authors" or "unfused" in suffixes:
            n = nets[name]
            n.optim_g = torch.optim.AdamW(n.generator.parameters(), **unfused(n.optim_g))
            params = [*n.msd.parameters(), *n.mpd.parameters()]
            n.optim_d = torch.optim.AdamW(params, **unfused(n.optim_d))
        if "cl" in suffixes:
            nets[name].mpd.to(memory_format=torch.channels_last)

    def run(name: str, audio: torch.Tensor) -> None:
        suffixes = name.split("+")[1:]
        torch.set_flush_denormal("flush" in suffixes)
        fold = discriminators.FOLD_MAX_PERIOD
        if "nofold" in suffixes:
            discriminators.FOLD_MAX_PERIOD = 0
        if name == "authors":
            authors_step(nets[name], audio, config)
        else:
            train_step(nets[name], mel_in(audio), audio.unsqueeze(1))
        torch.set_flush_denormal(False)
        discriminators.FOLD_MAX_PERIOD = fold

    for name in names:  # warm-up: first-call allocations, oneDNN primitive caches
        run(name, batches[0])
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(args.rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            _, seconds = timed_call(lambda n=name: [run(n, a) for a in batches], device)
            times[name].append(seconds / len(batches))
    if args.emit:
        print(times[names[0]][0])
        return
    report(args, names, times)
    for name in names if args.profile else []:
        activities = [torch.profiler.ProfilerActivity.CPU]
        with torch.profiler.profile(activities=activities, record_shapes=True) as prof:
            run(name, batches[0])
        print(f"\n{name}: the {args.profile} operators with the most self CPU time, one step")
        averages = prof.key_averages(group_by_input_shape=True)
        table = averages.table(
            sort_by="self_cpu_time_total", row_limit=args.profile, max_name_column_width=40
        )
        print(table)


if __name__ == "__main__":
    main()
