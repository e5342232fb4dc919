"""Dynamic batching: concurrent classify requests gathered into one model call.

Requests wait in a bounded queue. One task on the event loop takes the oldest, then keeps
taking whatever else arrives until the batch holds ``max_batch`` documents or ``max_wait_ms``
have passed since the oldest arrived, and hands the batch to one worker thread that runs the
model (the event loop keeps accepting and answering meanwhile). While the model is busy the
queue fills, so under load a batch is ready the moment the model is free and no request waits
the full ``max_wait_ms``; a lone request waits at most that long.

A request is never split: one larger than ``max_batch`` is a model call of its own. Requests
are joined only when they are read alike (the same ``top_k``, plain texts or records with the
same columns), so the joined call reads each row exactly as its own call would; tfidf and the
cascade give the same numbers to the last digit (tested). If a joined call fails or skips a
row (a record without text), each of its requests runs alone, so an error stays with the
request that caused it. When the queue is full a request is refused at once (503 with
``Retry-After``) instead of the queue growing without bound.

``batching=False`` (``--no-batching``) is the same queue and thread with one request per call.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from docsort.errors import DocsortError

MAX_BATCH_LIMIT = 4096
MAX_QUEUE_LIMIT = 100_000
MAX_WAIT_LIMIT_MS = 10_000


@dataclass(frozen=True)
class BatchSettings:
    """``max_batch``: documents per model call; ``max_wait_ms``: how long the oldest request
    may wait for others; ``queue_size``: requests waiting for the model before a 503."""

    max_batch: int = 32
    max_wait_ms: float = 5.0
    queue_size: int = 256
    batching: bool = True

    def __post_init__(self) -> None:
        if not 1 <= self.max_batch <= MAX_BATCH_LIMIT:
            raise DocsortError(f"--max-batch must be 1 to {MAX_BATCH_LIMIT}, not {self.max_batch}")
        if not 0 <= self.max_wait_ms <= MAX_WAIT_LIMIT_MS:
            raise DocsortError(
                f"--max-wait-ms must be 0 to {MAX_WAIT_LIMIT_MS}, not {self.max_wait_ms:g}"
            )
        if not 1 <= self.queue_size <= MAX_QUEUE_LIMIT:
            raise DocsortError(
                f"--queue-size must be 1 to {MAX_QUEUE_LIMIT}, not {self.queue_size}"
            )


class QueueFull(DocsortError):
    """Too many requests are waiting for the model (a 503 with ``Retry-After``)."""

    def __init__(self, retry_after: int, reason: str = "too many requests waiting") -> None:
        super().__init__(f"the server is busy: {reason}; retry in {retry_after} s")
        self.retry_after = retry_after


@dataclass
class Pending:
    key: Hashable  # requests with equal keys may share a model call
    inputs: Sequence[Any]
    future: asyncio.Future
    arrived: float = field(default_factory=time.monotonic)


# ``run(inputs, key)`` -> one output per input; raises DocsortError for bad input
Runner = Callable[[Sequence[Any], Hashable], list[Any]]
Observer = Callable[[int, int], None]  # (documents, requests) of each model call


class Batcher:
    """The queue, the gathering task and the model thread."""

    def __init__(
        self,
        run: Runner,
        settings: BatchSettings,
        observe: Observer | None = None,
        depth: Callable[[int], None] | None = None,
    ) -> None:
        self.run, self.settings = run, settings
        self.observe = observe or (lambda documents, requests: None)
        self.depth = depth or (lambda n: None)
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="docsort-model")
        self._queue: asyncio.Queue[Pending] | None = None
        self._task: asyncio.Task | None = None
        self._carried: Pending | None = None  # taken from the queue, did not fit the batch
        self._held = 0  # requests taken from the queue and not answered yet
        self._seconds = 0.05  # a running mean of one model call's time, for Retry-After

    def start(self) -> None:
        """Start the gathering task on the running loop (the app's startup; again if that loop
        is gone, as with a test client used without its context)."""
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done() or self._task.get_loop() is not loop:
            self._queue = asyncio.Queue(self.settings.queue_size)
            self._carried, self._held = None, 0
            self._task = loop.create_task(self._loop())

    async def submit(self, key: Hashable, inputs: Sequence[Any]) -> Any:
        """The outputs for ``inputs`` once their batch has run (or the error of their own run);
        ``key`` says how they are read (requests with equal keys may share a call)."""
        self.start()
        assert self._queue is not None
        pending = Pending(key, inputs, asyncio.get_running_loop().create_future())
        try:
            self._queue.put_nowait(pending)
        except asyncio.QueueFull:
            raise QueueFull(self.retry_after()) from None
        self.depth(self.unanswered())
        return await pending.future

    def waiting(self) -> int:
        """Requests queued for a later model call."""
        queued = 0 if self._queue is None else self._queue.qsize()
        return queued + (self._carried is not None)

    def unanswered(self) -> int:
        """Requests accepted and not answered yet: queued, gathering, or in the model call."""
        return self.waiting() + self._held

    def retry_after(self) -> int:
        """Seconds until the queue has room, from how long a model call takes lately."""
        per_call = self.settings.max_batch if self.settings.batching else 1
        batches = self.waiting() / per_call + 1
        return max(1, math.ceil(batches * self._seconds))

    async def close(self, timeout: float = 30.0) -> None:
        """Answer every queued request, then stop (the app's shutdown, after uvicorn has
        stopped accepting connections and let the open ones finish). A model call that hangs
        past ``timeout`` seconds is left behind: its requests get a 503."""
        if self._task is None:
            self.executor.shutdown(wait=True)
            return
        deadline = time.monotonic() + timeout
        while self.unanswered() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        drained = not self.unanswered()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        if not drained:
            self._abandon()
        self.executor.shutdown(wait=drained)

    def _abandon(self) -> None:
        left = [] if self._carried is None else [self._carried]
        while self._queue is not None and not self._queue.empty():
            left.append(self._queue.get_nowait())
        for pending in left:
            if not pending.future.done():
                pending.future.set_exception(QueueFull(1, "it is shutting down"))

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._gather()
            try:
                start = time.perf_counter()
                results = await loop.run_in_executor(self.executor, self._run_batch, batch)
                self._seconds = 0.8 * self._seconds + 0.2 * (time.perf_counter() - start)
            except Exception as exc:  # noqa: BLE001  (the executor itself failed)
                results = [exc] * len(batch)
            for pending, result in zip(batch, results, strict=True):
                if pending.future.done():  # the client went away
                    continue
                if isinstance(result, BaseException):
                    pending.future.set_exception(result)
                else:
                    pending.future.set_result(result)
            self._held = 0
            self.depth(self.unanswered())

    async def _gather(self) -> list[Pending]:
        assert self._queue is not None
        first = self._carried if self._carried is not None else await self._queue.get()
        self._carried = None
        self._held = 1
        batch, size = [first], len(first.inputs)
        if not self.settings.batching:
            return batch
        deadline = first.arrived + self.settings.max_wait_ms / 1000
        while size < self.settings.max_batch:
            try:
                pending = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    pending = await asyncio.wait_for(self._queue.get(), left)
                except TimeoutError:
                    break
            if size + len(pending.inputs) > self.settings.max_batch:
                self._carried = pending  # first in the next batch
                break
            batch.append(pending)
            self._held += 1
            size += len(pending.inputs)
        return batch

    def _run_batch(self, batch: list[Pending]) -> list[Any]:
        """In the model thread: one call per group of requests read alike; a failed or short
        joined call is run again request by request."""
        results: list[Any] = [None] * len(batch)
        groups: dict[Hashable, list[int]] = {}
        for i, pending in enumerate(batch):
            groups.setdefault(pending.key, []).append(i)
        for key, members in groups.items():
            joined = [x for i in members for x in batch[i].inputs]
            outputs: list[Any] | None = None
            if len(members) > 1:
                try:
                    outputs = self.run(joined, key)
                except Exception:  # noqa: BLE001  (each request runs alone below)
                    outputs = None
                if outputs is not None and len(outputs) != len(joined):
                    outputs = None
            if outputs is not None:
                self.observe(len(joined), len(members))
                at = 0
                for i in members:
                    n = len(batch[i].inputs)
                    results[i] = outputs[at : at + n]
                    at += n
                continue
            for i in members:
                try:
                    results[i] = self.run(batch[i].inputs, key)
                    self.observe(len(batch[i].inputs), 1)
                except Exception as exc:  # noqa: BLE001  (handed to the request)
                    results[i] = exc
        return results
