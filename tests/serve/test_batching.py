"""The dynamic batcher on its own (which requests share a call, and that none is lost), the
device's default batching, the model thread's turns, and the load-test script."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

from hifigan import Generator, HiFiGANConfig, HiFiGANError, Vocoder
from hifigan.checkpoint import save_checkpoint
from hifigan.serve.batching import Batcher, ModelThread, batch_settings
from hifigan.serve.config import ServeConfig
from hifigan.serve.counters import Metrics
from hifigan.serve.slots import ModelSlot

from conftest import REPO

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


@pytest.mark.parametrize(
    ("device", "max_batch", "seconds", "expected"),
    [
        # no batching on the CPU unless asked for; the 8 s bound applies once it is
        ("cpu", None, None, (1, 8.0)),
        ("cpu", 8, None, (8, 8.0)),
        ("cpu", 8, 40.0, (8, 40.0)),
        ("cpu", 4, 0.0, (4, None)),
        # CUDA keeps batching, without a bound
        ("cuda", None, None, (8, None)),
        ("cuda:1", None, 0.0, (8, None)),
        ("cuda", 1, None, (1, None)),
        ("cuda", None, 12.0, (8, 12.0)),
    ],
)
def test_the_device_decides_the_default_batching(device, max_batch, seconds, expected):
    settings = batch_settings(device, max_batch, seconds)
    assert (settings.max_batch, settings.max_seconds) == expected
    assert settings.max_batch_given == (max_batch is not None)


def test_a_torch_device_and_auto_resolve_like_their_names():
    assert batch_settings(torch.device("cpu")) == batch_settings("cpu")
    assert batch_settings(torch.device("cuda", 0)) == batch_settings("cuda")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert batch_settings("auto") == batch_settings(expected)


def test_an_unknown_device_is_a_one_line_error():
    with pytest.raises(HiFiGANError, match=r"^unknown device 'tpu9' \(use auto, cpu or cuda\)$"):
        batch_settings("tpu9")


def test_the_start_line_says_what_batching_a_model_gets():
    assert batch_settings("cpu").describe() == (
        "batching off (the default on cpu: one request already keeps the CPU busy; "
        "--max-batch N turns it on)"
    )
    assert (
        batch_settings("cpu", 1).describe()
        == "batching off (--max-batch; --max-batch N turns it on)"
    )
    assert batch_settings("cpu", 8, 40).describe() == (
        "batching up to 8 requests, at most 40 s of padded audio (--max-batch)"
    )
    assert batch_settings("cuda").describe() == (
        "batching up to 8 requests, no bound of padded audio (the default on cuda)"
    )


@pytest.mark.parametrize(("seconds", "frames"), [(8.0, 689), (1.0, 86), (0.001, 1), (0.0, None)])
def test_max_batch_seconds_becomes_frames_of_the_model(seconds, frames):
    assert batch_settings("cpu", 8, seconds).max_frames(22050, 256) == frames


def test_the_service_batches_by_the_device_default():
    """A model served on the CPU without --max-batch gets a batcher of one request."""
    config = HiFiGANConfig.preset("v3")
    torch.manual_seed(0)
    vocoder = Vocoder(Generator.from_config(config).eval(), config)
    slots = []
    for options in ({}, {"max_batch": 8}, {"max_batch": 8, "max_batch_seconds": 0.0}):
        slots.append(ModelSlot("m", vocoder, ServeConfig(**options), Metrics()))
    try:
        batchers = [(s.batcher.max_batch, s.batcher.max_frames) for s in slots]
    finally:
        for slot in slots:
            slot.executor.shutdown()
    assert batchers == [(1, 689), (8, 689), (8, None)]


def test_the_model_thread_takes_turns_between_lanes():
    thread = ModelThread("test-model")
    try:
        started, release = threading.Event(), threading.Event()
        order: list[str] = []

        def blocker() -> None:
            started.set()
            release.wait(10)

        def job(name: str) -> str:
            order.append(name)
            return name

        first = thread.submit(blocker)
        assert started.wait(10)  # running: what follows queues behind it
        batches, stream = thread.lane("batches"), thread.lane()
        futures = [thread.submit(job, f"upload {i}") for i in range(4)]
        futures += [batches.submit(job, f"batch {i}") for i in range(2)]
        futures.append(stream.submit(job, "stream"))
        release.set()
        assert [f.result(10) for f in futures] == [
            *(f"upload {i}" for i in range(4)),
            "batch 0",
            "batch 1",
            "stream",
        ]
        first.result(10)
        # one job of each lane in turn: the stream waits for one upload and one batch, not six
        assert order == [
            "upload 0",
            "batch 0",
            "stream",
            "upload 1",
            "batch 1",
            "upload 2",
            "upload 3",
        ]
    finally:
        thread.shutdown()


def test_the_model_thread_hands_back_errors_and_cancels_on_shutdown():
    thread = ModelThread("test-model")
    release = threading.Event()
    running = thread.submit(release.wait, 10)
    failing = thread.lane().submit(int, "not a number")
    queued = thread.lane("batches").submit(len, [1, 2])
    cancelled = thread.submit(len, [1])
    assert cancelled.cancel()
    release.set()
    with pytest.raises(ValueError, match="invalid literal"):
        failing.result(10)
    assert running.result(10) is True and queued.result(10) == 2
    blocked = threading.Event()
    thread.submit(blocked.wait, 10)
    left = thread.lane().submit(len, [1, 2, 3])
    thread.shutdown(wait=False, cancel_futures=True)
    blocked.set()
    assert left.cancelled()
    with pytest.raises(RuntimeError, match="after shutdown"):
        thread.submit(len, [])
    thread.shutdown()  # the thread ends


def test_batches_run_in_a_lane_of_the_model_thread():
    recorder = Recorder()
    thread = ModelThread("test-model")
    try:
        batcher = Batcher(recorder, thread.lane("batches"), max_batch=8, max_wait=0.5)
        results = asyncio.run(submit_all(batcher, [30, 20]))
    finally:
        thread.shutdown()
    assert recorder.calls == [[30, 20]]
    assert [r.audio.shape for r in results] == [(30 * HOP,), (20 * HOP,)]


def run_load_test(checkpoint, *options: str) -> tuple[list[list[str]], list[str]]:
    """``scripts/load_test_serve.py`` at a tiny scale (1 s requests): its table's rows (cells)
    and the servers' start notes."""
    for module in ("starlette", "uvicorn", "websockets"):
        pytest.importorskip(module)
    command = [sys.executable, str(REPO / "scripts" / "load_test_serve.py")]
    command += ["--model", str(checkpoint), "--request-seconds", "1", "--threads", "1"]
    command += ["--offline-repeats", "2", *options]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("1.00 s requests, model ")
    assert lines[0].endswith("1 torch threads for the offline run and every server")
    assert lines[2].startswith("| mode | clients | requests | audio s/s | p50 ms | p99 ms |")
    table = [line for line in lines[4:] if line.startswith("|")]
    notes = [line for line in lines if line.startswith("* ")]
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in table], notes


@pytest.fixture(scope="module")
def small_checkpoint(tmp_path_factory):
    """A randomly initialised V3 generator in our checkpoint format: fast on any CPU."""
    config = HiFiGANConfig.preset("v3")
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "small.pt"
    save_checkpoint(path, config, Generator.from_config(config))
    return path


def test_load_test_script_runs_with_the_default_batching(small_checkpoint):
    # a check that the script works, not a measurement: the timings are not looked at
    rows, notes = run_load_test(
        small_checkpoint, "--modes", "default", "--clients", "1", "2", "--requests", "2"
    )
    assert rows[0][0].startswith("offline: read, mel and synthesis in one process, no server (2 ")
    assert [(r[0], r[1], r[2], r[6]) for r in rows[1:]] == [
        ("default (no batching options)", "1", "2", "1 x2"),
        ("default (no batching options)", "2", "2", "1 x2"),  # the CPU does not batch
    ]
    for row in rows:
        assert float(row[3]) > 0
    assert notes == [
        "* default: torch uses 1 CPU thread per process (--threads)",
        "* default: batching off (the default on cpu: one request already keeps the CPU busy; "
        "--max-batch N turns it on)",
    ]


@pytest.mark.slow
def test_load_test_script_compares_the_three_settings(small_checkpoint):
    rows, _ = run_load_test(small_checkpoint, "--clients", "1", "2", "--requests", "4")
    modes = [(r[0], r[1]) for r in rows[1:]]
    assert modes == [
        (mode, clients)
        for mode in (
            "default (no batching options)",
            "no batching (`--max-batch 1`)",
            "forced (`--max-batch 8 --max-batch-seconds 40`)",
        )
        for clients in ("1", "2")
    ]
    for row in rows[1:]:
        sizes = {int(part.split(" x")[0]) for part in row[6].split(", ")}
        forced = row[0].startswith("forced")
        assert sizes <= {1, 2} if forced else sizes == {1}
        assert float(row[7].split()[0]) > 100  # peak resident MB of a server with torch
