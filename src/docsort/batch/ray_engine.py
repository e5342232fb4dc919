"""The Ray engine: Ray Data over the job's shards, ``map_batches`` with a callable class, so
each actor opens the saved model once and predicts shard after shard.

The shards themselves are the dataset (``from_items``, one block per shard): a shard's rows
are read inside the actor by the same reader every engine uses, so its boundaries and its
``row`` positions are the job's, not Ray's block partitioning, and a restarted job can skip
exactly the shards already written. Finished shards stream back to the driver as they come
(``iter_rows``), which updates the manifest and the progress.

``ray.init()`` starts a small local Ray (``num_cpus`` = this machine's cores, no dashboard, a
256 MB object store: shard records are all that travels; on 127.0.0.1) unless ``--address`` names a
cluster; a Ray already initialised in this process (a notebook, a test) is used as it is.
On a cluster, the model folder, the inputs and ``--out`` must be at the same path on every
node (a shared file system).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from typing import Any

from docsort.api.batch import (
    BatchJob,
    PredictorSpec,
    ShardPredictor,
    ShardReport,
    default_concurrency,
)
from docsort.errors import DocsortError

OBJECT_STORE_BYTES = 256 * 1024 * 1024


class ShardActor:
    """A Ray Data callable class: the model is opened in ``__init__``, once per actor."""

    def __init__(self, spec: PredictorSpec) -> None:
        self.predict = ShardPredictor(spec)

    def __call__(self, batch: Any) -> Any:
        import pandas as pd

        records = [json.dumps(self.predict(json.loads(task))) for task in batch["task"]]
        return pd.DataFrame({"record": records})


def run(
    job: BatchJob, tasks: list[dict[str, Any]], finished: Callable[[ShardReport], None]
) -> None:
    ray = _import_ray()
    request = job.request
    job.predictor = None  # each actor opens its own: the driver's copy is not needed
    started_here = _init(ray, request.address, request.runtime)
    try:
        from ray.data import DataContext

        logging.getLogger("ray.data").setLevel(logging.ERROR)  # "execution finished" lines
        context = DataContext.get_current()
        context.enable_progress_bars = False
        context.print_on_execution_start = False
        cpus = ray.cluster_resources().get("CPU", 1.0)
        concurrency = request.concurrency or min(
            len(tasks), default_concurrency(cpus, request.num_cpus)
        )
        dataset = ray.data.from_items(
            [{"task": json.dumps(task)} for task in tasks], override_num_blocks=len(tasks)
        )
        dataset = dataset.map_batches(
            ShardActor,
            fn_constructor_args=(job.spec,),
            batch_size=1,
            batch_format="pandas",
            compute=ray.data.ActorPoolStrategy(size=concurrency),
            num_cpus=request.num_cpus,
            num_gpus=request.num_gpus or None,
        )
        try:
            for row in dataset.iter_rows():
                finished(job.finish(json.loads(row["record"])))
        except ray.exceptions.RayError as exc:
            raise DocsortError(f"a Ray worker failed: {_cause(exc)}") from None
    finally:
        if started_here:
            ray.shutdown()


def _import_ray() -> Any:
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise DocsortError(
            "--engine ray needs Ray Data: pip install 'docsort[ray]' (or 'ray[data]')"
        ) from None
    return ray


def _init(ray: Any, address: str | None, runtime: Any) -> bool:
    """Connect to ``address`` or start a local Ray; False if one was already running here."""
    if ray.is_initialized():
        return False
    options: dict[str, Any] = {
        "logging_level": "ERROR",
        "log_to_driver": False,
        "configure_logging": True,
    }
    # the workers run the same interpreter and see this package where it is installed
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # Ray core's C++ log warns of every actor whose constructor arguments sit in the object
    # store (ray-project/ray#53727, harmless here: an actor that restarts gets them again)
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
    if address:
        options["address"] = address
    else:
        options["include_dashboard"] = False
        options["_node_ip_address"] = "127.0.0.1"  # a local Ray listens on loopback only
        options["num_cpus"] = os.cpu_count() or 1
        options["object_store_memory"] = OBJECT_STORE_BYTES
    try:
        ray.init(**options)
    except ConnectionError as exc:
        raise DocsortError(f"cannot reach the Ray cluster at {address!r}: {exc}") from None
    return True


def _cause(exc: BaseException) -> str:
    """The worker's own error in one line (Ray wraps it with the remote traceback)."""
    cause = getattr(exc, "cause", None) or exc
    lines = [line for line in str(cause).splitlines() if line.strip()]
    return lines[-1].strip() if lines else type(cause).__name__
