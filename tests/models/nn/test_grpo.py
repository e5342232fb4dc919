"""GRPO's parts: rewards from ratings and corrections, group-normalised advantages, the exact
KL, the settings' checks, and the loop moving a real (small) policy toward rewarded answers.

The policy here is a linear softmax over TF-IDF features of real arXiv abstracts, started from
a nearest-centroid classifier of other rows (built in a fraction of a second); the dual
encoder's own test is in tests/models/test_dual_rewards.py."""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import pytest

from docsort.data.labels import LabelSet
from docsort.errors import DocsortError
from docsort.models.nn import grpo
from docsort.models.nn.grpo import GrpoArgs, RewardRow
from tests.conftest import ARXIV_8CAT

torch = pytest.importorskip("torch")

LABELS = LabelSet(("a", "b", "c"))


def test_rewards_follow_the_rating_and_the_correction() -> None:
    args = GrpoArgs()
    rows = [
        RewardRow("x", served=("a",), rating=5),  # right answer
        RewardRow("x", served=("a",), rating=1),  # wrong answer, no correction
        RewardRow("x", served=("a",), rating=1, correction=("b",)),
        RewardRow("x", correction=("c",)),  # a correction sent without a prediction
        RewardRow("x", served=("a",), rating=3),  # neutral: teaches nothing
    ]
    targets = grpo.reward_targets(rows, LABELS)
    each = np.eye(3)[None].repeat(len(rows), 0)  # samples a, b, c for every row
    r = grpo.rewards(each, targets, args)
    assert r[0].tolist() == [1.0, -1.0, -1.0]
    assert r[1].tolist() == [-1.0, 0.0, 0.0]  # a bad rating says nothing of the others
    assert r[2].tolist() == [-2.0, 1.0, -1.0]  # correction > other > the 1-rated answer
    assert r[3].tolist() == [-1.0, -1.0, 1.0]
    assert r[4].tolist() == [0.0, 0.0, 0.0]
    advantage = grpo.advantages(r)
    assert np.allclose(advantage.mean(axis=1), 0) and np.all(advantage[4] == 0)
    assert advantage[2].argmax() == 1 and advantage[2].argmin() == 0


def test_multi_label_agreement_is_partial() -> None:
    target = np.array([[1, 1, 0]], dtype=np.float32)
    samples = np.array([[[1, 1, 0], [1, 0, 0], [0, 0, 1], [0, 0, 0]]], dtype=np.float32)
    assert grpo.agreement(samples, target).round(3).tolist() == [[1.0, 0.0, -1.0, -1.0]]
    with pytest.raises(DocsortError, match="^feedback names 'z'"):
        grpo.reward_targets([RewardRow("x", correction=("z",))], LABELS)


def test_kl_is_exact_and_zero_at_the_reference() -> None:
    gen = torch.Generator().manual_seed(0)
    p, q = torch.randn(4, 3, generator=gen), torch.randn(4, 3, generator=gen)
    assert torch.allclose(grpo.kl(p, p, multi=False), torch.zeros(4), atol=1e-6)
    sp, sq = torch.softmax(p, -1), torch.softmax(q, -1)
    assert torch.allclose(grpo.kl(p, q, False), (sp * (sp / sq).log()).sum(-1), atol=1e-5)
    bp, bq = torch.sigmoid(p), torch.sigmoid(q)
    bernoulli = bp * (bp / bq).log() + (1 - bp) * ((1 - bp) / (1 - bq)).log()
    assert torch.allclose(grpo.kl(p, q, True), bernoulli.sum(-1), atol=1e-5)
    # the sampled sets' log-probabilities: one-hot (single) and per-label Bernoulli (multi)
    drawn = grpo.sample(p, 5, multi=True, generator=gen)
    assert drawn.shape == (4, 5, 3) and set(drawn.unique().tolist()) <= {0.0, 1.0}
    one = grpo.sample(p, 5, multi=False, generator=gen)
    assert torch.all(one.sum(-1) == 1)
    assert torch.allclose(grpo.log_prob(p, one, False).exp().sum(), (one * sp[:, None]).sum())


def test_settings_are_checked_in_one_line() -> None:
    assert GrpoArgs.from_pairs(["steps=3", "kl_beta=0.5"]).steps == 3
    for pairs, message in [
        (["steps=0"], "^GRPO steps must be a whole number in"),
        (["group_size=1"], "^GRPO group_size must be"),
        (["lr=fast"], "^GRPO lr must be a number, not 'fast'"),
        (["beta=1"], "^unknown GRPO setting 'beta': the settings are group_size"),
        (["steps"], "^--grpo-param takes KEY=VALUE"),
        (["correction_weight=0", "rating_weight=0"], "must not both be 0"),
    ]:
        with pytest.raises(DocsortError, match=message):
            GrpoArgs.from_pairs(pairs)


@functools.cache
def linear_policy() -> tuple[np.ndarray, list[str], np.ndarray, np.ndarray]:
    """A nearest-centroid classifier (scaled cosine to each category's mean TF-IDF vector) of
    20 real abstracts per arXiv category, and 25 other abstracts per category (features,
    truth)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    frame = pd.read_csv(ARXIV_8CAT)
    train = frame.groupby("category", group_keys=False).head(20)
    later = frame.groupby("category", group_keys=False).nth(slice(20, 45))
    words = TfidfVectorizer(max_features=1000, sublinear_tf=True).fit(train.abstract)
    names = sorted(train.category.unique())
    seen = words.transform(train.abstract).toarray()
    centroids = np.stack([seen[(train.category == n).to_numpy()].mean(0) for n in names])
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    x = words.transform(later.abstract).toarray().astype(np.float32)
    truth = np.searchsorted(names, later.category)
    return (20 * centroids).astype(np.float32), names, x, truth


def tune(beta: float, steps: int = 30) -> dict[str, float]:
    """Simulated feedback on the 200 later rows: the served answer is the regression's, rated 5
    when right and 1 when wrong; half the wrong ones also carry their true label."""
    coef, names, x, truth = linear_policy()
    reference = x @ coef.T
    served = reference.argmax(1)
    wrong = np.flatnonzero(served != truth)
    corrected = wrong[::2]
    rows = [
        RewardRow(
            str(i),
            served=(names[served[i]],),
            rating=5 if served[i] == truth[i] else 1,
            correction=(names[truth[i]],) if i in corrected else None,
        )
        for i in range(len(x))
    ]
    targets = grpo.reward_targets(rows, LabelSet(tuple(names)))
    weight = torch.nn.Parameter(torch.tensor(coef))
    bias = torch.nn.Parameter(torch.zeros(len(names)))
    features = torch.tensor(x)

    def logits_of(batch: np.ndarray) -> torch.Tensor:
        return features[batch] @ weight.T + bias

    args = GrpoArgs(steps=steps, batch_size=32, lr=0.05, kl_beta=beta, updates=2)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: a second thread only waits
    try:
        result = grpo.train(logits_of, [weight, bias], reference, targets, False, args)
    finally:
        torch.set_num_threads(threads)
    after = logits_of(np.arange(len(x))).detach().numpy()
    return {
        "corrected_before": float(np.mean(served[corrected] == truth[corrected])),
        "corrected_after": float(np.mean(after.argmax(1)[corrected] == truth[corrected])),
        "all_before": float(np.mean(served == truth)),
        "all_after": float(np.mean(after.argmax(1) == truth)),
        "kl": grpo.mean_kl(after, reference, False),
        "reward_first": result.summary()["reward_first"],
        "reward_last": result.summary()["reward_last"],
    }


def test_grpo_moves_the_policy_toward_rewarded_answers_within_a_kl_bound() -> None:
    free, held = tune(beta=0.02), tune(beta=2.0)
    assert free["corrected_before"] == 0.0  # every corrected row was answered wrongly
    assert free["corrected_after"] >= 0.5
    assert free["all_after"] > free["all_before"]
    assert free["reward_last"] > free["reward_first"]
    assert 0 < free["kl"] < 2.0
    # a larger KL weight keeps the policy nearer the reference
    assert held["kl"] < free["kl"]
