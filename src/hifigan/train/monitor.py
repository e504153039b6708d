"""What a run reports: a progress bar, TensorBoard scalars, audio and mel images, and
``metrics.jsonl`` (one JSON object per validation). Only the main process reports."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from ..extras import unavailable
from ..io import atomic_write_text, warn
from .manifest import shown

METRICS = "metrics.jsonl"


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """The records of a ``metrics.jsonl`` (a partial last line, left by a crash, is ignored)."""
    records = []
    if Path(path).is_file():
        for line in Path(path).read_text().splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return records


class Monitor:
    """Progress bar, TensorBoard writer and metrics file of one run (inactive off rank 0).

    Args:
        out: the run folder.
        active: False on the processes other than rank 0.
        start_step: the step the run starts from; records of later steps are dropped from
            ``metrics.jsonl`` and TensorBoard (they belong to the run that was interrupted).
        resumed: False for a fresh run, which starts a new ``metrics.jsonl``.
        total: the last step, for the progress bar and ETA.
    """

    def __init__(
        self,
        out: Path,
        *,
        active: bool,
        start_step: int,
        resumed: bool,
        total: int,
        progress: bool = True,
        tensorboard: bool = True,
    ) -> None:
        self.active = active
        self.metrics = Path(out) / METRICS
        self.writer = None
        self.bar = None
        self.last_line = 0.0
        if not active:
            return
        old = read_metrics(self.metrics) if resumed else []
        kept = [r for r in old if r.get("step", 0) <= start_step]
        atomic_write_text(self.metrics, "".join(json.dumps(r) + "\n" for r in kept))
        if tensorboard:
            missing = unavailable("train", "tensorboard", purpose="TensorBoard logging")
            if missing is not None:
                warn(f"no TensorBoard logs: {missing}")
            else:
                from torch.utils.tensorboard import SummaryWriter

                logs = Path(out) / "tensorboard"
                if shown(logs) == str(logs):
                    self.writer = SummaryWriter(str(logs), purge_step=start_step)
                else:  # TensorBoard encodes its paths as UTF-8
                    warn(f"{shown(logs)}: the name is not valid UTF-8: no TensorBoard logs")
        if progress:
            from tqdm import tqdm

            self.bar = tqdm(
                total=total,
                initial=start_step,
                unit="step",
                dynamic_ncols=True,
                disable=None,
                file=sys.stderr,
                smoothing=0.1,
            )

    def step(self, postfix: dict[str, float]) -> None:
        """One step done: advance the bar, show the latest losses."""
        if self.bar is not None and not self.bar.disable:
            self.bar.set_postfix({k: f"{v:.3g}" for k, v in postfix.items()}, refresh=False)
            self.bar.update(1)

    def print(self, line: str) -> None:
        """A line of text that does not break the progress bar."""
        if not self.active:
            return
        if self.bar is not None and not self.bar.disable:
            self.bar.write(line, file=sys.stderr)
        else:
            print(line, file=sys.stderr, flush=True)

    @property
    def bar_visible(self) -> bool:
        return self.bar is not None and not self.bar.disable

    def scalars(self, step: int, values: dict[str, float]) -> None:
        if self.writer is not None:
            for key, value in values.items():
                self.writer.add_scalar(key, value, step)

    def validation(
        self,
        step: int,
        record: dict[str, Any],
        samples: list[tuple[str, Any, Any, Any, Any]],
        sample_rate: int,
        hop_seconds: float,
        first: bool,
    ) -> None:
        """Append ``record`` to ``metrics.jsonl``; log it, the audio and the mel images.

        ``samples``: ``(id, real audio, generated audio, real loss-mel, generated loss-mel)``
        (numpy arrays), the real audio logged only at the first validation of the run.
        """
        if not self.active:
            return
        record = {"step": step, **record, "time": round(time.time(), 3)}
        with open(self.metrics, "a") as f:
            f.write(json.dumps(record) + "\n")
            f.flush()
            os.fsync(f.fileno())
        if self.writer is None:
            return
        from ..plots import mel_comparison_figure

        for key, value in record.items():
            if key.startswith("val_") and isinstance(value, (int, float)):
                self.writer.add_scalar(f"val/{key[4:]}", value, step)
        for clip_id, real, fake, real_mel, fake_mel in samples:
            if first:
                self.writer.add_audio(f"audio_real/{clip_id}", real, step, sample_rate)
            self.writer.add_audio(f"audio_generated/{clip_id}", fake, step, sample_rate)
            fig = mel_comparison_figure(
                real_mel, fake_mel, title=f"{clip_id}, step {step}", hop_seconds=hop_seconds
            )
            self.writer.add_figure(f"mel/{clip_id}", fig, step)  # closes the figure
        self.writer.flush()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        if self.writer is not None:
            self.writer.close()
