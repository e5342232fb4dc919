"""The encoder kind fine-tunes real minilm weights on real arXiv rows, fully or with LoRA.

Small on purpose (4 classes x 12 training rows, 64 tokens) so each test takes seconds on a CPU.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

import docsort.models.kinds.encoder  # noqa: F401  (registers the kind)
from docsort.data.dataset import Dataset, from_frame
from docsort.errors import DocsortError
from docsort.models import create, load
from docsort.models.nn import training
from docsort.models.nn.training import checkpoint_step
from tests.conftest import ARXIV_8CAT, ARXIV_MULTI

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

FAST = {"max_length": 64, "batch_size": 8, "epochs": 3, "patience": 3}


@pytest.fixture(scope="module")
def arxiv_split() -> tuple[Dataset, Dataset]:
    """12 training and 6 held-out rows for each of 4 categories."""
    frame = pd.read_csv(ARXIV_8CAT)
    frame = frame[frame.category.isin(["cs.CV", "quant-ph", "astro-ph", "econ.EM"])]
    frame = frame.groupby("category", group_keys=False).head(18)
    data = from_frame(frame, text=["title", "abstract"], label="category")
    rank = frame.groupby("category").cumcount().to_numpy()
    return data.subset(np.flatnonzero(rank < 12)), data.subset(np.flatnonzero(rank >= 12))


@pytest.fixture(scope="module")
def full_model(arxiv_split):
    return create("encoder", FAST).fit(arxiv_split[0])


@pytest.fixture(scope="module")
def lora_model(arxiv_split):
    return create("encoder", {**FAST, "lora": True}).fit(arxiv_split[0])


def accuracy(model, data: Dataset) -> float:
    return float((model.predict_proba(data.texts).argmax(1) == data.targets(model.labels_)).mean())


def test_full_fine_tune_lowers_the_loss_and_beats_chance(full_model, arxiv_split) -> None:
    history = full_model.history_
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert all(0.0 <= h["valid_score"] <= 1.0 for h in history)
    assert full_model.trainable_share_ == 1.0
    proba = full_model.predict_proba(arxiv_split[1].texts)
    assert proba.shape == (24, 4)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-9)
    assert accuracy(full_model, arxiv_split[1]) >= 0.6  # chance is 0.25


def test_lora_trains_under_3_percent_of_the_weights_and_learns(lora_model, arxiv_split) -> None:
    assert 0 < lora_model.trainable_share_ < 0.03
    assert lora_model.history_[-1]["train_loss"] < lora_model.history_[0]["train_loss"]
    assert accuracy(lora_model, arxiv_split[1]) >= 0.6


@pytest.mark.parametrize("which", ["full_model", "lora_model"])
def test_save_and_load_give_identical_probabilities(which, request, arxiv_split, tmp_path) -> None:
    model = request.getfixturevalue(which)
    texts = arxiv_split[1].texts
    model.save(tmp_path / "model")
    saved = {p.name for p in (tmp_path / "model").iterdir()}
    assert ("adapter" if model.lora else "encoder") in saved and "head.safetensors" in saved
    if model.lora:  # the adapter only: a few MB, not the 90 MB encoder
        size = sum(f.stat().st_size for f in (tmp_path / "model" / "adapter").iterdir())
        assert size < 5_000_000
    again = load(tmp_path / "model")
    np.testing.assert_array_equal(again.predict_proba(texts), model.predict_proba(texts))
    assert again.predict(texts[:3]) == model.predict(texts[:3])


def test_multi_label_uses_sigmoids_and_tunes_thresholds() -> None:
    frame = pd.read_csv(ARXIV_MULTI).head(60)
    data = from_frame(frame, text=["titles", "summaries"], label="terms")
    model = create("encoder", {**FAST, "epochs": 2}).fit(data)
    proba = model.predict_proba(data.texts[:5])
    assert proba.shape == (5, len(data.label_set))
    assert ((proba >= 0) & (proba <= 1)).all() and not np.allclose(proba.sum(axis=1), 1.0)
    assert model.thresholds_.shape == (len(data.label_set),)
    assert all(isinstance(labels, tuple) for labels in model.predict(data.texts[:5]))


def test_freezing_and_class_weights(arxiv_split) -> None:
    params = {**FAST, "epochs": 1, "freeze_embeddings": True, "freeze_layers": 2}
    params |= {"class_weight": "balanced", "label_smoothing": 0.1, "pooling": "cls"}
    model = create("encoder", params).fit(arxiv_split[0])
    encoder = model.net_.encoder
    assert not any(p.requires_grad for p in encoder.embeddings.parameters())
    assert not any(p.requires_grad for p in encoder.encoder.layer[1].parameters())
    assert all(p.requires_grad for p in encoder.encoder.layer[2].parameters())
    assert 0.2 < model.trainable_share_ < 0.5  # the embeddings are half of minilm


CHILD = """
import json, sys
from docsort.data.dataset import Dataset
import docsort.models.kinds.encoder
from docsort.models import create
rows = json.load(open(sys.argv[1]))
create("encoder", json.loads(sys.argv[2])).fit(Dataset(rows["texts"], rows["labels"]))
"""


@pytest.mark.slow  # slow: 35 s; checkpoint resume is also checked by the resumed-run test
def test_a_killed_run_resumes_from_its_last_checkpoint(arxiv_split, tmp_path) -> None:
    train = arxiv_split[0]
    rows = tmp_path / "rows.json"
    rows.write_text(json.dumps({"texts": train.texts, "labels": train.labels}))
    params = {**FAST, "batch_size": 4, "checkpoint_dir": str(tmp_path / "ckpt")}
    params["checkpoint_every"] = 2
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "DOCSORT_NO_PROGRESS": "1"}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(rows), json.dumps(params)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / "ckpt" / "last.pt").exists():
            assert child.poll() is None, child.stderr.read().decode()
            assert time.monotonic() < deadline, "no checkpoint within 2 minutes"
            time.sleep(0.02)
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
    assert child.returncode == -signal.SIGKILL  # killed mid-run, not finished
    step = checkpoint_step(tmp_path / "ckpt")
    assert step is not None and step > 0

    model = create("encoder", {**params, "resume": True}).fit(Dataset(train.texts, train.labels))
    assert model.resumed_from_step_ == step
    per_epoch = model.history_[0]["step"]
    assert [h["epoch"] for h in model.history_] == [1, 2, 3]
    assert model.steps_ == 3 * per_epoch > step
    assert accuracy(model, arxiv_split[1]) >= 0.6


@pytest.mark.slow
def test_resumed_run_matches_an_uninterrupted_one(arxiv_split, tmp_path, killed_at_save) -> None:
    """Weights, optimizer, scheduler and RNG state all come back: the same model to the bit."""
    train, test = arxiv_split
    whole = create("encoder", FAST).fit(train)
    params = {**FAST, "checkpoint_dir": str(tmp_path / "ckpt"), "checkpoint_every": 3}
    with killed_at_save(3):
        create("encoder", params).fit(train)
    resumed = create("encoder", {**params, "resume": True}).fit(train)
    assert resumed.resumed_from_step_ > 0
    np.testing.assert_array_equal(
        resumed.predict_proba(test.texts), whole.predict_proba(test.texts)
    )


def test_bad_parameters_are_user_errors(arxiv_split) -> None:
    with pytest.raises(DocsortError, match="pooling"):
        create("encoder", {"pooling": "max"}).fit(arxiv_split[0])
    with pytest.raises(DocsortError, match="resume=True needs a checkpoint_dir"):
        create("encoder", {"resume": True}).fit(arxiv_split[0])
    bad_target = {**FAST, "lora": True, "lora_target_modules": ["q_proj"]}
    with pytest.raises(DocsortError, match="'q_proj' is not a module.*query"):
        create("encoder", bad_target).fit(arxiv_split[0])
    with pytest.raises(DocsortError, match="no parameter 'layers'"):
        create("encoder", {"layers": 3})


def test_unfitted_model_and_empty_input(full_model) -> None:
    with pytest.raises(DocsortError, match="not fitted"):
        create("encoder").predict_proba(["text"])
    assert full_model.predict_proba([]).shape == (0, 4)


@pytest.mark.slow  # slow: 112-221 s at load 7 in the default run; the kind's other tests stay
def test_title_and_abstract_become_the_tokenizers_text_pair(arxiv_split) -> None:
    """With a pair separator the two fields get segment ids 0 and 1 and the head still learns."""
    model = create("encoder", {**FAST, "pair_separator": "\n"}).fit(arxiv_split[0])
    text = arxiv_split[1].texts[0]
    title, abstract = text.split("\n", 1)
    rows = model._tokenized([text])
    segments = rows.encoding["token_type_ids"][0]
    assert segments[0] == 0 and segments[-1] == 1
    ids = rows.encoding["input_ids"][0]
    assert ids.count(model.tokenizer_.sep_token_id) == 2  # [CLS] title [SEP] abstract [SEP]
    assert model.tokenizer_.decode(ids[1 : ids.index(model.tokenizer_.sep_token_id)]) == (
        model.tokenizer_.decode(model.tokenizer_(title, add_special_tokens=False)["input_ids"])
    )
    assert accuracy(model, arxiv_split[1]) >= 0.6
    with pytest.raises(DocsortError, match="pair_separator"):
        create("encoder", {"pair_separator": ""}).fit(arxiv_split[0])


def test_lora_targets_follow_the_models_own_layer_names(lora_model) -> None:
    """minilm (BERT) calls its projections query/key/value, MPNet q/k/v/o: both get adapters."""
    from transformers import MPNetConfig, MPNetModel

    tiny = MPNetConfig(num_hidden_layers=1, hidden_size=32, num_attention_heads=2,
                       intermediate_size=32)  # fmt: skip
    assert training.lora_targets(MPNetModel(tiny)) == ["dense", "k", "o", "q", "v"]
    adapted = {n.split(".lora_A")[0].split(".")[-1]
               for n, _ in lora_model.net_.encoder.named_parameters() if "lora_A" in n}  # fmt: skip
    assert adapted == {"query", "key", "value", "dense"}
