"""The local search: Optuna's TPE sampler with median pruning, in this process.

Each trial reports its validation score per epoch (``trial.report``) and is pruned when it is
below the median of earlier trials at the same epoch (``MedianPruner``); a kind without epochs
(tfidf) reports once, at the end, and is never pruned. With ``storage`` (an SQLAlchemy URL such
as ``sqlite:///search.db``) the study lives in that database: a search killed at any point and
started again with the same command continues where it was. Trials counted towards
``--trials`` are the complete, pruned and failed ones; a trial whose process was killed (still
``RUNNING`` in the storage, its process gone) is marked failed with ``killed`` and run again.
"""

from __future__ import annotations

import os
import socket
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from docsort.errors import DocsortError
from docsort.tuning.space import Param
from docsort.tuning.trials import Objective, Outcome, TrialRecord

STUDY_KEYS = ("kind", "metric", "space")  # a stored study must be of the same search


@dataclass
class OptunaSearch:
    trials: int
    metric: str
    time_budget: float | None = None
    storage: str | None = None
    study_name: str = "docsort"
    seed: int = 0
    identity: dict[str, Any] | None = None  # kind, metric, space: checked against a stored study


@dataclass
class _Reporter:
    trial: Any
    checkpoint_dir: Path | None = None
    resume: bool = False
    adopt: bool = False

    def epoch(self, epoch: int, score: float) -> None:
        import optuna

        self.trial.report(float(score), step=int(epoch))
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"epoch {epoch}: {score:.4f} below the median")


def _optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise DocsortError("docsort tune needs Optuna: pip install 'docsort[tune]'") from None
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    return optuna


def open_study(search: OptunaSearch) -> tuple[Any, Any]:
    """The study, created or (with a storage that holds it) loaded, and its storage (None: in
    memory); a stored study of another search (kind, metric or space) is refused in one line."""
    optuna = _optuna()
    storage: Any = None
    if search.storage:
        try:
            with warnings.catch_warnings():  # heartbeats are "experimental" since Optuna 2.9
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                storage = optuna.storages.RDBStorage(
                    search.storage, heartbeat_interval=30, grace_period=120
                )
        except Exception as exc:  # a bad URL, a driver not installed, a path that cannot be made
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise DocsortError(f"--storage {search.storage!r} cannot be opened: {detail}") from None
    sampler = optuna.samplers.TPESampler(seed=search.seed)
    pruner = optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=0)
    study = optuna.create_study(
        study_name=search.study_name,
        storage=storage,
        sampler=sampler,
        pruner=pruner,
        direction="maximize",
        load_if_exists=True,
    )
    given = study.user_attrs
    identity = search.identity or {}
    if given and identity and any(given.get(k) != identity.get(k) for k in STUDY_KEYS):
        other = ", ".join(f"{k} {given.get(k)!r}" for k in ("kind", "metric"))
        raise DocsortError(
            f"--storage {search.storage!r} holds a study {search.study_name!r} of another search "
            f"({other}, or another space): give --study-name, or another storage"
        )
    if not given and search.identity:
        for key, value in search.identity.items():
            study.set_user_attr(key, value)
    if len(study.trials):  # a resumed search: another seed, or TPE's start-up repeats itself
        study.sampler = optuna.samplers.TPESampler(seed=search.seed + len(study.trials))
    return study, storage


def _mark_killed(study: Any, storage: Any) -> int:
    """Trials left RUNNING by a process of this machine that no longer exists: failed."""
    from optuna.trial import TrialState

    if storage is None:  # in memory: no earlier process left anything
        return 0
    host, marked = socket.gethostname(), 0
    study_id = storage.get_study_id_from_name(study.study_name)
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        pid = trial.user_attrs.get("pid")
        if trial.user_attrs.get("host") != host or not isinstance(pid, int) or _alive(pid):
            continue
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
        storage.set_trial_user_attr(trial_id, "killed", True)
        storage.set_trial_state_values(trial_id, TrialState.FAIL)
        marked += 1
    return marked


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return pid != os.getpid()


def counted(study: Any) -> int:
    """Trials that count towards ``--trials``: every ended one except those killed."""
    from optuna.trial import TrialState

    ended = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    return sum(
        1 for t in study.get_trials(deepcopy=False, states=ended) if not t.user_attrs.get("killed")
    )


def run(
    search: OptunaSearch,
    space: list[Param],
    objective: Objective,
    keep_best: Callable[[Outcome, int], None],
    on_trial: Callable[[TrialRecord, int], None] | None = None,
) -> tuple[list[TrialRecord], dict[str, Any]]:
    """Run trials until ``search.trials`` are counted or the time budget is spent; the best
    trial's model is handed to ``keep_best`` as soon as it is the best (so a killed search
    keeps it). Returns every trial of the study and facts for the summary."""
    optuna = _optuna()
    study, storage = open_study(search)
    killed = _mark_killed(study, storage)
    before = counted(study)
    remaining = max(search.trials - before, 0)
    started = time.time()
    base = study.user_attrs.get("started") or started
    if "started" not in study.user_attrs:
        study.set_user_attr("started", started)

    def trial_fn(trial: Any) -> float:
        trial.set_user_attr("pid", os.getpid())
        trial.set_user_attr("host", socket.gethostname())
        trial.set_user_attr("started", time.time() - base)
        params = {p.name: p.suggest(trial) for p in space}
        t0 = time.perf_counter()
        try:
            outcome = objective(params, _Reporter(trial))
        except DocsortError as exc:
            trial.set_user_attr("error", str(exc))
            trial.set_user_attr("seconds", time.perf_counter() - t0)
            raise
        except optuna.TrialPruned:
            trial.set_user_attr("seconds", time.perf_counter() - t0)
            raise
        trial.set_user_attr("seconds", time.perf_counter() - t0)
        trial.set_user_attr("epochs", len(outcome.epochs))
        finished = [t for t in study.get_trials(deepcopy=False) if t.value is not None]
        if not finished or outcome.value > max(t.value for t in finished):
            keep_best(outcome, trial.number)
            trial.set_user_attr("kept", True)
        return outcome.value

    def after(study: Any, frozen: Any) -> None:
        if on_trial is not None:
            on_trial(_record(frozen), search.trials)

    if remaining:
        study.optimize(
            trial_fn,
            n_trials=remaining,
            timeout=search.time_budget,
            catch=(DocsortError,),
            callbacks=[after],
            gc_after_trial=True,
        )
    records = [_record(t) for t in study.get_trials(deepcopy=False)]
    facts = {
        "study": search.study_name,
        "storage": search.storage,
        "resumed_with": before,
        "killed_trials_found": killed,
        "seconds_this_run": time.time() - started,
    }
    return records, facts


def _record(trial: Any) -> TrialRecord:
    attrs = trial.user_attrs
    state = trial.state.name.lower()
    state = {"fail": "failed"}.get(state, state)
    if attrs.get("killed"):
        state = "killed"
    scores = [value for _, value in sorted(trial.intermediate_values.items())]
    return TrialRecord(
        number=trial.number,
        state=state,
        params=dict(trial.params),
        value=trial.value,
        seconds=attrs.get("seconds"),
        started=attrs.get("started"),
        epochs=attrs.get("epochs", len(scores)),
        scores=scores,
        error=str(attrs.get("error", "")),
    )
