"""The parallel search: Ray Tune trials on a local Ray (or a cluster), scheduled by ASHA or by
Population-Based Training.

Each trial is a Ray actor with ``cpus_per_trial`` CPUs (torch inside uses that many threads:
Ray sets ``OMP_NUM_THREADS``). It calls the objective, which reports the kind's validation score
after every epoch through ``tune.report``:

- ASHA (``ASHAScheduler``, grace period one epoch, halving) stops the trials that fall behind at
  each rung; they end ``stopped``.
- PBT (``PopulationBasedTraining``, one epoch between perturbations) needs the kind's loop
  checkpoint: each report carries the loop's ``last.pt`` / ``best.pt`` (the kind's own format)
  and a ``lineage.json``. A trial in the bottom quantile is restarted by Ray from a top trial's
  checkpoint with perturbed parameters (explore: x0.8 / x1.2 within the space's range, or a
  fresh sample); the objective then resumes that checkpoint with ``adopt`` (its weights and
  step, this trial's learning rate, weight decay, warm-up and LoRA rank). Every such exploit step
  is printed and recorded in the trial's row of the results table.

What each trial did is kept in ``WORK/trials/<trial id>/`` (its parameters, per-epoch scores,
exploit steps, outcome and, when complete, its model), which the results table is built from.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from docsort.errors import DocsortError
from docsort.tuning.space import Param
from docsort.tuning.trials import Objective, TrialRecord, exploit_text

SCORE = "score"  # the metric Ray's schedulers read: the kind's per-epoch validation score
OBJECT_STORE_BYTES = 256 * 1024**2


@dataclass
class RaySearch:
    trials: int
    scheduler: str  # "asha" or "pbt"
    work: Path  # per-trial records and Ray's own storage
    max_epochs: int = 1
    time_budget: float | None = None
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    address: str | None = None
    seed: int = 0
    checkpoints: bool = False  # the kind's loop checkpoints (PBT needs it)


def _import_ray() -> Any:
    try:
        import ray
        from ray import tune  # noqa: F401
    except ImportError:
        raise DocsortError("--backend ray needs Ray Tune: pip install 'docsort[tune]'") from None
    return ray


def _init(ray: Any, address: str | None) -> bool:
    """A local Ray on loopback (no dashboard), or the cluster at ``address``; False when one
    was already running in this process (a notebook, a test) and is used as it is."""
    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    options: dict[str, Any] = {"logging_level": "ERROR", "log_to_driver": False}
    if address:
        options["address"] = address
    else:
        options["include_dashboard"] = False
        options["_node_ip_address"] = "127.0.0.1"
        options["num_cpus"] = os.cpu_count() or 1
        options["object_store_memory"] = OBJECT_STORE_BYTES
    try:
        ray.init(**options)
    except ConnectionError as exc:
        raise DocsortError(f"cannot reach the Ray cluster at {address!r}: {exc}") from None
    return True


def _write(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, default=str), encoding="utf-8")
    os.replace(tmp, path)


def _read(path: Path, default: Any = None) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return default


def _number(trial_id: str) -> int:
    tail = trial_id.rsplit("_", 1)[-1]
    return int(tail) if tail.isdigit() else 0


class _Reporter:
    """Reports each epoch to Ray; under PBT with the loop's checkpoint and the lineage."""

    def __init__(self, folder: Path, trial_id: str, params: dict[str, Any], pbt: bool) -> None:
        self.folder, self.trial_id, self.params, self.pbt = folder, trial_id, params, pbt
        self.checkpoint_dir: Path | None = folder / "loop" if pbt else None
        self.resume = False
        self.adopt = False
        self.pending: dict[str, Any] = {}  # what the next report says of an exploit step
        self.scores: dict[int, float] = {
            int(k): v for k, v in (_read(folder / "scores.json", {}) or {}).items()
        }

    def restore(self) -> None:
        """Take the checkpoint Ray restarted this trial from: its own (nothing changes) or
        another trial's (a PBT exploit: recorded, and the loop adopts it)."""
        from ray import tune

        checkpoint = tune.get_checkpoint()
        if checkpoint is None or self.checkpoint_dir is None:
            if self.checkpoint_dir is not None:
                shutil.rmtree(self.checkpoint_dir, ignore_errors=True)
            return
        shutil.rmtree(self.checkpoint_dir, ignore_errors=True)
        with checkpoint.as_directory() as source:
            shutil.copytree(source, self.checkpoint_dir)
        lineage = _read(self.checkpoint_dir / "lineage.json", {}) or {}
        self.resume = True
        if lineage.get("trial_id") in (None, self.trial_id):
            return
        self.adopt = True
        step = {
            "epoch": int(lineage.get("epoch", 0)),
            "from": _number(lineage["trial_id"]),
            "from_id": lineage["trial_id"],
            "before": lineage.get("params", {}),
            "after": self.params,
        }
        exploits = [*(_read(self.folder / "exploits.json", []) or []), step]
        _write(self.folder / "exploits.json", exploits)
        # the donor's scores up to the epoch taken are now this trial's history
        self.scores = {k: v for k, v in self.scores.items() if k <= step["epoch"]}
        self.pending = {"exploited_from": lineage["trial_id"], "exploit_epoch": step["epoch"]}

    def epoch(self, epoch: int, score: float) -> None:
        from ray import tune

        self.scores[int(epoch)] = float(score)
        _write(self.folder / "scores.json", self.scores)
        metrics = {SCORE: float(score), "epoch": int(epoch), **self.pending}
        self.pending = {}
        if self.checkpoint_dir is None or not (self.checkpoint_dir / "last.pt").is_file():
            tune.report(metrics)
            return
        staged = self.folder / f"report-{epoch}"
        shutil.rmtree(staged, ignore_errors=True)
        staged.mkdir()
        for name in ("last.pt", "best.pt"):
            if (self.checkpoint_dir / name).is_file():
                try:
                    os.link(self.checkpoint_dir / name, staged / name)
                except OSError:
                    shutil.copy2(self.checkpoint_dir / name, staged / name)
        _write(
            staged / "lineage.json",
            {"trial_id": self.trial_id, "epoch": int(epoch), "params": self.params},
        )
        try:
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(str(staged)))
        finally:
            shutil.rmtree(staged, ignore_errors=True)


def _trainable(config: dict[str, Any], objective: Objective, work: str, pbt: bool) -> None:
    """One Ray trial: the objective on ``config``; its outcome and model kept in the work dir."""
    from ray import tune

    trial_id = tune.get_context().get_trial_id()
    folder = Path(work) / "trials" / trial_id
    folder.mkdir(parents=True, exist_ok=True)
    params = dict(config)
    first = _read(folder / "trial.json")
    if first is None:
        _write(folder / "trial.json", {"params": params, "started": time.time()})
    reporter = _Reporter(folder, trial_id, params, pbt)
    reporter.restore()
    started = time.perf_counter()
    try:
        outcome = objective(params, reporter)
    except Exception as exc:  # recorded for the table (a DocsortError is one line already)
        lines = [line for line in str(exc).splitlines() if line.strip()]
        error = str(exc) if isinstance(exc, DocsortError) else type(exc).__name__
        if lines and not isinstance(exc, DocsortError):
            error += f": {lines[0].strip()[:300]}"
        _write(folder / "result.json", {"state": "failed", "error": error, "params": params})
        raise
    model_dir = folder / "model"
    shutil.rmtree(model_dir, ignore_errors=True)
    outcome.model.save(model_dir)
    _write(
        folder / "result.json",
        {
            "state": "complete",
            "value": outcome.value,
            "params": params,
            "epochs": len(outcome.epochs),
            "seconds_last_run": time.perf_counter() - started,
            "finished": time.time(),
        },
    )
    if not reporter.scores:  # a kind without epochs: one report, once all is kept
        reporter.epoch(1, outcome.value)


def _callback(say: Callable[[str], None], total: int, work: Path) -> Any:
    from ray.tune import Callback

    class Progress(Callback):
        """Progress lines in the driver: each exploit step and each trial that ends. Ray
        pickles its callbacks with the experiment's state: ``say`` (a console) stays behind."""

        def __init__(self, say: Callable[[str], None], total: int, work: Path) -> None:
            self.say, self.total, self.work = say, total, work

        def __getstate__(self) -> dict[str, Any]:
            return {"total": self.total, "work": self.work}

        def __setstate__(self, state: dict[str, Any]) -> None:
            self.__dict__.update(state)
            self.say = lambda line: print(line, file=sys.stderr, flush=True)

        def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
            if result.get("exploited_from"):
                folder = self.work / "trials" / trial.trial_id
                steps = _read(folder / "exploits.json", []) or []
                if steps:
                    number = _number(trial.trial_id)
                    self.say(f"PBT exploit: trial {number} takes {exploit_text(steps[-1])}")

        def on_trial_complete(self, iteration, trials, trial, **info) -> None:
            result = _read(self.work / "trials" / trial.trial_id / "result.json", {}) or {}
            ended = sum(1 for t in trials if t.is_finished() or t is trial)
            value = result.get("value")
            shown = f"{value:.4f}" if isinstance(value, float) else "stopped by the scheduler"
            self.say(f"trial {_number(trial.trial_id)} ended ({ended}/{self.total}): {shown}")

        def on_trial_error(self, iteration, trials, trial, **info) -> None:
            folder = self.work / "trials" / trial.trial_id
            result = _read(folder / "result.json", {}) or {}
            error = result.get("error")
            if not error:  # died outside the objective (its worker could not start, OOM)
                cause = trial.get_error()
                error = _last_line(cause) if cause is not None else "failed"
                folder.mkdir(parents=True, exist_ok=True)
                _write(folder / "error.json", {"error": error, "params": dict(trial.config)})
            self.say(f"trial {_number(trial.trial_id)} failed: {error}")

    return Progress(say, total, work)


def run(
    search: RaySearch,
    space: list[Param],
    objective: Objective,
    say: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True),
) -> tuple[list[TrialRecord], Path | None, dict[str, Any]]:
    """Run the search; returns every trial's record, the best complete trial's model dir (in
    the work folder) and facts for the summary."""
    ray = _import_ray()
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, PopulationBasedTraining
    from ray.tune.search import BasicVariantGenerator

    if search.scheduler == "pbt" and not search.checkpoints:
        raise DocsortError(
            "--scheduler pbt continues trials from each other's checkpoints: it needs a kind "
            "whose training loop checkpoints (checkpoint_dir); use --scheduler asha"
        )
    import random

    random.seed(search.seed)  # PBT's choices of donor and perturbation
    started_here = _init(ray, search.address)
    if search.scheduler == "pbt":
        cpus = float(ray.cluster_resources().get("CPU", 0.0))
        note = pbt_fit_note(search.trials, search.cpus_per_trial, cpus)
        if note:
            say(note)
    work = search.work
    (work / "trials").mkdir(parents=True, exist_ok=True)
    by_name = {p.name: p for p in space}
    if search.scheduler == "pbt":

        def explore(config: dict[str, Any]) -> dict[str, Any]:
            return {k: by_name[k].clip(v) if k in by_name else v for k, v in config.items()}

        scheduler: Any = PopulationBasedTraining(
            time_attr="training_iteration",
            perturbation_interval=1,
            hyperparam_mutations={
                p.name: list(p.choices) if p.type == "categorical" else p.ray_domain()
                for p in space
            },
            quantile_fraction=0.25,
            resample_probability=0.25,
            custom_explore_fn=explore,
        )
    else:
        scheduler = ASHAScheduler(
            time_attr="training_iteration",
            # one past the last epoch: a trial's last report is judged at a rung, never cut
            # off by max_t before it has scored and saved its model
            max_t=max(search.max_epochs, 1) + 1,
            grace_period=1,
            reduction_factor=2,
        )
    resources = {"cpu": search.cpus_per_trial}
    if search.gpus_per_trial:
        resources["gpu"] = search.gpus_per_trial
    trainable = tune.with_resources(
        tune.with_parameters(
            _trainable, objective=objective, work=str(work), pbt=search.scheduler == "pbt"
        ),
        resources,
    )
    tuner = tune.Tuner(
        trainable,
        param_space={p.name: p.ray_domain() for p in space},
        tune_config=tune.TuneConfig(
            metric=SCORE,
            mode="max",
            num_samples=search.trials,
            scheduler=scheduler,
            search_alg=BasicVariantGenerator(random_state=search.seed),
            time_budget_s=search.time_budget,
            reuse_actors=False,
        ),
        run_config=tune.RunConfig(
            name="search",
            storage_path=str((work / "ray").resolve()),
            verbose=0,
            callbacks=[_callback(say, search.trials, work)],
            # all kept (one a trial's epoch; minilm + LoRA 1.6 MB): under PBT Ray registers a
            # running top trial's latest checkpoint twice (its save of a function trainable is
            # what was reported), and with a limit it deleted one folder twice and logged a
            # FileNotFoundError traceback
            checkpoint_config=tune.CheckpointConfig(num_to_keep=None),
            failure_config=tune.FailureConfig(max_failures=0, fail_fast=False),
        ),
    )
    t0 = time.time()
    try:
        with warnings.catch_warnings():  # advice for class trainables, not this function
            warnings.filterwarnings("ignore", message="Consider boosting PBT performance")
            results = tuner.fit()
        errors = {}
        for result in results:
            trial_id = (result.metrics or {}).get("trial_id")
            if result.error is not None and trial_id:
                errors[trial_id] = _last_line(result.error)
    finally:
        if started_here:
            ray.shutdown()
    records = _records(work, t0, errors)
    complete = [r for r in records if r.state == "complete" and r.value is not None]
    best = max(complete, key=lambda r: (r.value, -r.number)) if complete else None
    facts = {
        "scheduler": search.scheduler,
        "cpus_per_trial": search.cpus_per_trial,
        "host": socket.gethostname(),
        "exploit_steps": sum(len(r.exploits) for r in records),
        "ray_storage": str(work / "ray"),
    }
    best_dir = work / "trials" / best.trial_id / "model" if best else None
    return records, best_dir, facts


def pbt_fit_note(trials: int, cpus_per_trial: float, cpus: float) -> str | None:
    """What to say when a PBT population cannot run at once. Ray's PBT then pauses every
    trial at each perturbation (each epoch) so that a waiting one can run, and a paused trial
    starts again in a new process from its checkpoint: imports, model load and checkpoint
    read at every epoch. Measured on 2 cores, 4 trials of minilm + LoRA, 4 epochs: at 1 CPU a
    trial each 17 restarts and 268 s to finish (no trial finished in 300 s at a load of 4-5);
    at 0.5 CPU all ran at once, 1 restart (its exploit step) and 135 s."""
    if cpus <= 0 or trials * cpus_per_trial <= cpus * (1 + 1e-9):
        return None
    return (
        f"PBT: {trials} trials at {cpus_per_trial:g} CPU each do not run at once on {cpus:g} "
        "CPUs, so Ray pauses each trial after every epoch for a waiting one and restarts it "
        "from its checkpoint (a new process and a model load each time); "
        f"--cpus-per-trial {cpus / trials:.3g} runs them all at once"
    )


def _last_line(error: BaseException) -> str:
    cause = getattr(error, "cause", None) or error
    lines = [line for line in str(cause).splitlines() if line.strip()]
    return lines[-1].strip() if lines else type(cause).__name__


def _records(work: Path, t0: float, errors: dict[str, str]) -> list[TrialRecord]:
    records = []
    for folder in sorted((work / "trials").iterdir()):
        died = _read(folder / "error.json")
        first = _read(folder / "trial.json") or died
        if first is None:
            continue
        result = _read(folder / "result.json", {}) or {}
        if died and not result:
            result = {"state": "failed", "error": died.get("error", ""), "params": died["params"]}
        scores = {int(k): v for k, v in (_read(folder / "scores.json", {}) or {}).items()}
        state = result.get("state") or ("failed" if folder.name in errors else "stopped")
        finished = result.get("finished")
        started = float(first.get("started", t0))
        records.append(
            TrialRecord(
                number=_number(folder.name),
                state=state,
                params=result.get("params") or first.get("params", {}),
                value=result.get("value"),
                seconds=(finished - started) if finished else None,
                started=started - t0,
                epochs=max(scores) if scores else 0,
                scores=[scores[k] for k in sorted(scores)],
                trial_id=folder.name,
                error=result.get("error") or errors.get(folder.name, ""),
                exploits=_read(folder / "exploits.json", []) or [],
            )
        )
    return records
