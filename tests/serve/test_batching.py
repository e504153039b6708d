"""The dynamic batcher on its own: which requests share a call, and that none is lost."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from hifigan.serve.batching import Batcher

HOP = 4


class Recorder:
    """A stand-in synthesis that records each call's mel lengths and tags every sample with
    its mel's first value, so a result can be traced back to its request."""

    def __init__(self) -> None:
        self.calls: list[list[int]] = []

    def __call__(self, mels):
        self.calls.append([m.shape[-1] for m in mels])
        return [np.full(m.shape[-1] * HOP, m[0, 0], np.float32) for m in mels]


def mel(frames: int, tag: float) -> np.ndarray:
    return np.full((2, frames), tag, np.float32)


async def submit_all(batcher: Batcher, lengths: list[int]) -> list:
    """Queue every request before the collector runs, then wait for all of them."""
    batcher.start()
    try:
        tasks = [asyncio.create_task(batcher.submit(mel(n, i))) for i, n in enumerate(lengths)]
        return await asyncio.gather(*tasks)
    finally:
        await batcher.stop()


def run(lengths: list[int], **options) -> tuple[Recorder, list]:
    recorder = Recorder()
    with ThreadPoolExecutor(1) as executor:
        batcher = Batcher(recorder, executor, **{"max_batch": 8, "max_wait": 0.5, **options})
        results = asyncio.run(submit_all(batcher, lengths))
    for i, (n, result) in enumerate(zip(lengths, results)):
        assert result.audio.shape == (n * HOP,) and (result.audio == i).all()
    return recorder, results


def test_without_a_frame_limit_one_call_takes_the_whole_queue():
    recorder, results = run([100, 100, 100, 50])
    assert recorder.calls == [[100, 100, 100, 50]]
    assert {r.batch_size for r in results} == {4}


def test_the_padded_length_bounds_each_batch_and_the_request_that_does_not_fit_waits():
    # padded frames = size x longest: 2 x 100 fits 250, 3 x 100 does not; the held request
    # opens the next batch, where 2 x 100 fits again
    recorder, results = run([100, 100, 100, 50], max_frames=250)
    assert recorder.calls == [[100, 100], [100, 50]]
    assert [r.batch_size for r in results] == [2, 2, 2, 2]


def test_a_short_request_joins_until_a_longer_one_would_overflow_the_padding():
    recorder, _ = run([10, 10, 10, 200, 10], max_frames=220)
    # 4 x 200 = 800 > 220, so the long one starts a batch of its own; after it, 2 x 200 > 220
    assert recorder.calls == [[10, 10, 10], [200], [10]]


def test_a_request_longer_than_the_limit_runs_alone():
    recorder, _ = run([500, 20, 20], max_frames=100)
    assert recorder.calls == [[500], [20, 20]]


def test_max_batch_still_applies_under_the_frame_limit():
    recorder, _ = run([1] * 5, max_batch=2, max_frames=1000)
    assert recorder.calls == [[1, 1], [1, 1], [1]]


def test_stop_fails_the_request_held_back_and_the_queued_one():
    busy = threading.Event()

    def blocked(mels):
        busy.wait(10)
        return [np.zeros(m.shape[-1] * HOP, np.float32) for m in mels]

    async def scenario() -> list:
        with ThreadPoolExecutor(1) as executor:
            batcher = Batcher(blocked, executor, max_batch=8, max_wait=0.5, max_frames=10)
            batcher.start()
            first = asyncio.create_task(batcher.submit(mel(8, 0)))
            await asyncio.sleep(0.05)  # the first is being synthesized
            rest = [asyncio.create_task(batcher.submit(mel(8, i))) for i in (1, 2)]
            await asyncio.sleep(0.05)  # the second is held (8 + 8 > 10), the third queued
            held = batcher._held
            await batcher.stop()
            first.cancel()
            busy.set()
            outcomes = await asyncio.gather(*rest, return_exceptions=True)
            return [held is not None, *outcomes]

    was_held, *outcomes = asyncio.run(scenario())
    assert was_held
    assert all(isinstance(o, RuntimeError) and "shutting down" in str(o) for o in outcomes)


@pytest.mark.parametrize(("seconds", "device", "frames"), [(None, "cpu", 689), (0.0, "cpu", None)])
def test_max_batch_seconds_becomes_frames_of_the_model(seconds, device, frames):
    from types import SimpleNamespace

    import torch

    from hifigan.serve.service import batch_frames

    vocoder = SimpleNamespace(device=torch.device(device), sample_rate=22050, hop_length=256)
    assert batch_frames(seconds, vocoder) == frames
    assert batch_frames(1.0, vocoder) == 86
