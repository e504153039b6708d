import json

import numpy as np
import pytest
import torch

from hifigan import HiFiGANConfig, MelSpectrogram, MultiPeriodDiscriminator, MultiScaleDiscriminator
from hifigan.checkpoint import from_authors_keys, to_authors_keys
from hifigan.losses import (
    discriminator_loss_terms,
    generator_loss_terms,
    loss_weights,
    weighted_sum,
)

from conftest import GOLDEN, need


@pytest.fixture(scope="module")
def golden():
    return np.load(need(GOLDEN / "discriminators_filled.npz"))


@pytest.fixture(scope="module")
def outputs(golden, fill):
    """Our MPD and MSD with the golden weights, run as the authors' code runs them:
    train mode, real batch first, then the generated one."""
    cfg = HiFiGANConfig.preset("v1")
    mpd, msd = MultiPeriodDiscriminator.from_config(cfg), MultiScaleDiscriminator.from_config(cfg)
    for m in (mpd, msd):
        m.load_state_dict(from_authors_keys(fill(to_authors_keys(m.state_dict()))))
        m.train()
    real, fake = torch.from_numpy(golden["y_real"]), torch.from_numpy(golden["y_gen"])
    with torch.no_grad():
        return {
            "mpd": (mpd(real), mpd(fake)),
            "msd": (msd(real), msd(fake)),
            "real": real,
            "fake": fake,
        }


def test_parameter_counts():
    counts = json.loads(need(GOLDEN / "param_counts.json").read_text())
    assert sum(p.numel() for p in MultiPeriodDiscriminator().parameters()) == counts["mpd"]
    assert sum(p.numel() for p in MultiScaleDiscriminator().parameters()) == counts["msd"]


@pytest.mark.parametrize(("kind", "n"), [("mpd", 5), ("msd", 3)])
def test_every_logit_matches_golden(outputs, golden, kind, n):
    (real_logits, real_fmaps), (fake_logits, _) = outputs[kind]
    assert len(real_logits) == n
    for i in range(n):
        for tag, logits in (("real", real_logits[i]), ("gen", fake_logits[i])):
            ref = golden[f"{kind}{i}_{tag}_logits"]
            assert logits.shape == ref.shape
            rel = np.abs(logits.numpy() - ref).max() / np.abs(ref).max()
            assert rel < 1e-4, f"{kind}{i} {tag}: relative error {rel}"
        shapes = [list(f.shape) for f in real_fmaps[i]]
        assert shapes == golden[f"{kind}{i}_real_fmap_shapes"].tolist()


def test_losses_match_golden(outputs):
    ref = json.loads(need(GOLDEN / "losses_filled.json").read_text())
    (mpd_r, _), (mpd_g, _) = outputs["mpd"]
    (msd_r, _), (msd_g, _) = outputs["msd"]
    mel = MelSpectrogram.from_config(HiFiGANConfig.preset("v1").mel, for_loss=True)
    d = discriminator_loss_terms(mpd_r, mpd_g, msd_r, msd_g)
    g = generator_loss_terms(
        outputs["mpd"],
        outputs["msd"],
        real_mel=mel(outputs["real"].squeeze(1)),
        fake_mel=mel(outputs["fake"].squeeze(1)),
    )
    w = loss_weights(HiFiGANConfig.preset("v1").train)
    # The golden feature-matching values are the authors' feature_loss(), which already
    # includes the paper's factor 2 (lambda_fm); ours are unweighted and weighted by w.
    ours = {
        "loss_disc_f": d["disc_mpd"],
        "loss_disc_s": d["disc_msd"],
        "loss_gen_f": g["adv_mpd"],
        "loss_gen_s": g["adv_msd"],
        "loss_fm_f": w["fm_mpd"] * g["fm_mpd"],
        "loss_fm_s": w["fm_msd"] * g["fm_msd"],
        "loss_mel_x45": w["mel"] * g["mel"],
    }
    for key, value in ref.items():
        assert abs(ours[key].item() - value) <= 1e-4 * abs(value), key
    total = weighted_sum(g, w)
    assert abs(total.item() - sum(ref[k] for k in ref if "disc" not in k)) < 1e-3


def test_odd_lengths_are_padded_per_period():
    mpd = MultiPeriodDiscriminator(periods=(7,), channels=(4, 4, 4, 4, 4))
    logits, fmaps = mpd(torch.randn(1, 1, 1000))
    assert fmaps[0][0].shape[-1] == 7
    assert logits[0].shape[0] == 1


def test_folded_periods_under_cpu_bf16_give_the_same_outputs_and_gradients(monkeypatch):
    """Under bf16 autocast on a CPU the short periods run with their phases folded into the
    batch: same shapes, values within bf16 rounding of the 2-D form, gradients alike."""
    import hifigan.discriminators as discriminators

    torch.manual_seed(0)
    mpd = MultiPeriodDiscriminator((2, 3, 5), (8, 16, 32, 32, 32))
    audio = torch.randn(2, 1, 3001)

    def run(fold_max):
        monkeypatch.setattr(discriminators, "FOLD_MAX_PERIOD", fold_max)
        mpd.zero_grad()
        y = audio.clone().requires_grad_()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits, fmaps = mpd(y)
            loss = sum(x.float().pow(2).mean() for x in logits)
            loss = loss + sum(m.float().abs().mean() for maps in fmaps for m in maps)
        loss.backward()
        return logits, fmaps, y.grad, [p.grad.clone() for p in mpd.parameters()]

    plain, folded = run(0), run(3)
    # the folded path returns its maps as permuted views; period 5 is never folded
    assert plain[1][0][0].is_contiguous() and not folded[1][0][0].is_contiguous()
    assert folded[1][2][0].is_contiguous()
    for a, b in zip(plain[1], folded[1]):
        assert [m.shape for m in a] == [m.shape for m in b]
        for x, z in zip(a, b):
            assert (x.float() - z.float()).abs().max() <= 0.02 * x.float().abs().max() + 1e-3
    assert torch.allclose(plain[2], folded[2], rtol=0.05, atol=0.02 * plain[2].abs().max())
    for x, z in zip(plain[3], folded[3]):
        assert (x - z).abs().max() <= 0.05 * x.abs().max() + 1e-6
    with torch.no_grad():  # outside autocast nothing is folded: bit-identical
        monkeypatch.setattr(discriminators, "FOLD_MAX_PERIOD", 3)
        a = mpd(audio)
        monkeypatch.setattr(discriminators, "FOLD_MAX_PERIOD", 0)
        assert all(torch.equal(x, z) for x, z in zip(a[0], mpd(audio)[0]))
