"""Running an evaluation and writing its report.

Two ways in: :func:`evaluate_folders` pairs existing reference and generated files by stem;
:func:`evaluate_copy_synthesis` re-synthesizes reference clips with each system (trained
vocoders, Griffin-Lim) first. Both return a :class:`Report`, which writes

* ``metrics.csv``: one row per (dataset, system, file) with every metric;
* ``summary.json``: per dataset, system and metric the clip count, mean and 95% confidence
  interval half-width (Student's t over clips);
* ``report.md``: the systems side by side per dataset, with the metrics that fail to rank
  Griffin-Lim below a trained model named;
* ``summary.png`` and ``mels/*.png`` (with matplotlib).
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from ..errors import HiFiGANError, InputError
from ..io import AUDIO_SUFFIXES, atomic_write_text, load_audio, save_wav, to_int16, warn
from .metrics import METRICS, SAMPLE_RATE, MetricSuite

GROUND_TRUTH = "ground truth"
GRIFFIN_LIM = "griffin-lim"

Progress = Callable[[list, str], Iterable]


def _no_progress(items: list, desc: str) -> Iterable:
    return items


class Synthesizer(Protocol):
    """What copy synthesis needs: :class:`hifigan.Vocoder` and :class:`GriffinLim` both fit."""

    sample_rate: int

    def copy_synthesis(self, audio: np.ndarray) -> torch.Tensor: ...


# ---------------------------------------------------------------------- inputs
def dataset_files(spec: str | Path) -> tuple[str, list[Path]]:
    """A dataset's name and audio files from a folder (all audio files in it, recursively) or a
    list file in LJSpeech/Kathleen layout (``id|text`` lines; audio in ``wavs/<id>.*`` beside it).
    """
    path = Path(spec)
    if path.is_dir():
        files = sorted(
            f for f in path.rglob("*") if f.is_file() and f.suffix.lower() in AUDIO_SUFFIXES
        )
        if not files:
            raise InputError(f"folder holds no audio files ({', '.join(AUDIO_SUFFIXES)})", path)
        name = path.resolve().parent.name if path.resolve().name == "wavs" else path.resolve().name
        return name, files
    if not path.is_file():
        raise InputError("not found (expected a folder of audio files or an id|text list)", path)
    files = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        clip_id = line.split("|")[0].strip()
        if not clip_id:
            continue
        matches = sorted((path.parent / "wavs").glob(f"{clip_id}.*"))
        audio = [m for m in matches if m.suffix.lower() in AUDIO_SUFFIXES]
        if not audio:
            raise InputError(f"line {number}: no audio file wavs/{clip_id}.* beside the list", path)
        files.append(audio[0])
    if not files:
        raise InputError("list names no clips", path)
    return f"{path.parent.name}-{path.stem}", files


def pair_by_stem(reference_dir: Path, generated_dir: Path) -> list[tuple[str, Path, Path]]:
    """``(stem, reference, generated)`` for every stem present in both folders (sorted).

    Stems present in only one folder are reported with a warning; no common stem is an error.
    """

    def by_stem(folder: Path) -> dict[str, Path]:
        if not folder.is_dir():
            raise InputError("not a folder", folder)
        found: dict[str, Path] = {}
        for f in sorted(folder.iterdir()):
            if f.is_file() and f.suffix.lower() in AUDIO_SUFFIXES:
                if f.stem in found:
                    raise InputError(f"two audio files with stem {f.stem!r}", folder)
                found[f.stem] = f
        return found

    refs, gens = by_stem(reference_dir), by_stem(generated_dir)
    common = sorted(set(refs) & set(gens))
    if not common:
        raise InputError(f"no file stem in common with {reference_dir}", generated_dir)
    missing = sorted(set(refs) - set(gens))
    if missing:
        warn(
            f"{generated_dir}: {len(missing)} reference files have no generated file ({missing[0]}, ...)"
        )
    extra = sorted(set(gens) - set(refs))
    if extra:
        warn(f"{generated_dir}: {len(extra)} files have no reference ({extra[0]}, ...); skipped")
    return [(stem, refs[stem], gens[stem]) for stem in common]


def load_pair(
    reference: Path, generated: Path, *, max_mismatch: int = 256
) -> tuple[np.ndarray, np.ndarray]:
    """Both files as 22.05 kHz float32, trimmed to the shorter.

    Other rates are resampled and a rate mismatch between the two files is warned about; a
    length difference over ``max_mismatch`` samples (one mel hop; copy synthesis always
    differs by less) is warned about before trimming.
    """
    import soundfile as sf

    rates = []
    for path in (reference, generated):
        try:
            rates.append(sf.info(str(path)).samplerate)
        except Exception:
            rates.append(None)  # load_audio reports the problem
    ref, _ = load_audio(reference, SAMPLE_RATE)
    gen, _ = load_audio(generated, SAMPLE_RATE)
    if None not in rates and rates[0] != rates[1]:
        warn(f"{generated}: sample rate {rates[1]} Hz differs from the reference's {rates[0]} Hz")
    if abs(ref.shape[0] - gen.shape[0]) > max_mismatch:
        warn(
            f"{generated}: {gen.shape[0]} samples vs {ref.shape[0]} in the reference; "
            "trimmed to the shorter"
        )
    n = min(ref.shape[0], gen.shape[0])
    return ref[:n], gen[:n]


# ---------------------------------------------------------------------- statistics
def t_quantile_975(dof: int) -> float:
    """The 97.5% quantile of Student's t with ``dof`` degrees of freedom."""
    try:
        from scipy.stats import t

        return float(t.ppf(0.975, dof))
    except ImportError:  # Cornish-Fisher expansion, within 0.2% for dof >= 3
        z = 1.959963984540054
        g1 = (z**3 + z) / 4
        g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
        return z + g1 / dof + g2 / dof**2


def mean_ci95(values: Sequence[float]) -> tuple[float, float | None]:
    """Mean and 95% confidence-interval half-width (None for fewer than two values)."""
    x = np.asarray(values, dtype=np.float64)
    mean = float(x.mean())
    if x.shape[0] < 2:
        return mean, None
    half = t_quantile_975(x.shape[0] - 1) * float(x.std(ddof=1)) / math.sqrt(x.shape[0])
    return mean, half


# ---------------------------------------------------------------------- report
@dataclass
class Report:
    """Per-file scores of one evaluation, and the writers of its outputs.

    ``rows`` hold ``dataset``, ``system``, ``file`` and one float per metric in ``metrics``;
    ``mels`` holds ``(dataset, file, system) -> (reference audio, generated audio)`` for the
    clips to plot.
    """

    metrics: tuple[str, ...]
    rows: list[dict] = field(default_factory=list)
    plot_audio: dict[tuple[str, str, str], tuple[np.ndarray, np.ndarray]] = field(
        default_factory=dict
    )
    command: str = ""
    failures: list[str] = field(default_factory=list)

    def datasets(self) -> list[str]:
        return list(dict.fromkeys(r["dataset"] for r in self.rows))

    def systems(self, dataset: str) -> list[str]:
        return list(dict.fromkeys(r["system"] for r in self.rows if r["dataset"] == dataset))

    def summary(self) -> dict:
        """``{dataset: {system: {metric: {"n", "mean", "ci95"}}}}``."""
        out: dict = {}
        for dataset in self.datasets():
            out[dataset] = {}
            for system in self.systems(dataset):
                rows = [r for r in self.rows if r["dataset"] == dataset and r["system"] == system]
                out[dataset][system] = {}
                for metric in self.metrics:
                    values = [r[metric] for r in rows if r.get(metric) is not None]
                    if not values:
                        continue
                    mean, half = mean_ci95(values)
                    out[dataset][system][metric] = {"n": len(values), "mean": mean, "ci95": half}
        return out

    def blind_metrics(self, summary: dict, dataset: str) -> dict[str, list[str]]:
        """For each trained system, the metrics on which Griffin-Lim scores as well or better."""
        systems = summary[dataset]
        if GRIFFIN_LIM not in systems:
            return {}
        blind: dict[str, list[str]] = {}
        for system, scores in systems.items():
            if system in (GRIFFIN_LIM, GROUND_TRUTH):
                continue
            for metric, stats in scores.items():
                gl = systems[GRIFFIN_LIM].get(metric)
                if gl is not None and not METRICS[metric].better(stats["mean"], gl["mean"]):
                    blind.setdefault(system, []).append(metric)
        return blind

    # -------------------------------------------------------------- writers
    def write(self, out_dir: Path, *, plots: bool = True, dpi: int = 100) -> list[Path]:
        """Write the CSV, JSON, Markdown and (if ``plots``) PNG outputs; returns their paths."""
        out_dir = Path(out_dir)
        summary = self.summary()
        written = [out_dir / "metrics.csv", out_dir / "summary.json", out_dir / "report.md"]
        atomic_write_text(written[0], self.csv_text())
        atomic_write_text(
            written[1],
            json.dumps({"metrics": list(self.metrics), "results": summary}, indent=2) + "\n",
        )
        figures: list[Path] = []
        if plots:
            from .plots import save_mel_figures, save_summary_chart

            figures.append(
                save_summary_chart(summary, self.metrics, out_dir / "summary.png", dpi=dpi)
            )
            figures.extend(save_mel_figures(self.plot_audio, out_dir / "mels", dpi=dpi))
        atomic_write_text(
            written[2], self.markdown(summary, [f.relative_to(out_dir) for f in figures])
        )
        return written + figures

    def csv_text(self) -> str:
        buffer = io.StringIO()
        writer = csv.DictWriter(
            buffer, fieldnames=["dataset", "system", "file", *self.metrics], lineterminator="\n"
        )
        writer.writeheader()
        for row in self.rows:
            writer.writerow(
                {k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()}
            )
        return buffer.getvalue()

    def markdown(self, summary: dict, figures: Sequence[Path] = ()) -> str:
        lines = ["# Objective evaluation", ""]
        if self.command:
            lines += ["```bash", self.command, "```", ""]
        lines += [
            "Mean over clips ± half-width of the 95% confidence interval (Student's t). "
            "↑ higher is better, ↓ lower is better; **bold** is the best system other than the "
            "ground truth (the reference scored against itself).",
            "",
        ]
        for dataset in summary:
            systems = summary[dataset]
            n = max((s["n"] for scores in systems.values() for s in scores.values()), default=0)
            lines += [f"## {dataset} ({n} clips)", ""]
            metrics = [m for m in self.metrics if any(m in s for s in systems.values())]
            header = "| system | " + " | ".join(
                f"{METRICS[m].label} {'↑' if METRICS[m].higher_is_better else '↓'}" for m in metrics
            )
            lines += [header + " |", "|---|" + "---|" * len(metrics)]
            best = {}
            for m in metrics:
                candidates = [
                    (s, v[m]["mean"]) for s, v in systems.items() if s != GROUND_TRUTH and m in v
                ]
                if candidates:
                    pick = max if METRICS[m].higher_is_better else min
                    best[m] = pick(candidates, key=lambda item: item[1])[0]
            for system, scores in systems.items():
                cells = []
                for m in metrics:
                    if m not in scores:
                        cells.append("–")
                        continue
                    text = _format(scores[m]["mean"], scores[m]["ci95"])
                    cells.append(f"**{text}**" if best.get(m) == system else text)
                lines.append(f"| {system} | " + " | ".join(cells) + " |")
            lines.append("")
            for system, names in self.blind_metrics(summary, dataset).items():
                labels = ", ".join(METRICS[m].label for m in names)
                lines.append(
                    f"Griffin-Lim scores as well as or better than **{system}** on: {labels}."
                )
            lines.append("")
        if self.failures:
            lines += [f"{len(self.failures)} file(s) could not be scored and are left out:", ""]
            lines += [f"* {line}" for line in self.failures] + [""]
        if figures:
            lines += ["## Figures", ""]
            for fig in figures:
                lines += [f"![{fig.stem}]({fig.as_posix()})", ""]
        lines += ["## Metrics", "", "| metric | rate | what |", "|---|---|---|"]
        for m in self.metrics:
            lines.append(f"| {METRICS[m].label} | {METRICS[m].rate} | {METRIC_DESCRIPTIONS[m]} |")
        lines += ["", "Definitions, licences and model sources: docs/evaluation.md.", ""]
        return "\n".join(lines)


METRIC_DESCRIPTIONS = {
    "pesq": "wide-band PESQ (P.862.2), sinc-resampled, int16",
    "estoi": "extended STOI (pystoi)",
    "stft": "multi-resolution STFT distance, auraloss' default resolutions",
    "mel_l1": "L1 of the authors' loss log-mel (80 bands to Nyquist)",
    "lsd": "log-spectral distance (log10 power, 2048/512)",
    "mcd": "mel-cepstral distortion, c1-c24, alpha 0.455, no DTW",
    "periodicity": "RMSE of CREPE periodicity (CARGAN)",
    "vuv_f1": "F1 of CREPE voiced/unvoiced decisions (CARGAN)",
    "pitch_cents": "RMSE of CREPE pitch over frames voiced in both, cents",
    "visqol": "ViSQOL v3 audio mode (visqol-python)",
    "dnsmos": "DNSMOS P.835 overall, generated audio alone",
}


def _format(mean: float, half: float | None) -> str:
    digits = 3 if abs(mean) < 100 else 1
    if half is None:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {half:.{digits}f}"


# ---------------------------------------------------------------------- drivers
def _score_into(
    report: Report,
    suite: MetricSuite,
    *,
    dataset: str,
    system: str,
    name: str,
    reference: np.ndarray,
    generated: np.ndarray,
    key: str,
    source: Path,
) -> None:
    """Score one pair into ``report.rows``; a failure is recorded in ``report.failures``."""
    try:
        scores = suite.score(reference, generated, reference_key=key)
    except HiFiGANError as e:
        message = str(e) if e.path else f"{source}: {e}"
        report.failures.append(f"{system}: {message}")
        warn(f"{system}: {message}")
        return
    report.rows.append({"dataset": dataset, "system": system, "file": name, **scores})


def evaluate_folders(
    reference_dir: Path,
    generated_dirs: Sequence[Path],
    suite: MetricSuite,
    *,
    names: Sequence[str] | None = None,
    plot_files: int = 3,
    ground_truth: bool = True,
    progress: Progress = _no_progress,
) -> Report:
    """Score each folder of generated files against the reference folder (pairs by stem)."""
    reference_dir = Path(reference_dir)
    names = list(names) if names else [Path(d).name for d in generated_dirs]
    if len(set(names)) != len(names):
        raise HiFiGANError(f"system names must differ, got {', '.join(names)} (use --name)")
    report = Report(metrics=suite.metrics)
    dataset = reference_dir.name
    jobs = []
    for gen_dir, system in zip(generated_dirs, names):
        for index, (stem, ref_path, gen_path) in enumerate(
            pair_by_stem(reference_dir, Path(gen_dir))
        ):
            jobs.append((system, index, stem, ref_path, gen_path))
    if ground_truth:
        seen = dict.fromkeys((stem, ref) for _, _, stem, ref, _ in jobs)
        jobs = [(GROUND_TRUTH, i, stem, ref, ref) for i, (stem, ref) in enumerate(seen)] + jobs
    for system, index, stem, ref_path, gen_path in progress(jobs, "evaluate"):
        try:
            ref, gen = load_pair(ref_path, gen_path)
        except HiFiGANError as e:
            report.failures.append(f"{system}: {e}")
            warn(f"{system}: {e}")
            continue
        _score_into(
            report,
            suite,
            dataset=dataset,
            system=system,
            name=stem,
            reference=ref,
            generated=gen,
            key=str(ref_path),
            source=gen_path,
        )
        if index < plot_files and system != GROUND_TRUTH:
            report.plot_audio[(dataset, stem, system)] = (ref, gen)
    return report


def evaluate_copy_synthesis(
    datasets: dict[str, list[Path]],
    systems: dict[str, Synthesizer],
    suite: MetricSuite,
    *,
    audio_dir: Path | None = None,
    normalize: bool = False,
    plot_files: int = 3,
    ground_truth: bool = True,
    progress: Progress = _no_progress,
) -> Report:
    """Copy synthesis of every clip by every system, then the metrics.

    Args:
        datasets: name -> reference audio files (any rate; loaded at 22.05 kHz).
        systems: name -> synthesizer at 22.05 kHz.
        audio_dir: where to write the generated clips (``<dataset>/<system>/<stem>.wav``).
        normalize: peak-normalise each reference to 0.95 first (the authors' training input).
    """
    for name, synth in systems.items():
        if synth.sample_rate != SAMPLE_RATE:
            raise HiFiGANError(
                f"system {name!r} runs at {synth.sample_rate} Hz; the metrics need {SAMPLE_RATE} Hz"
            )
    report = Report(metrics=suite.metrics)
    jobs = [(d, i, f) for d, files in datasets.items() for i, f in enumerate(files)]
    for dataset, index, path in progress(jobs, "copy synthesis + metrics"):
        try:
            ref, _ = load_audio(path, SAMPLE_RATE)
        except HiFiGANError as e:
            report.failures.append(str(e))
            warn(str(e))
            continue
        if normalize:
            ref = (ref / max(float(np.abs(ref).max()), 1e-8) * 0.95).astype(np.float32)
        key = f"{dataset}/{path}"
        if ground_truth:
            _score_into(
                report,
                suite,
                dataset=dataset,
                system=GROUND_TRUTH,
                name=path.stem,
                reference=ref,
                generated=ref,
                key=key,
                source=path,
            )
        for system, synth in systems.items():
            try:
                generated = synth.copy_synthesis(ref).detach().cpu().numpy()
            except HiFiGANError as e:
                report.failures.append(f"{system}: {path}: {e}")
                warn(f"{system}: {path}: {e}")
                continue
            if audio_dir is not None:
                save_wav(
                    Path(audio_dir) / dataset / system / f"{path.stem}.wav", generated, SAMPLE_RATE
                )
            # score what was written: 16-bit samples
            generated = (to_int16(generated) / 32768.0).astype(np.float32)
            n = min(ref.shape[0], generated.shape[0])
            _score_into(
                report,
                suite,
                dataset=dataset,
                system=system,
                name=path.stem,
                reference=ref[:n],
                generated=generated[:n],
                key=key,
                source=path,
            )
            if index < plot_files:
                report.plot_audio[(dataset, path.stem, system)] = (ref[:n], generated[:n])
    return report
