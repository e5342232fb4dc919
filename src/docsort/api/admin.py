"""What the admin commands show and do: built-in data sets, offline model aliases, the cache,
and the demo. Plain rows out, so the CLI and the service render them as they like."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from docsort.api.rows import Columns, read_rows
from docsort.api.training import train
from docsort.errors import DocsortError


def builtin_datasets() -> list[dict[str, Any]]:
    """Each built-in data set: name, splits, multi-label, source, description."""
    from docsort.data.builtin import BUILTINS

    return [
        {
            "name": spec.name,
            "splits": list(spec.splits),
            "multi_label": spec.multi_label,
            "source": spec.source,
            "description": spec.description,
        }
        for spec in BUILTINS.values()
    ]


def dataset_summary(name: str, split: str | None = None) -> dict[str, Any]:
    """Rows, label counts (most common first) and text lengths of a built-in set's split."""
    from docsort.data.builtin import BUILTINS, parse_spec

    name, spec_split = parse_spec(name if name.startswith("builtin:") else f"builtin:{name}")
    if name not in BUILTINS:
        raise DocsortError(f"unknown built-in data set {name!r}; known: {', '.join(BUILTINS)}")
    split = split or spec_split or BUILTINS[name].splits[0]
    data = read_rows(f"builtin:{name}:{split}", Columns())
    words = [len(t.split()) for t in data.texts]
    counts: Counter = data.label_counts()
    return {
        "name": name,
        "split": split,
        "rows": len(data),
        "multi_label": data.multi_label,
        "label_counts": counts.most_common(),
        "mean_words": sum(words) / len(words) if words else 0.0,
        "max_words": max(words, default=0),
        "skipped": data.skipped,
    }


def models_table() -> list[dict[str, Any]]:
    """Each model alias: format, installed, size, path or install command, description."""
    from docsort.models.hub import models_table as table

    return table()


def fetch_models(aliases: list[str]) -> dict[str, str]:
    """Assemble the aliased models into the cache now; their local paths by alias. An unknown
    alias is an error here, not a hub id."""
    from docsort.models.hub import fetch, resolve

    fetch(aliases)
    return {alias: str(resolve(alias)) for alias in aliases}


def cache_usage() -> dict[str, Any]:
    """The cache folder, each area's items and bytes, and the embeddings' size bound."""
    from docsort.cache import EMBED_LIMIT_ENV, cache_dir, embed_limit_bytes, usage

    return {
        "folder": str(cache_dir()),
        "areas": usage(),
        "embed_limit_bytes": embed_limit_bytes(),
        "embed_limit_env": EMBED_LIMIT_ENV,
    }


def clear_cache(area: str, older_than_days: float | None = None) -> tuple[int, int]:
    """Delete an area's items (optionally only those unused for that many days): how many and
    how many bytes."""
    from docsort.cache import clear

    return clear(area, older_than_days)


def run_demo(out: str | Path = "runs/demo", dataset: str = "bbc") -> dict[str, Any]:
    """The main job on built-in defaults: tfidf trained on a built-in set's first split,
    evaluated on its test split; the model in ``out/model``, the report in ``out/eval``."""
    from docsort.api.evaluation import evaluate
    from docsort.data.builtin import BUILTINS

    if dataset not in BUILTINS:
        raise DocsortError(f"unknown built-in data set {dataset!r}; see `docsort datasets list`")
    out = Path(out)
    splits = BUILTINS[dataset].splits
    test_split = "test" if "test" in splits else splits[-1]
    train_data = read_rows(f"builtin:{dataset}:{splits[0]}", Columns())
    test_data = read_rows(f"builtin:{dataset}:{test_split}", Columns(), labels=train_data.label_set)
    model = train(
        train_data, kind="tfidf", out=out / "model", input_spec={"text": "text", "label": "label"}
    )
    metrics = evaluate(model, test_data, out=out / "eval", title=f"tfidf on {dataset}")
    return {
        "dataset": dataset,
        "test_split": test_split,
        "train_rows": len(train_data),
        "metrics": metrics,
        "model_dir": out / "model",
        "report": out / "eval" / "report.md",
    }
