"""HiFi-GAN losses (paper section 2.4): least-squares GAN, feature matching, mel L1.

The functions return unweighted terms; :func:`generator_loss_terms` and
:func:`discriminator_loss_terms` collect them in dicts of named terms, and :func:`loss_weights`
gives the matching weights from the training config (lambda_fm = 2, lambda_mel = 45 in the
paper), so that ``total = sum(weights[k] * terms[k])``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .config import TrainConfig
from .discriminators import DiscriminatorOutput

# A multi-discriminator's outputs for the real and for the generated audio.
RealAndFake = tuple[DiscriminatorOutput, DiscriminatorOutput]


def discriminator_loss(real_logits: list[Tensor], fake_logits: list[Tensor]) -> Tensor:
    """LSGAN discriminator loss summed over sub-discriminators: E[(D(x) - 1)^2] + E[D(G(s))^2]."""
    loss = real_logits[0].new_zeros(())
    for dr, dg in zip(real_logits, fake_logits):
        loss = loss + torch.mean((1 - dr.float()) ** 2) + torch.mean(dg.float() ** 2)
    return loss


def generator_adversarial_loss(fake_logits: list[Tensor]) -> Tensor:
    """LSGAN generator loss summed over sub-discriminators: E[(D(G(s)) - 1)^2]."""
    loss = fake_logits[0].new_zeros(())
    for dg in fake_logits:
        loss = loss + torch.mean((1 - dg.float()) ** 2)
    return loss


def feature_matching_loss(real_fmaps: list[list[Tensor]], fake_fmaps: list[list[Tensor]]) -> Tensor:
    """Sum over sub-discriminators and layers of the mean absolute feature difference.

    Unweighted: the paper's factor 2 is ``lambda_fm`` in :func:`loss_weights`.
    """
    loss = real_fmaps[0][0].new_zeros((), dtype=torch.float32)
    for dr, dg in zip(real_fmaps, fake_fmaps):
        for r, g in zip(dr, dg):
            loss = loss + torch.mean(torch.abs(r.float() - g.float()))
    return loss


def mel_loss(real_mel: Tensor, fake_mel: Tensor) -> Tensor:
    """Mean absolute difference of two log-mel spectrograms (unweighted)."""
    return F.l1_loss(fake_mel.float(), real_mel.float())


def discriminator_loss_terms(
    mpd_real: list[Tensor], mpd_fake: list[Tensor], msd_real: list[Tensor], msd_fake: list[Tensor]
) -> dict[str, Tensor]:
    """Named discriminator terms: ``disc_mpd`` and ``disc_msd`` (each weighted 1)."""
    return {
        "disc_mpd": discriminator_loss(mpd_real, mpd_fake),
        "disc_msd": discriminator_loss(msd_real, msd_fake),
    }


def generator_loss_terms(
    mpd: RealAndFake, msd: RealAndFake, real_mel: Tensor, fake_mel: Tensor
) -> dict[str, Tensor]:
    """Named, unweighted generator terms: ``adv_mpd``, ``adv_msd``, ``fm_mpd``, ``fm_msd``,
    ``mel``.

    Args:
        mpd: the MPD's ``(real output, generated output)``, each ``(logits, feature maps)`` as
            :class:`~hifigan.discriminators.MultiPeriodDiscriminator` returns them (the real
            logits are not used).
        msd: the same for the MSD.
        real_mel: ``(B, n_mels, frames)`` loss-mel of the real audio.
        fake_mel: the same for the generated audio.
    """
    (_, mpd_real_fmaps), (mpd_fake, mpd_fake_fmaps) = mpd
    (_, msd_real_fmaps), (msd_fake, msd_fake_fmaps) = msd
    return {
        "adv_mpd": generator_adversarial_loss(mpd_fake),
        "adv_msd": generator_adversarial_loss(msd_fake),
        "fm_mpd": feature_matching_loss(mpd_real_fmaps, mpd_fake_fmaps),
        "fm_msd": feature_matching_loss(msd_real_fmaps, msd_fake_fmaps),
        "mel": mel_loss(real_mel, fake_mel),
    }


def loss_weights(train: TrainConfig) -> dict[str, float]:
    """Weights with the same keys as the loss-term dicts."""
    return {
        "disc_mpd": 1.0,
        "disc_msd": 1.0,
        "adv_mpd": train.lambda_adv,
        "adv_msd": train.lambda_adv,
        "fm_mpd": train.lambda_fm,
        "fm_msd": train.lambda_fm,
        "mel": train.lambda_mel,
    }


def weighted_sum(terms: dict[str, Tensor], weights: dict[str, float]) -> Tensor:
    """``sum(weights[k] * terms[k])`` over the keys of ``terms``."""
    items = iter(terms.items())
    key, value = next(items)
    total = weights[key] * value
    for key, value in items:
        total = total + weights[key] * value
    return total
