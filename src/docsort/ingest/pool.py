"""Extraction in worker processes, with a real time limit per file.

Each worker reads and extracts one file at a time and answers on its own pipe. A file that
takes longer than ``limits.max_seconds`` has its worker killed (SIGKILL: a stuck C library
cannot ignore it) and replaced; a worker that dies (a crash in a native library, the memory
limit) costs that one file, reported with the reason, and is replaced too. Each worker's
address space is capped at ``limits.max_memory_mb``.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

from docsort.ingest.extract import MB, Extracted, Limits, describe, extract_bytes

PRELOAD = ["docsort.ingest.extract"]


def extract_file(path: str, limits: Limits) -> Extracted:
    """Read ``path`` (refused over ``max_bytes`` before reading) and extract it."""
    try:
        size = os.path.getsize(path)
        if size > limits.max_bytes:
            return Extracted(None, error=oversize(size, limits))
        with open(path, "rb") as handle:
            data = handle.read(limits.max_bytes + 1)
    except OSError as exc:
        return Extracted(None, error=f"cannot read the file: {exc.strerror or exc}")
    if len(data) > limits.max_bytes:  # it grew since
        return Extracted(None, error=oversize(len(data), limits))
    return extract_bytes(data, os.path.basename(path), limits)


def oversize(size: int, limits: Limits) -> str:
    return f"{size / MB:,.1f} MB, over the limit of {limits.max_bytes / MB:,.3g} MB (--max-mb)"


@dataclass
class Done:
    """A finished job: its key, the result and the seconds its worker spent on it."""

    key: Any
    result: Extracted
    seconds: float


Postprocess = Callable[[Extracted], Extracted]


@dataclass
class RedactStep:
    """A postprocess: the text redacted by ``redactor`` (a ``docsort.redact.Redactor``, sent
    unloaded; each worker loads its engine once), the counts kept with the result."""

    redactor: Any

    def __call__(self, result: Extracted) -> Extracted:
        text, counts = self.redactor.redact(result.text)
        result.text, result.redacted = text, dict(counts)
        return result


def _serve(conn: Connection, limits: Limits, postprocess: Postprocess | None) -> None:
    """A worker's loop: (key, path) in, (key, Extracted, seconds) out, until None."""
    # Ctrl-C reaches the whole process group: the parent stops the workers, not the other
    # way round (and a forked worker must not run the parent's SIGTERM handler)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _cap_memory(limits.max_memory_mb)
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        key, path = job
        started = time.perf_counter()
        result = extract_file(path, limits)
        if postprocess is not None and result.text:
            try:
                result = postprocess(result)
            except Exception as exc:  # the text is not written unredacted
                result = Extracted(result.type, error=f"redaction failed: {describe(exc)}")
        try:
            conn.send((key, result, time.perf_counter() - started))
        except (BrokenPipeError, OSError):
            return


def _cap_memory(megabytes: int) -> None:
    """Cap the worker's address space at what it already maps (a forked worker shares its
    parent's, which may hold torch) plus ``megabytes``."""
    if megabytes <= 0:
        return
    try:
        import resource

        limit = _mapped_bytes() + megabytes * MB
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ImportError, ValueError, OSError):
        pass  # not on this system: the time limit still holds


def _mapped_bytes() -> int:
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


class _Worker:
    def __init__(self, ctx: Any, limits: Limits, postprocess: Postprocess | None) -> None:
        self.conn, child = ctx.Pipe(duplex=True)
        self.process = ctx.Process(
            target=_serve, args=(child, limits, postprocess), daemon=True, name="docsort-ingest"
        )
        self.process.start()
        child.close()
        self.key: Any = None
        self.started = 0.0

    def give(self, key: Any, path: str) -> None:
        self.key, self.started = key, time.monotonic()
        self.conn.send((key, path))

    def stop(self, kill: bool = False) -> None:
        if not kill:
            with contextlib.suppress(OSError, ValueError):
                self.conn.send(None)
            self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout=5)
        self.conn.close()


def run_jobs(
    jobs: Iterable[tuple[Any, str]],
    limits: Limits,
    workers: int,
    postprocess: Postprocess | None = None,
) -> Iterator[Done]:
    """Extract every ``(key, path)`` of ``jobs`` on ``workers`` processes; yields as they end
    (not in order). ``postprocess`` runs in the worker on each result with text (redaction),
    inside the same time limit. The workers start now, before the first result is asked for
    (so before a progress bar starts its thread): a single-threaded caller forks them, at no
    cost; a caller with threads gets them from a fork server (never forked from its threads;
    the server imports docsort once, ~3 s)."""
    pending = deque(jobs)
    if not pending:
        return (done for done in ())  # a generator: it has close()
    method = "fork" if fork_is_safe() else "forkserver"
    ctx = multiprocessing.get_context(method)
    if method == "forkserver":
        ctx.set_forkserver_preload(PRELOAD)
    count = max(1, min(workers, len(pending)))
    idle = [_Worker(ctx, limits, postprocess) for _ in range(count)]
    return _results(ctx, pending, idle, limits, postprocess)


def fork_is_safe() -> bool:
    """Whether workers can be forked from this process (Linux, no other thread running)."""
    return sys.platform.startswith("linux") and threading.active_count() == 1


def _results(
    ctx: Any,
    pending: deque,
    idle: list[_Worker],
    limits: Limits,
    postprocess: Postprocess | None,
) -> Iterator[Done]:
    busy: dict[Connection, _Worker] = {}
    try:
        while pending or busy:
            while idle and pending:
                worker = idle.pop()
                key, path = pending.popleft()
                worker.give(key, path)
                busy[worker.conn] = worker
            now = time.monotonic()
            nearest = min(w.started + limits.max_seconds for w in busy.values())
            for conn in wait(list(busy), timeout=max(0.0, nearest - now)):
                worker = busy.pop(conn)  # type: ignore[index]
                try:
                    key, result, seconds = conn.recv()  # type: ignore[union-attr]
                except (EOFError, OSError):
                    code = worker.process.exitcode
                    worker.process.join(timeout=5)
                    code = worker.process.exitcode if code is None else code
                    yield Done(worker.key, Extracted(None, error=_died(code, limits)), 0.0)
                    worker.stop(kill=True)
                    if pending:
                        idle.append(_Worker(ctx, limits, postprocess))
                    continue
                idle.append(worker)
                yield Done(key, result, seconds)
            now = time.monotonic()
            for conn, worker in list(busy.items()):
                if now - worker.started >= limits.max_seconds:
                    del busy[conn]
                    worker.stop(kill=True)
                    error = f"took over {limits.max_seconds:g} s (--max-seconds): stopped"
                    yield Done(worker.key, Extracted(None, error=error), limits.max_seconds)
                    if pending:
                        idle.append(_Worker(ctx, limits, postprocess))
    finally:
        for worker in busy.values():
            worker.stop(kill=True)
        for worker in idle:
            worker.stop()


def _died(code: int | None, limits: Limits) -> str:
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = str(-code)
        return f"the extractor crashed ({name}; memory limit {limits.max_memory_mb:,} MB)"
    return f"the extractor crashed (exit status {code})"
