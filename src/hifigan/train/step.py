"""One training step: a discriminator update, then a generator update, on one batch.

Per step (paper section 2.4, the authors' ``train.py``):

* ``fake = G(mel)``;
* discriminator update on ``(real, fake.detach())``: ``disc_mpd + disc_msd`` (LSGAN);
* generator update, against the updated discriminators: ``adv_mpd + adv_msd
  + 2 (fm_mpd + fm_msd) + 45 mel`` (weights from :func:`hifigan.losses.loss_weights`), where
  ``mel`` is the L1 distance of the loss-mels (fmax = Nyquist) of real and generated audio.

Three differences from the authors' step change no number (beyond float rounding): in the
generator update the discriminators' parameters do not require gradients (the authors compute
those gradients and throw them away), the real audio goes through the discriminators under
``no_grad`` (only its feature maps are needed), and the weight-normed weights of the
discriminators are computed once per update instead of once per pass
(:func:`torch.nn.utils.parametrize.cached`; the gradients of the real and generated passes are
summed before, not after, the weight-norm backward). With ``disc_pass="joint"`` the
discriminator update runs real and generated audio as one batch: faster, and identical except
that the spectral-norm power iteration of the first MSD sub-discriminator runs once instead of
twice in that update.

AdamW for both networks (the discriminators' parameters in the authors' order, MSD then MPD, so
that their ``do_`` file can be written), with an exponential learning-rate decay per epoch.
Under autocast (bf16, or fp16 with gradient scalers on CUDA) the networks run in low
precision while the STFT/mel (:class:`~hifigan.mel.MelSpectrogram`) and the losses stay fp32.
"""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.nn.utils import parametrize

from ..checkpoint import load_generator_weights
from ..config import HiFiGANConfig
from ..discriminators import MultiPeriodDiscriminator, MultiScaleDiscriminator
from ..errors import ConfigError
from ..generator import Generator
from ..losses import discriminator_loss_terms, generator_loss_terms, loss_weights, weighted_sum
from ..mel import MelSpectrogram
from ..precision import PRECISIONS
from .distributed import Processes
from .run_folder import load_discriminators, load_start_weights

DISC_PASSES = ("separate", "joint")
_OPTIMIZER_STATES = ("optim_g", "optim_d", "scheduler_g", "scheduler_d", "scaler_g", "scaler_d")


@dataclass
class Networks:
    """The networks, their optimizers and schedulers, and the modules a step calls.

    ``generator``, ``mpd`` and ``msd`` are the plain modules (saved in checkpoints). The step
    calls ``g_train``/``mpd_train``/``msd_train`` for the updates (DDP-wrapped under torchrun,
    compiled with ``compile``) and ``mpd_frozen``/``msd_frozen`` in the generator update, where
    the discriminators are constants and need no synchronisation.
    """

    generator: Generator
    mpd: MultiPeriodDiscriminator
    msd: MultiScaleDiscriminator
    optim_g: torch.optim.AdamW
    optim_d: torch.optim.AdamW
    scheduler_g: torch.optim.lr_scheduler.ExponentialLR
    scheduler_d: torch.optim.lr_scheduler.ExponentialLR
    scaler_g: torch.amp.GradScaler
    scaler_d: torch.amp.GradScaler
    mel_loss: MelSpectrogram
    weights: dict[str, float]
    amp_dtype: torch.dtype  # float32: no autocast
    disc_pass: str
    g_train: nn.Module
    mpd_train: nn.Module
    msd_train: nn.Module
    mpd_frozen: nn.Module
    msd_frozen: nn.Module

    def optimizer_states(self) -> dict[str, dict[str, Any]]:
        """The state dicts of optimizers, schedulers and gradient scalers, by checkpoint key."""
        return {key: getattr(self, key).state_dict() for key in _OPTIMIZER_STATES}

    def decay_learning_rate(self) -> None:
        """The per-epoch exponential decay."""
        self.scheduler_g.step()
        self.scheduler_d.step()


def check_step_options(device: torch.device, precision: str, disc_pass: str) -> None:
    """Raise :class:`ConfigError` for an unknown precision or pass, or fp16 off CUDA."""
    if precision not in PRECISIONS:
        raise ConfigError(f"unknown precision {precision!r} (use {', '.join(PRECISIONS)})")
    if precision == "fp16" and device.type != "cuda":
        raise ConfigError("fp16 needs a CUDA device (use bf16 on CPU)")
    if disc_pass not in DISC_PASSES:
        raise ConfigError(f"unknown discriminator pass {disc_pass!r} (use separate or joint)")


def build_networks(
    config: HiFiGANConfig,
    device: torch.device,
    *,
    precision: str = "fp32",
    disc_pass: str = "separate",
    compile: bool = False,
    procs: Processes | None = None,
    start: Path | None = None,
    resume: tuple[dict[str, Any], Path] | None = None,
) -> tuple[Networks, bool]:
    """Build the networks (seeded with the config's seed: every process builds the same),
    initialise them from ``start`` (any checkpoint: weights only) or restore everything from
    a training checkpoint ``resume = (checkpoint, path)``, and wrap them for DDP/compile.

    Returns the networks and whether ``start`` held discriminator weights too.
    """
    check_step_options(device, precision, disc_pass)
    procs = procs or Processes()
    t = config.train
    random.seed(t.seed)
    np.random.seed(t.seed)
    torch.manual_seed(t.seed)
    generator = Generator.from_config(config)
    mpd = MultiPeriodDiscriminator.from_config(config)
    msd = MultiScaleDiscriminator.from_config(config)
    has_d = False
    if resume is not None:
        checkpoint, path = resume
        load_generator_weights(generator, checkpoint["generator"], path)
        load_discriminators(checkpoint, path, mpd, msd)
    elif start is not None:
        has_d = load_start_weights(Path(start), generator, mpd, msd)
    for m in (generator, mpd, msd):
        m.to(device)
    optim_g, optim_d = _optimizers(config, device, generator, [msd, mpd])

    def wrap(m: nn.Module, synchronised: bool) -> nn.Module:
        return _wrap(m, device, procs if synchronised else None, compile)

    nets = Networks(
        generator=generator,
        mpd=mpd,
        msd=msd,
        optim_g=optim_g,
        optim_d=optim_d,
        scheduler_g=torch.optim.lr_scheduler.ExponentialLR(optim_g, gamma=t.lr_decay),
        scheduler_d=torch.optim.lr_scheduler.ExponentialLR(optim_d, gamma=t.lr_decay),
        scaler_g=torch.amp.GradScaler(device.type, enabled=precision == "fp16"),
        scaler_d=torch.amp.GradScaler(device.type, enabled=precision == "fp16"),
        mel_loss=MelSpectrogram.from_config(config.mel, for_loss=True).to(device),
        weights=loss_weights(t),
        amp_dtype=PRECISIONS[precision],
        disc_pass=disc_pass,
        g_train=wrap(generator, True),
        mpd_train=wrap(mpd, True),
        msd_train=wrap(msd, True),
        mpd_frozen=wrap(mpd, False),
        msd_frozen=wrap(msd, False),
    )
    if resume is not None:
        for key in _OPTIMIZER_STATES:
            getattr(nets, key).load_state_dict(resume[0][key])
    return nets, has_d


def _optimizers(
    config: HiFiGANConfig,
    device: torch.device,
    generator: nn.Module,
    discriminators: list[nn.Module],
) -> tuple[torch.optim.AdamW, torch.optim.AdamW]:
    """AdamW for the generator and for the discriminators (their parameters in the given
    order: the authors' is MSD, then MPD), with the fused kernels: the same update up to
    rounding; on a CPU torch's default per-parameter loop made a bf16 V1 step 8% slower."""
    t = config.train
    adamw: dict[str, Any] = {
        "lr": t.learning_rate,
        "betas": (t.adam_b1, t.adam_b2),
        "weight_decay": t.weight_decay,
        "fused": True if device.type in ("cpu", "cuda") else None,
    }
    params = itertools.chain.from_iterable(d.parameters() for d in discriminators)
    return torch.optim.AdamW(generator.parameters(), **adamw), torch.optim.AdamW(params, **adamw)


def _wrap(m: nn.Module, device: torch.device, procs: Processes | None, compile: bool) -> nn.Module:
    """DDP for a module that is updated (``procs`` given, under torchrun), then
    ``torch.compile``. MSD stays eager: its spectral norm updates buffers in place between the
    real and the generated pass, which compiled autograd graphs refuse."""
    compiled = compile and not isinstance(m, MultiScaleDiscriminator)
    if procs is not None and procs.enabled:
        ids = [device.index] if device.type == "cuda" else None
        m = DistributedDataParallel(m, device_ids=ids, broadcast_buffers=False)
    return torch.compile(m) if compiled else m


@dataclass
class StepResult:
    """What one step did: the named values (``loss_d``, ``grad_norm_d``, the discriminator
    terms, ``loss_g``, ``grad_norm_g``, the generator terms; unweighted terms, weighted totals)
    and which updates were skipped because a loss or gradient was not finite."""

    values: dict[str, float]
    d_skipped: bool
    g_skipped: bool


def set_requires_grad(modules: list[nn.Module], flag: bool) -> None:
    for m in modules:
        for p in m.parameters():
            p.requires_grad_(flag)


def grad_norm(params: list[Tensor]) -> Tensor:
    """The global L2 norm of the gradients (0-dim tensor; inf/NaN when any gradient is)."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))


def _update(
    loss: Tensor,
    terms: dict[str, Tensor],
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    procs: Processes,
) -> tuple[list[float], bool]:
    """Backward, gradient norm, and the optimizer step unless the loss or the gradients are
    not finite (decided the same way on every process). Returns ``[loss, grad norm, *terms]``
    (one synchronisation with the device) and whether the update was skipped. With fp16 an
    inf gradient is the gradient scaler's business: it skips the update and lowers the scale."""
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)
    params = [p for group in optimizer.param_groups for p in group["params"]]
    norm = grad_norm(params)
    values = torch.stack([loss.detach(), norm, *(v.detach() for v in terms.values())]).tolist()
    checked = values[:1] if scaler.is_enabled() else values
    skip = procs.any_process(not all(math.isfinite(v) for v in checked))
    if not skip:
        scaler.step(optimizer)
    scaler.update()
    return values, skip


def train_step(
    nets: Networks,
    mel: Tensor,
    real: Tensor,
    procs: Processes | None = None,
    *,
    update_generator: bool = True,
) -> StepResult:
    """One discriminator update, then one generator update.

    Args:
        mel: ``(B, n_mels, frames)`` generator input.
        real: ``(B, 1, frames * hop_length)`` the matching audio.
        update_generator: False for the discriminator update alone, against a generator that
            runs without autograd (the discriminator warm-up of :mod:`~hifigan.train.adapt`).
    """
    procs = procs or Processes()
    n = nets
    low_precision = n.amp_dtype != torch.float32
    autocast = torch.autocast(real.device.type, dtype=n.amp_dtype, enabled=low_precision)
    with autocast, torch.set_grad_enabled(update_generator):
        fake = n.g_train(mel) if update_generator else n.generator(mel)  # (B, 1, T)

    # discriminator update: disc_mpd + disc_msd on (real, fake.detach())
    set_requires_grad([n.mpd, n.msd], True)
    with autocast, parametrize.cached():  # each weight-normed weight computed once, not twice
        if n.disc_pass == "joint":
            b = real.shape[0]
            both = torch.cat([real, fake.detach()])
            mpd_out, msd_out = n.mpd_train(both)[0], n.msd_train(both)[0]
            mpd_real, mpd_fake = [x[:b] for x in mpd_out], [x[b:] for x in mpd_out]
            msd_real, msd_fake = [x[:b] for x in msd_out], [x[b:] for x in msd_out]
        else:
            mpd_real, mpd_fake = n.mpd_train(real)[0], n.mpd_train(fake.detach())[0]
            msd_real, msd_fake = n.msd_train(real)[0], n.msd_train(fake.detach())[0]
    d_terms = discriminator_loss_terms(mpd_real, mpd_fake, msd_real, msd_fake)
    d_values, d_skipped = _update(
        weighted_sum(d_terms, n.weights), d_terms, n.optim_d, n.scaler_d, procs
    )
    if not update_generator:
        values = dict(zip(["loss_d", "grad_norm_d", *d_terms], d_values))
        return StepResult(values, d_skipped, False)

    # generator update against the updated discriminators, which are constants here
    set_requires_grad([n.mpd, n.msd], False)
    with autocast, parametrize.cached():
        with torch.no_grad():  # only the real audio's feature maps are needed
            mpd_real, msd_real = n.mpd_frozen(real), n.msd_frozen(real)
        mpd_out, msd_out = (mpd_real, n.mpd_frozen(fake)), (msd_real, n.msd_frozen(fake))
    g_terms = generator_loss_terms(
        mpd_out,
        msd_out,
        real_mel=n.mel_loss(real.squeeze(1)),  # (B, n_mels, frames), fp32
        fake_mel=n.mel_loss(fake.squeeze(1)),
    )
    g_values, g_skipped = _update(
        weighted_sum(g_terms, n.weights), g_terms, n.optim_g, n.scaler_g, procs
    )
    values = dict(zip(["loss_d", "grad_norm_d", *d_terms], d_values))
    values.update(zip(["loss_g", "grad_norm_g", *g_terms], g_values))
    return StepResult(values, d_skipped, g_skipped)
