"""The fast PyTorch predict path gives the answers the old one gave: the embed kind's vectors are
sentence-transformers' own, the encoder's probabilities those of the length-sorted fixed batches;
token budgets cut long texts into smaller batches."""

from __future__ import annotations

import numpy as np
import pandas as pd

from docsort.models.nn.fast import TOKEN_BUDGET, token_batches


def test_token_batches_hold_the_budget_and_every_row_once() -> None:
    lengths = np.array([5, 512, 40, 512, 3, 128, 128, 7] * 20)
    batches = token_batches(lengths, max_rows=32)
    rows = np.concatenate(batches)
    assert sorted(rows.tolist()) == list(range(len(lengths)))
    assert all(lengths[b].max() * len(b) <= TOKEN_BUDGET for b in batches)
    assert max(len(b) for b in batches) == 32  # short rows fill the row cap
    widths = [int(lengths[b].max()) for b in batches]
    assert widths == sorted(widths, reverse=True)  # longest first
    assert len(token_batches(np.array([9000]), max_rows=8)[0]) == 1  # one row at least


def test_embed_vectors_are_sentence_transformers_own(arxiv_frame: pd.DataFrame) -> None:
    from docsort.models.kinds.embedding import EmbedClassifier
    from docsort.models.nn.fast import sentence_vectors

    model = EmbedClassifier(max_length=64, batch_size=16)
    texts = (arxiv_frame.title + "\n" + arxiv_frame.abstract).head(48).tolist()
    texts += ["  padded with spaces  ", "x", "ünïcode — and a tab\there"]
    st = model._encoder()
    fast = sentence_vectors(st, texts, 16)
    slow = st.encode(texts, batch_size=16, normalize_embeddings=True, convert_to_numpy=True,
                     show_progress_bar=False)  # fmt: skip
    assert fast is not None and fast.shape == slow.shape
    assert np.abs(fast - slow).max() < 1e-5
