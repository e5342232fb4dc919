"""Parameter values are checked before fitting, from one declaration per kind (param_rules):
a wrong value is one line naming the kind, the parameter, the value and what is allowed."""

from __future__ import annotations

import random

import pytest

from docsort.api import TrainRequest, fit, prepare_train
from docsort.data.dataset import Dataset
from docsort.errors import DocsortError
from docsort.models import create, get_kind
from docsort.models.params import (
    AnyOf,
    Choice,
    Flag,
    Integer,
    Items,
    Mapping,
    Number,
    Optional,
    Pair,
    Text,
    shown,
)

WORDS = {
    "sport": "ball goal team match score win league coach",
    "tech": "computer software chip data code network server",
    "food": "bread cheese cook taste meal soup recipe",
}


@pytest.fixture(scope="module")
def tiny() -> Dataset:
    """36 rows of three labels (the smallest has 8): enough for tfidf in a blink."""
    rng = random.Random(0)
    rows = [(label, 14) for label in ("sport", "tech")] + [("food", 8)]
    texts, labels = [], []
    for label, count in rows:
        for _ in range(count):
            texts.append(" ".join(rng.choices(WORDS[label].split(), k=8)))
            labels.append(label)
    return Dataset(texts, labels, name="tiny")


@pytest.fixture(autouse=True)
def fresh_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test sees its warnings: they are printed once per process."""
    import docsort.errors
    import docsort.models.base

    monkeypatch.setattr(docsort.errors, "_warned", set())
    monkeypatch.setattr(docsort.models.base, "_newer_versions_warned", set())


def test_rules_accept_and_refuse_as_declared() -> None:
    positive = Number(min=0, exclusive=True)
    assert positive.accepts(0.5) and positive.accepts(3)
    for value in (0, -1, "abc", True, [1], {"a": 1}, float("nan"), float("inf"), None):
        assert not positive.accepts(value), value
    share = Number(min=0, max=1, exclusive="max")
    assert share.accepts(0) and not share.accepts(1) and share.allowed() == "a number in [0, 1)"
    assert Integer(min=1).accepts(3) and not Integer(min=1).accepts(3.0)
    assert not Integer().accepts(True) and not Integer(min=1).accepts(0)
    assert Choice("balanced", None).accepts(None) and not Choice("balanced", None).accepts("x")
    assert not Choice(True, "auto").accepts(1)  # 1 == True, but it is not a truth value
    assert Choice("balanced", None).allowed() == "'balanced' or null"
    assert Choice("a", "b").allowed() == "one of 'a', 'b'"
    ngrams = Pair(Integer(min=1))
    assert ngrams.accepts([1, 2]) and ngrams.accepts((2, 2))
    for value in ([3, 1], "ab", [1], [1, 2, 3], [0, 1], [1.0, 2]):
        assert not ngrams.accepts(value), value
    assert Text(nonempty=True).accepts("x") and not Text(nonempty=True).accepts("")
    assert Flag().accepts(False) and not Flag().accepts(0)
    assert Optional(Flag()).accepts(None) and not Optional(Flag()).accepts("yes")
    assert AnyOf(Choice("auto"), Number(min=0)).accepts("auto")
    assert Items(Number(min=0), min_length=1).accepts([0, 2]) and not Items().accepts("ab")
    assert Mapping().accepts({}) and not Mapping().accepts([])


def test_a_shared_value_is_quoted_short_without_expanding_it() -> None:
    bomb: list = ["lol"] * 10
    for _ in range(8):  # a YAML alias bomb as built: shared lists, 10**9 items when expanded
        bomb = [bomb] * 10
    text = shown(bomb)
    assert text.startswith("a list [[[") and len(text) < 80
    assert shown("x" * 10_000).endswith("…") and len(shown("x" * 10_000)) <= 60


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"C": "abc"}, "tfidf C must be a number > 0, not 'abc'"),
        ({"C": -1}, "tfidf C must be a number > 0, not -1"),
        ({"C": [1, 2]}, "tfidf C must be a number > 0, not a list [1, 2]"),
        ({"C": {"a": 1}}, "tfidf C must be a number > 0, not a mapping {'a': 1}"),
        ({"max_features": 0}, "tfidf max_features must be a whole number >= 1, or null, not 0"),
        ({"max_iter": -3}, "tfidf max_iter must be a whole number >= 1, not -3"),
        ({"min_df": 2.5}, "tfidf min_df must be a whole number >= 1, not 2.5"),
        ({"class_weight": "sometimes"}, "tfidf class_weight must be 'balanced' or null"),
        ({"seed": "x"}, "tfidf seed must be a whole number in [0, 4294967295], not 'x'"),
        ({"word_ngrams": [3, 1]}, "tfidf word_ngrams must be [low, high] (low <= high"),
        ({"word_ngrams": "abc"}, "not 'abc'"),
        ({"classifier": "tree"}, "tfidf classifier must be one of 'svm', 'logreg', not 'tree'"),
        ({"calibration_folds": 1}, "tfidf calibration_folds must be a whole number >= 2"),
    ],
)
def test_tfidf_values_are_refused_before_any_data_is_read(params, named) -> None:
    with pytest.raises(DocsortError) as error:
        create("tfidf", params).check()
    assert named in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("kind", "params", "named"),
    [
        ("static", {"max_length": 0}, "static max_length must be a whole number >= 1"),
        ("embed", {"device": "gpu"}, "embed device must be 'auto', 'cpu' or 'cuda[:N]'"),
        ("embed", {"batch_size": "64"}, "embed batch_size must be a whole number"),
        ("encoder", {"lr": 0}, "encoder lr must be a number > 0, or null, not 0"),
        ("encoder", {"epochs": 2.5}, "encoder epochs must be a whole number >= 1"),
        ("encoder", {"warmup_ratio": 1}, "encoder warmup_ratio must be a number in [0, 1)"),
        ("encoder", {"freeze_layers": -1}, "encoder freeze_layers must be a whole number >= 0"),
        ("dual", {"scale": 0}, "dual scale must be a number > 0, not 0"),
        ("dual", {"few_shot": 1}, "dual few_shot must be one of true, false, 'auto', not 1"),
        ("pair", {"batch_size": 1}, "pair batch_size must be a whole number >= 2"),
        ("pair", {"valid_share": 1.0}, "pair valid_share must be a number in [0, 1)"),
        ("llm", {"shots": -1}, "llm shots must be a whole number >= 0"),
        ("llm", {"timeout": "soon"}, "llm timeout must be a number > 0, not 'soon'"),
        ("llm", {"base": ""}, "llm base must be a non-empty text"),
        ("cascade", {"candidates": 1}, "cascade candidates must be a whole number >= 2"),
        ("cascade", {"stages": "tfidf"}, "cascade stages must be a list, or null"),
        ("ensemble", {"weights": [1, -1]}, "ensemble weights must be a list, each a number >= 0"),
    ],
)
def test_every_kind_checks_its_values(kind, params, named) -> None:
    with pytest.raises(DocsortError) as error:
        create(kind, params).check()
    assert named in str(error.value) and "\n" not in str(error.value)


KINDS = ("tfidf", "static", "embed", "encoder", "dual", "pair", "llm", "cascade", "ensemble")


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_declares_a_rule_for_every_parameter(kind) -> None:
    cls = get_kind(kind)
    assert set(cls.rules()) == set(cls.param_names())
    create(kind).check_values()  # the defaults pass their own rules


def test_fine_tuned_kinds_share_the_rules_declared_beside_finetuneargs() -> None:
    from docsort.models.nn.arguments import FineTuneArgs

    for kind in ("encoder", "dual", "pair"):
        rules = get_kind(kind).rules()
        assert all(rules[name] is rule for name, rule in FineTuneArgs.param_rules.items()
                   if name != "batch_size" or kind != "pair"), kind  # fmt: skip


def test_an_inline_member_names_its_place_and_its_parameter() -> None:
    cascade = {"stages": [{"kind": "tfidf", "C": 0}, {"kind": "tfidf"}]}
    with pytest.raises(DocsortError, match=r"cascade stage 1 \(tfidf-1\): tfidf C must be"):
        create("cascade", cascade).check()
    ensemble = {"members": [{"kind": "tfidf"}, {"kind": "tfidf", "min_df": "2"}]}
    with pytest.raises(DocsortError, match=r"ensemble member 2 \(tfidf-2\): tfidf min_df"):
        create("ensemble", ensemble).check()


def test_prepare_train_checks_values_before_reading_the_data(tmp_path) -> None:
    request = TrainRequest(data=str(tmp_path / "absent.csv"), params={"C": "abc"})
    with pytest.raises(DocsortError, match="tfidf C must be"):  # not: absent.csv not found
        prepare_train(request)
    for share in (2, -0.5, 0, "a"):
        request = TrainRequest(data=str(tmp_path / "absent.csv"), valid_split=share)
        with pytest.raises(DocsortError, match="^--valid-split must be a share between 0 and 1"):
            prepare_train(request)


def test_llm_calls_its_weights_base_and_model_still_works(capsys) -> None:
    model = create("llm", {"model": "qwen-0.5b"})
    assert model.base == "qwen-0.5b" and "model" not in model.get_params()
    assert capsys.readouterr().err.count("deprecated") == 1
    create("llm", {"model": "qwen-0.5b"})  # once per process, not per model
    assert "deprecated" not in capsys.readouterr().err
    with pytest.raises(DocsortError, match="give 'base' only"):
        create("llm", {"model": "a", "base": "b"})


def test_calibration_folds_are_capped_at_the_smallest_class(tiny, capsys) -> None:
    model = create("tfidf", {"calibration_folds": 1000}).fit(tiny)
    assert model.calibration_folds_ == 8  # the smallest class has 8 rows
    assert model.pipeline_.named_steps["linear"].cv == 8
    err = capsys.readouterr().err
    assert "calibration_folds 1000" in err and "8 folds" in err and err.count("\n") == 1
    assert create("tfidf").fit(tiny).calibration_folds_ == 3  # the default stays as it was
    lonely = Dataset([*tiny.texts, "cheese with a ball"], [*tiny.labels, "odd"])
    assert create("tfidf", {"calibration_folds": 5}).fit(lonely).calibration_folds_ == 3


def test_a_scikit_learn_value_error_from_fit_names_the_kind(tiny) -> None:
    plan = prepare_train(TrainRequest(data=tiny, kind="tfidf"))
    plan.model.word_ngrams = (1, "2")  # past the rules, as a kind's missing rule would let it
    with pytest.raises(DocsortError, match=r"^tfidf could not be fitted with these param") as e:
        fit(plan)
    assert isinstance(e.value.__cause__, (ValueError, TypeError))  # chained, for developers


def test_errors_of_docsort_itself_are_not_hidden(tiny, monkeypatch) -> None:
    plan = prepare_train(TrainRequest(data=tiny, kind="tfidf"))

    def broken(*args, **kwargs):
        raise ValueError("a bug in docsort")

    monkeypatch.setattr(plan.model, "fit", broken)
    with pytest.raises(ValueError, match="a bug in docsort"):
        fit(plan)
