"""What the cascade tests share: a weak and a strong tfidf stage, and real arXiv rows split
into train, validation and test."""

from __future__ import annotations

import pandas as pd
import pytest

from docsort.data.dataset import Dataset, from_frame, stratified_split

# a weak first stage (character 2-3 grams of a small vocabulary) and a stronger second one
WEAK = {"kind": "tfidf", "word_ngrams": None, "char_ngrams": [2, 3], "max_features": 300}
STRONG = {"kind": "tfidf"}


@pytest.fixture(scope="module")
def splits(arxiv_frame: pd.DataFrame) -> tuple[Dataset, Dataset, Dataset]:
    """Real arXiv rows (126 to train on: the weak stage is unsure of many): train, valid, test."""
    data = from_frame(arxiv_frame, text=["title", "abstract"], label="category")
    rest, test = stratified_split(data, 0.25, seed=0)
    train, valid = stratified_split(rest, 0.3, seed=0)
    return train, valid, test
