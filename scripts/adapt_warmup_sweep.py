"""How many discriminator warm-up steps (and which learning rate) start a fine-tune best.

From a generator-only model (default ``universal-v1``) with fresh discriminators: the
discriminators train alone against the frozen generator once, and their state (weights and
optimizer) is kept at each warm-up count of ``--warmups``. From each kept state a joint
fine-tune runs ``--steps`` steps on the same batches (the generator restarts from the model
each time), and the held-out mel L1 (whole utterances, the validation measure of ``hifigan
train``) is measured every ``--val-every`` steps. Runs use the CPU fine-tuning defaults of
:mod:`hifigan.train.adapt` (batch, segment, precision, pass); the ``--pairs`` runs at other
rates reuse the discriminators warmed at ``--lr``.

    python scripts/adapt_warmup_sweep.py --data ../shared/data/kathleen/train.txt \\
        --eval-list ../shared/data/kathleen/eval.txt --out runs/sweep

Writes ``OUT/sweep.json`` (every measurement) and prints a table.
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import time
from pathlib import Path

import torch

from hifigan.pretrained import resolve_model
from hifigan.train.adapt import fine_tune_defaults, with_recipe
from hifigan.train.dataset import load_validation
from hifigan.train.distributed import Processes
from hifigan.train.setup import TrainOptions, TrainState, batches, make_loader, open_run
from hifigan.train.step import build_networks, train_step
from hifigan.train.validation import validate


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, required=True, help="training list (id|text, wavs/)")
    p.add_argument("--eval-list", type=Path, required=True, help="held-out list (id|text)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--model", default="universal-v1")
    p.add_argument("--train-clips", type=int, default=200, help="random training clips used")
    p.add_argument("--val-clips", type=int, default=8, help="held-out clips scored")
    p.add_argument("--warmups", default="0,50,100,200")
    p.add_argument("--lr", type=float, default=1e-4, help="learning rate of the warm-up runs")
    p.add_argument(
        "--pairs", default="0@2e-4,100@2e-4", help="extra WARMUP@LR runs beyond the first rate"
    )
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--val-every", type=int, default=10)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--seed", type=int, default=0, help="which training clips are drawn")
    return p.parse_args()


def write_lists(args: argparse.Namespace) -> tuple[Path, Path]:
    """A random subset of the training list, and the first held-out clips."""
    lines = [x for x in args.data.read_text().splitlines() if x.strip()]
    random.Random(args.seed).shuffle(lines)
    held = [x for x in args.eval_list.read_text().splitlines() if x.strip()]
    args.out.mkdir(parents=True, exist_ok=True)
    train_list, val_list = args.out / "train.txt", args.out / "val.txt"
    train_list.write_text("\n".join(lines[: args.train_clips]) + "\n")
    val_list.write_text("\n".join(held[: args.val_clips]) + "\n")
    return train_list, val_list


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    train_list, val_list = write_lists(args)
    checkpoint, preset = resolve_model(args.model)
    recipe = fine_tune_defaults("cpu")
    base = TrainOptions(
        out=args.out / "run",
        data=args.data.parent,
        config=preset,
        train_list=train_list,
        val_list=val_list,
        wavs=args.data.parent / "wavs",
        checkpoint=checkpoint,
        device="cpu",
        num_workers=0,
    )
    options = with_recipe(base, {"num_workers": 0})
    procs, device = Processes(), torch.device("cpu")
    run = open_run(options, procs)
    loader, sampler = make_loader(run, device, procs)
    utterances = load_validation(run.val_clips, run.config.mel)
    warmups = [int(x) for x in args.warmups.split(",")]

    def networks():
        return build_networks(
            run.config,
            device,
            precision=options.precision,
            disc_pass=options.disc_pass,
            start=checkpoint,
        )[0]

    def score(nets) -> float:
        return validate(nets.generator, utterances, nets.mel_loss, device, 0)[0]

    # one warm-up, its discriminator states kept at each count
    nets = networks()
    kept, data, t0 = {}, batches(loader, sampler, TrainState()), time.perf_counter()
    for n in range(max(warmups) + 1):
        if n in warmups:
            kept[n] = copy.deepcopy(
                (nets.mpd.state_dict(), nets.msd.state_dict(), nets.optim_d.state_dict())
            )
        if n < max(warmups):
            mel, audio = next(data)
            train_step(nets, mel, audio.unsqueeze(1), update_generator=False)
    warm_seconds = time.perf_counter() - t0
    zero_shot = score(nets)
    print(f"zero-shot val mel L1 {zero_shot:.4f}; warm-up {max(warmups)} steps", flush=True)
    runs = [(w, args.lr) for w in warmups]
    for pair in filter(None, args.pairs.split(",")):
        w, lr = pair.split("@")
        runs.append((int(w), float(lr)))
    results = []
    for warm, lr in runs:
        nets = networks()
        mpd, msd, optim_d = kept[warm]
        nets.mpd.load_state_dict(mpd)
        nets.msd.load_state_dict(msd)
        nets.optim_d.load_state_dict(optim_d)
        for optim in (nets.optim_g, nets.optim_d):
            for group in optim.param_groups:
                group["lr"] = lr
        curve, data = {0: zero_shot}, batches(loader, sampler, TrainState())
        for step in range(1, args.steps + 1):
            mel, audio = next(data)
            train_step(nets, mel, audio.unsqueeze(1))
            if step % args.val_every == 0:
                curve[step] = score(nets)
        results.append({"warmup": warm, "lr": lr, "val_mel_l1": curve})
        line = " ".join(f"{s}:{v:.4f}" for s, v in curve.items())
        print(f"warm-up {warm:4d} lr {lr:g}: {line}", flush=True)
    summary = {
        "model": args.model,
        "recipe": {k: recipe[k] for k in ("batch_size", "segment_size", "precision")},
        "train_clips": len(run.train_clips),
        "val_clips": len(utterances),
        "steps": args.steps,
        "warmup_seconds": round(warm_seconds, 1),
        "zero_shot": zero_shot,
        "runs": results,
    }
    (args.out / "sweep.json").write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
