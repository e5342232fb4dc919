"""A labelled (or unlabelled) collection of texts, built from any table.

Texts come from one column or several fields joined by a template such as
``"{title}. {abstract}"``; labels from one column (multi-label: a list column or a delimited
string). Pair tasks add a second text per row (``text_pair``) and an optional ``context``
(e.g. a CPC code); their label column holds numeric scores. Rows with empty text are skipped
and counted, or rejected in strict mode.

Rows written by augmentation (``docsort augment``, a config's ``augment:``) carry the method
that wrote them (``augmentation``) and the row they were made from (``origin_row``); labelled
reads keep both columns, splits keep such rows on the training side with their source (and
drop them when the source is held out), and evaluation leaves them out, so a paraphrase of a
validation or test row is never trained on and no test score is measured on written text.
"""

from __future__ import annotations

import ast
import hashlib
import json
import string
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from docsort.data.fields import FieldText
from docsort.data.labels import LabelSet, _preview
from docsort.errors import DocsortError

AUGMENTATION = "augmentation"  # the method that wrote the row ("" for a real row)
ORIGIN = "origin_row"  # the row it was made from (a real row: its own position)

Label = str | tuple[str, ...]


@dataclass
class Dataset:
    """Texts, their labels (``None`` when unlabelled) and the label set that orders them;
    for pair tasks also the second text of each row and its context (``None`` otherwise)."""

    texts: list[str]
    labels: list[Label] | None = None
    label_set: LabelSet | None = None
    name: str = ""
    skipped: int = 0
    truncated: int = 0  # texts cut to MAX_TEXT_CHARS
    extra: dict[str, list] = field(default_factory=dict)
    text_pair: list[str] | None = None
    context: list[str] | None = None

    def __post_init__(self) -> None:
        if self.labels is not None and len(self.labels) != len(self.texts):
            raise ValueError("texts and labels differ in length")
        for column in (self.text_pair, self.context):
            if column is not None and len(column) != len(self.texts):
                raise ValueError("texts and their pairs or contexts differ in length")
        if self.labels is not None and self.label_set is None:
            multi = bool(self.labels) and isinstance(self.labels[0], tuple)
            self.label_set = LabelSet.from_labels(self.labels, multi_label=multi)

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def multi_label(self) -> bool:
        return bool(self.label_set and self.label_set.multi_label)

    def targets(self, label_set: LabelSet | None = None) -> np.ndarray:
        """Label indices ``[n]`` (single-label) or a multi-hot matrix ``[n, n_labels]``."""
        label_set = label_set or self.label_set
        if self.labels is None or label_set is None:
            raise DocsortError(f"{self.name or 'the data'} has no labels: pass --label COLUMN")
        if label_set.multi_label:
            y = np.zeros((len(self.labels), len(label_set)), dtype=np.int64)
            for row, names in enumerate(self.labels):
                for name in label_names(names):
                    y[row, label_set.index(name)] = 1
            return y
        return np.array([label_set.index(name) for name in self.labels], dtype=np.int64)

    def scores(self) -> np.ndarray:
        """The labels read as numbers ``[n]``: the targets of pair (scoring) tasks."""
        if self.labels is None:
            raise DocsortError(f"{self.name or 'the data'} has no scores: pass --label COLUMN")
        values = np.empty(len(self.labels), dtype=np.float64)
        for row, value in enumerate(self.labels):
            try:
                values[row] = float(value)  # type: ignore[arg-type]
            except (TypeError, ValueError):
                raise DocsortError(
                    f"{self.name or 'the data'}: score {value!r} (row {row + 1}) is not a "
                    "number; a pair model needs numeric scores in the label column"
                ) from None
        if not np.isfinite(values).all():
            raise DocsortError(f"{self.name or 'the data'}: a score is not a finite number")
        return values

    def subset(self, indices: Sequence[int] | np.ndarray) -> Dataset:
        idx = [int(i) for i in indices]
        return replace(
            self,
            texts=[self.texts[i] for i in idx],
            labels=None if self.labels is None else [self.labels[i] for i in idx],
            extra={k: [v[i] for i in idx] for k, v in self.extra.items()},
            text_pair=None if self.text_pair is None else [self.text_pair[i] for i in idx],
            context=None if self.context is None else [self.context[i] for i in idx],
            skipped=0,
        )

    def augmented(self) -> np.ndarray:
        """Which rows augmentation wrote (``[n]`` booleans; none for plain data)."""
        marks = self.extra.get(AUGMENTATION)
        if marks is None:
            return np.zeros(len(self), dtype=bool)
        return np.array([_clean(m) != "" for m in marks], dtype=bool)

    def fingerprint(self) -> str:
        """A short hash of texts and labels: which data a saved model was trained on."""
        digest = hashlib.sha256()
        for i, text in enumerate(self.texts):
            digest.update(text.encode("utf-8"))
            digest.update(b"\x1f")
            for column in (self.text_pair, self.context):
                if column is not None:
                    digest.update(column[i].encode("utf-8"))
                    digest.update(b"\x1f")
            if self.labels is not None:
                digest.update(json.dumps(self.labels[i]).encode("utf-8"))
            digest.update(b"\x1e")
        return digest.hexdigest()[:16]

    def label_counts(self) -> Counter:
        counts: Counter = Counter()
        for value in self.labels or []:
            counts.update(label_names(value))
        return counts


MAX_TEXT_CHARS = 1_000_000  # longer texts are cut (and counted): a 50 MB cell would exhaust memory


def label_names(value: Label | list[str]) -> tuple[str, ...]:
    """A row's label names: a multi-label row's tuple (or list), a single label as a 1-tuple."""
    return tuple(value) if isinstance(value, (tuple, list)) else (value,)


def from_frame(
    frame: pd.DataFrame,
    text: str | Sequence[str] = "text",
    label: str | None = "label",
    *,
    template: str | None = None,
    labels: LabelSet | None = None,
    multi_label: bool | None = None,
    label_sep: str | None = None,
    strict: bool = False,
    name: str = "",
    keep: Sequence[str] = (),
    pair: str | None = None,
    context: str | None = None,
) -> Dataset:
    """Build a ``Dataset`` from a table.

    ``text`` is one column or several; several are joined by ``template`` (default: one per
    line). ``label=None`` gives an unlabelled dataset. ``labels`` fixes the label order and
    rejects labels outside it. ``keep`` names extra columns carried along (e.g. ids).
    ``pair`` names the column of each row's second text (a row without one is skipped like an
    empty text) and ``context`` a column of context codes (may be empty) for pair tasks.
    """
    fields = [text] if isinstance(text, str) else list(text)
    if template is not None:
        fields = _template_fields(template) or fields
    if label and AUGMENTATION in frame.columns:  # training and evaluation must see the marks
        marks = [c for c in (AUGMENTATION, ORIGIN) if c in frame.columns]
        keep = [*keep, *(c for c in marks if c not in keep)]
    pair_columns = [c for c in (pair, context) if c]
    wanted = fields + pair_columns + ([label] if label else []) + list(keep)
    missing = [col for col in wanted if col not in frame.columns]
    if missing:
        raise DocsortError(
            f"{name or 'data'}: no column {missing[0]!r}; "
            f"columns are {_preview(list(frame.columns))}"
        )
    multi = labels.multi_label if labels is not None else multi_label
    if label and multi is None:
        multi = _looks_multi_label(frame[label], label_sep)

    texts: list[str] = []
    parsed: list[Label] = []
    kept_rows: list[int] = []
    bad_rows: list[int] = []
    has_text = truncated = 0
    for row, values in enumerate(frame[fields].itertuples(index=False, name=None)):
        parts = dict(zip(fields, values, strict=True))
        joined = _join_fields(parts, fields, template)
        has_text += bool(joined)
        if len(joined) > MAX_TEXT_CHARS:
            joined, truncated = joined[:MAX_TEXT_CHARS], truncated + 1
        value = frame[label].iat[row] if label else None
        parsed_label = _parse_label(value, bool(multi), label_sep) if label else None
        if pair and not _clean(frame[pair].iat[row]):
            joined = ""  # half a pair cannot be scored
        if not joined or (label and parsed_label is None):
            bad_rows.append(row)
            continue
        if len(fields) > 1:  # the fields ride along for the kinds that read them apart
            joined = FieldText(joined, {f: _clean(v)[:MAX_TEXT_CHARS] for f, v in parts.items()})
        texts.append(joined)
        kept_rows.append(row)
        if label:
            parsed.append(parsed_label)  # type: ignore[arg-type]
    if bad_rows and strict:
        raise DocsortError(
            f"{name or 'data'}: {len(bad_rows)} row(s) have empty text or no label "
            f"(first: row {bad_rows[0] + 1}); fix them or drop --strict to skip them"
        )
    if not texts:
        if label and has_text:
            raise DocsortError(f"{name or 'data'}: no row has a label in column {label!r}")
        raise DocsortError(f"{name or 'data'}: no rows with text in column(s) {fields}")

    if label and labels is not None:
        unknown = sorted({n for v in parsed for n in label_names(v)} - set(labels.names))
        if unknown:
            raise DocsortError(
                f"{name or 'data'}: label {unknown[0]!r} is not in the labels file "
                f"(it lists {_preview(labels.names)}); add it there or fix the data"
            )
    label_set = labels
    if label and label_set is None:
        label_set = LabelSet.from_labels(parsed, multi_label=bool(multi))
    extra = {col: [frame[col].iat[r] for r in kept_rows] for col in keep}
    return Dataset(
        texts=texts,
        labels=parsed if label else None,
        label_set=label_set,
        name=name,
        skipped=len(bad_rows),
        truncated=truncated,
        extra=extra,
        text_pair=[_clean(frame[pair].iat[r]) for r in kept_rows] if pair else None,
        context=[_clean(frame[context].iat[r]) for r in kept_rows] if context else None,
    )


def _template_fields(template: str) -> list[str]:
    """The columns a template names; a malformed template is a one-line error."""
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise DocsortError(f"--template {template!r} is malformed ({exc})") from None
    for _, field_name, spec, _ in parts:
        if field_name is not None and not field_name.isidentifier() or "{" in (spec or ""):
            raise DocsortError(
                f'--template {template!r}: use plain {{column}} names, e.g. "{{title}}. '
                f'{{abstract}}" (not {field_name!r} with {spec!r})'
            )
    return [f for _, f, _, _ in parts if f]


def _clean(value: object) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    if not isinstance(value, str):
        return "" if isinstance(value, (bytes, list, dict, tuple)) else str(value).strip()
    return value.strip()


def _join_fields(values: dict[str, object], fields: list[str], template: str | None) -> str:
    cleaned = {f: _clean(values[f]) for f in fields}
    if not any(cleaned.values()):
        return ""
    if template is None:
        return "\n".join(v for v in cleaned.values() if v)
    try:
        return template.format(**cleaned).strip()
    except (KeyError, ValueError, IndexError, AttributeError) as exc:
        raise DocsortError(f"--template {template!r} cannot be filled ({exc!r})") from None


def _looks_multi_label(column: pd.Series, sep: str | None) -> bool:
    sample = column.dropna().head(50)
    if sep is not None:
        return True
    return any(
        isinstance(v, (list, tuple, np.ndarray))
        or (isinstance(v, str) and v.strip().startswith("["))
        for v in sample
    )


def _parse_label(value: object, multi: bool, sep: str | None) -> Label | None:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if not multi:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        text = str(value).strip()
        return text or None
    if isinstance(value, str):
        raw = value.strip()
        if raw.startswith("["):
            try:
                items = json.loads(raw)
            except json.JSONDecodeError:
                try:
                    items = ast.literal_eval(raw)
                except (ValueError, SyntaxError):
                    raise DocsortError(f"cannot read multi-label value {raw[:60]!r}") from None
        else:
            items = raw.split(sep) if sep else [raw]
    elif isinstance(value, (list, tuple, np.ndarray)):
        items = list(value)
    else:
        items = [value]
    names = tuple(dict.fromkeys(str(i).strip() for i in items if str(i).strip()))
    return names


def stratified_split(
    data: Dataset, test_size: float = 0.2, seed: int = 0
) -> tuple[Dataset, Dataset]:
    """A seeded split keeping label proportions (plain random for multi-label or tiny classes).
    Augmented rows are never held out: each follows its source row to the training side, or is
    dropped when its source is held out (a row without a known source stays in training)."""
    marked = data.augmented()
    if not marked.any():
        train_idx, test_idx = _split_indices(data, test_size, seed)
        return data.subset(train_idx), data.subset(test_idx)
    real = np.flatnonzero(~marked)
    train_idx, test_idx = _split_indices(data.subset(real), test_size, seed)
    train_idx, test_idx = real[train_idx], real[test_idx]
    written = _written_beside(np.flatnonzero(marked), _origins(data), test_idx)
    return data.subset(np.sort([*train_idx, *written])), data.subset(test_idx)


def folds_keeping_written_in_training(
    data: Dataset, y: np.ndarray, folds: int
) -> list[tuple[np.ndarray, np.ndarray]] | None:
    """Stratified cross-validation folds (as scikit-learn's ``cv=folds`` makes them, over the
    real rows) in which augmented rows are only ever training rows, and only in folds that do
    not hold out their source; ``None`` when no row is augmented. For a kind's internal
    validation such as tfidf's calibration folds: scored on written rows, the calibration
    learnt their scores instead of real documents' (on arXiv, 16 rows a class plus 20
    paraphrases of one class, that class's test recall fell from 0.62 to 0.22)."""
    from sklearn.model_selection import StratifiedKFold

    marked = data.augmented()
    if not marked.any():
        return None
    real, written = np.flatnonzero(~marked), np.flatnonzero(marked)
    origins = _origins(data)
    out = []
    for train_idx, test_idx in StratifiedKFold(n_splits=folds).split(real, y[real]):
        kept = _written_beside(written, origins, real[test_idx])
        out.append((np.sort(np.concatenate([real[train_idx], kept])).astype(int), real[test_idx]))
    return out


def real_rows(data: Dataset) -> tuple[Dataset, int]:
    """``data`` without the rows augmentation wrote, and how many those were: scores are
    measured on real documents only."""
    marked = data.augmented()
    if not marked.any():
        return data, 0
    if marked.all():
        raise DocsortError(
            f"{data.name or 'the data'}: every row was written by augmentation "
            f"(column {AUGMENTATION!r}); evaluate on real documents"
        )
    return data.subset(np.flatnonzero(~marked)), int(marked.sum())


def _origins(data: Dataset) -> list[str | None]:
    """Each row's ``origin_row`` key (``None`` where unknown)."""
    return [_origin_key(o) for o in data.extra.get(ORIGIN, [None] * len(data))]


def _written_beside(
    written: np.ndarray, origins: list[str | None], held_out: np.ndarray
) -> list[int]:
    """The written rows whose source is not one of the ``held_out`` rows: they may train."""
    sources = {origins[i] for i in held_out} - {None}
    return [int(i) for i in written if origins[i] not in sources]


def _origin_key(value: object) -> str | None:
    """``origin_row`` as read back from any format (CSV may give 3.0 for 3)."""
    text = _clean(value)
    if not text:
        return None
    try:
        return str(int(float(text)))
    except ValueError:
        return text


def _split_indices(data: Dataset, test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    if not 0.0 < test_size < 1.0:
        raise DocsortError(f"split size must be between 0 and 1, got {test_size}")
    indices = np.arange(len(data))
    stratify = None
    if data.labels is not None and not data.multi_label:
        counts = Counter(data.labels)
        n_test = int(np.ceil(test_size * len(data)))
        if (
            min(counts.values()) >= 2
            and n_test >= len(counts)
            and len(data) - n_test >= len(counts)
        ):
            stratify = data.labels
    train_idx, test_idx = train_test_split(
        indices, test_size=test_size, random_state=seed, stratify=stratify
    )
    return np.sort(train_idx), np.sort(test_idx)


def grouped_split(
    data: Dataset, groups: Sequence[object], test_size: float = 0.2, seed: int = 0
) -> tuple[Dataset, Dataset]:
    """A seeded split that keeps every group on one side (e.g. all rows of one anchor phrase),
    so the test rows measure how a model does on groups it never saw. ``test_size`` is the
    share of groups held out."""
    if not 0.0 < test_size < 1.0:
        raise DocsortError(f"split size must be between 0 and 1, got {test_size}")
    if len(groups) != len(data):
        raise ValueError("one group per row is needed")
    distinct = sorted(set(groups), key=str)
    if len(distinct) < 2:
        raise DocsortError(
            f"{data.name or 'the data'}: a split by group needs at least two groups "
            f"(e.g. two different anchors), it has {len(distinct)}"
        )
    rng = np.random.default_rng(seed)
    n_test = min(max(1, round(test_size * len(distinct))), len(distinct) - 1)
    held_out = {distinct[i] for i in rng.permutation(len(distinct))[:n_test]}
    in_test = np.array([g in held_out for g in groups])
    return data.subset(np.flatnonzero(~in_test)), data.subset(np.flatnonzero(in_test))
