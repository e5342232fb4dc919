"""The encoder kind reading title and abstract apart: ``fusion: cross_attention`` (each field
encoded by the shared minilm, multi-head cross-attention both ways, pooled and concatenated)
and ``fusion: text_pair`` (the tokenizer's two segments), on real arXiv rows.

Tiny on purpose (4 classes x 4 training rows, 32 tokens, 2 epochs) so the default run stays
within seconds; the test that training accuracy rises from a random head is marked slow.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

import docsort.models.kinds.encoder  # noqa: F401  (registers the kind)
from docsort.data.dataset import Dataset, from_frame
from docsort.errors import DocsortError
from docsort.models import create, load
from tests.conftest import ARXIV_8CAT

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

TINY = {"max_length": 32, "batch_size": 8, "epochs": 2, "patience": 2, "fusion_heads": 8}
CATEGORIES = ["cs.CV", "quant-ph", "astro-ph", "econ.EM"]


def arxiv(per_class: int, start: int = 0) -> Dataset:
    frame = pd.read_csv(ARXIV_8CAT)
    frame = frame[frame.category.isin(CATEGORIES)]
    rank = frame.groupby("category").cumcount()
    frame = frame[(rank >= start) & (rank < start + per_class)]
    return from_frame(frame, text=["title", "abstract"], label="category")


@pytest.fixture(scope="module")
def rows() -> tuple[Dataset, Dataset]:
    """4 training and 2 held-out rows per category, read from the title and abstract columns."""
    return arxiv(4), arxiv(2, start=4)


@pytest.fixture(scope="module")
def fused(rows):
    return create("encoder", {**TINY, "fusion": "cross_attention"}).fit(rows[0])


def test_cross_attention_fuses_the_two_fields_and_saves_its_layers(fused, rows, tmp_path) -> None:
    net = fused.net_
    assert fused.fields_ == ["title", "abstract"]
    assert len(net.fusion.attend) == 2 and net.fusion.attend[0].num_heads == 8
    assert net.head.in_features == 2 * 384  # the two pooled fields, concatenated
    proba = fused.predict_proba(rows[1].texts)
    assert proba.shape == (8, 4)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-9)

    fused.save(tmp_path / "model")
    assert {"fusion.safetensors", "fields.json"} <= {p.name for p in (tmp_path / "model").iterdir()}
    again = load(tmp_path / "model")
    np.testing.assert_array_equal(again.predict_proba(rows[1].texts), proba)
    # the fusion layers are read back, not initialised afresh
    weights = [m.net_.fusion.attend[1].in_proj_weight.detach().numpy() for m in (fused, again)]
    np.testing.assert_array_equal(*weights)


def test_a_fused_model_refuses_texts_without_its_fields(fused, rows) -> None:
    with pytest.raises(DocsortError, match="reads the fields title, abstract apart") as error:
        fused.predict_proba([str(text) for text in rows[1].texts])  # joined, fields gone
    assert "\n" not in str(error.value) and "--text title,abstract" in str(error.value)
    with pytest.raises(DocsortError, match="export a model trained with fusion: none"):
        fused.export_network()
    assert not fused.capabilities().long_documents  # a window of a text has no fields


def test_fusion_needs_two_fields_and_no_pair_separator(rows) -> None:
    one = Dataset([str(t) for t in rows[0].texts], rows[0].labels, name="abstracts.csv")
    with pytest.raises(DocsortError, match="needs two or more text fields .*abstracts.csv"):
        create("encoder", {**TINY, "fusion": "cross_attention"}).fit(one)
    with pytest.raises(DocsortError, match="drop pair_separator"):
        create("encoder", {"fusion": "text_pair", "pair_separator": "\n"}).check()
    with pytest.raises(DocsortError, match="fusion"):
        create("encoder", {"fusion": "concat"}).check()


def test_text_pair_gives_the_tokenizer_two_segments(rows, tmp_path) -> None:
    model = create("encoder", {**TINY, "epochs": 1, "fusion": "text_pair"}).fit(rows[0])
    encoded = model._tokenized(rows[1].texts[:1])
    types = np.array(encoded.encoding["token_type_ids"][0])
    ids = encoded.encoding["input_ids"][0]
    sep = model.tokenizer_.sep_token_id
    assert set(types) == {0, 1} and ids.count(sep) == 2  # [CLS] title [SEP] abstract [SEP]
    title = model.tokenizer_(rows[1].texts[0].fields["title"])["input_ids"]
    first = ids[1 : ids.index(sep)]  # the first segment: the title (cut to fit 32 tokens)
    assert len(first) >= 8 and title[1 : 1 + len(first)] == first
    model.save(tmp_path / "pair")
    again = load(tmp_path / "pair")
    np.testing.assert_array_equal(
        again.predict_proba(rows[1].texts), model.predict_proba(rows[1].texts)
    )


@pytest.mark.slow  # slow: 40-260 s each on 2 shared cores (both: 78 s on a quieter machine)
@pytest.mark.parametrize("lora", [False, True])
def test_cross_attention_learns_from_a_random_head(lora) -> None:
    train = arxiv(12)
    params = {**TINY, "max_length": 64, "epochs": 4, "patience": 4, "head_init": "random"}
    model = create("encoder", {**params, "fusion": "cross_attention", "lora": lora}).fit(train)
    losses = [h["train_loss"] for h in model.history_]
    assert losses[-1] < losses[0]
    accuracy = (model.predict_proba(train.texts).argmax(1) == train.targets(model.labels_)).mean()
    assert accuracy >= 0.8  # chance is 0.25
    fusion = model.net_.fusion
    assert all(p.requires_grad for p in fusion.parameters())  # trained fully, beside LoRA
    if lora:
        assert model.trainable_share_ < 0.1
