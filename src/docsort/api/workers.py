"""``docsort train --workers N``: the request's worker options checked, then the fit run on Ray
Train workers (``docsort.cluster.ray_train``) instead of in this process.

Whether a model can train on workers is a capability its kind declares (``trains_on_workers``:
the kinds that fine-tune a network in their own loop), never its name.
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from docsort.errors import DocsortError
from docsort.models.base import Model, Runtime, is_number

if TYPE_CHECKING:
    from docsort.api.training import TrainRequest
    from docsort.data.dataset import Dataset


def check_workers(request: TrainRequest, model: Model) -> None:
    """The worker options against each other, the kind and this machine, in one line each."""
    workers = request.workers
    if workers is None:
        for option, value in (
            ("--address", request.address),
            ("--cpus-per-worker", request.cpus_per_worker),
            ("--storage", request.storage),
        ):
            if value is not None:
                raise DocsortError(f"{option} applies to training on workers: add --workers N")
        return
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise DocsortError(f"--workers must be a whole number of at least 1, not {workers!r}")
    cpus = 1.0 if request.cpus_per_worker is None else request.cpus_per_worker
    if not is_number(cpus) or cpus <= 0:
        raise DocsortError(f"--cpus-per-worker must be a number above 0, not {cpus!r}")
    if not model.capabilities().trains_on_workers:
        raise DocsortError(
            f"--workers shares a fine-tuning loop between processes; a {model.kind} model has "
            "none to share (train it without --workers)"
        )
    runtime = request.runtime or Runtime()
    resume = model.runtime_params.get("resume")  # given as --resume or in the config
    if resume and model.get_params(runtime=True).get(resume):
        raise DocsortError(
            "--workers does not resume a checkpoint (resume): train without one of them"
        )
    if request.address is None:  # a local Ray would wait for ever for what this machine lacks
        have = os.cpu_count() or 1
        if workers * cpus > have:
            raise DocsortError(
                f"--workers {workers} needs {workers * cpus:g} CPUs ({cpus:g} each) and this "
                f"machine has {have}: use fewer workers, or --address for a Ray cluster"
            )
        if str(runtime.device or "").startswith("cuda"):
            import torch

            gpus = torch.cuda.device_count()
            if workers > gpus:
                raise DocsortError(
                    f"--workers {workers} --device cuda needs a GPU per worker and this "
                    f"machine has {gpus}: use fewer workers, or --address for a Ray cluster"
                )


def fit_on_workers(
    request: TrainRequest, model: Model, train: Dataset, valid: Dataset | None
) -> tuple[Model, dict[str, Any]]:
    """The fitted model as the workers trained it, and what they report (rows per worker,
    rows shared between workers, seconds)."""
    from docsort.cluster.ray_train import WorkerRun
    from docsort.cluster.ray_train import fit_on_workers as run_fit

    runtime = request.runtime or Runtime()
    use_gpu = str(runtime.device or "").startswith("cuda")
    run = WorkerRun(
        workers=int(request.workers or 1),
        address=request.address,
        cpus_per_worker=1.0 if request.cpus_per_worker is None else float(request.cpus_per_worker),
        use_gpu=use_gpu,
        storage=request.storage,
    )
    # the driver only calibrates and saves what comes back: it needs no GPU of its own
    return run_fit(model, train, valid, run, replace(runtime, device=None) if use_gpu else runtime)
