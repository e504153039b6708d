"""Write the presets for sample rates other than 22.05 kHz (v1/v2/v3 x 16/24/44.1/48 kHz).

Each takes the front end that acoustic models at that rate most often use and derives the
generator's upsampling from the hop (``hifigan.config.upsample_plan``); tests check that the
shipped files equal what this script writes.

    python scripts/write_rate_presets.py
"""

from __future__ import annotations

from pathlib import Path

from hifigan.config import HiFiGANConfig, MelConfig, for_mel

PRESETS = Path(__file__).resolve().parents[1] / "src" / "hifigan" / "presets"

# suffix -> the mel front end (see docs/models.md for where each comes from)
FRONT_ENDS = {
    # 16 kHz: the 22.05 kHz analysis (1024-point FFT, hop 256), 80 bands up to Nyquist
    "16k": MelConfig(16000, 1024, 256, 1024, 80, 0.0, 8000.0, None),
    # 24 kHz: BigVGAN v2's and vocos' rate, 100 bands to Nyquist (the bigvgan-24k convention)
    "24k": MelConfig(24000, 1024, 256, 1024, 100, 0.0, 12000.0, None),
    # 44.1 kHz: BigVGAN v2's 128-band front end with hop 512 (the bigvgan-44k convention)
    "44k": MelConfig(44100, 2048, 512, 2048, 128, 0.0, 22050.0, None),
    # 48 kHz: a 10 ms hop (480 samples), 2048-point FFT, 128 bands to Nyquist
    "48k": MelConfig(48000, 2048, 480, 2048, 128, 0.0, 24000.0, None),
}


def rate_presets() -> dict[str, HiFiGANConfig]:
    """Preset name -> config, for every base preset and front end."""
    return {
        f"{base}-{suffix}": for_mel(HiFiGANConfig.preset(base), mel, f"{base}-{suffix}")
        for base in ("v1", "v2", "v3")
        for suffix, mel in FRONT_ENDS.items()
    }


def main() -> None:
    for name, config in rate_presets().items():
        config.save(PRESETS / f"{name}.json")
        g = config.generator
        print(f"{name}: rates {list(g.upsample_rates)}, kernels {list(g.upsample_kernel_sizes)}")


if __name__ == "__main__":
    main()
