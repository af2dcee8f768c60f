"""The API process's inference lane: one thread runs every model call (students, SAM), fed by a
bounded queue.

Why one thread: the models and their caches are shared, and torch already spreads one call over
the threads this process may use; two calls at once only fight over the same cores. Why a
queue: request handlers (the event loop, the thread pool) only wait on a future, so
``/health/live`` and cheap routes answer while a model runs. Why bounded: a call beyond
``capacity`` waiting ones is refused at once (503 with ``Retry-After``) instead of waiting
without bound. Calls with the same batch key that wait together run as one batch (up to
``max_batch``): one ``predict_batch`` of the engine, which batches where the device gains.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from server.core.errors import BadInput

Batch = Callable[[list[Any]], list[Any]]  # items -> one result per item, in order


@dataclass
class _Call:
    run: Batch
    item: Any
    key: Hashable | None
    future: Future = field(default_factory=Future)


class InferenceLane:
    """capacity: calls allowed to wait (the running batch not counted); max_batch: calls of one
    batch key run together at most; started: threads begin on the first call."""

    def __init__(self, capacity: int = 16, max_batch: int = 8):
        self.capacity = capacity
        self.max_batch = max(1, max_batch)
        self._waiting: deque[_Call] = deque()
        self._ready = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._seconds_per_call = 1.0  # running mean, for Retry-After
        self.calls_run = 0  # calls and batches run so far (their ratio: the mean batch size)
        self.batches_run = 0

    def submit(self, run: Batch, item: Any, key: Hashable | None = None) -> Future:
        """Queue ``run([item, …])`` for ``item``; ``key`` (None: never batched) groups waiting calls
        that may run in one batch. Refuses (503 with the seconds to wait) when ``capacity`` calls wait."""
        call = _Call(run, item, key)
        with self._ready:
            if self._closed:
                raise BadInput("the server is shutting down; retry shortly", 503, retry_after=5)
            if len(self._waiting) >= self.capacity:
                wait = max(1, math.ceil(self._seconds_per_call * (len(self._waiting) + 1)))
                raise BadInput(f"the server is busy: {len(self._waiting)} model calls are waiting; "
                               f"retry in {wait} s", 503, retry_after=wait)
            self._waiting.append(call)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, daemon=True, name="kmine-inference")
                self._thread.start()
            self._ready.notify()
        return call.future

    def call(self, run: Batch, item: Any, key: Hashable | None = None) -> Any:
        """Run and wait: for code in a worker thread (sync routes)."""
        return self.submit(run, item, key).result()

    async def acall(self, run: Batch, item: Any, key: Hashable | None = None) -> Any:
        """Run and wait without blocking the event loop: for async routes."""
        return await asyncio.wrap_future(self.submit(run, item, key))

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def close(self) -> None:
        """Refuse new calls; waiting ones still run."""
        with self._ready:
            self._closed = True
            self._ready.notify_all()

    def _next_batch(self) -> list[_Call] | None:
        with self._ready:
            while not self._waiting:
                if self._closed:
                    return None
                self._ready.wait()
            first = self._waiting.popleft()
            batch = [first]
            if first.key is not None:
                for call in list(self._waiting):
                    if len(batch) == self.max_batch:
                        break
                    if call.key == first.key:
                        self._waiting.remove(call)
                        batch.append(call)
            return batch

    def _loop(self) -> None:
        while (batch := self._next_batch()) is not None:
            live = [c for c in batch if c.future.set_running_or_notify_cancel()]
            if not live:
                continue
            start = time.perf_counter()
            try:
                results = live[0].run([c.item for c in live])
            except BaseException as err:  # the callers get the error; the lane goes on
                for c in live:
                    c.future.set_exception(err)
            else:
                for c, result in zip(live, results, strict=True):
                    c.future.set_result(result)
            self.calls_run += len(live)
            self.batches_run += 1
            elapsed = (time.perf_counter() - start) / len(live)
            self._seconds_per_call = 0.8 * self._seconds_per_call + 0.2 * elapsed
