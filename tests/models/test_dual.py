"""The dual encoder: zero-shot from descriptions, training, new labels at predict time,
multi-label decisions, persistence and bad input. Real rows, the small ``minilm`` encoder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from docsort.data.builtin import load_builtin
from docsort.data.dataset import Dataset, from_frame
from docsort.data.labels import LabelSet, load_labels_file
from docsort.errors import DocsortError
from docsort.models import create, load
from docsort.models.kinds.dual import DualEncoderClassifier, _unit, zero_shot
from tests.conftest import ARXIV_8CAT, ARXIV_MULTI

pytest.importorskip("torch")

BBC = {
    "business": "News about companies, markets, the economy, trade, banks and profits.",
    "entertainment": "News about films, music, television, celebrities and the arts.",
    "politics": "News about government, parliament, elections, parties and ministers.",
    "sports": "News about sports matches, players, teams and tournaments.",
    "tech": "News about technology, computers, the internet, software and phones.",
}
ARXIV = {
    "cs.CL": "Natural language processing: text, language models, translation, speech.",
    "cs.CV": "Computer vision: images, video, object detection, segmentation.",
    "cs.RO": "Robotics: robots, manipulation, locomotion, motion planning, control.",
    "cs.CR": "Computer security and cryptography: attacks, privacy, encryption, malware.",
    "quant-ph": "Quantum physics: qubits, entanglement, quantum computing and optics.",
    "astro-ph": "Astrophysics: galaxies, stars, planets, cosmology, telescopes.",
    "q-bio": "Quantitative biology: genes, proteins, cells, neurons, evolution, disease.",
    "econ.EM": "Econometrics: statistical estimation for economic data, regression, panels.",
}
SMALL = {"max_length": 64, "label_max_length": 32, "eval_batch_size": 32}


@pytest.fixture(scope="module")
def bbc_rows() -> Dataset:
    """30 real BBC test articles, 6 per class, read up to 64 tokens."""
    frame = load_builtin("bbc", "test").groupby("label", group_keys=False).head(6)
    return from_frame(frame.reset_index(drop=True), labels=LabelSet(tuple(BBC), BBC))


@pytest.fixture(scope="module")
def arxiv_titles() -> pd.DataFrame:
    frame = pd.read_csv(ARXIV_8CAT)
    return frame.groupby("category", group_keys=False).head(12).reset_index(drop=True)


@pytest.fixture(scope="module")
def trained(arxiv_titles: pd.DataFrame) -> DualEncoderClassifier:
    """Few-shot: 8 titles per arXiv category, two short epochs; 4 of the 8 label vectors get a
    gradient at each step (the batch's labels first), the others come from the cache."""
    rows = arxiv_titles.groupby("category", group_keys=False).head(8)
    data = from_frame(rows, "title", "category", labels=LabelSet(tuple(ARXIV), ARXIV))
    params = {**SMALL, "epochs": 2, "batch_size": 16, "lr": 1e-4, "step_labels": 4}
    return create("dual", params).fit(data)


def test_zero_shot_on_bbc_beats_chance_by_far(bbc_rows: Dataset) -> None:
    model = zero_shot(bbc_rows.label_set, **SMALL)
    proba = model.predict_proba(bbc_rows.texts)
    assert proba.shape == (30, 5) and np.allclose(proba.sum(axis=1), 1)
    accuracy = np.mean(proba.argmax(axis=1) == bbc_rows.targets())
    assert accuracy >= 0.7  # chance: 0.2
    # descriptions matter: the bare names score lower than the descriptions
    names_only = zero_shot(LabelSet(tuple(BBC)), **SMALL).predict_proba(bbc_rows.texts)
    assert np.mean(names_only.argmax(axis=1) == bbc_rows.targets()) < accuracy


def test_several_descriptions_are_averaged(bbc_rows: Dataset) -> None:
    two = {**BBC, "tech": [BBC["tech"], "Gadgets, video games and mobile networks."]}
    model = zero_shot(LabelSet(tuple(BBC), two), **SMALL)
    one = zero_shot(LabelSet(tuple(BBC), BBC), **SMALL)
    tech = list(BBC).index("tech")
    assert not np.allclose(model.label_vectors_[tech], one.label_vectors_[tech])
    assert np.allclose(model.label_vectors_[0], one.label_vectors_[0])
    assert np.isclose(np.linalg.norm(model.label_vectors_[tech]), 1, atol=1e-5)


def test_training_lowers_loss_and_fits_its_rows(
    trained: DualEncoderClassifier, arxiv_titles: pd.DataFrame
) -> None:
    losses = [epoch["train_loss"] for epoch in trained.history_]
    assert len(losses) == 2 and losses[1] < losses[0]
    assert trained.few_shot_ and trained.trained_
    rows = arxiv_titles.groupby("category", group_keys=False).head(8)
    before = zero_shot(trained.labels_, **SMALL).predict(list(rows.title))
    after = trained.predict(list(rows.title))
    assert np.mean(np.array(after) == rows.category) > np.mean(np.array(before) == rows.category)


def test_save_and_load_give_identical_probabilities(
    trained: DualEncoderClassifier, arxiv_titles: pd.DataFrame, tmp_path: Path
) -> None:
    texts = list(arxiv_titles.title[-16:])
    trained.save(tmp_path / "model")
    assert (tmp_path / "model" / "encoder").is_dir()
    again = load(tmp_path / "model")
    assert np.allclose(again.predict_proba(texts), trained.predict_proba(texts), atol=1e-6)
    assert again.labels_.description("quant-ph") == ARXIV["quant-ph"]


def test_a_label_added_at_predict_time_is_scored_without_retraining(
    arxiv_titles: pd.DataFrame,
) -> None:
    known = {k: v for k, v in ARXIV.items() if k != "quant-ph"}
    model = zero_shot(LabelSet(tuple(known), known), **SMALL)
    wider = model.with_labels(LabelSet(tuple(ARXIV), {"quant-ph": ARXIV["quant-ph"]}))
    assert wider.labels_.names == tuple(ARXIV)
    assert wider.labels_.description("cs.CV") == ARXIV["cs.CV"]  # kept from the model
    quantum = list(arxiv_titles[arxiv_titles.category == "quant-ph"].title)
    predicted = wider.predict(quantum)
    assert predicted.count("quant-ph") >= len(quantum) // 2
    assert "quant-ph" not in model.predict(quantum)  # the original model is unchanged
    assert np.allclose(  # the known labels score as before, up to the softmax's new column
        wider.label_vectors_[[wider.labels_.index(n) for n in known]], model.label_vectors_
    )


def test_few_shot_label_vectors_lean_toward_their_training_rows(
    trained: DualEncoderClassifier, tmp_path: Path
) -> None:
    """In few-shot mode each label vector is unit(description + 2·prototype); a label added
    later has no prototype, and the prototypes survive save and load."""
    assert trained.prototype_weight_ == 2.0 and trained.prototypes_.shape == (8, 384)
    described = trained._label_vectors(trained.labels_)
    np.testing.assert_allclose(
        trained.label_vectors_, _unit(described + 2.0 * trained.prototypes_), atol=1e-5
    )
    toward = np.sum(trained.label_vectors_ * trained.prototypes_, axis=1)
    assert (toward > np.sum(described * trained.prototypes_, axis=1)).all()
    extra = "Mathematics: theorems, proofs, algebra, geometry and number theory."
    wider = trained.with_labels(LabelSet((*ARXIV, "math"), {"math": extra}))
    assert not wider.prototypes_[-1].any()
    np.testing.assert_allclose(wider.label_vectors_[:8], trained.label_vectors_, atol=1e-5)
    again = load(trained.save(tmp_path / "m"))
    np.testing.assert_allclose(again.prototypes_, trained.prototypes_)
    assert again.prototype_weight_ == 2.0


def test_a_trained_model_scores_a_new_label_too(trained: DualEncoderClassifier) -> None:
    extra = "Mathematics: theorems, proofs, algebra, geometry and number theory."
    wider = trained.with_labels(LabelSet((*ARXIV, "math"), {"math": extra}))
    texts = ["On the number of prime divisors of an algebraic integer and a proof of a theorem"]
    assert wider.predict(texts) == ["math"]


def test_multi_label_thresholds_top_k_and_at_least_one() -> None:
    frame = pd.read_csv(ARXIV_MULTI).head(120)
    data = from_frame(frame, ["titles"], "terms")
    train_part, valid = data.subset(range(60)), data.subset(range(60, 120))
    model = create("dual", SMALL).fit(Dataset([], [], label_set=data.label_set), valid)
    assert model.labels_.multi_label and model.thresholds_ is not None
    assert model.thresholds_.shape == (len(model.labels_),)
    proba = model.predict_proba(train_part.texts)
    assert ((proba > 0) & (proba < 1)).all()
    model.top_k = 1
    assert model.decide(proba).sum(axis=1).max() <= 1
    model.top_k = None
    model.thresholds_ = np.quantile(proba, 0.97, axis=0)  # strict: some rows meet none
    plain = model.decide(proba)
    empty = np.flatnonzero(plain.sum(axis=1) == 0)
    assert len(empty) > 0
    model.at_least_one = True
    decided = model.decide(proba)
    assert (decided.sum(axis=1) >= 1).all()
    assert (decided[empty].sum(axis=1) == 1).all()
    assert decided[empty, proba[empty].argmax(axis=1)].all()
    assert (np.delete(decided, empty, axis=0) == np.delete(plain, empty, axis=0)).all()


def test_soft_targets_are_read_and_change_training(arxiv_titles: pd.DataFrame) -> None:
    rows = arxiv_titles.groupby("category", group_keys=False).head(2).reset_index(drop=True)
    labels = LabelSet(tuple(ARXIV), ARXIV)
    # prototypes off: with 2 rows a label they would pull both models' vectors to the same rows
    params = {**SMALL, "epochs": 1, "batch_size": 8, "lr": 1e-4, "ranking_weight": 0.0}
    params["prototype_weight"] = 0.0
    plain = from_frame(rows, "title", "category", labels=labels)
    soft = from_frame(rows.assign(soft=0.2), "title", "category", labels=labels, keep=["soft"])
    texts = list(rows.title)
    a = create("dual", params).fit(plain).predict_proba(texts)
    b = create("dual", params).fit(soft).predict_proba(texts)
    assert not np.allclose(a, b)
    bad = from_frame(rows.assign(soft=1.5), "title", "category", labels=labels, keep=["soft"])
    with pytest.raises(DocsortError, match=r"soft target 1.5 must lie in \[0, 1\]"):
        create("dual", params).fit(bad)


def test_labels_file_short_form_with_several_descriptions(tmp_path: Path) -> None:
    path = tmp_path / "labels.yaml"
    path.write_text(
        "sports: Matches and players.\ntech: [Computers., Phones and gadgets.]\npolitics:\n",
        encoding="utf-8",
    )
    labels = load_labels_file(path)
    assert labels.names == ("sports", "tech", "politics") and not labels.multi_label
    assert labels.description_texts("tech") == ("Computers.", "Phones and gadgets.")
    assert labels.description_texts("politics") == ("politics",)
    assert LabelSet.from_dict(labels.to_dict()) == labels  # the manifest round trip
    path.write_text("sports: {a: 1}\n", encoding="utf-8")
    with pytest.raises(DocsortError, match="a description is a text or a list of texts"):
        load_labels_file(path)


def test_bad_parameters_are_user_errors() -> None:
    labels = LabelSet(tuple(BBC), BBC)
    for params, message in [
        ({"few_shot": "maybe"}, "few_shot"),
        ({"scale": 0}, "scale must be a number > 0"),
        ({"bce_weight": 0, "ranking_weight": 0}, "loss weights"),
        ({"prototype_weight": -1}, "prototype_weight must be 'auto' or a number"),
    ]:
        with pytest.raises(DocsortError, match=message):
            create("dual", params).fit(Dataset([], [], label_set=labels))
    with pytest.raises(DocsortError, match="not fitted"):
        create("dual").predict_proba(["text"])
    with pytest.raises(DocsortError, match="at least two"):
        zero_shot(LabelSet(("only",)))


def test_adapt_moves_labels_toward_the_documents_they_claim(bbc_rows: Dataset) -> None:
    model = zero_shot(bbc_rows.label_set, **SMALL)
    before = model.label_vectors_.copy()
    adapted = model.adapt(bbc_rows.texts)
    assert np.array_equal(model.label_vectors_, before)  # a copy: the model is unchanged
    assert np.allclose(np.linalg.norm(adapted.label_vectors_, axis=1), 1, atol=1e-5)
    docs = model._embed(bbc_rows.texts, model.max_length)
    claimed = model.predict_proba(bbc_rows.texts).argmax(axis=1)
    for j in np.unique(claimed):
        centroid = docs[claimed == j].mean(axis=0)
        assert adapted.label_vectors_[j] @ centroid > before[j] @ centroid
    accuracy = np.mean(adapted.predict_proba(bbc_rows.texts).argmax(1) == bbc_rows.targets())
    assert accuracy >= 0.7
