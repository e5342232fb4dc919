"""Active learning: which unlabelled rows to label next.

An uncertainty score per row from one model's probabilities (``margin``, ``entropy``) or from
the disagreement of several (``committee``); ``random`` is the baseline. Exact duplicates
(texts equal once whitespace is collapsed) are one candidate. Among the most uncertain
``candidates × n`` rows the pick is spread out: they are clustered on TF-IDF vectors into ``n``
groups and each group gives its most uncertain row, so a hundred near-copies of one confusing
message cost one label, not a hundred.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from docsort.errors import DocsortError

STRATEGIES = ("margin", "entropy", "committee", "random")
CANDIDATES = 5  # uncertain rows considered per row picked (1: the n most uncertain as they are)
EPS = 1e-12


def uncertainty(proba: np.ndarray, strategy: str, multi_label: bool = False) -> np.ndarray:
    """Higher is more uncertain, in [0, 1]. ``margin``: 1 − (top probability − second);
    ``entropy``: the entropy of the probabilities over its maximum, log k. Multi-label rows
    are scored per label (a label at 0.5 is the most uncertain) and the labels averaged
    (entropy) or the closest to 0.5 taken (margin). ``random`` scores as ``margin`` (the
    score is shown, the pick is random)."""
    p = np.clip(np.asarray(proba, dtype=np.float64), 0.0, 1.0)
    if p.ndim != 2 or p.shape[1] == 0:
        raise ValueError("probabilities must be a [rows, labels] matrix")
    if multi_label:
        if strategy == "entropy":
            return _binary_entropy(p).mean(axis=1)
        return 1.0 - np.abs(2 * p - 1).min(axis=1)
    if strategy == "entropy":
        if p.shape[1] == 1:
            return np.zeros(len(p))
        return _entropy(p) / np.log(p.shape[1])
    if p.shape[1] == 1:
        return np.zeros(len(p))
    top2 = -np.sort(-p, axis=1)[:, :2]
    return 1.0 - (top2[:, 0] - top2[:, 1])


def disagreement(probas: Sequence[np.ndarray], multi_label: bool = False) -> np.ndarray:
    """A committee's disagreement: the entropy of the mean prediction minus the mean entropy
    of the members (mutual information, the Jensen-Shannon divergence of the members), over
    its maximum; 0 when all members give the same probabilities."""
    stack = np.clip(np.stack([np.asarray(p, dtype=np.float64) for p in probas]), 0.0, 1.0)
    mean = stack.mean(axis=0)
    if multi_label:
        gap = _binary_entropy(mean) - _binary_entropy(stack).mean(axis=0)
        return np.clip(gap.mean(axis=1) / np.log(2), 0.0, 1.0)
    gap = _entropy(mean) - np.mean([_entropy(p) for p in stack], axis=0)
    most = np.log(min(len(probas), mean.shape[1])) if mean.shape[1] > 1 else 1.0
    return np.clip(gap / most, 0.0, 1.0)


def _entropy(p: np.ndarray) -> np.ndarray:
    return -(p * np.log(np.clip(p, EPS, None))).sum(axis=-1)


def _binary_entropy(p: np.ndarray) -> np.ndarray:
    q = np.clip(p, EPS, 1 - EPS)
    return -(q * np.log(q) + (1 - q) * np.log(1 - q))


@dataclass
class Distinct:
    first: np.ndarray  # index of each distinct text's first row
    copies: np.ndarray  # rows with that text


def distinct_texts(texts: Sequence[str]) -> Distinct:
    """Rows with the same text (whitespace collapsed) as one: the first of them, and how many."""
    seen: dict[str, int] = {}
    first: list[int] = []
    copies: list[int] = []
    for i, text in enumerate(texts):
        key = " ".join(text.split())
        if key in seen:
            copies[seen[key]] += 1
            continue
        seen[key] = len(first)
        first.append(i)
        copies.append(1)
    return Distinct(np.array(first, dtype=np.int64), np.array(copies, dtype=np.int64))


def pick(
    texts: Sequence[str],
    scores: np.ndarray,
    n: int,
    strategy: str,
    *,
    seed: int = 0,
    candidates: int = CANDIDATES,
) -> np.ndarray:
    """Indices into ``texts`` (already distinct) of the ``n`` rows to label, most uncertain
    first (random: in the order drawn)."""
    if strategy not in STRATEGIES:
        raise DocsortError(f"--strategy must be one of {', '.join(STRATEGIES)}, not {strategy!r}")
    n = min(n, len(texts))
    if strategy == "random":
        return np.random.default_rng(seed).permutation(len(texts))[:n]
    order = np.argsort(-np.asarray(scores), kind="stable")
    pool = order[: min(len(order), max(n, candidates * n))]
    if len(pool) <= n or candidates <= 1:
        return pool[:n]
    groups = _clusters([texts[i] for i in pool], n, seed)
    # ``pool`` is most uncertain first: each cluster gives its first (most uncertain) member;
    # should k-means find fewer than n clusters (copies), the next most uncertain fill up
    heads: dict[int, int] = {}
    for i, g in enumerate(groups):
        heads.setdefault(int(g), i)
    chosen = sorted(heads.values())[:n]
    rest = [i for i in range(len(pool)) if i not in set(chosen)]
    chosen = sorted(chosen + rest[: n - len(chosen)])
    return pool[chosen]


def _clusters(texts: list[str], k: int, seed: int) -> np.ndarray:
    """A cluster id per text: k-means on L2-normalised TF-IDF vectors (cosine geometry)."""
    from sklearn.cluster import KMeans
    from sklearn.feature_extraction.text import TfidfVectorizer

    try:
        vectors = TfidfVectorizer(sublinear_tf=True, max_features=50_000).fit_transform(texts)
    except ValueError:  # no word at all (e.g. only digits or punctuation): one cluster each
        return np.arange(len(texts))
    k = min(k, vectors.shape[0])
    with warnings.catch_warnings():  # fewer distinct points than clusters: filled up above
        warnings.simplefilter("ignore")
        return KMeans(n_clusters=k, n_init=1, random_state=seed).fit_predict(vectors)
