"""Dynamic batching: concurrent requests for one model become one exact batched synthesis.

Requests wait in a queue; a collector task takes the first, then waits at most ``max_wait``
seconds for more (up to ``max_batch``, while the padded batch stays within ``max_frames``), and
runs ``vocoder([mel, ...])`` on the model's own thread. :meth:`hifigan.Vocoder.__call__` with a
list synthesizes mels of different lengths as one padded batch and recomputes each padded
tail, so every result equals its one-by-one synthesis: batching changes throughput, never the
audio.

Whether batching is on by default depends on the device (:func:`batch_settings`, the one place
that decides): on a CUDA device one call is far from filling it, so requests are batched; on a
CPU one request already keeps every core busy, and measured batches were slower and used more
memory than the same requests one by one (docs/serving.md), so batching is off unless asked.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field

import numpy as np
import torch

from hifigan.errors import HiFiGANError

Synthesize = Callable[[Sequence[np.ndarray]], list[np.ndarray]]


CPU_MAX_BATCH = 1
"""``--max-batch`` by default on the CPU: no batching."""
CUDA_MAX_BATCH = 8
"""``--max-batch`` by default on a CUDA device."""
CPU_MAX_BATCH_SECONDS = 8.0
"""``--max-batch-seconds`` by default on the CPU (where batching is asked for): the bound that
was never slower than no batching in the load test; none on CUDA."""


@dataclass(frozen=True)
class BatchSettings:
    """The batching a model gets on its device, defaults filled in."""

    device: str
    """The device type the defaults were chosen for: ``cpu``, ``cuda``."""
    max_batch: int
    max_seconds: float | None
    """Most padded audio per batch, seconds; None: no bound."""
    max_batch_given: bool
    """Whether ``max_batch`` was asked for rather than the device's default."""

    def max_frames(self, sample_rate: int, hop_length: int) -> int | None:
        """:attr:`max_seconds` as mel frames of a model (None: no bound)."""
        if self.max_seconds is None:
            return None
        return max(1, int(self.max_seconds * sample_rate / hop_length))

    def describe(self) -> str:
        """One line for the start of ``hifigan serve``."""
        source = "--max-batch" if self.max_batch_given else f"the default on {self.device}"
        if self.max_batch == 1:
            why = "" if self.max_batch_given else ": one request already keeps the CPU busy"
            return f"batching off ({source}{why}; --max-batch N turns it on)"
        bound = "no bound" if self.max_seconds is None else f"at most {self.max_seconds:g} s"
        return f"batching up to {self.max_batch} requests, {bound} of padded audio ({source})"


def batch_settings(
    device: str | torch.device, max_batch: int | None = None, max_seconds: float | None = None
) -> BatchSettings:
    """``--max-batch`` and ``--max-batch-seconds`` for a model on ``device`` (``auto``, ``cpu``,
    ``cuda:N`` or a ``torch.device``), None taking the device's default.

    Defaults: on the CPU :data:`CPU_MAX_BATCH` requests (no batching) and
    :data:`CPU_MAX_BATCH_SECONDS` when batching is asked for; on CUDA :data:`CUDA_MAX_BATCH`
    requests and no bound. ``max_seconds`` 0 means no bound.
    """
    if isinstance(device, str) and device == "auto":
        kind = "cuda" if torch.cuda.is_available() else "cpu"
    else:
        try:
            kind = torch.device(device).type
        except RuntimeError:
            raise HiFiGANError(f"unknown device {device!r} (use auto, cpu or cuda)") from None
    on_cpu = kind == "cpu"
    if max_seconds is None:
        max_seconds = CPU_MAX_BATCH_SECONDS if on_cpu else 0.0
    default_batch = CPU_MAX_BATCH if on_cpu else CUDA_MAX_BATCH
    return BatchSettings(
        device=kind,
        max_batch=default_batch if max_batch is None else max_batch,
        max_seconds=max_seconds or None,
        max_batch_given=max_batch is not None,
    )


class ModelThread(Executor):
    """The one thread that runs all of a model's torch work, taking turns between lanes.

    Each lane is a queue of jobs of one client of the model: the batcher (one batch at a
    time), each stream (one synthesis at a time), and the default lane (:meth:`submit`: the mel
    of every upload and ``/v1/mel`` request). The thread runs one job of each lane that has
    work, in turn, so that a job waits for at most one job of every other lane however many
    the others have queued: a flood of uploads cannot hold back a stream, nor streams the
    batches. A lane holds no state once its queue is empty.
    """

    def __init__(self, name: str) -> None:
        self._lanes: dict[Hashable, deque[tuple[Future, Callable, tuple, dict]]] = {}
        self._changed = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()

    def submit(self, fn: Callable, /, *args, **kwargs) -> Future:
        """Queue ``fn(*args, **kwargs)`` in the default lane."""
        return self._put("default", fn, args, kwargs)

    def lane(self, key: Hashable | None = None) -> Executor:
        """An executor whose jobs form the lane ``key`` (None: a new lane of its own)."""
        return _Lane(self, object() if key is None else key)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._changed:
            self._closed = True
            if cancel_futures:
                for queue in self._lanes.values():
                    for future, *_ in queue:
                        future.cancel()
                self._lanes.clear()
            self._changed.notify_all()
        if wait:
            self._thread.join()

    def _put(self, key: Hashable, fn: Callable, args: tuple, kwargs: dict) -> Future:
        future: Future = Future()
        with self._changed:
            if self._closed:
                raise RuntimeError("cannot schedule new jobs after shutdown")
            self._lanes.setdefault(key, deque()).append((future, fn, args, kwargs))
            self._changed.notify()
        return future

    def _next(self) -> tuple[Future, Callable, tuple, dict] | None:
        """The first job of the lane whose turn it is (None: shut down, nothing left)."""
        with self._changed:
            while not self._lanes and not self._closed:
                self._changed.wait()
            if not self._lanes:
                return None
            key = next(iter(self._lanes))
            queue = self._lanes.pop(key)
            job = queue.popleft()
            if queue:
                self._lanes[key] = queue  # back of the round
            return job

    def _work(self) -> None:
        while (job := self._next()) is not None:
            future, fn, args, kwargs = job
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = fn(*args, **kwargs)
            except BaseException as e:  # handed to the waiting caller, as ThreadPoolExecutor does
                future.set_exception(e)
            else:
                future.set_result(result)
            del job, future, fn, args, kwargs  # do not hold the last job's data while idle


class _Lane(Executor):
    """One lane of a :class:`ModelThread`."""

    def __init__(self, thread: ModelThread, key: Hashable) -> None:
        self._thread = thread
        self._key = key

    def submit(self, fn: Callable, /, *args, **kwargs) -> Future:
        return self._thread._put(self._key, fn, args, kwargs)


@dataclass
class BatchResult:
    """One request's audio and how it was made."""

    audio: np.ndarray
    """``(frames * hop_length,)`` float32."""
    batch_size: int
    seconds: float
    """Wall time of the synthesis call that produced it (shared by its whole batch)."""


@dataclass
class _Job:
    mel: np.ndarray
    future: asyncio.Future = field(repr=False)


class Batcher:
    """Collects mels for one model and synthesizes them in batches on ``executor``.

    Args:
        synthesize: ``[(n_mels, T_i), ...] -> [(T_i * hop_length,), ...]`` float32 arrays.
        executor: where ``synthesize`` runs (a lane of the model's :class:`ModelThread` keeps
            torch off the event loop and takes turns with the model's other work).
        max_batch: most requests per call (1 disables batching).
        max_wait: seconds the collector waits for a batch to fill after its first request.
        max_frames: most padded frames per call (batch size times its longest mel; None: no
            limit). A request that would pass it waits for the next batch; a single request
            longer than it runs alone. On a CPU, large batches are slower than the same mels
            one by one (docs/serving.md), so the service bounds them.
        on_batch: called with each batch's size (for metrics).
    """

    def __init__(
        self,
        synthesize: Synthesize,
        executor: Executor,
        *,
        max_batch: int,
        max_wait: float,
        max_frames: int | None = None,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        self.synthesize = synthesize
        self.executor = executor
        self.max_batch = max_batch
        self.max_wait = max_wait
        self.max_frames = max_frames
        self.on_batch = on_batch
        self._queue: asyncio.Queue[_Job] | None = None
        self._held: _Job | None = None  # taken from the queue, did not fit the last batch
        self._task: asyncio.Task | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Start the collector on the running event loop."""
        self._queue = asyncio.Queue()
        self._task = asyncio.get_running_loop().create_task(self._collect())

    async def stop(self) -> None:
        """Stop collecting; jobs still queued (none after a graceful shutdown) fail."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._task = None
        left = [self._held] if self._held is not None else []
        self._held = None
        while self._queue is not None and not self._queue.empty():
            left.append(self._queue.get_nowait())
        for job in left:
            if not job.future.done():
                job.future.set_exception(RuntimeError("the server is shutting down"))

    async def submit(self, mel: np.ndarray) -> BatchResult:
        """Queue one ``(n_mels, T)`` mel and wait for its audio.

        Cancelling the caller (a client that went away) withdraws the job if its batch has not
        started yet.
        """
        if self._queue is None or not self.running:
            raise RuntimeError("the batcher is not running")
        future = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Job(mel, future))
        return await future

    async def _collect(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        while True:
            if self._held is not None:
                batch, self._held = [self._held], None
            else:
                batch = [await self._queue.get()]
            deadline = loop.time() + self.max_wait
            while len(batch) < self.max_batch:
                if not self._queue.empty():
                    job = self._queue.get_nowait()
                else:
                    job = await self._next(deadline - loop.time())
                    if job is None:
                        break
                if not self._fits(batch, job):
                    self._held = job
                    break
                batch.append(job)
            batch = [job for job in batch if not job.future.done()]
            if batch:
                await self._run(batch)

    def _fits(self, batch: list[_Job], job: _Job) -> bool:
        """Whether ``batch`` plus ``job``, padded to its longest mel, stays within the limit."""
        if self.max_frames is None:
            return True
        longest = max(j.mel.shape[-1] for j in (*batch, job))
        return (len(batch) + 1) * longest <= self.max_frames

    async def _next(self, timeout: float) -> _Job | None:
        """The next job within ``timeout`` seconds, or None. (Not ``asyncio.wait_for``: before
        Python 3.12 it can drop an item that arrives just as the time runs out.)"""
        assert self._queue is not None
        if timeout <= 0:
            return None
        getter = asyncio.ensure_future(self._queue.get())
        done, _ = await asyncio.wait({getter}, timeout=timeout)
        if getter not in done:
            getter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await getter
            if getter.cancelled():
                return None  # Queue.get leaves the item in the queue when cancelled
        return getter.result()

    async def _run(self, batch: list[_Job]) -> None:
        loop = asyncio.get_running_loop()
        start = time.perf_counter()
        try:
            outputs = await loop.run_in_executor(
                self.executor, self.synthesize, [job.mel for job in batch]
            )
        except Exception as e:
            if len(batch) == 1:
                if not batch[0].future.done():
                    batch[0].future.set_exception(e)
                return
            # one bad request must not fail the others: retry them one by one
            for job in batch:
                await self._run([job])
            return
        seconds = time.perf_counter() - start
        if self.on_batch is not None:
            self.on_batch(len(batch))
        for job, audio in zip(batch, outputs):
            if not job.future.done():
                job.future.set_result(BatchResult(audio, len(batch), seconds))
