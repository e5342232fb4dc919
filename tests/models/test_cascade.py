"""Cascades: thresholds meet their target on validation rows, later stages read only the rows
passed on to them, the answering stage is recorded, and a saved cascade stands on its own."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

import docsort
from docsort.data.dataset import Dataset
from docsort.errors import DocsortError
from docsort.evaluation import CostModel
from docsort.models import create, load, register
from docsort.models.base import REGISTRY
from docsort.models.kinds.cascade import (
    DEFAULT_BUDGET_CONFIDENCE,
    CascadeClassifier,
    candidate_grid,
    select_thresholds,
    upper_share,
)
from docsort.models.kinds.tfidf import TfidfClassifier
from tests.models.conftest import STRONG, WEAK


def fitted(splits, select: dict | None = None, **params) -> CascadeClassifier:
    train, valid, _ = splits
    stages = params.pop("stages", [WEAK, STRONG])
    model = create("cascade", {"stages": stages, "select": select, **params})
    return model.fit(train, valid)


@pytest.fixture(scope="module")
def escalating(splits) -> CascadeClassifier:
    """Weak → strong, at most 40 % of the validation rows sent on (shared: tests only read it)."""
    return fitted(splits, {"max_escalation_rate": 0.4})


def accuracy(model: CascadeClassifier, data: Dataset) -> float:
    return float((model.predict_proba(data.texts).argmax(1) == data.targets(model.labels_)).mean())


@pytest.mark.parametrize("target", [0.6, 0.7])
def test_chosen_thresholds_reach_the_target_accuracy_on_validation(splits, target) -> None:
    model = fitted(splits, {"target_accuracy": target})
    valid = splits[1]
    assert model.selection_["target_met"]
    assert accuracy(model, valid) >= target  # the cascade itself, run on the validation rows
    assert model.selection_["accuracy"] == pytest.approx(accuracy(model, valid))


def test_escalation_budget_is_kept_and_a_looser_budget_is_not_less_accurate(splits) -> None:
    valid = splits[1]
    shares, accuracies = [], []
    for rate in (0.1, 0.5):
        model = fitted(splits, {"max_escalation_rate": rate})
        routed = model.route(valid.texts)
        shares.append(len(routed.seen[1]) / len(valid))
        accuracies.append(accuracy(model, valid))
        assert shares[-1] <= rate
    assert accuracies[1] >= accuracies[0]
    assert shares[0] > 0  # the weak stage is not sure of everything: some rows went on


def test_only_escalated_rows_reach_the_second_stage(escalating, splits, monkeypatch) -> None:
    model = escalating
    test = splits[2]
    first, second = model.stages_
    calls: list[int] = []
    original = second.predict_proba

    def counting(texts: Sequence[str]) -> np.ndarray:
        calls.append(len(texts))
        return original(texts)

    monkeypatch.setattr(second, "predict_proba", counting)
    routed = model.route(test.texts)
    unsure = model.confidence_of(first.predict_proba(test.texts)) < model.stage_thresholds_[0]
    assert 0 < unsure.sum() < len(test)
    assert calls == [int(unsure.sum())]
    np.testing.assert_array_equal(routed.stage, unsure.astype(int))
    np.testing.assert_array_equal(routed.seen[1], np.flatnonzero(unsure))
    assert routed.seconds[1] > 0


def test_predictions_record_the_answering_stage(escalating, splits) -> None:
    model = escalating
    texts = splits[2].texts
    rows = docsort.predict(model, texts)
    stages = model.route(texts).stage
    assert [r["stage"] for r in rows] == [model.stage_names_[k] for k in stages]
    assert {r["stage"] for r in rows} == {"tfidf-1", "tfidf-2"}  # same names made unique


def test_save_load_round_trip_is_self_contained(splits, tmp_path: Path) -> None:
    train, valid, test = splits
    TfidfClassifier(**{k: v for k, v in WEAK.items() if k != "kind"}).fit(train).save(
        tmp_path / "weak"
    )
    stages = [{"model": str(tmp_path / "weak"), "name": "cheap"}, {**STRONG, "name": "full"}]
    model = fitted(splits, {"max_escalation_rate": 0.4}, stages=stages)
    before = model.predict_proba(test.texts)
    model.save(tmp_path / "cascade")
    shutil.rmtree(tmp_path / "weak")  # the cascade keeps its own copy of each stage
    again = load(tmp_path / "cascade")
    assert isinstance(again, CascadeClassifier)
    assert again.stage_names_ == ["cheap", "full"]
    assert again.stage_thresholds_ == model.stage_thresholds_
    np.testing.assert_allclose(again.predict_proba(test.texts), before, atol=1e-9)
    np.testing.assert_array_equal(again.route(test.texts).stage, model.route(test.texts).stage)


def test_evaluate_reports_stages_alone_and_a_sweep_on_the_same_rows(escalating, splits) -> None:
    model = escalating
    test = splits[2]
    metrics = docsort.evaluate(model, test)
    stages = metrics["stages"]
    assert sum(s["share"] for s in stages) == pytest.approx(1.0)
    assert sum(s["n_answered"] for s in stages) == metrics["n"]
    assert metrics["escalated_to_last"] == stages[1]["reached"] <= 0.5
    assert metrics["cost_per_1k"] == pytest.approx(sum(s["cost_per_1k"] for s in stages))
    y = test.targets(model.labels_)
    for stage, alone in zip(stages, model.stages_, strict=True):
        expected = (alone.predict_proba(test.texts).argmax(1) == y).mean()
        assert stage["alone_accuracy"] == pytest.approx(expected)
    # the sweep's "answer nothing at stage 1" end is the last stage alone, on the same rows
    sweep = metrics["sweep"]
    everything_on = [r for r in sweep if r["escalated"] == 1.0]
    assert everything_on and everything_on[0]["accuracy"] == pytest.approx(
        stages[1]["alone_accuracy"]
    )
    assert sum(r["chosen"] for r in sweep) == 1


class _TokenCounting(TfidfClassifier):
    """A local stand-in for a kind that pays per token (an LLM): counts words as tokens."""

    def _predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        usage = self.__dict__.setdefault("usage_", {"prompt_tokens": 0, "completion_tokens": 0})
        usage["prompt_tokens"] += sum(len(t.split()) for t in texts)
        usage["completion_tokens"] += len(texts)
        return super()._predict_proba(texts)


if "token-counting-test" not in REGISTRY:
    register("token-counting-test")(_TokenCounting)


def test_tokens_a_stage_reports_are_priced_in_its_cost(splits) -> None:
    stages = [WEAK, {"kind": "token-counting-test", "cost": {"prompt_per_1k_tokens": 1.0}}]
    model = fitted(splits, {"max_escalation_rate": 0.4}, stages=stages)
    test = splits[2]
    free = CostModel(hardware_per_hour=0.0)
    metrics = docsort.evaluate(model, test, cost_model=free, sweep=False)
    second = metrics["stages"][1]
    reached = model.route(test.texts).seen[1]
    words = sum(len(test.texts[i].split()) for i in reached)
    assert second["tokens"] == {"prompt_tokens": words, "completion_tokens": len(reached)}
    assert second["cost_per_1k"] == pytest.approx(words / 1000 * 1.0 * 1000 / len(test))
    assert metrics["stages"][0]["cost_per_1k"] == 0.0  # no hardware price, no tokens


def test_select_thresholds_picks_the_cheapest_setting_meeting_the_target() -> None:
    # stage 0 is right on rows with confidence >= 0.6 only; stage 1 is always right
    confidence = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2])
    correct = [confidence >= 0.6, np.ones(8, dtype=bool)]
    grid = [np.array([0.0, 0.3, 0.5, 0.6, 0.7, 2.0])]
    cost = np.array([0.001, 0.1])
    picked, chosen, met = select_thresholds(
        [confidence], correct, cost, grid, "target_accuracy", 1.0
    )
    assert met and picked == [0.6] and chosen["escalated_to_last"] == 0.5
    picked, chosen, met = select_thresholds(
        [confidence], correct, cost, grid, "max_escalation_rate", 0.25
    )
    assert met and picked == [0.3] and chosen["accuracy"] == 0.625
    budget = (0.001 + 0.1 * 0.375) * 1000  # affords 3 of 8 rows at stage 1
    picked, chosen, met = select_thresholds(
        [confidence], correct, cost, grid, "max_cost_per_1k", budget
    )
    assert met and picked == [0.5] and chosen["accuracy"] == 0.875
    _, chosen, met = select_thresholds([confidence], correct, cost, grid, "target_accuracy", 1.01)
    assert not met and chosen["accuracy"] == 1.0  # unreachable: the most accurate setting


def test_a_budget_is_spent_when_validation_accuracy_cannot_tell_settings_apart() -> None:
    # both stages are right on every validation row: every threshold ties on accuracy, so the
    # budget criteria send as many rows on as they afford (the later stage is the stronger one)
    confidence = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2])
    correct = [np.ones(8, dtype=bool), np.ones(8, dtype=bool)]
    grid = [np.array([0.0, 0.3, 0.5, 0.6, 0.7, 2.0])]
    cost = np.array([0.001, 0.1])
    picked, chosen, met = select_thresholds(
        [confidence], correct, cost, grid, "max_escalation_rate", 0.5
    )
    assert met and picked == [0.6] and chosen["escalated_to_last"] == 0.5
    picked, _, met = select_thresholds([confidence], correct, cost, grid, "target_accuracy", 1.0)
    assert met and picked == [0.0]  # an accuracy target still takes the cheapest setting
    # a weaker last stage: stage 0 alone is right on 6 of 8 rows, stage 1 only on the rows
    # stage 0 is sure of, so sending more on never gains; the tie goes to the cheapest setting
    correct = [confidence >= 0.4, confidence >= 0.6]
    picked, chosen, met = select_thresholds(
        [confidence], correct, cost, grid, "max_escalation_rate", 0.5
    )
    assert met and chosen["accuracy"] == 0.75 and chosen["escalated_to_last"] == 0.0


def test_upper_share_is_the_exact_one_sided_binomial_bound() -> None:
    # none of 10 rows seen: the share p with (1 - p)^10 = 5 %; all of them: 1
    bounds = upper_share(np.array([0.0, 0.3, 1.0]), 10, 0.95)
    assert bounds[0] == pytest.approx(1 - 0.05 ** (1 / 10))
    assert 0.3 < bounds[1] < 1 and bounds[2] == 1.0
    assert upper_share(np.array([0.3]), 10_000, 0.95)[0] < 0.31  # more rows, a tighter bound


def test_an_escalation_budget_with_confidence_holds_on_new_rows() -> None:
    # stage 0's confidence is uniform, so the share of *new* rows a threshold t escalates is t;
    # stage 1 is always right, so the most accurate setting spends the whole budget
    rng = np.random.default_rng(0)
    budget, n, draws = 0.3, 400, 200
    over = {None: 0, 0.95: 0, DEFAULT_BUDGET_CONFIDENCE: 0}
    for _ in range(draws):
        confidence = rng.random(n)
        correct = [rng.random(n) < confidence, np.ones(n, dtype=bool)]
        grid = candidate_grid([confidence], [None], 140)
        for level in over:
            picked, chosen, met = select_thresholds(
                [confidence], correct, np.zeros(2), grid, "max_escalation_rate", budget, level
            )
            assert met and chosen["escalated_to_last"] <= budget
            over[level] += picked[0] > budget  # the share escalated on new rows
    assert over[None] / draws > 0.3  # met on validation, often missed on new rows
    assert over[0.95] / draws <= 0.05
    # the default a cascade gets with no budget_confidence given: 90 %
    assert over[DEFAULT_BUDGET_CONFIDENCE] / draws <= 1 - DEFAULT_BUDGET_CONFIDENCE


def test_a_cascade_with_budget_confidence_records_its_bound(splits) -> None:
    plain = fitted(splits, {"max_escalation_rate": 0.4}, budget_confidence=None)
    bounded = fitted(splits, {"max_escalation_rate": 0.4}, budget_confidence=0.9)
    bound = bounded.selection_["bound"]
    assert bound["confidence"] == 0.9 and bound["escalated_to_last"] <= 0.4
    assert bounded.selection_["escalated_to_last"] < bound["escalated_to_last"]
    assert bounded.selection_["escalated_to_last"] <= plain.selection_["escalated_to_last"]
    assert "bound" not in plain.selection_


def test_a_budget_is_held_on_new_rows_with_90_percent_confidence_by_default(escalating) -> None:
    assert escalating.budget_confidence == 0.9  # the fixture gives none
    assert escalating.selection_["bound"]["confidence"] == 0.9
    assert escalating.selection_["bound"]["escalated_to_last"] <= 0.4


def test_saved_stages_choose_thresholds_on_every_given_row(splits, tmp_path) -> None:
    train, valid, _ = splits
    for name, stage in (("weak", WEAK), ("strong", STRONG)):
        create(stage["kind"], {k: v for k, v in stage.items() if k != "kind"}).fit(train).save(
            tmp_path / name
        )
    stages = [{"model": str(tmp_path / "weak")}, {"model": str(tmp_path / "strong")}]
    model = create("cascade", {"stages": stages}).fit(valid)
    assert model.selection_["validation_rows"] == len(valid)
    assert "every stage pre-trained" in model.selection_["validation_source"]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"stages": [{"kind": "tfidf"}]}, "at least two"),
        ({"stages": [{"kind": "tfidf"}, "tfidf"]}, "cascade stage 2: expected a mapping"),
        ({"stages": [{"kind": "tfidf", "model": "x"}, STRONG]}, "either `model: DIR`"),
        ({"stages": [{"model": "x", "C": 1}, STRONG]}, "takes no parameters"),
        ({"stages": [WEAK, {**STRONG, "threshold": 0.5}]}, "last stage answers everything"),
        ({"stages": [WEAK, STRONG], "select": {"accuracy": 0.9}}, "unknown 'accuracy'"),
        ({"stages": [WEAK, STRONG], "select": {"max_escalation_rate": 3}}, "share in [0, 1]"),
        ({"stages": [WEAK, STRONG], "confidence": "entropy"}, "confidence must be one of"),
        ({"stages": [WEAK, STRONG], "budget_confidence": 0.95}, "select has max_accuracy_drop"),
        (
            {"stages": [WEAK, STRONG], "select": {"max_cost_per_1k": 1}, "budget_confidence": 1},
            "between 0 and 1",
        ),
    ],
)
def test_bad_configs_are_one_line_errors(params, message) -> None:
    with pytest.raises(DocsortError) as error:
        create("cascade", params).check()
    assert message in str(error.value) and "\n" not in str(error.value)


def test_bad_stage_parameter_and_missing_model_name_the_stage(splits) -> None:
    bad = {"stages": [WEAK, {"kind": "tfidf", "colour": "red"}]}
    with pytest.raises(DocsortError, match=r"cascade stage 2 \(tfidf-2\): kind 'tfidf' has no"):
        create("cascade", bad).check()
    with pytest.raises(DocsortError, match=r"cascade stage 1 \(nowhere\): model directory"):
        fitted(splits, None, stages=[{"model": "/nowhere"}, STRONG])
