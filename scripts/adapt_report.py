"""Adapt a pretrained vocoder to one voice within a wall-clock budget, and report the gain.

End to end, with the package's own commands:

1. lists: the training clips (``--data``: an ``id|text`` list with ``wavs/`` beside it, or a
   folder holding ``train.txt``/``training.txt``), less ``--val-clips`` held out at random for
   validation (and ``best.pt``); ``--subset-minutes M`` keeps a random M minutes of the rest;
2. ``hifigan train --model MODEL ... --max-minutes MINUTES`` (fine-tuning defaults;
   ``--disc-warmup N`` / ``--no-warmup`` set the discriminator warm-up, default off);
3. ``hifigan evaluate`` on the clips of ``--eval-list`` (never seen in training): the adapted
   ``best.pt`` beside the zero-shot ``lj-v1`` and ``universal-v1``; the quick metrics, plus
   ViSQOL and CREPE periodicity / V/UV F1 when installed;
4. ``OUT/report.md``: mean ± 95% interval per metric and system, the learning curve (val mel L1
   against steps and minutes, ``OUT/curve.png``), steps/s, and the exact commands.

    python scripts/adapt_report.py --minutes 60 --data ../shared/data/kathleen/train.txt \\
        --eval-list ../shared/data/kathleen/eval.txt --model universal-v1 --out runs/adapt60
    python scripts/adapt_report.py --minutes 60 --subset-minutes 10 ...   # 10 minutes of data
    python scripts/adapt_report.py --minutes 60 --disc-warmup 100 ...     # with a warm-up
    python scripts/adapt_report.py --minutes 20 --device cuda ...         # on a GPU

A smoke run: ``--minutes 5 --max-steps 3 --eval-limit 3 --val-clips 2 --quick
--subset-minutes 1 --disc-warmup 2``. ``--baseline-csv OLD/eval/metrics.csv`` takes the
zero-shot scores from an earlier evaluation of the same clips (the zero-shot models are
deterministic), so only the adapted model is evaluated; ``--report-only`` rewrites the report of a
finished run.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import os
import platform
import random
import shlex
import subprocess
import sys
import time
from pathlib import Path

import soundfile as sf

from hifigan.evaluation import GROUND_TRUTH, METRICS
from hifigan.evaluation.stats import mean_ci95, summarize
from hifigan.pretrained import MODELS, installed_weights, is_installed
from hifigan.train import read_metrics
from hifigan.train.adapt import device_type

AUDIO = (".wav", ".flac", ".ogg", ".mp3")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, required=True, help="wall-clock training budget")
    p.add_argument("--data", type=Path, required=True, help="train list, or a folder with one")
    p.add_argument("--eval-list", type=Path, required=True, help="held-out id|text list")
    p.add_argument("--model", default="universal-v1", help="starting model (or auto)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--subset-minutes", type=float, default=None, help="random M minutes only")
    p.add_argument(
        "--disc-warmup", type=int, default=None, metavar="N", help="discriminator warm-up steps"
    )
    p.add_argument("--no-warmup", action="store_true", help="no discriminator warm-up (0)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    p.add_argument("--val-clips", type=int, default=10, help="training clips held out")
    p.add_argument("--max-steps", type=int, default=None, help="cap the steps (smoke runs)")
    p.add_argument("--eval-limit", type=int, default=None, help="first N evaluation clips")
    p.add_argument("--quick", action="store_true", help="quick metrics only (no ViSQOL/CREPE)")
    p.add_argument("--crepe", choices=("full", "tiny"), default="tiny", help="CREPE size")
    p.add_argument(
        "--baseline-csv",
        type=Path,
        default=None,
        help="metrics.csv of an earlier run's evaluation of the same clips: take the zero-shot "
        "models' rows from it instead of evaluating them again",
    )
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--seed", type=int, default=0, help="draws the held-out and subset clips")
    p.add_argument(
        "--report-only",
        action="store_true",
        help="rewrite OUT/report.md from a finished run (OUT/info.json) without running anything",
    )
    p.add_argument(
        "--train-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="one more argument for hifigan train (repeatable: --train-arg=--precision ...)",
    )
    return p.parse_args(argv)


# ---------------------------------------------------------------------- data
def training_list(data: Path) -> Path:
    """The training list: ``data`` itself, or the list file in the folder ``data``."""
    if data.is_file():
        return data
    for name in ("train.txt", "training.txt"):
        if (data / name).is_file():
            return data / name
    sys.exit(f"{data}: expected an id|text list, or a folder holding train.txt / training.txt")


def clip_seconds(wavs: Path, clip_id: str) -> float:
    """The duration of ``wavs/<id>.*``."""
    for path in sorted(wavs.glob(f"{clip_id}.*")):
        if path.suffix.lower() in AUDIO:
            info = sf.info(str(path))
            return info.frames / info.samplerate
    sys.exit(f"{wavs}: no audio file for clip {clip_id}")


def write_lists(args: argparse.Namespace) -> dict:
    """``OUT/lists/train.txt`` and ``val.txt``; returns what they hold."""
    source = training_list(args.data)
    wavs = source.parent / "wavs"
    lines = [x for x in source.read_text().splitlines() if x.split("|")[0].strip()]
    rng = random.Random(args.seed)
    rng.shuffle(lines)
    val, train = lines[: args.val_clips], lines[args.val_clips :]
    seconds = {x: clip_seconds(wavs, x.split("|")[0].strip()) for x in train}
    if args.subset_minutes is not None:
        kept, total = [], 0.0
        for x in train:  # already shuffled: a random subset of about M minutes
            if total >= 60 * args.subset_minutes:
                break
            kept.append(x)
            total += seconds[x]
        train = kept
    folder = args.out / "lists"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train.txt").write_text("\n".join(train) + "\n")
    (folder / "val.txt").write_text("\n".join(val) + "\n")
    return {
        "source": source,
        "wavs": wavs,
        "train": folder / "train.txt",
        "val": folder / "val.txt",
        "train_clips": len(train),
        "train_minutes": sum(seconds[x] for x in train) / 60,
        "val_clips": len(val),
    }


# ---------------------------------------------------------------------- commands
def run_logged(command: list[str], log: Path) -> float:
    """Run ``command`` (its output to the terminal and ``log``); exit if it fails. Returns
    its wall-clock seconds."""
    print("$ " + shlex.join(command), flush=True)
    t0 = time.monotonic()
    with open(log, "w") as f:
        proc = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            sys.stdout.write(line)
            f.write(line)
        code = proc.wait()
    if code != 0:
        sys.exit(f"the command failed with status {code} (log: {log})")
    return time.monotonic() - t0


def train_command(args: argparse.Namespace, lists: dict) -> list[str]:
    command = [sys.executable, "-m", "hifigan", "train", "--model", args.model]
    command += ["--data", str(lists["source"].parent), "--wavs", str(lists["wavs"])]
    command += ["--train-list", str(lists["train"]), "--val-list", str(lists["val"])]
    command += ["--out", str(args.out / "run"), "--max-minutes", f"{args.minutes:g}"]
    command += ["--device", args.device, "--no-progress"]
    if args.no_warmup or args.disc_warmup is not None:
        command += ["--disc-warmup", "0" if args.no_warmup else str(args.disc_warmup)]
    if args.max_steps is not None:
        command += ["--max-steps", str(args.max_steps)]
    if args.threads is not None:
        command += ["--threads", str(args.threads)]
    return command + args.train_arg


def metric_names(quick: bool) -> list[str]:
    """The quick metrics, and ViSQOL and the CREPE pitch metrics where installed."""
    names = ["pesq", "estoi", "stft", "mel_l1", "lsd", "mcd"]
    if not quick and importlib.util.find_spec("visqol") is not None:
        names.append("visqol")
    if not quick and importlib.util.find_spec("torchcrepe") is not None:
        names += ["periodicity", "vuv_f1"]
    return names


def evaluate_command(args: argparse.Namespace, metrics: list[str]) -> list[str]:
    """Copy synthesis of the evaluation clips by the adapted model and the built-in ones."""
    best = args.out / "run" / "checkpoints" / "best.pt"
    command = [sys.executable, "-m", "hifigan", "evaluate", "--data", str(args.eval_list)]
    command += ["--checkpoint", str(best), "--name", "adapted"]
    for model in MODELS if args.baseline_csv is None else ():
        if is_installed(model):
            command += ["--compare", f"{model.name}={installed_weights(model)}"]
    # the models hear peak-normalised audio in training, so the evaluation mels are made so too
    command += ["--normalize", "--no-griffin-lim", "--metrics", ",".join(metrics)]
    command += ["--crepe", args.crepe, "--device", device_type(args.device)]
    command += ["-o", str(args.out / "eval")]
    if args.eval_limit is not None:
        command += ["--limit", str(args.eval_limit)]
    if args.threads is not None:
        command += ["--threads", str(args.threads)]
    return command


# ---------------------------------------------------------------------- report
def read_scores(csv_path: Path, metrics: list[str]) -> list[dict]:
    """The rows of an evaluation's ``metrics.csv``, scores as floats (None where empty)."""
    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        for m in metrics:
            r[m] = float(r[m]) if r.get(m) else None
    return rows


def with_baseline(rows: list[dict], baseline: Path, metrics: list[str]) -> list[dict]:
    """``rows`` plus the rows of other systems from the ``baseline`` CSV, on the same clips.

    The zero-shot models are deterministic, so their scores from an earlier evaluation of the
    same clips with the same metrics are the scores they would get again."""
    clips = {(r["dataset"], r["file"]) for r in rows}
    mine = {r["system"] for r in rows}
    extra = [
        r
        for r in read_scores(baseline, metrics)
        if r["system"] not in mine and (r["dataset"], r["file"]) in clips
    ]
    found = {(r["dataset"], r["file"]) for r in extra}
    if found != clips:
        sys.exit(f"{baseline}: does not score the zero-shot models on every evaluated clip")
    missing = [m for m in metrics if all(r[m] is None for r in extra)]
    if missing:
        sys.exit(f"{baseline}: has no {', '.join(missing)} scores")
    return rows + extra


def plot_curve(records: list[dict], path: Path) -> None:
    """Val mel L1 against steps and against minutes of training (warm-up included)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [r["step"] for r in records]
    minutes = [r["train_seconds"] / 60 for r in records]
    values = [r["val_mel_l1"] for r in records]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
    for ax, x, label in ((axes[0], steps, "step"), (axes[1], minutes, "minutes of training")):
        ax.plot(x, values, marker="o", markersize=3)
        ax.axhline(values[0], color="grey", linestyle="--", linewidth=1, label="step 0 (start)")
        ax.set_xlabel(label)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("val mel L1 (held-out clips)")
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def results_table(results: dict, metrics: list[str]) -> list[str]:
    """Markdown rows: one per system, mean ± 95% half-width per metric."""
    lines = []
    for dataset, systems in results.items():
        systems = {k: v for k, v in systems.items() if k != GROUND_TRUTH}  # perfect scores
        shown = [m for m in metrics if any(m in s for s in systems.values())]
        arrows = {m: "↑" if METRICS[m].higher_is_better else "↓" for m in shown}
        n = max(s["n"] for scores in systems.values() for s in scores.values())
        lines += [f"### {dataset} ({n} clips)", ""]
        lines.append("| system | " + " | ".join(f"{METRICS[m].label} {arrows[m]}" for m in shown))
        lines[-1] += " |"
        lines.append("|---|" + "---|" * len(shown))
        for system, scores in systems.items():
            cells = []
            for m in shown:
                s = scores.get(m)
                half = "" if s is None or s["ci95"] is None else f" ± {s['ci95']:.3g}"
                cells.append("–" if s is None else f"{s['mean']:.4g}{half}")
            lines.append(f"| {system} | " + " | ".join(cells) + " |")
        lines.append("")
    return lines


def paired_differences(rows: list[dict], metrics: list[str], system: str = "adapted") -> list[str]:
    """Markdown rows: ``system`` minus each other system, clip by clip (the same clips), mean
    ± 95% half-width per metric; an interval that excludes 0 is a measured difference."""
    scores: dict[tuple[str, str], dict[str, float]] = {}
    for r in rows:
        key = (r["dataset"], r["file"])
        for m in metrics:
            if r[m] is not None:
                scores.setdefault((r["system"], m), {})[str(key)] = r[m]
    others = [
        s for s in dict.fromkeys(r["system"] for r in rows) if s not in (system, GROUND_TRUTH)
    ]
    lines = ["| difference | " + " | ".join(METRICS[m].label for m in metrics) + " |"]
    lines.append("|---|" + "---|" * len(metrics))
    for other in others:
        cells = []
        for m in metrics:
            mine, theirs = scores.get((system, m), {}), scores.get((other, m), {})
            common = sorted(set(mine) & set(theirs))
            if not common:
                cells.append("–")
                continue
            mean, half = mean_ci95([mine[k] - theirs[k] for k in common])
            cells.append(f"{mean:+.4g}" + ("" if half is None else f" ± {half:.3g}"))
        lines.append(f"| {system} − {other} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def warmup_seconds(log: Path) -> tuple[int, float]:
    """The warm-up's steps and seconds, from the training log (0, 0.0 without one)."""
    for line in log.read_text().splitlines():
        if line.startswith("discriminator warm-up done: "):
            words = line.split()
            return int(words[3]), float(words[6])
    return 0, 0.0


def write_report(args: argparse.Namespace, info: dict) -> Path:
    """``OUT/report.md`` from the run folder, the evaluation summary and ``info``."""
    records = read_metrics(args.out / "run" / "metrics.jsonl")
    plot_curve(records, args.out / "curve.png")
    rows = read_scores(args.out / "eval" / "metrics.csv", info["metrics"])
    if args.baseline_csv is not None:
        rows = with_baseline(rows, args.baseline_csv, info["metrics"])
    results = summarize(rows, info["metrics"])
    warm_steps, warm_s = warmup_seconds(args.out / "train.log")
    last = records[-1]
    step_seconds = max(last["train_seconds"] - warm_s, 1e-9)
    best = min(records, key=lambda r: r["val_mel_l1"])
    recipe = json.loads((args.out / "run" / "recipe.json").read_text())
    scored = recipe.get("start_scores") or {}
    scores = "".join(f"; {k} mel L1 {v:.4f}" for k, v in scored.items())
    lines = [
        f"# Adapting {args.model} in {args.minutes:g} minutes",
        "",
        f"* data: {info['train_clips']} training clips ({info['train_minutes']:.1f} min) from "
        f"`{info['source']}`; {info['val_clips']} more held out for validation; evaluation on "
        f"`{args.eval_list}`" + (f" (first {args.eval_limit})" if args.eval_limit else ""),
        f"* machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"device {args.device}, torch {info['torch']}",
        f"* start: {args.model} (`{Path(recipe.get('start') or '').name}`{scores}); "
        f"precision {recipe.get('precision')}, "
        f"{recipe.get('disc_pass')} discriminator pass; discriminator warm-up {warm_steps} "
        f"steps ({warm_s:.0f} s)",
        f"* training: {last['step']} steps in {last['train_seconds'] / 60:.1f} min of training "
        f"({last['step'] / step_seconds:.3f} steps/s without the warm-up), "
        f"{info['train_wall'] / 60:.1f} min wall clock with data preparation and validations",
        f"* val mel L1: {records[0]['val_mel_l1']:.4f} at step 0 → {last['val_mel_l1']:.4f} "
        f"at step {last['step']}; best {best['val_mel_l1']:.4f} at step {best['step']} "
        "(`best.pt`, the adapted system below)",
        f"* evaluation: {info['eval_wall'] / 60:.1f} min"
        + (
            ""
            if args.baseline_csv is None
            else f"; the zero-shot rows come from `{args.baseline_csv}` (the same clips)"
        ),
        "",
        "## Results on the evaluation clips",
        "",
        "Mean ± half-width of the 95% confidence interval (Student's t) over clips; copy "
        "synthesis of peak-normalised clips. ↑ higher is better, ↓ lower is better.",
        "",
        *results_table(results, info["metrics"]),
        "Paired differences (the same clips; ↑ metrics: positive is better for the adapted "
        "model, ↓ metrics: negative is better):",
        "",
        *paired_differences(rows, info["metrics"]),
        "## Learning curve",
        "",
        "![val mel L1 against steps and minutes](curve.png)",
        "",
        "| step | minutes | val mel L1 |",
        "|---|---|---|",
        *(
            f"| {r['step']} | {r['train_seconds'] / 60:.1f} | {r['val_mel_l1']:.4f} |"
            for r in records
        ),
        "",
        "## Commands",
        "",
        "```bash",
        "python " + shlex.join(["scripts/adapt_report.py", *info["argv"]]),
        *(shlex.join(["hifigan", *c[3:]]) for c in info["commands"]),
        "```",
        "",
    ]
    path = args.out / "report.md"
    path.write_text("\n".join(lines))
    return path


def main(argv: list[str] | None = None) -> None:
    import torch

    args = parse_args(argv)
    state = args.out / "info.json"  # what a later --report-only needs
    if args.report_only:
        info = json.loads(state.read_text())
        print(f"wrote {write_report(args, info)}")
        return
    if (args.out / "run").exists():
        sys.exit(f"{args.out / 'run'} exists: choose another --out")
    args.out.mkdir(parents=True, exist_ok=True)
    info = write_lists(args)
    commands = [train_command(args, info)]
    info["train_wall"] = run_logged(commands[0], args.out / "train.log")
    info["metrics"] = metric_names(args.quick)
    commands.append(evaluate_command(args, info["metrics"]))
    info["eval_wall"] = run_logged(commands[1], args.out / "evaluate.log")
    info.update(commands=commands, argv=sys.argv[1:] if argv is None else argv)
    info["torch"] = torch.__version__
    state.write_text(json.dumps(info, indent=1, default=str))
    print(f"wrote {write_report(args, info)}")


if __name__ == "__main__":
    main()
