"""A browser listening test: the HiFi-GAN paper's 5-point MOS protocol, and A/B preference.

:mod:`.stimuli` pairs the audio files, :mod:`.design` plans each rater's balanced, shuffled
trials, :mod:`.store` keeps raters and ratings in SQLite, :mod:`.server` serves the pages
(Starlette; ``pip install 'hifigan[serve]'``) and :mod:`.results` computes MOS with t-based
95% confidence intervals and A/B preference shares. The command is ``hifigan listen``.
"""

from __future__ import annotations

from .results import AbRow, MosRow, ab_results, mos_results
from .stimuli import StimulusSet, collect_stimuli
from .store import Store

__all__ = [
    "AbRow",
    "MosRow",
    "StimulusSet",
    "Store",
    "ab_results",
    "collect_stimuli",
    "mos_results",
]
