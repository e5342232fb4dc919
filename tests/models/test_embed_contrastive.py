"""``embed`` with ``finetune: contrastive`` (SetFit's recipe): pairs of a few real rows tune the
bundled minilm encoder, the head is fitted on the tuned vectors, and the saved model (the tuned
encoder inside its dir) reopens offline with the same probabilities."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors import safe_open

from docsort.data.dataset import Dataset, from_frame
from docsort.errors import DocsortError
from docsort.models import create, load
from docsort.models.hub import resolve
from docsort.models.kinds.embedding import TUNED
from docsort.models.nn.contrastive import sample_pairs

TINY = {"finetune": "contrastive", "num_iterations": 2, "epochs": 1, "max_length": 32}


@pytest.fixture(scope="module")
def few_rows(arxiv_frame: pd.DataFrame) -> Dataset:
    """3 arXiv categories × 4 real rows: a few seconds of tuning at 32 tokens."""
    three = arxiv_frame[arxiv_frame.category.isin(["cs.CV", "quant-ph", "astro-ph"])]
    three = three.groupby("category", group_keys=False).head(4)
    return from_frame(three, text=["title", "abstract"], label="category")


QUERY = "encoder.layer.0.attention.self.query.weight"


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """One torch thread: on the shared 2-core machine two threads spin at barriers and a
    tuning step takes 6x longer."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _first_weights(model) -> np.ndarray:
    """The first attention layer's query weights of the model's encoder."""
    auto = model._encoder()[0].auto_model
    return dict(auto.named_parameters())[QUERY].detach().cpu().numpy().copy()


def test_tunes_saves_and_reopens(few_rows: Dataset, tmp_path: Path, monkeypatch) -> None:
    with safe_open(str(Path(resolve("minilm")) / "model.safetensors"), "np") as weights:
        frozen = weights.get_tensor(QUERY)
    model = create("embed", {**TINY, "cache": False}).fit(few_rows)
    assert model.history_[0]["pairs"] == 2 * 2 * len(few_rows)  # a positive + a negative each
    assert not np.allclose(_first_weights(model), frozen)  # the body moved
    proba = model.predict_proba(few_rows.texts)
    assert (proba.argmax(axis=1) == few_rows.targets(model.labels_)).mean() == 1.0
    model.save(tmp_path / "m")
    assert (tmp_path / "m" / TUNED / "model.safetensors").is_file()
    monkeypatch.setenv("DOCSORT_CACHE", str(tmp_path / "empty-cache"))  # nothing to resolve
    again = load(tmp_path / "m")
    assert again.finetune == "contrastive"
    np.testing.assert_allclose(again.predict_proba(few_rows.texts), proba, rtol=0, atol=1e-6)
    assert np.allclose(_first_weights(again), _first_weights(model))


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"finetune": "setfit"}, "finetune"),
        ({"num_iterations": 0}, "num_iterations"),
        ({"epochs": 1.5}, "epochs"),
        ({"lr": 0}, "lr"),
        ({"train_batch_size": "16"}, "train_batch_size"),
        ({"seed": -1}, "seed"),
    ],
)
def test_bad_tuning_parameters_are_one_line_errors(params, message) -> None:
    with pytest.raises(DocsortError, match=message) as caught:
        create("embed", {"finetune": "contrastive", **params}).check()
    assert "\n" not in str(caught.value)


def test_multi_label_rows_are_refused_in_one_line(tmp_path: Path) -> None:
    frame = pd.DataFrame({"text": ["a b", "c d", "e f"], "label": ["x|y", "y", "x"]})
    data = from_frame(frame, text="text", label="label", label_sep="|")
    with pytest.raises(DocsortError, match="one label per row"):
        create("embed", TINY).fit(data)


def test_pairs_are_drawn_per_row() -> None:
    targets = np.repeat(np.arange(77), 8)  # banking77 at 8 shots
    first, second, similar = sample_pairs(targets, 3, np.random.default_rng(0))
    assert len(first) == 2 * 3 * len(targets)
    same = targets[first] == targets[second]
    np.testing.assert_array_equal(same, similar == 1.0)
    assert (first != second).all()  # a positive partner is another row of the label
    assert np.bincount(first).tolist() == [6] * len(targets)
    assert (similar == 1.0).sum() == (similar == 0.0).sum()
