"""The local engine: the shards one after another in this process, one model, one shard's
rows in memory at a time."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from docsort.api.batch import BatchJob, ShardReport


def run(
    job: BatchJob, tasks: list[dict[str, Any]], finished: Callable[[ShardReport], None]
) -> None:
    predictor = job.predictor  # the model the job opened to check the request
    for task in tasks:
        finished(job.finish(predictor(task)))
