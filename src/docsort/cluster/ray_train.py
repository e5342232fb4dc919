"""``docsort train --workers N``: the kind's own ``fit`` on N Ray Train workers (DDP).

Ray Train's ``TorchTrainer`` starts N worker processes with a ``torch.distributed`` group (gloo
on CPUs, NCCL with ``use_gpu``). Each worker runs the same ``model.fit(train, valid)`` with
``hooks.Workers`` set around it: the kind's one training loop then wraps its step in DDP
(Ray Train's ``prepare_model``) and trains on this worker's share of every batch
(``models/nn/distributed.py``). Ray Train's ``prepare_data_loader`` is not used because the
kinds have no ``DataLoader``: their batches are arrays of row indices planned by the loop
itself, and the share is taken of those, as ``DistributedSampler`` would.

Rank 0 saves the fitted model as a normal model dir and reports it as the run's checkpoint
(``ray.train.report``; the others report no checkpoint, as Ray asks every worker to report);
Ray persists it under ``storage`` and the driver loads it back from there, so the model that
``docsort train`` goes on to calibrate and save is exactly what the workers trained.

The training rows travel to the workers through Ray's object store (``ray.put``), so only the
driver reads the data. On a cluster, ``storage`` must be a path every node sees (a shared file
system, or a URI Ray's ``pyarrow`` file systems read, e.g. ``s3://bucket/runs``), and every
node needs docsort installed and the model's base weights resolvable (``docsort models fetch``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from docsort.data.dataset import Dataset
from docsort.errors import DocsortError
from docsort.models.base import Model, Runtime, load

MODEL = "model"  # the saved model dir inside the checkpoint
# the driver's settings a worker should see on a cluster too (a local Ray inherits them all)
PASSED_ON = ("DOCSORT_", "HF_", "TRANSFORMERS_", "TOKENIZERS_PARALLELISM")


@dataclass(frozen=True)
class WorkerRun:
    """How to run a fit on workers: how many, where, with what."""

    workers: int
    address: str | None = None  # an existing cluster; None: a local Ray on this machine
    cpus_per_worker: float = 1.0
    use_gpu: bool = False  # one GPU per worker (``--device cuda``)
    storage: str | None = None  # where Ray keeps the run (None: a temporary folder, removed)


def _import_ray_train() -> Any:
    try:
        import ray
        import ray.train.torch  # noqa: F401
    except ImportError:
        raise DocsortError("--workers needs Ray Train: pip install 'docsort[train]'") from None
    return ray


def fit_on_workers(
    model: Model,
    train: Dataset,
    valid: Dataset | None,
    run: WorkerRun,
    runtime: Runtime | None = None,
) -> tuple[Model, dict[str, Any]]:
    """``model.fit(train, valid)`` on ``run.workers`` DDP workers; returns the fitted model (as
    rank 0 saved it, loaded with ``runtime``) and what the workers reported: rows per worker,
    rows two workers shared (0), distinct rows per epoch, the workers' fit seconds."""
    ray = _import_ray_train()
    from ray.train import FailureConfig, RunConfig, ScalingConfig, TrainingFailedError
    from ray.train.torch import TorchConfig, TorchTrainer

    from docsort.tuning.ray_search import _init  # the same local Ray as docsort tune's

    started_here = _init(ray, run.address)
    own_storage = run.storage is None
    storage = run.storage or tempfile.mkdtemp(prefix="docsort-train-")
    try:
        payload = ray.put((model, train, valid))
        env = {k: v for k, v in os.environ.items() if k.startswith(PASSED_ON)}
        trainer = TorchTrainer(
            _worker,
            train_loop_config={
                "payload": payload,
                "use_gpu": run.use_gpu,
                "threads": max(int(run.cpus_per_worker), 1),
            },
            torch_config=TorchConfig(backend="nccl" if run.use_gpu else "gloo"),
            scaling_config=ScalingConfig(
                num_workers=run.workers,
                use_gpu=run.use_gpu,
                resources_per_worker={"CPU": run.cpus_per_worker},  # + 1 GPU with use_gpu
            ),
            run_config=RunConfig(
                name=f"docsort-train-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}",
                storage_path=_storage_path(storage),
                failure_config=FailureConfig(max_failures=0),
                worker_runtime_env={"env_vars": env},
            ),
        )
        try:
            result = trainer.fit()
        except TrainingFailedError as exc:
            raise DocsortError(
                f"training on {run.workers} Ray workers failed: {_cause(exc)}"
            ) from None
        if result.checkpoint is None:
            raise DocsortError("the Ray workers ended without reporting the trained model")
        with result.checkpoint.as_directory() as folder:
            fitted = load(Path(folder) / MODEL, runtime)
        return fitted, dict(result.metrics or {})
    finally:
        if own_storage:
            shutil.rmtree(storage, ignore_errors=True)
        if started_here:
            ray.shutdown()


def _storage_path(storage: str) -> str:
    """A local folder made absolute (Ray wants one); a URI as it is."""
    return storage if "://" in storage else str(Path(storage).resolve())


def _cause(exc: BaseException) -> str:
    """The first failing worker's own error in one line (Ray wraps it in a remote traceback)."""
    failures = getattr(exc, "worker_failures", None) or {}
    cause = failures[min(failures)] if failures else exc
    cause = getattr(cause, "cause", None) or cause
    if isinstance(cause, DocsortError):
        return str(cause)
    lines = [line.strip() for line in str(cause).splitlines() if line.strip()]
    return lines[-1] if lines else type(cause).__name__


def _worker(config: dict[str, Any]) -> None:
    """One Ray Train worker: the kind's ``fit`` with ``Workers`` set, then rank 0 saves it."""
    import ray
    import ray.train
    import ray.train.torch
    import torch

    from docsort.models.nn.distributed import summary
    from docsort.models.nn.hooks import Workers, on_workers

    context = ray.train.get_context()
    rank, size = context.get_world_rank(), context.get_world_size()
    torch.set_num_threads(config["threads"])
    model, train, valid = ray.get(config["payload"])
    device = str(ray.train.torch.get_device()) if config["use_gpu"] else "cpu"
    model.apply_runtime(Runtime(device=device))
    checkpoints = model.runtime_params.get("checkpoint_dir")
    if rank != 0 and checkpoints:  # the loop's own checkpoints: written by rank 0 alone
        setattr(model, checkpoints, None)

    def wrap(module: Any) -> Any:
        return ray.train.torch.prepare_model(
            module,
            move_to_device=False,  # the kind has put it on ``device`` already
            parallel_strategy="ddp",
            parallel_strategy_kwargs={"find_unused_parameters": True},
        )

    workers = Workers(rank=rank, size=size, wrap=wrap)
    started = time.perf_counter()
    with on_workers(workers):
        model.fit(train, valid)
    metrics = {**summary(workers), "fit_seconds": time.perf_counter() - started}
    if rank != 0:
        ray.train.report(metrics, checkpoint=None)
        return
    with tempfile.TemporaryDirectory(prefix="docsort-rank0-") as folder:
        model.save(Path(folder) / MODEL)
        ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(folder))
