"""``docsort tune``: a hyperparameter search over one kind, checked once, then run by Optuna
(TPE + median pruning, in this process, resumable from a storage URL) or by Ray Tune (ASHA or
Population-Based Training, trials in parallel).

``prepare_tune`` checks everything before the first trial (the space file against the kind's
parameter rules, the metric, the backend's options, ``--out``) and reads the rows once;
``run_tune`` runs the trials, keeps the best trial's model as a normal model dir
(``OUT/model``) and writes ``trials.csv``, ``summary.json`` and ``search.png``. A trial is the
same training as ``docsort train`` with the trial's parameters over the config's
(``TrialRunner``); its value is ``metric`` computed by the evaluation on the validation rows,
and its per-epoch reports are the kind's own validation score (macro-F1; micro-F1 at tuned
thresholds for multi-label), which the pruner and the schedulers act on.
"""

from __future__ import annotations

import math
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from docsort.api.evaluation import evaluate
from docsort.api.rows import Columns, Source
from docsort.api.training import TrainPlan, TrainRequest, fit, prepare_train
from docsort.data.dataset import Dataset, stratified_split
from docsort.errors import DocsortError
from docsort.io import atomic_dir, write_json
from docsort.models.base import Model, Runtime, create, get_kind, is_model_dir
from docsort.models.nn.hooks import EpochHook, epoch_hook
from docsort.tuning.space import Param, check_space, read_space
from docsort.tuning.trials import Outcome, Reporter, TrialRecord, best_of, write_outputs

BACKENDS = ("optuna", "ray")
SCHEDULERS = ("asha", "pbt")
SCORE_METRICS = ("pearson", "spearman")  # what a scorer (pair) is judged by; higher is better
OUT_FILES = {"trials.csv", "summary.json", "search.png", "model", "work", "tune.json"}


@dataclass
class TuneRequest:
    """A search, as plain values (CLI options map onto it one to one)."""

    data: Source
    space: str | Path
    out: str | Path
    kind: str | None = None
    trials: int = 20
    metric: str = "macro_f1"
    time_budget: float | None = None  # seconds; the search stops starting trials after it
    backend: str = "optuna"
    scheduler: str | None = None  # ray: asha (default) or pbt
    storage: str | None = None  # optuna: sqlite:///search.db, postgresql://... (resumable)
    study_name: str | None = None  # default: KIND-METRIC
    config: str | Path | None = None  # YAML of fixed parameters; the space's override them
    params: dict[str, Any] = field(default_factory=dict)
    columns: Columns = field(default_factory=Columns)
    valid: Source | None = None
    valid_split: float = 0.2
    labels: str | Path | None = None
    seed: int = 0
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    address: str | None = None  # ray: a cluster's address; default: a local Ray
    runtime: Runtime | None = None


@dataclass
class TunePlan:
    request: TuneRequest
    kind: str
    space: list[Param]
    base: dict[str, Any]  # the config's parameters, under every trial's own
    plan: TrainPlan
    train: Dataset
    valid: Dataset
    max_epochs: int
    checkpoints: bool  # the kind's loop checkpoints (PBT can exploit)
    notes: list[str] = field(default_factory=list)


@dataclass
class TuneResult:
    records: list[TrialRecord]
    best: TrialRecord | None
    summary: dict[str, Any]
    out: Path


def metric_names(scores: bool) -> list[str]:
    """The metrics a search can maximise: the registered ones (a classifier) or correlations."""
    if scores:
        return list(SCORE_METRICS)
    from docsort.evaluation.metrics import METRICS

    return list(METRICS)


def prepare_tune(request: TuneRequest) -> TunePlan:
    """Check ``request`` and read its rows; no trial runs yet."""
    if request.backend not in BACKENDS:
        raise DocsortError(
            f"--backend must be one of {', '.join(BACKENDS)}, not {request.backend!r}"
        )
    scheduler = request.scheduler
    if request.backend == "optuna" and scheduler is not None:
        raise DocsortError("--scheduler chooses Ray Tune's scheduler: use it with --backend ray")
    if request.backend == "ray":
        scheduler = scheduler or "asha"
        if scheduler not in SCHEDULERS:
            raise DocsortError(
                f"--scheduler must be one of {', '.join(SCHEDULERS)}, not {scheduler!r}"
            )
        if request.storage:
            raise DocsortError(
                "--storage is Optuna's study database; Ray keeps its own under OUT/work/ray"
            )
    trials = request.trials
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise DocsortError(f"--trials must be a whole number of at least 1, not {trials!r}")
    budget = request.time_budget
    if budget is not None and not (isinstance(budget, (int, float)) and 0 < budget < math.inf):
        raise DocsortError(f"--time-budget must be a positive number of seconds, not {budget!r}")
    if not request.cpus_per_trial > 0 or request.gpus_per_trial < 0:
        raise DocsortError("--cpus-per-trial must be above 0 and --gpus-per-trial at least 0")
    if request.valid is None and not 0 < request.valid_split < 1:
        raise DocsortError(
            f"--valid-split must be a share between 0 and 1 (e.g. 0.2), not {request.valid_split}"
        )
    _check_out(Path(request.out))
    fixed = dict(request.params)
    if request.config is not None:
        from docsort.api.common import read_config

        fixed = {**read_config(request.config), **fixed}
    kind = request.kind or fixed.pop("kind", None) or "tfidf"
    fixed.pop("kind", None)
    cls = get_kind(kind)
    space = read_space(request.space)
    check_space(space, kind, cls.param_names(), cls.rules(), set(cls.runtime_params.values()))
    scores = cls.tags.scores
    names = metric_names(scores)
    if request.metric not in names:
        raise DocsortError(
            f"--metric {request.metric!r} is not a metric a {kind} search can maximise; "
            f"one of: {', '.join(names)}"
        )
    first = {p.name: p.first() for p in space}
    plan = prepare_train(
        TrainRequest(
            data=request.data,
            kind=kind,
            params={**fixed, **first},
            columns=request.columns,
            valid=request.valid,
            labels=request.labels,
            seed=request.seed,
            runtime=request.runtime,
        )
    )
    train, valid = plan.train, plan.valid
    if valid is None:
        train, valid = stratified_split(train, request.valid_split, request.seed)
    if len(valid) == 0 or len(train) == 0:
        raise DocsortError("too few rows to hold out validation rows: give --valid or more rows")
    epochs = plan.model.get_params().get("epochs")
    checkpoints = "checkpoint_dir" in cls.runtime_params
    if request.backend == "ray" and scheduler == "pbt" and not checkpoints:
        raise DocsortError(
            f"--scheduler pbt continues trials from each other's checkpoints: {kind} has no "
            "training loop checkpoint (checkpoint_dir); use --scheduler asha or --backend optuna"
        )
    return TunePlan(
        request=replace(request, scheduler=scheduler),
        kind=kind,
        space=space,
        base=fixed,
        plan=plan,
        train=train,
        valid=valid,
        max_epochs=int(epochs) if isinstance(epochs, int) else 1,
        checkpoints=checkpoints,
        notes=list(plan.notes),
    )


def _check_out(out: Path) -> None:
    """``--out``: a new or empty folder, or the folder of an earlier search (resumed)."""
    if out.exists() and not out.is_dir():
        raise DocsortError(f"--out {str(out)!r} is a file: give a folder for the search's results")
    if out.is_dir():
        stray = sorted(p.name for p in out.iterdir() if p.name not in OUT_FILES)
        if stray:
            raise DocsortError(
                f"--out {str(out)!r} holds other files ({stray[0]!r}): give a new or empty "
                "folder, or the folder of an earlier search"
            )


@dataclass
class TrialRunner:
    """One trial: ``docsort train`` with the trial's parameters over the config's, then the
    search's metric on the validation rows. Picklable, so Ray sends it to its workers."""

    kind: str
    base: dict[str, Any]
    plan: TrainPlan
    train: Dataset
    valid: Dataset
    metric: str

    def __call__(self, params: dict[str, Any], reporter: Reporter) -> Outcome:
        started = time.perf_counter()
        model = create(self.kind, {**self.base, **params})
        if reporter.checkpoint_dir is not None:
            model.apply_runtime(
                Runtime(
                    checkpoint_dir=str(reporter.checkpoint_dir),
                    checkpoint_every=10**9,  # at epoch ends only: what PBT exploits
                    resume=reporter.resume,
                )
            )
        model.check()
        request = replace(self.plan.request, out=None, valid=None, valid_split=None)
        trial = replace(self.plan, request=request, model=model, train=self.train, valid=self.valid)

        def on_epoch(record: dict[str, Any], metric: str, folder: Path | None) -> None:
            if record.get("valid_score") is not None and metric != "epochs":
                reporter.epoch(int(record["epoch"]), float(record["valid_score"]))

        with epoch_hook(EpochHook(on_epoch=on_epoch, adopt=reporter.adopt)):
            fit(trial)
        value = float(evaluate(model, self.valid)[self.metric])
        if not math.isfinite(value):
            raise DocsortError(f"the trial's {self.metric} is not a number")
        epochs = list(getattr(model, "history_", None) or [])
        return Outcome(value, model, epochs, time.perf_counter() - started)


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def run_tune(plan: TunePlan, say: Callable[[str], None] = _say) -> TuneResult:
    """Run the search; the best trial's model is saved in OUT/model."""
    request = plan.request
    out = Path(request.out)
    out.mkdir(parents=True, exist_ok=True)
    runner = TrialRunner(plan.kind, plan.base, plan.plan, plan.train, plan.valid, request.metric)
    names = [p.name for p in plan.space]
    started = time.time()
    write_json(out / "tune.json", _settings(plan))
    facts: dict[str, Any]
    if request.backend == "optuna":
        from docsort.tuning import optuna_search

        def keep(outcome: Outcome, number: int) -> None:
            outcome.model.save(out / "model")

        def on_trial(record: TrialRecord, total: int) -> None:
            say(_trial_line(record, total, request.metric))

        search = optuna_search.OptunaSearch(
            trials=request.trials,
            metric=request.metric,
            time_budget=request.time_budget,
            storage=request.storage,
            study_name=request.study_name or f"{plan.kind}-{request.metric}",
            seed=request.seed,
            identity={"kind": plan.kind, "metric": request.metric,
                      "space": [p.describe() for p in plan.space]},
        )  # fmt: skip
        records, facts = optuna_search.run(search, plan.space, runner, keep, on_trial)
    else:
        from docsort.tuning import ray_search

        work = out / "work"
        shutil.rmtree(work / "trials", ignore_errors=True)  # a search of Ray starts afresh
        search = ray_search.RaySearch(
            trials=request.trials,
            scheduler=request.scheduler or "asha",
            work=work,
            max_epochs=plan.max_epochs,
            time_budget=request.time_budget,
            cpus_per_trial=request.cpus_per_trial,
            gpus_per_trial=request.gpus_per_trial,
            address=request.address,
            seed=request.seed,
            checkpoints=plan.checkpoints,
        )
        records, best_dir, facts = ray_search.run(search, plan.space, runner, say)
        if best_dir is not None and is_model_dir(best_dir):
            with atomic_dir(out / "model", replaces=is_model_dir, what="a docsort model") as tmp:
                shutil.copytree(best_dir, tmp, dirs_exist_ok=True)
        for folder in (work / "trials").glob("*"):  # the trials' models and loop checkpoints
            for sub in ("model", "loop"):
                shutil.rmtree(folder / sub, ignore_errors=True)
    best = best_of(records)
    summary = _summary(plan, records, best, facts, time.time() - started, out)
    write_outputs(out, records, names, summary)
    return TuneResult(records, best, summary, out)


def _settings(plan: TunePlan) -> dict[str, Any]:
    r = plan.request
    return {
        "kind": plan.kind,
        "backend": r.backend,
        "scheduler": r.scheduler,
        "metric": r.metric,
        "trials": r.trials,
        "space": [p.describe() for p in plan.space],
        "fixed": plan.base,
    }


def _summary(
    plan: TunePlan,
    records: list[TrialRecord],
    best: TrialRecord | None,
    facts: dict[str, Any],
    seconds: float,
    out: Path,
) -> dict[str, Any]:
    counts: dict[str, int] = {}
    for r in records:
        counts[r.state] = counts.get(r.state, 0) + 1
    return {
        **_settings(plan),
        "train_rows": len(plan.train),
        "valid_rows": len(plan.valid),
        "states": counts,
        "best": None
        if best is None
        else {
            "trial": best.number,
            "value": best.value,
            "params": best.params,
            "model": str(out / "model"),
            "exploits": best.exploits,
        },
        "seconds": seconds,
        **facts,
    }


def _trial_line(record: TrialRecord, total: int, metric: str) -> str:
    params = ", ".join(f"{k}={_short(v)}" for k, v in record.params.items())
    if record.state == "complete":
        what = f"{metric} {record.value:.4f}"
    elif record.state == "pruned":
        last = f" at epoch {record.epochs} ({record.scores[-1]:.4f})" if record.scores else ""
        what = "pruned" + last
    else:
        what = f"{record.state}: {record.error}" if record.error else record.state
    seconds = f", {record.seconds:.1f} s" if record.seconds is not None else ""
    return f"trial {record.number} ({record.number + 1}/{total}): {what}{seconds}  [{params}]"


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def best_model(result: TuneResult) -> Model | None:
    """The best trial's saved model, reopened."""
    from docsort.models.base import load

    path = result.out / "model"
    return load(path) if is_model_dir(path) else None
