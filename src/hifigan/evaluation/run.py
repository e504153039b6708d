"""Running an evaluation: :func:`evaluate_folders` scores existing generated files against their
references (paired by stem); :func:`evaluate_copy_synthesis` re-synthesizes reference clips with
each system (trained vocoders, Griffin-Lim) first. Both return a :class:`Report`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from ..errors import HiFiGANError
from ..io import load_audio, peak_normalize, save_wav, to_int16, warn
from .clips import load_pair, pair_by_stem
from .metrics import MetricSuite
from .render import GROUND_TRUTH, Report

#: ``progress(items, description)`` returns an iterable over ``items`` (a progress bar)
Progress = Callable[[list, str], Iterable]


def _no_progress(items: list, desc: str) -> Iterable:
    return items


class CopySynthesizer(Protocol):
    """A system evaluated by copy synthesis: audio -> its mel -> audio, at ``sample_rate``.
    :class:`hifigan.Vocoder` and :class:`~hifigan.evaluation.GriffinLim` both fit."""

    sample_rate: int

    def copy_synthesis(self, audio: np.ndarray) -> torch.Tensor: ...


def _fail(report: Report, line: str) -> None:
    """Record a file that could not be loaded or scored, and warn about it."""
    report.failures.append(line)
    warn(line)


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
        _fail(report, f"{system}: {message}")
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
    """Score each folder of generated files against the reference folder (pairs by stem).

    Args:
        names: the system name of each generated folder (default: the folder names).
        plot_files: mel figures for the first ``plot_files`` pairs of each system.
        ground_truth: also score each reference against itself (system ``"ground truth"``).
    """
    reference_dir = Path(reference_dir)
    names = list(names) if names else [Path(d).name for d in generated_dirs]
    if len(set(names)) != len(names):
        raise HiFiGANError(f"system names must differ, got {', '.join(names)} (use --name)")
    report = Report(metrics=suite.metrics, sample_rate=suite.sample_rate)
    dataset = reference_dir.name
    jobs = []
    for gen_dir, system in zip(generated_dirs, names):
        pairs = pair_by_stem(reference_dir, Path(gen_dir))
        for index, (stem, ref_path, gen_path) in enumerate(pairs):
            jobs.append((system, index, stem, ref_path, gen_path))
    if ground_truth:
        seen = dict.fromkeys((stem, ref) for _, _, stem, ref, _ in jobs)
        jobs = [(GROUND_TRUTH, i, stem, ref, ref) for i, (stem, ref) in enumerate(seen)] + jobs
    for system, index, stem, ref_path, gen_path in progress(jobs, "evaluate"):
        try:
            ref, gen = load_pair(ref_path, gen_path, sample_rate=suite.sample_rate)
        except HiFiGANError as e:
            _fail(report, f"{system}: {e}")
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


def _check_rates(systems: dict[str, CopySynthesizer], rate: int) -> None:
    others = {name: s.sample_rate for name, s in systems.items() if s.sample_rate != rate}
    if others:
        listed = ", ".join(f"{name} {r} Hz" for name, r in others.items())
        raise HiFiGANError(
            f"the systems must run at the scoring rate {rate} Hz ({listed}); evaluate "
            "models of different rates separately"
        )


def _as_written(generated: np.ndarray, wav: Path | None, rate: int) -> np.ndarray:
    """``generated`` as a 16-bit file holds it (written to ``wav`` unless None), as float32."""
    if wav is not None:
        save_wav(wav, generated, rate)
    return (to_int16(generated) / 32768.0).astype(np.float32)


def evaluate_copy_synthesis(
    datasets: dict[str, list[Path]],
    systems: dict[str, CopySynthesizer],
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
        datasets: name -> reference audio files (any rate; loaded at the suite's rate).
        systems: name -> synthesizer at the suite's rate.
        audio_dir: where to write the generated clips (``<dataset>/<system>/<stem>.wav``).
        normalize: peak-normalise each reference to 0.95 first (the authors' training input).
        plot_files: mel figures for the first ``plot_files`` clips of each dataset and system.
        ground_truth: also score each reference against itself (system ``"ground truth"``).
    """
    _check_rates(systems, suite.sample_rate)
    report = Report(metrics=suite.metrics, sample_rate=suite.sample_rate)
    jobs = [(d, i, f) for d, files in datasets.items() for i, f in enumerate(files)]
    for dataset, index, path in progress(jobs, "copy synthesis + metrics"):
        try:
            ref, _ = load_audio(path, suite.sample_rate)
        except HiFiGANError as e:
            _fail(report, str(e))
            continue
        if normalize:
            ref = peak_normalize(ref)
        clip = {"dataset": dataset, "name": path.stem, "key": f"{dataset}/{path}", "source": path}
        if ground_truth:
            _score_into(report, suite, system=GROUND_TRUTH, reference=ref, generated=ref, **clip)
        folder = None if audio_dir is None else Path(audio_dir) / dataset
        for system, synth in systems.items():
            try:
                generated = synth.copy_synthesis(ref).detach().cpu().numpy()
            except HiFiGANError as e:
                _fail(report, f"{system}: {path}: {e}")
                continue
            wav = None if folder is None else folder / system / f"{path.stem}.wav"
            generated = _as_written(generated, wav, suite.sample_rate)
            n = min(ref.shape[0], generated.shape[0])
            _score_into(
                report, suite, system=system, reference=ref[:n], generated=generated[:n], **clip
            )
            if index < plot_files:
                report.plot_audio[(dataset, path.stem, system)] = (ref[:n], generated[:n])
    return report
