"""Batch prediction engines: ``docsort predict MODEL INPUT --engine local|ray|spark --out DIR``.

Each engine is a thin layer over ``docsort.api.batch``: the job (its shards, its manifest) is
planned by ``prepare_batch``, every shard is predicted by the same ``ShardPredictor`` (one
``predict_frame`` over a pandas batch), and the engines differ only in where that runs: in
this process, in Ray actors (Ray Data ``map_batches`` with a class that opens the model once
per actor) or in Spark executors (``mapInPandas``, the model opened once per Python worker).
"""

from __future__ import annotations

from collections.abc import Callable

from docsort.api.batch import BatchJob, BatchRequest, BatchResult, ShardReport, prepare_batch
from docsort.progress import progress_bar

__all__ = ["run_batch"]


def run_batch(
    request: BatchRequest, on_start: Callable[[BatchJob], None] | None = None
) -> BatchResult:
    """Plan (or pick up) the job in ``request.out``, run its pending shards on the engine,
    return the summary. ``on_start`` sees the job before the engine starts (to print it)."""
    job = prepare_batch(request)
    if on_start is not None:
        on_start(job)
    pending = job.tasks()
    if pending:
        engine = _engine(request.engine)
        done_rows = job.total_rows - sum(t["count"] for t in pending)
        with progress_bar(
            f"predicting ({request.engine})", total=job.total_rows, completed=done_rows
        ) as advance:

            def finished(report: ShardReport) -> None:
                advance(report.rows)

            engine(job, pending, finished)
    return job.close()


def _engine(name: str) -> Callable[..., None]:
    if name == "ray":
        from docsort.batch.ray_engine import run
    elif name == "spark":
        from docsort.batch.spark_engine import run
    else:
        from docsort.batch.local import run
    return run
