"""Cascade: cheap stages answer the documents they are sure of, the rest go on to stronger ones.

A cascade is an ordered list of stages, each any kind (a saved model directory, or an inline
kind config trained on the cascade's training rows). Every stage but the last has a threshold on
its confidence (the top probability, or the margin between the top two); a document the stage is
less sure of than that goes on to the next stage, and only those documents are run there.

Thresholds are chosen on validation rows: every stage scores every validation row once (timed,
which also prices a stage per document), then a grid of candidate thresholds (quantiles of each
stage's confidence) is searched exhaustively for the setting that meets the target: the cheapest
one reaching an accuracy (``target_accuracy``, or ``max_accuracy_drop`` below the last stage
alone, the default: 0.5 points), or the most accurate one under a budget (``max_cost_per_1k``
USD, or ``max_escalation_rate``: the share of documents that reach the last stage; settings tied
on validation accuracy are broken toward using more of the budget when the last stage is the
most accurate alone, toward using less otherwise). A budget met exactly on the validation rows
is missed on about half of all new samples, so by default (``budget_confidence`` 0.9) the
budget must hold with that confidence on new rows from the same source: a setting counts as
within budget only if the one-sided Clopper-Pearson upper bound of its share escalated (or, for
cost, of each stage's share reached, priced) is; ``budget_confidence: null`` meets the budget on
the validation rows only. When every stage is a saved model, every given row serves threshold
selection (nothing needs holding out for training). With three
stages the grid is up to 140 x 140 settings, each a vectorised pass over the validation rows, so
an exhaustive search is cheap and, unlike a greedy stage-by-stage choice, it sees that a looser
first stage can be paid for by a stricter second one. Beyond that the grid gets coarser so it
stays under ``MAX_SETTINGS``.

The saved cascade is self-contained: each stage is saved again inside it (``stages/NN-name``)
rather than referenced, so the directory can be copied to another machine or served while the
source models are retrained or deleted, and a stage's threshold can never silently point at a
different model than the one it was chosen for. The price is disk space (a copy of each
stage's weights; kinds such as ``embed`` that refer to a base model by alias stay small).
Single-label data only: multi-label stages decide with per-label thresholds, which a mixture
of stages could not share.

The last entry may be ``human`` (or ``{human: true, name: review, usd_per_doc: 0.4}``): then
every model stage, the last one too, has a threshold, and the documents no model is sure
enough of go to people (the answering stage is ``human``; the probabilities are the last model
stage's, a suggestion for the reviewer). For threshold selection a person is taken to be
right, at ``usd_per_doc`` each; with ``max_auto_error`` (certified) that assumption plays no
part, as only the model stages' answers are certified.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from docsort.data.dataset import Dataset, stratified_split
from docsort.errors import DocsortError
from docsort.io import write_json
from docsort.models.base import (
    Capabilities,
    Classifier,
    HoldsParts,
    ModelSpec,
    create,
    is_number,
    load,
    make_names_unique,
    numbered_dirs,
    parse_model_entry,
    register,
    summed_token_usage,
)
from docsort.models.cost import CostModel
from docsort.models.params import SEED, Choice, Integer, Items, Mapping, Number, Optional

CONFIDENCES = ("max", "margin")
SELECT_KEYS = (
    "target_accuracy",
    "max_accuracy_drop",
    "max_escalation_rate",
    "max_cost_per_1k",
    "max_auto_error",
)
BUDGET_KEYS = ("max_escalation_rate", "max_cost_per_1k")
# a budget is held on new rows with this confidence unless ``budget_confidence: null`` says
# "on the validation rows only" (met there, it is missed on about half of new samples)
DEFAULT_BUDGET_CONFIDENCE = 0.9
DEFAULT_SELECT = {"max_accuracy_drop": 0.005}
# ``max_auto_error``'s companion: the chance that the certified bound may fail
DEFAULT_DELTA = 0.05
STAGE_KEYS = ("name", "cost", "threshold", "calibrate")  # besides model / kind + kind params
HUMAN = "human"  # the last stage may be people: a review queue
HUMAN_KEYS = ("human", "name", "usd_per_doc")
ESCALATE_ALL = 2.0  # above any confidence (probabilities are <= 1): the stage answers nothing
MAX_SETTINGS = 20_000  # threshold combinations searched at most
STAGES_DIR = "stages"
STATE = "cascade.json"


@dataclass
class StageSpec(ModelSpec):
    """One parsed ``stages:`` entry."""

    cost: dict[str, float] | None = None  # prices of this stage, over the cascade's
    threshold: float | None = None
    calibrate: bool = False


@dataclass
class Routed:
    """What one cascade pass did: probabilities, the answering stage of each row, and per stage
    the rows it read (``seen``: their indices and its probabilities), its seconds and tokens."""

    proba: np.ndarray
    stage: np.ndarray
    seconds: np.ndarray
    seen: list[np.ndarray]
    stage_proba: list[np.ndarray]
    tokens: list[dict[str, int]]

    @staticmethod
    def concat(parts: Sequence[Routed], n_labels: int, n_stages: int) -> Routed:
        """Batches of one pass joined, row indices shifted to the whole input."""
        offsets = np.cumsum([0] + [len(p.stage) for p in parts])
        tokens: list[dict[str, int]] = [{} for _ in range(n_stages)]
        for p in parts:
            for k, used in enumerate(p.tokens):
                for key, value in used.items():
                    tokens[k][key] = tokens[k].get(key, 0) + value
        return Routed(
            proba=np.vstack([p.proba for p in parts]) if parts else np.zeros((0, n_labels)),
            stage=np.concatenate([p.stage for p in parts]) if parts else np.zeros(0, int),
            seconds=np.sum([p.seconds for p in parts], axis=0) if parts else np.zeros(n_stages),
            seen=[
                np.concatenate([p.seen[k] + off for p, off in zip(parts, offsets, strict=False)])
                if parts
                else np.zeros(0, int)
                for k in range(n_stages)
            ],
            stage_proba=[
                np.vstack([p.stage_proba[k] for p in parts]) if parts else np.zeros((0, n_labels))
                for k in range(n_stages)
            ],
            tokens=tokens,
        )


@register("cascade")
class CascadeClassifier(HoldsParts, Classifier):
    """Ordered stages of any kinds; each but the last answers only when confident enough."""

    parts_attribute = "stages_"
    tags: ClassVar[Capabilities] = Capabilities(
        multi_label=False, long_documents=False, composite=True, selects_thresholds=True
    )
    # each value alone; the stage entries, select's criterion and the cost are read by
    # stage_specs, selection_target and cost_model
    param_rules = {
        "stages": Optional(Items()),
        "select": Optional(Mapping()),
        "confidence": Choice(*CONFIDENCES),
        "valid_split": Number(0, 1, exclusive=True, what="a share between 0 and 1"),
        "candidates": Integer(min=2),
        "cost": Optional(Mapping()),
        "seed": SEED,
        "budget_confidence": Optional(
            Number(0, 1, exclusive=True, what="a probability between 0 and 1, e.g. 0.95")
        ),
    }

    def __init__(
        self,
        stages: list[dict[str, Any]] | None = None,
        select: dict[str, float] | None = None,
        confidence: str = "max",
        valid_split: float = 0.2,
        candidates: int = 140,
        cost: dict[str, float] | None = None,
        seed: int = 0,
        budget_confidence: float | None = DEFAULT_BUDGET_CONFIDENCE,
    ) -> None:
        self.stages = stages
        self.select = select
        self.confidence = confidence
        self.valid_split = valid_split
        self.candidates = candidates
        self.cost = cost
        self.seed = seed
        self.budget_confidence = budget_confidence

    # -- configuration ------------------------------------------------------------------

    def selection_summary(self) -> dict[str, Any] | None:
        """The validation selection with one row per stage: its threshold, its accuracy alone
        and the share it answered on the validation rows."""
        s = self.selection_
        stages = [
            {
                "name": name,
                "threshold": (
                    self.stage_thresholds_[k] if k < len(self.stage_thresholds_) else None
                ),
                "alone_accuracy": s["stage_alone_accuracy"][k],
                "share_answered": s["share_answered"][k],
            }
            for k, name in enumerate(self.answer_names())
        ]
        return {**s, "stages": stages}

    def stage_specs(self) -> list[StageSpec]:
        """The ``stages`` parameter checked and parsed; a bad entry is a one-line error."""
        if not isinstance(self.stages, list) or len(self.stages) < 2:
            raise DocsortError(
                "cascade needs `stages:`, a list of at least two entries, each a saved model "
                "({model: DIR}) or a kind config ({kind: tfidf, ...})"
            )
        human = self.human_stage()
        entries = self.stages[:-1] if human else self.stages
        specs: list[StageSpec] = []
        for i, entry in enumerate(entries):
            where = f"cascade stage {i + 1}"
            if _is_human(entry):
                raise DocsortError(f"{where}: a human stage must be the last one")
            if not isinstance(entry, dict):
                raise DocsortError(f"{where}: expected a mapping such as {{kind: tfidf}}")
            spec = parse_model_entry(entry, where, STAGE_KEYS)
            threshold = entry.get("threshold")
            if threshold is not None:
                if i == len(entries) - 1 and not human:
                    raise DocsortError(f"{where}: the last stage answers everything: no threshold")
                if not is_number(threshold) or not 0 <= threshold <= 1:
                    raise DocsortError(f"{where}: threshold must be a number in [0, 1]")
            cost = entry.get("cost")
            try:
                CostModel.from_dict(cost)
            except DocsortError as exc:
                raise DocsortError(f"{where}: {exc}") from None
            specs.append(
                StageSpec(
                    **vars(spec),
                    cost=cost,
                    threshold=None if threshold is None else float(threshold),
                    calibrate=bool(entry.get("calibrate", False)),
                )
            )
        make_names_unique(specs)
        if human and any(spec.name == human["name"] for spec in specs):
            raise DocsortError(
                f"cascade: a model stage is named {human['name']!r}, like the human stage: "
                "rename one"
            )
        return specs

    def human_stage(self) -> dict[str, Any] | None:
        """The last entry when it is people (``human``): its name and price per document."""
        if not isinstance(self.stages, list) or not self.stages or not _is_human(self.stages[-1]):
            return None
        entry = self.stages[-1]
        if entry == HUMAN:
            entry = {"human": True}
        where = f"cascade stage {len(self.stages)} (human)"
        unknown = sorted(set(entry) - set(HUMAN_KEYS))
        if unknown:
            raise DocsortError(f"{where}: unknown key {unknown[0]!r}; use {', '.join(HUMAN_KEYS)}")
        if entry.get("human") is not True:
            raise DocsortError(f"{where}: human: true marks people as the last stage")
        price = entry.get("usd_per_doc", 0.0)
        if not is_number(price) or not 0 <= price < math.inf:
            raise DocsortError(f"{where}: usd_per_doc must be a price >= 0, e.g. 0.4")
        name = entry.get("name", HUMAN)
        if not isinstance(name, str) or not name.strip():
            raise DocsortError(f"{where}: name must be a non-empty text")
        return {"name": name, "usd_per_doc": float(price)}

    def escalation_budget(self, confidence: float = 0.99) -> tuple[float | None, str]:
        """The share of documents this cascade may send to its last answering stage (people,
        or its last model stage), and that stage's name: the ``max_escalation_rate`` it was
        selected for, else the one-sided ``confidence`` Clopper-Pearson bound of the share it
        escalated on the selection rows; ``None`` when the selection does not say."""
        selection = getattr(self, "selection_", None) or {}
        last = self.answer_names()[-1]
        if selection.get("criterion") == "max_escalation_rate":
            return float(selection["value"]), last
        share, rows = selection.get("escalated_to_last"), selection.get("validation_rows")
        if share is None or not rows:
            return None, last
        return float(upper_share(np.array([share]), int(rows), confidence)[0]), last

    def with_people(
        self, correct: list[np.ndarray], usd_per_doc: Sequence[float], n: int
    ) -> tuple[list[np.ndarray], np.ndarray]:
        """The model stages' correctness and price per document, with the human stage's
        appended when there is one: people answer the rest, taken to be right, at their
        price (what threshold selection and the sweep simulate)."""
        if not self.human_:
            return list(correct), np.array(usd_per_doc, dtype=float)
        price = self.human_["usd_per_doc"]
        return [*correct, np.ones(n, dtype=bool)], np.array([*usd_per_doc, price], dtype=float)

    def answer_names(self) -> list[str]:
        """The name of each stage that can answer a row, in routing order: the model stages,
        then the human stage when there is one."""
        human = getattr(self, "human_", None)
        return [*self.stage_names_, *([human["name"]] if human else [])]

    def selection_target(self) -> tuple[str, float]:
        """The one criterion of ``select``, checked (``delta`` may accompany
        ``max_auto_error``: see ``selection_delta``)."""
        select = DEFAULT_SELECT if self.select is None else self.select
        if isinstance(select, dict) and "max_auto_error" in select:
            select = {k: v for k, v in select.items() if k != "delta"}
        elif isinstance(select, dict) and "delta" in select:
            raise DocsortError(
                "cascade select: delta is the risk of a certified error bound; give it with "
                "max_auto_error"
            )
        if not isinstance(select, dict) or len(select) != 1:
            raise DocsortError(
                f"cascade select: give exactly one of {', '.join(SELECT_KEYS)} (got {select!r})"
            )
        key, value = next(iter(select.items()))
        if key not in SELECT_KEYS:
            raise DocsortError(
                f"cascade select: unknown {key!r}; use one of {', '.join(SELECT_KEYS)}"
            )
        if not is_number(value) or value < 0 or (key != "max_cost_per_1k" and value > 1):
            limit = "a price >= 0" if key == "max_cost_per_1k" else "a share in [0, 1]"
            raise DocsortError(f"cascade select: {key} must be {limit}, got {value!r}")
        if key == "max_auto_error" and not 0 < value < 1:
            raise DocsortError(f"cascade select: max_auto_error must be in (0, 1), got {value!r}")
        return key, float(value)

    def selection_delta(self) -> float:
        """``select``'s ``delta`` (default ``DEFAULT_DELTA``): the certified bound holds with
        probability at least 1 − delta."""
        delta = (self.select or {}).get("delta", DEFAULT_DELTA)
        if not is_number(delta) or not 0 < delta < 1:
            raise DocsortError(f"cascade select: delta must be in (0, 1), e.g. 0.05, not {delta!r}")
        return float(delta)

    def _check_params(self) -> None:
        """What the rules cannot see alone (``param_rules`` check each value first)."""
        key, _ = self.selection_target()
        if key == "max_auto_error":
            self.selection_delta()
        bound = self.budget_confidence
        if bound is not None and key not in BUDGET_KEYS and bound != DEFAULT_BUDGET_CONFIDENCE:
            raise DocsortError(
                f"cascade budget_confidence bounds a budget ({' or '.join(BUDGET_KEYS)}); "
                f"select has {key}: drop budget_confidence or select a budget"
            )
        self.cost_model()

    def check(self) -> None:
        """Every parameter and stage entry checked before any data is read or model trained."""
        super().check()
        for i, spec in enumerate(self.stage_specs()):
            if spec.kind is not None:  # a kind's parameters are checked when it is built
                try:
                    create(spec.kind, spec.params).check()
                except DocsortError as exc:
                    raise DocsortError(f"cascade stage {i + 1} ({spec.name}): {exc}") from None

    def cost_model(self) -> CostModel:
        return CostModel.from_dict(self.cost)

    # -- the contract -------------------------------------------------------------------
    def fit(self, train: Dataset, valid: Dataset | None = None) -> CascadeClassifier:
        self.check()
        specs = self.stage_specs()
        if train.multi_label:
            raise DocsortError("a cascade needs single-label data; multi-label is not supported")
        self._remember_training(train)
        if (valid is None or valid.labels is None) and all(s.model_dir for s in specs):
            # every stage is trained already: every given row can serve threshold selection
            valid = train
            self.validation_source_ = f"all {len(train):,} given rows (every stage pre-trained)"
        elif valid is None or valid.labels is None:
            train, valid = stratified_split(train, self.valid_split, self.seed)
            self.validation_source_ = f"held-out {self.valid_split:.0%} of the training rows"
        else:
            self.validation_source_ = valid.name or "validation data"
        stages = []
        for i, spec in enumerate(specs):
            try:
                if spec.model_dir is not None:
                    model = load(spec.model_dir)
                else:
                    model = create(spec.kind or "", spec.params).fit(train, valid)
                    if spec.calibrate:
                        model.calibrate(valid)
            except DocsortError as exc:
                raise DocsortError(f"cascade stage {i + 1} ({spec.name}): {exc}") from None
            stages.append(model)
        self.human_ = self.human_stage()
        self._set_stages(stages, [s.name for s in specs], [s.cost for s in specs])
        self._choose_thresholds(valid, [s.threshold for s in specs])
        return self

    def _set_stages(
        self, stages: list[Classifier], names: list[str], costs: list[dict[str, float] | None]
    ) -> None:
        """Keep the stages and map each one's label columns onto the cascade's."""
        columns = []
        for model, name in zip(stages, names, strict=True):
            if model.labels_.multi_label:
                raise DocsortError(f"cascade stage {name!r} is multi-label; stages must not be")
            unknown = [n for n in model.labels_.names if n not in self.labels_.names]
            if unknown:
                raise DocsortError(
                    f"cascade stage {name!r} knows label {unknown[0]!r}, which the cascade's "
                    "data does not have; train the stage on the same label set"
                )
            columns.append(np.array([self.labels_.index(n) for n in model.labels_.names]))
        self.stages_ = stages
        self.stage_names_ = names
        self.stage_costs_ = costs
        self._columns = columns

    def stage_cost_models(self, default: CostModel | None = None) -> list[CostModel]:
        """Per stage, ``default`` (the cascade's ``cost``) with the prices its entry sets on top:
        e.g. an API stage's token prices beside everyone's hardware price."""
        base = (default or self.cost_model()).to_dict()
        return [CostModel.from_dict({**base, **(own or {})}) for own in self.stage_costs_]

    def _choose_thresholds(self, valid: Dataset, fixed: list[float | None]) -> None:
        texts, y = valid.texts, valid.targets(self.labels_)
        probas, seconds, tokens = [], [], []
        for k in range(len(self.stages_)):
            proba, spent, used = self._run_stage(k, texts)
            probas.append(proba)
            seconds.append(spent)
            tokens.append(used)
        n = len(texts)
        prices = self.stage_cost_models()
        usd = [price.usage(s, t) / n for price, s, t in zip(prices, seconds, tokens, strict=True)]
        early = probas if self.human_ else probas[:-1]
        confidences = [self.confidence_of(p) for p in early]
        correct = [p.argmax(axis=1) == y for p in probas]
        correct, usd_per_doc = self.with_people(correct, usd, n)
        fixed = fixed[: len(early)]
        key, value = self.selection_target()
        grids = candidate_grid(confidences, fixed, self.candidates)
        if key == "max_auto_error":
            thresholds, chosen, met = certify_thresholds(
                confidences, correct, usd_per_doc, grids, value, self.selection_delta()
            )
        else:
            thresholds, chosen, met = select_thresholds(
                confidences, correct, usd_per_doc, grids, key, value, self.budget_confidence
            )
        self.stage_thresholds_ = [float(t) for t in thresholds]
        self.selection_ = {
            "criterion": key,
            "value": value,
            "target_met": met,
            "validation_source": self.validation_source_,
            "validation_rows": n,
            "settings_searched": int(np.prod([len(g) for g in grids])),
            **chosen,
            "stage_alone_accuracy": [float(c.mean()) for c in correct[: len(probas)]]
            + ([None] if self.human_ else []),
            "stage_seconds_per_doc": [s / n for s in seconds] + ([None] if self.human_ else []),
            "stage_cost_per_1k": (usd_per_doc * 1000).tolist(),
        }
        self.validation_sweep_ = threshold_sweep(
            confidences, correct, usd_per_doc, self.stage_thresholds_, self.stage_names_
        )
        if self.human_:
            self.selection_["human"] = dict(self.human_)

    def confidence_of(self, proba: np.ndarray) -> np.ndarray:
        """How sure a stage is of each row: top probability, or top minus second."""
        if len(proba) == 0:
            return np.zeros(0)
        if self.confidence == "max" or proba.shape[1] < 2:
            return proba.max(axis=1)
        top2 = np.partition(proba, -2, axis=1)[:, -2:]
        return top2[:, 1] - top2[:, 0]

    def _run_stage(self, k: int, texts: Sequence[str]) -> tuple[np.ndarray, float, dict[str, int]]:
        """Stage ``k`` on ``texts``: probabilities in the cascade's label order, seconds, tokens."""
        model = self.stages_[k]
        full = np.zeros((len(texts), len(self.labels_)))
        if len(texts) == 0:
            return full, 0.0, {}
        before = model.token_usage()
        start = time.perf_counter()
        full[:, self._columns[k]] = model.predict_proba(list(texts))
        seconds = time.perf_counter() - start
        after = model.token_usage()
        return full, seconds, {key: after[key] - before.get(key, 0) for key in after}

    def route(self, texts: Sequence[str]) -> Routed:
        """Run the cascade: each stage reads only the rows the stages before it passed on."""
        self._check_fitted()
        if self.long_doc_ is not None:
            raise DocsortError(
                "a cascade reads long documents as each of its stages was trained to; "
                "set --long-doc when training a stage, not on the cascade"
            )
        n, n_stages = len(texts), len(self.stages_)
        proba = np.zeros((n, len(self.labels_)))
        stage = np.full(n, -1, dtype=np.int64)
        seconds = np.zeros(n_stages)
        seen, stage_proba, tokens = [], [], []
        pending = np.arange(n)
        for k in range(n_stages):
            p, seconds[k], used = self._run_stage(k, [texts[i] for i in pending])
            seen.append(pending)
            stage_proba.append(p)
            tokens.append(used)
            if k < len(self.stage_thresholds_):
                answer = self.confidence_of(p) >= self.stage_thresholds_[k]
            else:
                answer = np.ones(len(pending), dtype=bool)
            proba[pending[answer]] = p[answer]
            stage[pending[answer]] = k
            if k == n_stages - 1 and self.human_:  # to people, with the last stage's guess
                proba[pending[~answer]] = p[~answer]
                stage[pending[~answer]] = n_stages
            pending = pending[~answer]
        return Routed(proba, stage, seconds, seen, stage_proba, tokens)

    def _predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        return self.route(texts).proba

    def _raw_proba_traced(self, texts: Sequence[str]) -> tuple[np.ndarray, Routed]:
        routed = self.route(texts)
        return routed.proba, routed

    def _join_traces(self, traces: Sequence[Routed]) -> Routed:
        return Routed.concat(traces, len(self.labels_), len(self.stages_))

    def token_usage(self) -> dict[str, int]:
        return summed_token_usage(getattr(self, "stages_", []))

    # -- parts (docsort export replaces the stages it can export) ---------------------------
    def parts(self) -> list[Classifier]:
        """The stages, in order."""
        self._check_fitted()
        return list(self.stages_)

    def with_parts(self, parts: Sequence[Classifier]) -> CascadeClassifier:
        """A copy routing through ``parts`` (one per stage, same labels) at the same
        thresholds."""
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone._set_stages(list(parts), list(self.stage_names_), list(self.stage_costs_))
        return clone

    # -- persistence --------------------------------------------------------------------
    def _stage_dirs(self) -> list[str]:
        return numbered_dirs(STAGES_DIR, self.stage_names_)

    def _save_weights(self, directory: Path) -> None:
        for model, sub in zip(self.stages_, self._stage_dirs(), strict=True):
            model.save(directory / sub)
        write_json(
            directory / STATE,
            {
                "stages": [
                    {
                        "name": name,
                        "dir": sub,
                        "kind": model.kind,
                        "threshold": self.stage_thresholds_[k]
                        if k < len(self.stage_thresholds_)
                        else None,
                        "cost": cost,
                    }
                    for k, (name, sub, model, cost) in enumerate(
                        zip(
                            self.stage_names_,
                            self._stage_dirs(),
                            self.stages_,
                            self.stage_costs_,
                            strict=True,
                        )
                    )
                ],
                "thresholds": self.stage_thresholds_,
                "human": self.human_,
                "selection": self.selection_,
                "validation_sweep": self.validation_sweep_,
            },
        )

    def _load_weights(self, directory: Path) -> None:
        import json

        path = directory / STATE
        if not path.is_file():
            raise DocsortError(f"{directory}: {STATE} is missing; save the cascade again")
        state = json.loads(path.read_text(encoding="utf-8"))
        stages = [self.load_part(directory / entry["dir"]) for entry in state["stages"]]
        self._set_stages(
            stages,
            [entry["name"] for entry in state["stages"]],
            [entry.get("cost") for entry in state["stages"]],
        )
        self.stage_thresholds_ = [float(t) for t in state["thresholds"]]
        self.human_ = state.get("human")
        self.selection_ = state.get("selection") or {}
        self.validation_source_ = self.selection_.get("validation_source", "")
        self.validation_sweep_ = state.get("validation_sweep") or []

    def _weights_problem(self) -> str | None:
        wanted = len(self.stages_) - (0 if self.human_ else 1)
        if len(self.stage_thresholds_) != wanted:
            each = (
                "one per model stage, before the human"
                if self.human_
                else "one per stage but the last"
            )
            return (
                f"its {STATE} holds {len(self.stage_thresholds_)} thresholds for "
                f"{len(self.stages_)} stages ({each})"
            )
        return None


def _is_human(entry: Any) -> bool:
    return entry == HUMAN or (isinstance(entry, dict) and "human" in entry)


# -- threshold search (pure functions: confidences and correctness in, settings out) --------


def upper_share(shares: np.ndarray, n: int, confidence: float) -> np.ndarray:
    """One-sided Clopper-Pearson upper bounds of shares seen as k of ``n`` rows: the true share
    is at most this with probability ``confidence`` (exact for a binomial count)."""
    from scipy.stats import beta

    k = np.rint(np.asarray(shares, dtype=float) * n)
    with np.errstate(invalid="ignore"):
        upper = beta.ppf(confidence, k + 1, np.maximum(n - k, 1e-12))
    return np.where(k >= n, 1.0, upper)


def candidate_grid(
    confidences: Sequence[np.ndarray], fixed: Sequence[float | None], per_stage: int
) -> list[np.ndarray]:
    """Candidate thresholds per non-last stage: quantiles of its validation confidences, plus
    "answer every row" (0) and "answer none" (``ESCALATE_ALL``); a fixed threshold stays fixed.
    The grid shrinks so that all combinations stay under ``MAX_SETTINGS``."""
    free = sum(1 for k in range(len(confidences)) if fixed[k] is None)
    if free:
        per_stage = max(2, min(per_stage, int(MAX_SETTINGS ** (1 / free))))
    grids = []
    for k, conf in enumerate(confidences):
        if fixed[k] is not None:
            grids.append(np.array([fixed[k]]))
            continue
        values = np.unique(conf)
        if len(values) > per_stage - 2:
            values = np.unique(np.quantile(conf, np.linspace(0, 1, per_stage - 2)))
        grids.append(np.unique(np.concatenate([[0.0], values, [ESCALATE_ALL]])))
    return grids


def simulate(
    thresholds: Sequence[float],
    confidences: Sequence[np.ndarray],
    correct: Sequence[np.ndarray],
    usd_per_doc: np.ndarray,
) -> dict[str, Any]:
    """What the cascade would do with ``thresholds`` on rows whose stage outputs are known."""
    n = len(correct[0])
    pending = np.ones(n, dtype=bool)
    hits = 0
    reached, answered = [], []
    for k in range(len(correct)):
        reached.append(pending.mean() if n else 0.0)
        last = k == len(correct) - 1
        take = pending.copy() if last else pending & (confidences[k] >= thresholds[k])
        hits += int((correct[k] & take).sum())
        answered.append(take.mean() if n else 0.0)
        pending &= ~take
    usd = float(np.dot(reached, usd_per_doc))
    return {
        "thresholds": [float(t) for t in thresholds],
        "accuracy": hits / n if n else 0.0,
        "share_answered": [float(a) for a in answered],
        "share_reached": [float(r) for r in reached],
        "escalated_to_last": float(reached[-1]),
        "cost_per_1k": usd * 1000,
    }


def select_thresholds(
    confidences: Sequence[np.ndarray],
    correct: Sequence[np.ndarray],
    usd_per_doc: np.ndarray,
    grids: Sequence[np.ndarray],
    criterion: str,
    value: float,
    budget_confidence: float | None = None,
) -> tuple[list[float], dict[str, Any], bool]:
    """Search every threshold combination; return the chosen thresholds, what they do on the
    validation rows, and whether the target was met (if not: the closest setting). With
    ``budget_confidence`` a budget is checked against upper bounds for new rows, not against
    the validation shares themselves."""
    settings = [simulate(t, confidences, correct, usd_per_doc) for t in itertools.product(*grids)]
    accuracy = np.array([s["accuracy"] for s in settings])
    cost = np.array([s["cost_per_1k"] for s in settings])
    to_last = np.array([s["escalated_to_last"] for s in settings])
    bounded = budget_confidence is not None and criterion in BUDGET_KEYS
    if bounded:
        reached = np.array([s["share_reached"] for s in settings])
        upper = upper_share(reached, len(correct[0]), budget_confidence)
        upper_to_last, upper_cost = upper[:, -1], upper @ usd_per_doc * 1000
    eps = 1e-12
    if criterion in ("target_accuracy", "max_accuracy_drop"):
        target = value if criterion == "target_accuracy" else float(correct[-1].mean()) - value
        feasible = accuracy >= target - eps
        # cheapest that reaches the target; then the most accurate; then fewest sent on
        order = np.lexsort((to_last, -accuracy, cost))
        fallback = np.lexsort((cost, -accuracy))  # unreachable: the most accurate there is
    else:
        if criterion == "max_escalation_rate":
            limit = upper_to_last if bounded else to_last
        else:
            limit = upper_cost if bounded else cost
        feasible = limit <= value + eps
        # the most accurate within budget. A few hundred validation rows often tie several
        # settings; then, if the last stage alone is the most accurate on validation, spend more
        # of the budget (sending it more rows is the safer bet on new rows), else spend less
        spend = 1 if float(correct[-1].mean()) >= max(float(c.mean()) for c in correct) else -1
        order = np.lexsort((-spend * to_last, -spend * cost, -accuracy))
        fallback = np.lexsort((-accuracy, limit))  # over budget everywhere: the cheapest
    met = bool(feasible.any())
    best = next(int(i) for i in order if feasible[i]) if met else int(fallback[0])
    chosen = dict(settings[best])
    if bounded:
        chosen["bound"] = {
            "confidence": budget_confidence,
            "escalated_to_last": float(upper_to_last[best]),
            "cost_per_1k": float(upper_cost[best]),
        }
    if criterion == "max_accuracy_drop":
        chosen["target_accuracy"] = float(correct[-1].mean()) - value
    return chosen["thresholds"], chosen, met


def error_p_value(errors: int, answered: int, alpha: float) -> float:
    """Evidence against "the error rate of what a stage answers exceeds ``alpha``": the chance
    of at most ``errors`` wrong among ``answered`` rows if it were exactly ``alpha`` (the
    binomial tail; small when the rows are clearly better than ``alpha``)."""
    from scipy.stats import binom

    return float(binom.cdf(errors, answered, alpha))


def rows_to_pass(observed: float, alpha: float, delta: float, most: int = 100_000) -> int:
    """The fewest answered rows at which an error rate of ``observed`` passes the test of
    "at most ``alpha``" at level ``delta`` (``most`` if none up to it does)."""
    from scipy.stats import binom

    n = np.arange(1, most + 1)
    passes = binom.cdf(np.floor(observed * n), n, alpha) <= delta
    return int(n[passes][0]) if passes.any() else most


def certify_thresholds(
    confidences: Sequence[np.ndarray],
    correct: Sequence[np.ndarray],
    usd_per_doc: np.ndarray,
    grids: Sequence[np.ndarray],
    alpha: float,
    delta: float,
) -> tuple[list[float], dict[str, Any], bool]:
    """Thresholds under which, with probability at least 1 − ``delta``, the error rate among
    the documents each early stage answers is at most ``alpha`` (Learn then Test, Angelopoulos
    et al. 2021): per stage, candidate thresholds are tested from the most to the least
    confident with a binomial-tail p-value, stopping at the first that fails (fixed-sequence
    testing needs no correction for the number of thresholds tried); the lowest one that passed
    is kept, which answers the most documents. Thresholds answering too few rows to pass with
    half of ``alpha`` wrong are skipped, not tested. ``delta`` is split evenly across the early
    stages (Bonferroni). A later stage is tested on the rows the earlier ones passed on, with
    their thresholds as chosen on the same rows: that step is not covered by the proof, and the
    simulation test measures the joint violation rate instead. A fixed threshold is kept and
    its bound reported, not certified."""
    n = len(correct[0])
    pending = np.ones(n, dtype=bool)
    per_stage_delta = delta / max(len(confidences), 1)
    # The sequence starts where enough rows answer for a test to pass with some errors (half
    # of alpha observed): starting at the few most confident rows, one error there would stop
    # the sequence before it reached any useful threshold. Which thresholds are skipped depends
    # on how many rows answer (the confidences), not on which rows are right, so the order of
    # the tests is still fixed before their outcomes are seen
    least = rows_to_pass(alpha / 2, alpha, per_stage_delta)
    thresholds: list[float] = []
    stages: list[dict[str, Any]] = []
    for k, conf in enumerate(confidences):
        wrong = ~correct[k]
        chosen_t, fixed = ESCALATE_ALL, len(grids[k]) == 1
        candidates = grids[k] if fixed else np.sort(grids[k][grids[k] < ESCALATE_ALL])[::-1]
        # fewer rows than that reach this stage: start where none wrong would pass
        start = least if pending.sum() >= least else rows_to_pass(0.0, alpha, per_stage_delta)
        for t in candidates:
            take = pending & (conf >= t)
            answered = int(take.sum())
            if fixed:
                chosen_t = float(t)
                break
            if answered < start:
                continue  # too few rows answered to start testing here
            if error_p_value(int((take & wrong).sum()), answered, alpha) > per_stage_delta:
                break
            chosen_t = float(t)
        take = pending & (conf >= chosen_t)
        answered, errors = int(take.sum()), int((take & wrong).sum())
        upper = (
            float(upper_share(np.array([errors / answered]), answered, 1 - per_stage_delta)[0])
            if answered
            else None
        )
        stages.append(
            {
                "answered": answered,
                "errors": errors,
                "observed_error": errors / answered if answered else None,
                "error_bound": upper,
                "certified": not fixed and (upper is None or upper <= alpha + 1e-12),
            }
        )
        thresholds.append(chosen_t)
        pending &= ~take
    chosen = simulate(thresholds, confidences, correct, usd_per_doc)
    chosen["certified"] = {
        "max_auto_error": alpha,
        "delta": delta,
        "delta_per_stage": per_stage_delta,
        "coverage": 1.0 - chosen["escalated_to_last"],
        "stages": stages,
    }
    return thresholds, chosen, True


def threshold_sweep(
    confidences: Sequence[np.ndarray],
    correct: Sequence[np.ndarray],
    usd_per_doc: np.ndarray,
    chosen: Sequence[float],
    names: Sequence[str],
    points: int = 60,
) -> list[dict[str, Any]]:
    """Each non-last stage's threshold varied over its range, the others kept as chosen: how
    accuracy, the share escalated and the cost move. One row per setting."""
    rows = []
    for k, conf in enumerate(confidences):
        grid = candidate_grid([conf], [None], points)[0]
        for t in np.unique(np.concatenate([grid, [chosen[k]]])):
            thresholds = list(chosen)
            thresholds[k] = float(t)
            result = simulate(thresholds, confidences, correct, usd_per_doc)
            rows.append(
                {
                    "stage": names[k],
                    "threshold": float(t),
                    "accuracy": result["accuracy"],
                    "escalated": 1.0 - result["share_answered"][0],
                    "escalated_to_last": result["escalated_to_last"],
                    "cost_per_1k": result["cost_per_1k"],
                    "chosen": bool(math.isclose(t, chosen[k])),
                }
            )
    return rows
