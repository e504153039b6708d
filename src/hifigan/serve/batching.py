"""Dynamic batching: concurrent requests for one model become one exact batched synthesis.

Requests wait in a queue; a collector task takes the first, then waits at most ``max_wait``
seconds for more (up to ``max_batch``, while the padded batch stays within ``max_frames``), and
runs ``vocoder([mel, ...])`` on the model's own thread. :meth:`hifigan.Vocoder.__call__` with a
list synthesizes mels of different lengths as one padded batch and recomputes each padded
tail, so every result equals its one-by-one synthesis: batching changes throughput, never the
audio.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field

import numpy as np

Synthesize = Callable[[Sequence[np.ndarray]], list[np.ndarray]]


@dataclass
class BatchResult:
    """One request's audio and how it was made."""

    audio: np.ndarray
    """``(frames * hop,)`` float32."""
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
        synthesize: ``[(n_mels, T_i), ...] -> [(T_i * hop,), ...]`` float32 arrays.
        executor: where ``synthesize`` runs (one thread per model keeps torch off the event
            loop and the model's calls in order).
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
