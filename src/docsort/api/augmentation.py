"""Augmentation: new training rows for chosen classes, written from their real rows.

``augment_rows`` takes labelled rows and an ``AugmentSpec`` (``docsort augment``'s options, or
a training config's ``augment:`` mapping), writes ``n`` rows per source row of the chosen
classes (``docsort.augment``: paraphrases by an LLM, or back-translations), drops what adds
nothing (empty answers, near-verbatim copies of the source, duplicates of any training text)
and, with ``filter``, rows that a model trained on the real rows assigns to another class.
The rows it adds carry the method (``augmentation``) and their source row (``origin_row``),
so splits keep them out of validation and evaluation leaves them out (``data/dataset.py``).

In training, augmentation runs after the validation rows are split off, on the training rows
only; ``run_augment`` writes the real rows and the new ones to a file for ``docsort train``.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from docsort.api.rows import Columns, Source, notes_on, read_rows
from docsort.data.dataset import AUGMENTATION, ORIGIN, Dataset, _origin_key, label_names
from docsort.data.loaders import READERS, write_table
from docsort.errors import DocsortError
from docsort.io import atomic_path
from docsort.models.base import Model, create, load
from docsort.models.params import (
    Choice,
    Flag,
    Integer,
    Items,
    Number,
    Optional,
    Text,
    check_params,
)
from docsort.progress import progress_bar

METHODS = ("paraphrase", "backtranslate")
DROP_REASONS = ("failed", "empty", "copy", "duplicate", "filter")


@dataclass
class AugmentSpec:
    """How to write new rows. ``classes``: the labels whose rows are restated (none: every
    label); ``n``: rows written per source row; ``max_rows``: at most this many source rows a
    class (a seeded sample), to bound the cost.

    paraphrase: ``generator`` is a GGUF alias or path for llama.cpp, or with ``base_url`` the
    model name of an OpenAI-compatible endpoint; ``prompts`` replace the built-in ones (one
    answer per prompt). backtranslate: ``translator`` there and ``back_translator`` back (hub
    ids or paths). ``filter``: drop rows another model assigns to another class, that model
    being ``filter_model`` (a saved model dir) or tfidf trained on the real rows."""

    method: str = "paraphrase"
    classes: tuple[str, ...] = ()
    n: int = 1
    max_rows: int | None = None
    generator: str = "qwen-0.5b"
    base_url: str | None = None
    api_key_env: str | None = "OPENAI_API_KEY"
    prompts: tuple[str, ...] | None = None
    max_chars: int = 2000
    max_tokens: int = 160
    threads: int | None = None
    translator: str | None = None
    back_translator: str | None = None
    filter: bool = True
    filter_model: str | None = None
    max_copied: float = 0.9
    seed: int = 0

    RULES = {
        "method": Choice(*METHODS),
        "classes": Items(Text(nonempty=True)),
        "n": Integer(min=1),
        "max_rows": Optional(Integer(min=1)),
        "generator": Text(nonempty=True),
        "base_url": Optional(Text(nonempty=True)),
        "api_key_env": Optional(Text(nonempty=True)),
        "prompts": Optional(Items(Text(nonempty=True), min_length=1)),
        "max_chars": Integer(min=50),
        "max_tokens": Integer(min=8),
        "threads": Optional(Integer(min=1)),
        "translator": Optional(Text(nonempty=True)),
        "back_translator": Optional(Text(nonempty=True)),
        "filter": Flag(),
        "filter_model": Optional(Text(nonempty=True)),
        "max_copied": Number(min=0, max=1, exclusive="min"),
        "seed": Integer(),
    }

    @classmethod
    def from_mapping(cls, values: Any) -> AugmentSpec:
        """A config's ``augment:`` mapping, checked: unknown keys and bad values are one line."""
        if not isinstance(values, Mapping):
            raise DocsortError("augment must be a mapping, e.g. {method: paraphrase, n: 1}")
        known = [f.name for f in fields(cls)]
        unknown = [k for k in values if k not in known]
        if unknown:
            raise DocsortError(f"augment: unknown key {unknown[0]!r}; keys are {', '.join(known)}")
        check_params("augment", cls.RULES, dict(values))
        given = dict(values)
        for key in ("classes", "prompts"):
            if given.get(key) is not None:
                given[key] = tuple(given[key])
        spec = cls(**given)
        spec.check()
        return spec

    def check(self) -> None:
        check_params("augment", self.RULES, {f.name: getattr(self, f.name) for f in fields(self)})
        if self.method == "backtranslate" and not (self.translator and self.back_translator):
            raise DocsortError(
                "augment backtranslate needs translator and back_translator (hub ids or paths, "
                "e.g. Helsinki-NLP/opus-mt-en-de and Helsinki-NLP/opus-mt-de-en)"
            )
        if self.method == "paraphrase" and self.n > len(self.prompts or _prompts()):
            raise DocsortError(
                f"augment paraphrase n={self.n}: at most {len(self.prompts or _prompts())} "
                "(one answer per prompt); give more prompts to write more"
            )

    def record(self) -> dict[str, Any]:
        """What a trained model records of it: every setting but the run-time ``threads``, so
        ``docsort retrain`` writes the next version's rows the same way (``api_key_env`` names
        a variable; the key itself is never read here)."""
        shown = [f.name for f in fields(self) if f.name != "threads"]
        values = {k: getattr(self, k) for k in shown}
        # None kept: api_key_env None (no key sent) must not come back as the default variable
        return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}


@dataclass
class AugmentRequest:
    """``docsort augment DATA --out FILE``: the real rows and the new ones, written to ``out``
    (CSV, TSV, JSONL, JSON or Parquet by its suffix)."""

    data: Source
    spec: AugmentSpec
    out: str | Path | None = None
    columns: Columns = field(default_factory=Columns)
    device: str = "cpu"


@dataclass
class AugmentResult:
    rows: Dataset  # the real rows, then the new ones (marked)
    report: dict[str, Any]
    notes: list[str] = field(default_factory=list)  # what reading the rows left out


def run_augment(request: AugmentRequest) -> AugmentResult:
    """Read the rows, augment them, write the result atomically (nothing on failure)."""
    request.spec.check()
    out = Path(request.out) if request.out is not None else None
    if out is not None and out.suffix.lower() not in READERS:
        raise DocsortError(
            f"--out {out}: unknown file type {out.suffix or '(none)'}; "
            f"use one of {', '.join(sorted(READERS))}"
        )
    data = read_rows(request.data, request.columns)
    rows, report = augment_rows(data, request.spec, device=request.device)
    if out is not None:
        with atomic_path(out) as tmp:
            write_table(as_frame(rows), tmp, suffix=out.suffix)
    return AugmentResult(rows, report, notes_on(data, str(request.data)))


def augment_rows(
    data: Dataset, spec: AugmentSpec, device: str = "cpu", writer: Any = None
) -> tuple[Dataset, dict[str, Any]]:
    """``data`` with the rows written for ``spec.classes`` added (marked), and a report.
    ``writer``: anything with ``write(texts, n, advance) -> n texts per text`` (and optionally
    ``usage``) used instead of the one ``spec`` names, e.g. a cache of earlier answers."""
    started = time.perf_counter()
    if data.labels is None or data.label_set is None:
        raise DocsortError(f"{data.name or 'the data'}: augmentation needs labelled rows")
    if data.text_pair is not None:
        raise DocsortError("augmentation writes single texts; pair rows are not supported")
    classes = spec.classes or tuple(data.label_set.names)
    unknown = [c for c in classes if c not in data.label_set.names]
    if unknown:
        raise DocsortError(
            f"augment: no label {unknown[0]!r} in the data; its labels are "
            f"{', '.join(data.label_set.names[:10])}{' ...' if len(data.label_set) > 10 else ''}"
        )
    data = marked(data)
    real = np.flatnonzero(~data.augmented())
    sources = _sources(data, real, classes, spec.max_rows, spec.seed)
    if not sources:
        raise DocsortError(f"augment: no real row has any of the labels {', '.join(classes)}")
    writer = writer if writer is not None else _writer(spec, device)
    texts = [data.texts[i] for i in sources]
    try:
        with progress_bar(f"{spec.method}: writing rows", total=len(texts) * spec.n) as advance:
            written = writer.write(texts, spec.n, advance)
    finally:
        close = getattr(getattr(writer, "backend", None), "close", None)
        if close is not None:
            close()
    dropped: Counter = Counter()
    seen = _keys(data.texts)
    candidates: list[tuple[int, str]] = []
    from docsort.augment.filters import why_dropped

    for source, answers in zip(sources, written, strict=True):
        for text in answers:
            reason = (
                "failed"
                if not text
                else why_dropped(text, data.texts[source], seen, spec.max_copied)
            )
            if reason:
                dropped[reason] += 1
            else:
                candidates.append((source, text))
    filter_note = None
    if spec.filter and candidates:
        judge, filter_note = _filter_model(spec, data.subset(real))
        predicted = judge.predict([text for _, text in candidates])
        agreed = [
            (s, t)
            for (s, t), p in zip(candidates, predicted, strict=True)
            if _agrees(p, data.labels[s])
        ]
        dropped["filter"] += len(candidates) - len(agreed)
        candidates = agreed
    rows = _with_new_rows(data, candidates, spec.method)
    kept = Counter(label for s, _ in candidates for label in label_names(data.labels[s]))
    report = {
        "method": spec.method,
        "classes": list(classes),
        "n": spec.n,
        "sources": len(sources),
        "written": len(sources) * spec.n,
        "dropped": {r: int(dropped[r]) for r in DROP_REASONS},
        "kept": len(candidates),
        "kept_per_class": {c: int(kept[c]) for c in classes},
        "filter": filter_note,
        "usage": dict(getattr(writer, "usage", {})),
        "seconds": round(time.perf_counter() - started, 2),
        "spec": spec.record(),
    }
    return rows, report


def marked(data: Dataset) -> Dataset:
    """``data`` with both mark columns: real rows get ``augmentation`` "" and their own
    position as ``origin_row`` (rows read from an augmented file keep theirs)."""
    n = len(data)
    extra = dict(data.extra)
    marks = extra.get(AUGMENTATION) or [""] * n
    extra[AUGMENTATION] = [m.strip() if isinstance(m, str) else "" for m in marks]
    origins = extra.get(ORIGIN) or [None] * n
    extra[ORIGIN] = [o if _origin_key(o) is not None else i for i, o in enumerate(origins)]
    return replace(data, extra=extra)


def as_frame(rows: Dataset):
    """The rows as a table ``docsort train`` reads back: text, label, the marks, kept columns."""
    import pandas as pd

    labels = [list(v) if isinstance(v, tuple) else v for v in rows.labels or []]
    return pd.DataFrame({"text": rows.texts, "label": labels, **rows.extra})


def _sources(
    data: Dataset, real: np.ndarray, classes: tuple[str, ...], max_rows: int | None, seed: int
) -> list[int]:
    """Real rows with a chosen label; with ``max_rows``, a seeded sample of each class."""
    rng = np.random.default_rng(seed)
    chosen: set[int] = set()
    for label in classes:
        rows = [int(i) for i in real if label in label_names(data.labels[i])]  # type: ignore[index]
        if max_rows is not None and len(rows) > max_rows:
            rows = sorted(rng.choice(rows, size=max_rows, replace=False).tolist())
        chosen.update(rows)
    return sorted(chosen)


def _writer(spec: AugmentSpec, device: str) -> Any:
    if spec.method == "backtranslate":
        from docsort.augment.backtranslate import BackTranslator

        return BackTranslator(
            spec.translator,
            spec.back_translator,
            device=device,  # type: ignore[arg-type]
        )
    from docsort.augment.paraphrase import Paraphraser

    if spec.base_url:
        from docsort.models.kinds.llm.openai_backend import OpenAIBackend

        backend = OpenAIBackend(spec.base_url, spec.generator, api_key_env=spec.api_key_env)
    else:
        from docsort.models.kinds.llm.llamacpp_backend import LlamaCppBackend

        n_ctx = spec.max_chars // 2 + spec.max_tokens + 256  # ~3 characters a token, and room
        backend = LlamaCppBackend(spec.generator, n_ctx=max(n_ctx, 1024), n_threads=spec.threads)
    return Paraphraser(backend, spec.prompts or _prompts(), spec.max_chars, spec.max_tokens)


def _prompts() -> tuple[str, ...]:
    from docsort.augment.paraphrase import PROMPTS

    return PROMPTS


def _filter_model(spec: AugmentSpec, real: Dataset) -> tuple[Model, str]:
    if spec.filter_model:
        return load(spec.filter_model), f"model {spec.filter_model}"
    judge = create("tfidf", {})
    judge.fit(real)
    return judge, f"tfidf trained on the {len(real):,} real rows"


def _agrees(predicted: Any, label: Any) -> bool:
    """A written row is kept when the judge gives its source's label (any of them)."""
    return bool(set(label_names(predicted)) & set(label_names(label)))


def _keys(texts: list[str]) -> set[str]:
    from docsort.augment.filters import normalised

    return {normalised(t) for t in texts}


def _with_new_rows(data: Dataset, new: list[tuple[int, str]], method: str) -> Dataset:
    extra = {k: list(v) for k, v in data.extra.items()}
    for key, values in extra.items():
        if key == AUGMENTATION:
            values += [method] * len(new)
        elif key == ORIGIN:
            values += [data.extra[ORIGIN][s] for s, _ in new]
        else:
            values += [None] * len(new)
    return Dataset(
        texts=[*data.texts, *(t for _, t in new)],
        labels=[*data.labels, *(data.labels[s] for s, _ in new)],  # type: ignore[misc]
        label_set=data.label_set,
        name=data.name,
        skipped=data.skipped,
        truncated=data.truncated,
        extra=extra,
    )
