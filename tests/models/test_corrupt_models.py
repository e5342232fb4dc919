"""A saved model's manifest is cross-checked against its weights on load: when they disagree
the model is corrupt, said in one line ("DIR is a corrupt model: ...; save it again"), never
an IndexError, an AttributeError or a label that silently scores 0."""

from __future__ import annotations

import random
import shutil
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
import yaml

from docsort.data.dataset import Dataset
from docsort.data.labels import LabelSet
from docsort.errors import DocsortError
from docsort.models import create, load
from docsort.models.base import keep_label_names

WORDS = {
    "sport": "ball goal team match score win league coach",
    "tech": "computer software chip data code network server",
    "food": "bread cheese cook taste meal soup recipe",
    "music": "song guitar drum band tune concert album",
    "travel": "train flight hotel beach map trip journey",
}


def rows(labels: tuple[str, ...] = tuple(WORDS), per_label: int = 8) -> Dataset:
    rng = random.Random(0)
    texts, names = [], []
    for label in labels:
        for _ in range(per_label):
            texts.append(" ".join(rng.choices(WORDS[label].split(), k=8)))
            names.append(label)
    return Dataset(texts, names, name="rows")


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tfidf model of five labels."""
    return create("tfidf").fit(rows()).save(tmp_path_factory.mktemp("models") / "five")


@pytest.fixture
def copy(saved: Path, tmp_path: Path) -> Path:
    shutil.copytree(saved, tmp_path / "m")
    return tmp_path / "m"


def edit_manifest(directory: Path, **changes: Any) -> None:
    path = directory / "docsort.yaml"
    manifest = yaml.safe_load(path.read_text(encoding="utf-8"))
    manifest.update(changes)
    path.write_text(yaml.safe_dump(manifest), encoding="utf-8")


def corrupt(directory: Path, match: str) -> str:
    with pytest.raises(DocsortError) as error:
        load(directory)
    message = str(error.value)
    assert message.startswith(f"'{directory}' is a corrupt model: "), message
    assert message.endswith("; save it again") and "\n" not in message
    assert match in message, message
    return message


def labels(*names: str) -> list[dict[str, str]]:
    return [{"name": n} for n in names]


@pytest.fixture(autouse=True)
def fresh_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test sees its warnings: they are printed once per process."""
    import docsort.errors
    import docsort.models.base

    monkeypatch.setattr(docsort.errors, "_warned", set())
    monkeypatch.setattr(docsort.models.base, "_newer_versions_warned", set())


def test_the_saved_model_loads_and_its_weights_know_its_labels(saved: Path) -> None:
    model = load(saved)
    assert model.pipeline_.docsort_labels_ == list(model.labels_.names)


def test_a_manifest_with_fewer_labels_than_the_weights(copy: Path) -> None:
    edit_manifest(copy, labels=labels("food", "music", "sport", "tech"))
    corrupt(copy, "its manifest lists 4 labels, its weights (tfidf.joblib) 5")


def test_a_manifest_with_more_labels_than_the_weights(copy: Path) -> None:
    edit_manifest(copy, labels=labels("food", "music", "sport", "tech", "travel", "weather"))
    corrupt(copy, "lists 6 labels, its weights (tfidf.joblib) 5")


def test_a_manifest_with_the_labels_in_another_order(copy: Path) -> None:
    edit_manifest(copy, labels=labels("travel", "food", "music", "sport", "tech"))
    corrupt(copy, "not those of its weights")


def test_weights_saved_before_they_kept_their_labels_are_checked_by_their_classes(
    copy: Path,
) -> None:
    pipeline = joblib.load(copy / "tfidf.joblib")
    del pipeline.docsort_labels_  # as saved by docsort before this check
    joblib.dump(pipeline, copy / "tfidf.joblib")
    assert load(copy).predict(["a ball and a goal"]) == ["sport"]
    edit_manifest(copy, labels=labels("food", "music", "sport", "tech"))
    corrupt(copy, "its weights (tfidf.joblib) know more labels than the 4 of its manifest")


def test_a_weights_file_holding_something_else(copy: Path) -> None:
    joblib.dump({"predict_proba": None}, copy / "tfidf.joblib")
    corrupt(copy, "tfidf.joblib holds a dict, not a fitted tfidf model")
    (copy / "tfidf.joblib").write_bytes(b"not a pickle")
    corrupt(copy, "the model weights cannot be read")


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"params": {"C": "abc"}}, "in its docsort.yaml, tfidf C must be a number > 0"),
        ({"params": ["C", 1]}, "its docsort.yaml params are not a mapping"),
        ({"thresholds": [0.5, 0.5]}, "its thresholds are not 5 numbers"),
        ({"temperature": "hot"}, "its temperature 'hot' is not > 0"),
        ({"long_doc": {"size": "abc"}}, "its long_doc settings"),
        ({"long_doc": [1]}, "its long_doc is a list [1], not a mapping"),
        ({"input": "text"}, "its input is 'text', not a mapping"),
    ],
)
def test_a_manifest_with_values_no_model_was_saved_with(copy: Path, changes, match) -> None:
    edit_manifest(copy, **changes)
    corrupt(copy, match)


def test_a_manifest_that_is_not_a_mapping_not_yaml_or_an_alias_bomb(copy: Path) -> None:
    (copy / "docsort.yaml").write_text("[1, 2]\n", encoding="utf-8")
    corrupt(copy, "its docsort.yaml names no kind or labels")
    (copy / "docsort.yaml").write_bytes(b"\xff\xfe binary")
    corrupt(copy, "docsort.yaml: not a YAML file (not UTF-8 text)")
    lines = ['a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for k, name in enumerate("bcdefghi"):
        lines.append(f"{name}: &{name} [{', '.join(['*' + 'abcdefgh'[k]] * 10)}]")
    (copy / "docsort.yaml").write_text("\n".join(lines) + "\nkind: tfidf\nlabels: *i\n")
    corrupt(copy, "expand it to more than 1,000,000 values")


def test_an_unknown_kind_in_a_manifest_is_one_line(copy: Path) -> None:
    edit_manifest(copy, kind=["tfidf"])
    with pytest.raises(DocsortError, match=r"^unknown model kind a list \['tfidf'\]"):
        load(copy)


def test_a_model_saved_by_a_newer_docsort_loads_with_one_warning_line(copy, capsys) -> None:
    edit_manifest(copy, docsort_version="99.0.0")
    model = load(copy)
    assert model.predict(["a ball and a goal"]) == ["sport"]
    err = capsys.readouterr().err
    assert err.startswith("warning: ") and err.count("\n") == 1
    assert "docsort 99.0.0, newer than this docsort" in err and ".py" not in err
    edit_manifest(copy, docsort_version="0.0.1")
    load(copy)
    assert capsys.readouterr().err == ""


def test_an_embedding_head_for_another_label_count_is_corrupt() -> None:
    from sklearn.linear_model import LogisticRegression

    model = create("embed")
    x = np.random.default_rng(0).normal(size=(20, 4))
    model.head_ = LogisticRegression().fit(x, np.arange(20) % 5)
    five = LabelSet(tuple("abcde"))
    keep_label_names(model.head_, five)
    model.labels_ = five
    assert model._weights_problem() is None
    model.labels_ = LabelSet(tuple("abcdef"))
    assert "its manifest lists 6 labels, its weights (head.joblib) 5" in model._weights_problem()
    model.head_ = {"coef": 1}
    assert "head.joblib holds a dict" in model._weights_problem()


def test_an_llm_saved_with_the_old_parameter_name_loads_quietly(tmp_path, capsys) -> None:
    """Models saved before ``model`` became ``base`` keep loading, with no deprecation line
    (the user did not write that manifest); the prior must match the labels."""
    data = rows(("sport", "tech"), per_label=3)
    directory = create("llm").fit(data).save(tmp_path / "llm")
    manifest = yaml.safe_load((directory / "docsort.yaml").read_text())
    manifest["params"]["model"] = manifest["params"].pop("base")
    (directory / "docsort.yaml").write_text(yaml.safe_dump(manifest))
    assert load(directory).base == "qwen-0.5b"
    assert "deprecated" not in capsys.readouterr().err
    edit_manifest(directory, labels=labels("sport", "tech", "food"))
    corrupt(directory, "its manifest lists 3 labels, its llm.json prior 2")


def test_a_cascade_whose_thresholds_do_not_fit_its_stages(tmp_path) -> None:
    import json

    stages = [{"kind": "tfidf", "classifier": "logreg"}, {"kind": "tfidf"}]
    directory = create("cascade", {"stages": stages}).fit(rows()).save(tmp_path / "cascade")
    assert len(load(directory).stage_thresholds_) == 1
    state = json.loads((directory / "cascade.json").read_text())
    state["thresholds"] = [0.5, 0.5]
    (directory / "cascade.json").write_text(json.dumps(state))
    corrupt(directory, "its cascade.json holds 2 thresholds for 2 stages")
