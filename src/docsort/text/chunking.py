"""Long documents: cut a text into token windows, score each, and aggregate the scores.

An encoder reads a fixed number of tokens (256 for ``minilm``), so a long review or speech is
otherwise cut to its head. Here a document becomes overlapping windows of ``size`` tokens
(``window``), or is truncated to its head, its tail, or both ends (``head``, ``tail``,
``head_tail``); window probabilities are combined by ``mean``, ``max``, a token-length
``weighted`` mean, or a majority ``vote``. Windows are cut at token boundaries of the model's
own tokenizer when it has one (so a 254-token window fits ``max_length`` 256 after the two
special tokens), else at whitespace-separated words.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

import numpy as np

from docsort.errors import DocsortError

STRATEGIES = ("head", "tail", "head_tail", "window")
AGGREGATES = ("mean", "max", "weighted", "vote")
TRAIN_ON = ("windows", "head")
HEAD_TAIL_GAP = " … "

Spans = list[tuple[int, int]]  # (start, end) character offsets of each token
SpanFn = Callable[[str], Spans]
_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class LongDoc:
    """How a model reads texts longer than ``size`` tokens; shorter texts are read whole."""

    strategy: str = "window"
    size: int = 254
    overlap: int = 64
    aggregate: str = "mean"
    train_on: str = "windows"  # windows inherit the document's label; or train on the head

    def __post_init__(self) -> None:
        def need(ok: bool, message: str) -> None:
            if not ok:
                raise DocsortError(f"long documents: {message}")

        need(self.strategy in STRATEGIES, f"strategy must be one of {STRATEGIES}")
        need(self.aggregate in AGGREGATES, f"aggregate must be one of {AGGREGATES}")
        need(self.train_on in TRAIN_ON, f"train_on must be one of {TRAIN_ON}")
        need(self.size >= 8, f"window size must be at least 8 tokens, got {self.size}")
        need(
            self.overlap >= 0 and (self.overlap < self.size or self.strategy != "window"),
            f"overlap must be at least 0 and below the window size {self.size}, got {self.overlap}",
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> LongDoc | None:
        if not values:
            return None
        unknown = sorted(set(values) - set(cls.__dataclass_fields__))
        if unknown:
            raise DocsortError(f"long documents: unknown setting {unknown[0]!r}")
        return cls(**values)


def word_spans(text: str) -> Spans:
    return [m.span() for m in _WORD.finditer(text)]


def tokenizer_spans(tokenizer: Any) -> SpanFn:
    """Token offsets from a Hugging Face fast tokenizer (no special tokens)."""

    def spans(text: str) -> Spans:
        encoded = tokenizer(
            text, add_special_tokens=False, return_offsets_mapping=True, truncation=False
        )
        return [(int(s), int(e)) for s, e in encoded["offset_mapping"] if e > s]

    return spans


class Piece(NamedTuple):
    """What a model reads of a text: the piece, its token count, and where it lies in the text
    (a ``head_tail`` piece spans the whole text, its middle left out)."""

    text: str
    tokens: int
    start: int
    end: int


def split_text(text: str, config: LongDoc, spans: SpanFn = word_spans) -> list[Piece]:
    """The pieces a model reads of ``text``."""
    tokens = spans(text)
    n, size = len(tokens), config.size
    if n <= size:
        return [Piece(text, n, 0, len(text))]
    if config.strategy == "head":
        end = tokens[size - 1][1]
        return [Piece(text[:end], size, 0, end)]
    if config.strategy == "tail":
        start = tokens[n - size][0]
        return [Piece(text[start:], size, start, len(text))]
    if config.strategy == "head_tail":  # a quarter from the start, the rest from the end
        head = size // 4
        tail = size - head
        joined = text[: tokens[head - 1][1]] + HEAD_TAIL_GAP + text[tokens[n - tail][0] :]
        return [Piece(joined, size, 0, len(text))]
    stride = config.size - config.overlap
    starts = list(range(0, n - config.overlap, stride))
    if starts[-1] + size < n:  # the last window ends at the last token
        starts.append(n - size)
    pieces = []
    for first in starts:
        last = min(first + size, n) - 1
        start, end = tokens[first][0], tokens[last][1]
        pieces.append(Piece(text[start:end], last - first + 1, start, end))
    return pieces


def split_texts(
    texts: Sequence[str], config: LongDoc, spans: SpanFn = word_spans
) -> tuple[list[Piece], np.ndarray]:
    """All pieces of all texts, flat, and the index of the text each piece belongs to."""
    pieces: list[Piece] = []
    owner: list[int] = []
    for i, text in enumerate(texts):
        for piece in split_text(text, config, spans):
            pieces.append(piece)
            owner.append(i)
    return pieces, np.asarray(owner, dtype=np.int64)


def aggregate(
    proba: np.ndarray,
    owner: np.ndarray,
    lengths: np.ndarray,  # tokens per piece, for the weighted mean
    n_docs: int,
    how: str,
    multi_label: bool,
    thresholds: np.ndarray | float = 0.5,
) -> np.ndarray:
    """One probability row per document from its windows' rows."""
    n_labels = proba.shape[1]
    out = np.zeros((n_docs, n_labels), dtype=np.float64)
    counts = np.bincount(owner, minlength=n_docs).astype(np.float64)
    if how == "mean":
        np.add.at(out, owner, proba)
        out /= counts.clip(min=1)[:, None]
    elif how == "weighted":
        np.add.at(out, owner, proba * lengths[:, None])
        out /= np.bincount(owner, weights=lengths, minlength=n_docs).clip(min=1e-12)[:, None]
    elif how == "max":
        out[:] = -np.inf
        np.maximum.at(out, owner, proba)
        if not multi_label:  # the largest window score of each label, renormalised
            out /= out.sum(axis=1, keepdims=True)
    elif how == "vote":
        # each window votes for its decision; the mean probability breaks ties
        votes = (
            (proba >= thresholds).astype(np.float64)
            if multi_label
            else np.eye(n_labels)[proba.argmax(axis=1)]
        )
        mean = aggregate(proba, owner, lengths, n_docs, "mean", multi_label)
        np.add.at(out, owner, votes)
        out /= counts.clip(min=1)[:, None]
        out = 0.999 * out + 0.001 * mean
        if not multi_label:
            out /= out.sum(axis=1, keepdims=True)
    else:
        raise DocsortError(f"long documents: aggregate must be one of {AGGREGATES}")
    return out


def training_pieces(data: Any, config: LongDoc, spans: SpanFn = word_spans) -> Any:
    """The rows a model trains on: every window with its document's label (and extra columns),
    or each document's head only (``train_on: head``, or a truncating strategy)."""
    from dataclasses import replace

    if config.strategy != "window":
        used = config
    elif config.train_on == "head":
        used = replace(config, strategy="head")
    else:
        used = config
    pieces, owner = split_texts(data.texts, used, spans)
    rows = data.subset(owner)
    rows.texts = [piece.text for piece in pieces]
    return rows
