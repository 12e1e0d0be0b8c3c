"""Micro-batching (SPEC §5): concurrent requests' texts share one model call.

One `MicroBatcher` per model. A request's texts join a queue; a dispatcher task takes the queue
as one batch when it holds `max_texts` texts or when its oldest entry has waited `wait_s`,
whichever comes first, and runs the model on it. At most `max_in_flight` batches run at once
(1 for the local model: one CPU-bound model call at a time; more for remote providers). While
every slot is busy, new requests keep queueing, so under load batches fill up by themselves and
the wait bound only matters when the daemon is idle. Each request gets back exactly its rows;
a failed model call fails every request of that batch with the same error.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from lakehouse_common.errors import ServiceUnavailable

Matrix = npt.NDArray[np.float32]
RunBatch = Callable[[list[str]], Awaitable[Matrix]]


@dataclass
class _Entry:
    texts: list[str]
    future: asyncio.Future[Matrix]
    enqueued: float


class MicroBatcher:
    """Gathers texts of concurrent callers into calls of `run` (at most `max_texts` each)."""

    def __init__(
        self, run: RunBatch, *, wait_s: float, max_texts: int, max_in_flight: int = 1
    ) -> None:
        self._run = run
        self.wait_s = wait_s
        self.max_texts = max_texts
        self._queue: deque[_Entry] = deque()
        self._queued_texts = 0
        self._wake = asyncio.Event()
        self._slots = asyncio.Semaphore(max_in_flight)
        self._dispatcher: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[None]] = set()
        self._closed = False

    async def embed(self, texts: list[str]) -> Matrix:
        """The model's rows for `texts`, in order; a long list is split into several entries."""
        if self._closed:
            raise ServiceUnavailable("embedd is shutting down")
        loop = asyncio.get_running_loop()
        if self._dispatcher is None:
            self._dispatcher = loop.create_task(self._dispatch())
        futures = []
        for start in range(0, len(texts), self.max_texts):
            chunk = texts[start : start + self.max_texts]
            future: asyncio.Future[Matrix] = loop.create_future()
            self._queue.append(_Entry(chunk, future, loop.time()))
            self._queued_texts += len(chunk)
            futures.append(future)
        self._wake.set()
        try:
            parts = [await future for future in futures]
        finally:
            for future in futures:
                if future.done():
                    if not future.cancelled():
                        future.exception()  # mark retrieved: no "never retrieved" warning
                else:
                    future.cancel()  # we failed or were cancelled: drop our other chunks
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    @property
    def idle(self) -> bool:
        """Nothing queued, dispatching or running: dropping this batcher loses nothing."""
        return self._dispatcher is None and not self._running and not self._queue

    async def close(self) -> None:
        """Stop dispatching; fail whatever is queued; cancel the batches in flight."""
        self._closed = True
        tasks = list(self._running)
        if self._dispatcher is not None:
            tasks.append(self._dispatcher)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        while self._queue:
            entry = self._queue.popleft()
            if not entry.future.done():
                entry.future.set_exception(ServiceUnavailable("embedd is shutting down"))

    async def _dispatch(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._drop_abandoned()
            if not self._queue:
                # Idle: end the task (the next `embed` starts another), so a batcher nobody
                # uses holds no task.
                self._dispatcher = None
                return
            # Wait for more company until the batch is full or the oldest entry waited enough.
            deadline = self._queue[0].enqueued + self.wait_s
            while self._queued_texts < self.max_texts:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), remaining)
                except TimeoutError:
                    break
            await self._slots.acquire()
            # Taken after a slot is free: whatever queued while the model was busy rides along.
            batch = self._take_batch()
            if not batch:
                self._slots.release()
                continue
            task = loop.create_task(self._run_batch(batch))
            self._running.add(task)
            task.add_done_callback(self._batch_done)

    def _batch_done(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._slots.release()

    def _drop_abandoned(self) -> None:
        while self._queue and self._queue[0].future.done():
            self._queued_texts -= len(self._queue.popleft().texts)

    def _take_batch(self) -> list[_Entry]:
        batch: list[_Entry] = []
        taken = 0
        while self._queue:
            entry = self._queue[0]
            if entry.future.done():  # its caller went away
                self._queue.popleft()
                self._queued_texts -= len(entry.texts)
                continue
            if batch and taken + len(entry.texts) > self.max_texts:
                break
            self._queue.popleft()
            self._queued_texts -= len(entry.texts)
            batch.append(entry)
            taken += len(entry.texts)
        return batch

    async def _run_batch(self, batch: list[_Entry]) -> None:
        # The same text asked by several callers is embedded once.
        unique = list(dict.fromkeys(text for entry in batch for text in entry.texts))
        try:
            vectors = await self._run(unique)
        except asyncio.CancelledError:
            for entry in batch:
                if not entry.future.done():
                    entry.future.set_exception(ServiceUnavailable("embedd is shutting down"))
            raise
        except Exception as exc:
            for entry in batch:
                if not entry.future.done():
                    entry.future.set_exception(exc)
            return
        row_of = {text: row for row, text in enumerate(unique)}
        for entry in batch:
            if not entry.future.done():
                entry.future.set_result(vectors[[row_of[text] for text in entry.texts]])
