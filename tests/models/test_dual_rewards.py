"""GRPO on the dual encoder itself (``reward_tune``): multi-label, each label a Bernoulli; a
model trained in full gets the adapters merged into its encoder and saves as any dual model.
(Single-label, LoRA stacking, the service, the store and the gate: tests/tracking/
test_retrain_grpo.py.)"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from docsort.data.dataset import from_frame
from docsort.data.labels import LabelSet
from docsort.models import load
from docsort.models.kinds.dual import zero_shot
from docsort.models.nn.grpo import GrpoArgs, RewardRow
from tests.conftest import ARXIV_MULTI

torch = pytest.importorskip("torch")

SMALL = {"max_length": 48, "label_max_length": 16, "eval_batch_size": 32}
TERMS = {
    "cs.LG": "Machine learning: neural networks, training, optimisation, deep learning.",
    "cs.CV": "Computer vision: images, video, detection, segmentation.",
    "stat.ML": "Statistical machine learning: inference, probabilistic models, estimation.",
    "cs.AI": "Artificial intelligence: reasoning, planning, agents, knowledge.",
}


def log_likelihood(logits: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Each row's Bernoulli log-likelihood of its true label set."""
    z = torch.as_tensor(logits)
    y = torch.as_tensor(truth, dtype=z.dtype)
    f = torch.nn.functional.logsigmoid
    return (y * f(z) + (1 - y) * f(-z)).sum(-1).numpy()


@pytest.mark.slow
def test_multi_label_grpo_moves_toward_the_corrected_sets(tmp_path: Path) -> None:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # minilm on a busy 2-core machine: one thread is faster
    try:
        frame = pd.read_csv(ARXIV_MULTI).head(600)
        data = from_frame(frame, ["titles"], "terms")
        keep = [i for i, v in enumerate(data.labels) if set(v) <= set(TERMS)][:24]
        rows = data.subset(keep)
        labels = LabelSet(tuple(TERMS), TERMS, multi_label=True)
        model = zero_shot(labels, **SMALL)
        served = model.predict(rows.texts)
        feedback, wrong = [], []
        for i, (text, answer, truth) in enumerate(
            zip(rows.texts, served, rows.labels, strict=True)
        ):
            answer = tuple(np.atleast_1d(answer).tolist())
            right = set(answer) == set(truth)
            correction = None if right else tuple(truth)
            feedback.append(RewardRow(text, answer, 5 if right else 1, correction))
            wrong += [] if right else [i]
        assert len(wrong) >= 4
        args = GrpoArgs(steps=9, batch_size=8, group_size=6, lr=1e-3, kl_beta=0.02)
        tuned = model.reward_tune(feedback, args)
        truth = np.array([[n in v for n in TERMS] for v in rows.labels], dtype=float)
        texts = [rows.texts[i] for i in wrong]
        before = log_likelihood(model.logits(texts), truth[wrong]).mean()
        after = log_likelihood(tuned.logits(texts), truth[wrong]).mean()
        assert after > before
        assert tuned.reward_summary_["steps"] == 9
        # the champion is untouched, and the tuned model saves as a dual trained in full
        assert np.allclose(model.logits(texts), zero_shot(labels, **SMALL).logits(texts))
        tuned.save(tmp_path / "tuned")
        assert (tmp_path / "tuned" / "encoder").is_dir()
        again = load(tmp_path / "tuned")
        assert np.allclose(again.predict_proba(texts), tuned.predict_proba(texts), atol=1e-6)
    finally:
        torch.set_num_threads(threads)
