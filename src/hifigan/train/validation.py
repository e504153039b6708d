"""Validation during training: the mel L1 of whole utterances, ``best.pt``, the records of
``metrics.jsonl`` (main process only)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from ..generator import Generator
from ..mel import MelSpectrogram
from .dataset import Utterance, load_validation
from .monitor import Monitor
from .run_folder import Checkpointer
from .setup import Run, TrainState, say
from .step import Networks


@torch.no_grad()
def validate(
    generator: Generator,
    utterances: list[Utterance],
    mel_loss: MelSpectrogram,
    device: torch.device,
    n_samples: int,
) -> tuple[float, list[tuple[str, Any, Any, Any, Any]]]:
    """Mean L1 distance between the loss-mels of real and generated whole utterances (fp32),
    and ``(id, real, generated, real mel, generated mel)`` for the first ``n_samples``."""
    generator.eval()
    total, samples = 0.0, []
    for i, u in enumerate(utterances):
        fake = generator(u.mel.unsqueeze(0).to(device)).reshape(-1)  # (frames * hop_length,)
        fake_mel = mel_loss(fake)
        real_mel = u.real_mel.to(device)
        n = min(real_mel.shape[1], fake_mel.shape[1])
        total += F.l1_loss(fake_mel[:, :n], real_mel[:, :n]).item()
        if i < n_samples:
            samples.append(
                (
                    u.id,
                    u.audio.numpy(),
                    fake.cpu().numpy(),
                    real_mel.cpu().numpy(),
                    fake_mel.cpu().numpy(),
                )
            )
    generator.train()
    return total / len(utterances), samples


class Validator:
    """Validates the generator on the run's validation clips (loaded once, by the main process
    only; elsewhere it does nothing), keeps ``best.pt`` and the records of this invocation."""

    def __init__(
        self,
        run: Run,
        nets: Networks,
        checkpointer: Checkpointer,
        device: torch.device,
        *,
        active: bool,
        audio_samples: int,
    ) -> None:
        self.nets = nets
        self.checkpointer = checkpointer
        self.device = device
        self.audio_samples = audio_samples
        self.mel = run.config.mel
        self.fresh_run = run.resumed is None
        self.history: list[dict[str, Any]] = []
        self.utterances = load_validation(run.val_clips, self.mel, run.fine_tune) if active else []
        if active and not self.utterances:
            say("warning: no validation clips: no validation, no best.pt")

    def __call__(self, state: TrainState, train_means: dict[str, float], monitor: Monitor) -> None:
        """Validate at ``state`` (updating its best score); ``train_means`` are the training
        values averaged since the last log, recorded with the validation."""
        if not self.utterances:
            return
        val, samples = validate(
            self.nets.generator,
            self.utterances,
            self.nets.mel_loss,
            self.device,
            self.audio_samples,
        )
        improved = val < state.best_val_mel_l1
        if improved:
            state.best_val_mel_l1, state.best_step = val, state.step
            self.checkpointer.save_best(state.step, val)
        record = {
            "epoch": state.epoch,
            "val_mel_l1": val,
            "best_val_mel_l1": state.best_val_mel_l1,
            "val_clips": len(self.utterances),
            "train_seconds": round(state.train_seconds, 3),
            **{f"train_{k}": v for k, v in train_means.items()},
        }
        first = not self.history and self.fresh_run  # log the real audio once per run
        hop_seconds = self.mel.hop_length / self.mel.sample_rate
        monitor.validation(state.step, record, samples, self.mel.sample_rate, hop_seconds, first)
        self.history.append({"step": state.step, **record})
        monitor.print(f"step {state.step}: val_mel_l1 {val:.4f}" + (" (best)" if improved else ""))
