"""The ``docsort`` command line: train, eval, predict, compare, demo, datasets.

Every command is a thin layer over ``docsort.api``. Errors the user can fix print one line
and exit with status 2; no traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer
import yaml
from rich.console import Console
from rich.table import Table

from docsort import api
from docsort.data.dataset import Dataset
from docsort.data.labels import LabelSet, load_labels_file
from docsort.data.loaders import load_dataset, split_columns
from docsort.errors import DocsortError
from docsort.progress import status

app = typer.Typer(
    help="Sort documents into categories: train, evaluate, compare and run classifiers.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
datasets_app = typer.Typer(help="Built-in benchmark data sets.", no_args_is_help=True)
app.add_typer(datasets_app, name="datasets")
models_app = typer.Typer(
    help="Pretrained models that resolve offline by alias.", no_args_is_help=True
)
app.add_typer(models_app, name="models")
cache_app = typer.Typer(
    help="What docsort keeps on disk (models, data sets, embeddings) and clearing it.",
    no_args_is_help=True,
)
app.add_typer(cache_app, name="cache")
out_console = Console()
err_console = Console(stderr=True)

TEXT_HELP = "Text column, or several joined (e.g. title,abstract)."
LABEL_HELP = "Label column (multi-label: a list column, or a delimited string with --label-sep)."
TEMPLATE_HELP = 'Join several text columns with a template, e.g. "{title}. {abstract}".'
LABELS_HELP = (
    "labels.yaml fixing label order and descriptions (multi_label, labels: [{name, description}]"
    ", or {label: description | [descriptions]})."
)
STRICT_HELP = "Fail on rows with empty text or no label instead of skipping them."
LONG_DOC_HELP = (
    "Read texts longer than --window tokens as overlapping windows (window) or truncated to "
    "their head, tail or both ends (head, tail, head_tail); none: as the model was trained."
)
WINDOW_HELP = "Tokens per window or kept by truncation (default 254: minilm's 256 less 2)."
OVERLAP_HELP = "Tokens shared by consecutive windows (default 64)."
AGGREGATE_HELP = "Combine window probabilities by mean, max, weighted (by tokens) or vote."
PAIR_HELP = "pair model: the column of each row's second text (the target phrase)."
CONTEXT_HELP = "pair model: a column of context codes (e.g. CPC classes), read as titles."
CONTEXT_MAP_HELP = (
    "pair model: CSV with code,title columns mapping --context codes to titles (an unknown "
    "code falls back to its parent's title, then to itself); saved with the model."
)


def _long_doc(
    strategy: str | None,
    window: int | None,
    overlap: int | None,
    aggregate: str | None,
    train_on: str | None = None,
    current: Any = None,
) -> Any:
    """The long-document settings from the options, on top of ``current`` (a model's own)."""
    from docsort.text.chunking import LongDoc

    if strategy == "none":
        return None
    given = {
        k: v
        for k, v in {
            "strategy": strategy,
            "size": window,
            "overlap": overlap,
            "aggregate": aggregate,
            "train_on": train_on,
        }.items()
        if v is not None
    }
    if not given:
        return current
    if current is None and strategy is None:
        raise DocsortError("--window, --overlap, --aggregate and --train-on need --long-doc")
    base = current.to_dict() if current is not None else {}
    return LongDoc.from_dict({**base, **given})


def _labels(path: Path | None) -> LabelSet | None:
    return load_labels_file(path) if path else None


def _load(
    source: str,
    text: str | None,
    label: str | None,
    template: str | None,
    labels: LabelSet | None,
    label_sep: str | None,
    strict: bool,
    pair: str | None = None,
    context: str | None = None,
    keep: list[str] | None = None,
) -> Dataset:
    with status(f"reading {source}"):
        data = load_dataset(
            source,
            split_columns(text),
            label,
            template=template,
            labels=labels,
            label_sep=label_sep,
            strict=strict,
            pair=pair,
            context=context,
            keep=keep or (),
        )
    if data.skipped:
        err_console.print(
            f"[yellow]skipped {data.skipped} row(s) of {source} with empty text "
            "or no label (--strict to fail instead)[/yellow]"
        )
    return data


def _load_as_trained(
    source: str,
    spec: dict[str, Any],
    text: str | None,
    label: str | None,
    template: str | None,
    label_sep: str | None,
    strict: bool,
    pair: str | None = None,
    context: str | None = None,
) -> Dataset:
    """Labelled data read with the columns given, else those the model was trained with."""
    return _load(
        source,
        text or _joined(spec.get("text")),
        label or spec.get("label", "label"),
        template or spec.get("template"),
        None,
        label_sep or spec.get("label_sep"),
        strict,
        pair or spec.get("pair"),
        context or spec.get("context"),
    )


def _read_config(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    if not path.is_file():
        raise DocsortError(f"config file not found: {path}")
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise DocsortError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(config, dict):
        raise DocsortError(f"{path}: expected a mapping of parameter: value")
    return config


@app.command()
def train(
    data: str = typer.Argument(
        ..., help="Training data: a file, a folder or builtin:NAME[:split]."
    ),
    out: Path = typer.Option(..., "--out", help="Directory to save the model in."),
    model: str | None = typer.Option(None, "--model", help="Model kind (default: tfidf)."),
    text: str = typer.Option("text", "--text", help=TEXT_HELP),
    label: str = typer.Option("label", "--label", help=LABEL_HELP),
    template: str | None = typer.Option(None, "--template", help=TEMPLATE_HELP),
    config: Path | None = typer.Option(None, "--config", help="YAML of the kind's parameters."),
    valid: str | None = typer.Option(None, "--valid", help="Validation data (same columns)."),
    valid_split: float | None = typer.Option(
        None, "--valid-split", help="Hold out this share of the training rows for validation."
    ),
    labels: Path | None = typer.Option(None, "--labels", help=LABELS_HELP),
    label_sep: str | None = typer.Option(
        None, "--label-sep", help="Separator of multi-label strings."
    ),
    strict: bool = typer.Option(False, "--strict", help=STRICT_HELP),
    seed: int = typer.Option(0, "--seed", help="Seed of splits and training."),
    long_doc: str | None = typer.Option(None, "--long-doc", help=LONG_DOC_HELP),
    window: int | None = typer.Option(None, "--window", help=WINDOW_HELP),
    overlap: int | None = typer.Option(None, "--overlap", help=OVERLAP_HELP),
    aggregate: str | None = typer.Option(None, "--aggregate", help=AGGREGATE_HELP),
    train_on: str | None = typer.Option(
        None, "--train-on", help="With --long-doc window: train on every window or the head."
    ),
    calibrate: bool = typer.Option(
        False,
        "--calibrate",
        help="Fit a temperature so confidence matches accuracy: on the validation rows "
        "(--valid/--valid-split), else on 10%% of the training rows held out for it.",
    ),
    target_accuracy: float | None = typer.Option(
        None, "--target-accuracy", help="Cascade: cheapest thresholds reaching this accuracy."
    ),
    max_cost_per_1k: float | None = typer.Option(
        None, "--max-cost-per-1k", help="Cascade: most accurate thresholds under this USD/1k."
    ),
    max_escalation_rate: float | None = typer.Option(
        None,
        "--max-escalation-rate",
        help="Cascade: most accurate thresholds sending at most this share to the last stage.",
    ),
    pair: str | None = typer.Option(None, "--pair", help=PAIR_HELP),
    context: str | None = typer.Option(None, "--context", help=CONTEXT_HELP),
    context_map: Path | None = typer.Option(None, "--context-map", help=CONTEXT_MAP_HELP),
    zero_shot: bool = typer.Option(
        False,
        "--zero-shot",
        help="dual: use no rows, only the labels and their descriptions (from --labels).",
    ),
    soft: str | None = typer.Option(
        None,
        "--soft",
        help="dual: column of soft targets (a probability, or JSON {label: p}) per row.",
    ),
) -> None:
    """Train a model on labelled data and save it to --out.

    A cascade: --model cascade --config cascade.yaml, the YAML holding `stages:` (each a saved
    model {model: DIR} or a kind config {kind: tfidf, ...}) and optionally `select:`.

    A pair model: --model pair with --pair and --context columns (and --context-map).

    A dual model reads label descriptions (--labels FILE); --zero-shot trains on no rows."""
    from docsort.models.base import get_kind

    long_doc_config = _long_doc(long_doc, window, overlap, aggregate, train_on)
    params = _read_config(config)
    kind = model or params.pop("kind", None) or "tfidf"
    params.pop("kind", None)
    _cascade_options(kind, params, config, target_accuracy, max_cost_per_1k, max_escalation_rate)
    if kind == "ensemble":
        _models_beside_config(params.get("members"), config)
    scores = get_kind(kind).output_of(params) == "scores"
    if not scores and (pair or context or context_map):
        raise DocsortError("--pair, --context and --context-map are options of the pair model")
    if context_map is not None:
        if not context:
            raise DocsortError("--context-map maps the codes of a --context column: name it")
        params["context_map"] = str(context_map)
    if scores and labels is not None:
        raise DocsortError("a pair model learns numeric scores: --labels does not apply")
    accepted = get_kind(kind).param_names()
    for flag, param, value in (
        ("--zero-shot", "zero_shot", zero_shot),
        ("--soft", "soft_column", soft),
    ):
        if value and param not in accepted:
            raise DocsortError(f"{flag} needs a kind that reads it (dual), not {kind!r}")
        if value:
            params[param] = value
    label_set = _labels(labels)
    train_data = _load(
        data,
        text,
        label,
        template,
        label_set,
        label_sep,
        strict,
        pair,
        context,
        keep=[soft] if soft else None,
    )
    valid_data = None
    if valid:
        valid_labels = None if scores else train_data.label_set
        valid_data = _load(
            valid, text, label, template, valid_labels, label_sep, strict, pair, context
        )
    spec = {
        "text": split_columns(text),
        "label": label,
        "template": template,
        "label_sep": label_sep,
        **({"pair": pair, "context": context} if scores else {}),
    }
    with status(f"training {kind} on {len(train_data):,} documents"):
        fitted = api.train(
            train_data,
            kind=kind,
            params=params,
            valid_data=valid_data,
            valid_split=valid_split,
            seed=seed,
            out=out,
            input_spec=spec,
            long_doc=long_doc_config,
            calibrate=calibrate,
        )
    what = "score levels" if scores else "labels"
    out_console.print(
        f"trained [bold]{kind}[/bold] on {len(train_data):,} documents, "
        f"{len(fitted.labels_)} {what} → {out}"
    )
    if fitted.calibration_:
        c = fitted.calibration_
        out_console.print(
            f"calibrated on {c['rows']:,} {c['source']}: temperature {c['temperature']:.3f}"
        )
    if kind == "cascade":
        _print_selection(fitted)


def _models_beside_config(entries: Any, config: Path | None) -> None:
    """Saved-model entries of a cascade's ``stages`` or an ensemble's ``members`` (``DIR`` or
    ``{model: DIR}``) read relative to the config file when they are not found as given."""
    if config is None or not isinstance(entries, list):
        return
    for i, entry in enumerate(entries):
        given = entry.get("model") if isinstance(entry, dict) else entry
        if not isinstance(given, str):
            continue
        path, beside = Path(given), config.parent / given
        if not path.is_absolute() and not path.exists() and beside.exists():
            if isinstance(entry, dict):
                entry["model"] = str(beside)
            else:
                entries[i] = str(beside)


def _cascade_options(
    kind: str,
    params: dict[str, Any],
    config: Path | None,
    target_accuracy: float | None,
    max_cost_per_1k: float | None,
    max_escalation_rate: float | None,
) -> None:
    """Fold the cascade's target options into its params; check the config before any data is
    read; saved-stage paths are read relative to the config file when they are not found as
    given."""
    given = {
        key: value
        for key, value in {
            "target_accuracy": target_accuracy,
            "max_cost_per_1k": max_cost_per_1k,
            "max_escalation_rate": max_escalation_rate,
        }.items()
        if value is not None
    }
    if kind != "cascade":
        if given:
            raise DocsortError(
                f"--{next(iter(given)).replace('_', '-')} chooses a cascade's thresholds: "
                "use it with --model cascade"
            )
        return
    if len(given) > 1:
        raise DocsortError(
            "give one of --target-accuracy, --max-cost-per-1k, --max-escalation-rate"
        )
    if given:
        params["select"] = given
    _models_beside_config(params.get("stages"), config)
    from docsort.models.base import create

    create(kind, params).check()  # type: ignore[attr-defined]


def _print_selection(model: Any) -> None:
    s = model.selection_
    table = Table("stage", "threshold", "validation accuracy alone", "answered (validation)")
    for k, name in enumerate(model.stage_names_):
        threshold = model.stage_thresholds_[k] if k < len(model.stage_thresholds_) else None
        table.add_row(
            name,
            "–" if threshold is None else f"{threshold:.4f}",
            f"{s['stage_alone_accuracy'][k]:.4f}",
            f"{s['share_answered'][k]:.1%}",
        )
    out_console.print(table)
    met = "met" if s["target_met"] else "[yellow]not met: the closest setting was chosen[/yellow]"
    out_console.print(
        f"thresholds for {s['criterion']} = {s['value']} ({met}) on {s['validation_rows']:,} "
        f"rows ({s['validation_source']}): accuracy {s['accuracy']:.4f}, "
        f"{s['escalated_to_last']:.1%} sent to the last stage, ${s['cost_per_1k']:.6f} per 1k"
    )
    if "bound" in s:
        b = s["bound"]
        out_console.print(
            f"on new rows, with {b['confidence']:.0%} confidence: at most "
            f"{b['escalated_to_last']:.1%} sent to the last stage, ${b['cost_per_1k']:.6f} per 1k"
        )


@app.command("eval")
def eval_command(
    model_dir: Path = typer.Argument(..., help="A saved model directory."),
    data: str = typer.Argument(
        ..., help="Labelled data: a file, a folder or builtin:NAME[:split]."
    ),
    out: Path = typer.Option(..., "--out", help="Directory for metrics.json, report.md and plots."),
    text: str | None = typer.Option(None, "--text", help=TEXT_HELP + " Default: as in training."),
    label: str | None = typer.Option(
        None, "--label", help=LABEL_HELP + " Default: as in training."
    ),
    template: str | None = typer.Option(None, "--template", help=TEMPLATE_HELP),
    label_sep: str | None = typer.Option(
        None, "--label-sep", help="Separator of multi-label strings."
    ),
    strict: bool = typer.Option(False, "--strict", help=STRICT_HELP),
    long_doc: str | None = typer.Option(None, "--long-doc", help=LONG_DOC_HELP),
    window: int | None = typer.Option(None, "--window", help=WINDOW_HELP),
    overlap: int | None = typer.Option(None, "--overlap", help=OVERLAP_HELP),
    aggregate: str | None = typer.Option(None, "--aggregate", help=AGGREGATE_HELP),
    sweep: bool = typer.Option(
        True,
        "--sweep/--no-sweep",
        help="Cascade: also run each stage on the rows it was not sent (untimed) for its "
        "accuracy alone and the threshold sweep.",
    ),
    pair: str | None = typer.Option(None, "--pair", help=PAIR_HELP + " Default: as trained."),
    context: str | None = typer.Option(
        None, "--context", help=CONTEXT_HELP + " Default: as trained."
    ),
) -> None:
    """Evaluate a saved model on labelled data and write a report."""
    model = api.open_model(model_dir)
    model.long_doc_ = _long_doc(long_doc, window, overlap, aggregate, current=model.long_doc_)
    spec = model.input_spec_
    dataset = _load_as_trained(data, spec, text, label, template, label_sep, strict, pair, context)
    metrics = api.evaluate(
        model, dataset, out=out, title=f"{model_dir.name} on {data}", sweep=sweep
    )
    if model.output == "scores":
        _print_score_metrics(model_dir.name, metrics)
    else:
        _print_metrics([{"model": model_dir.name, **metrics}])
    if metrics.get("stages"):
        _print_stages(metrics["stages"])
    out_console.print(f"report: {out / 'report.md'}")


def _print_stages(stages: list[dict[str, Any]]) -> None:
    alone = "alone_accuracy" in stages[0]
    columns = ["stage", "threshold", "answered", "accuracy there", "seconds", "cost / 1k docs"]
    table = Table(*columns, *(["alone: accuracy", "alone: docs/s"] if alone else []))
    for s in stages:
        cells = [
            s["name"],
            "–" if s["threshold"] is None else f"{s['threshold']:.4f}",
            f"{s['share']:.1%}",
            "–" if s["accuracy"] is None else f"{s['accuracy']:.4f}",
            f"{s['seconds']:.2f}",
            f"${s['cost_per_1k']:.6f}",
        ]
        if alone:
            rate = s["alone_docs_per_second"]
            cells += [f"{s['alone_accuracy']:.4f}", "–" if rate is None else f"{rate:,.0f}"]
        table.add_row(*cells)
    out_console.print(table)


@app.command()
def predict(
    model_dir: str = typer.Argument(
        ...,
        help="A saved model directory, or dual[:BASE] for zero-shot over the --labels file.",
    ),
    input: str = typer.Argument(
        ...,
        help="CSV/TSV/JSONL/Parquet file, folder of .txt, or - for stdin (one document per line).",
    ),
    out: str = typer.Option(..., "--out", help="Output JSONL file (- for stdout)."),
    text: str | None = typer.Option(None, "--text", help=TEXT_HELP + " Default: as in training."),
    template: str | None = typer.Option(None, "--template", help=TEMPLATE_HELP),
    labels: Path | None = typer.Option(
        None,
        "--labels",
        help="Labels file (YAML). dual: score exactly these labels, new ones included; "
        "other kinds: every label in it must be known to the model.",
    ),
    keep: str | None = typer.Option(
        None, "--keep", help="Input columns to copy into each output row, e.g. id."
    ),
    top_k: int | None = typer.Option(
        None, "--top-k", help="Keep only the k most probable labels (multi-label: choose ≤ k)."
    ),
    at_least_one: bool = typer.Option(
        False, "--at-least-one", help="Multi-label: give each row at least its top label."
    ),
    adapt: bool = typer.Option(
        False,
        "--adapt",
        help="dual: move each label toward the documents it claims most confidently "
        "among the input (transductive) before predicting.",
    ),
    strict: bool = typer.Option(False, "--strict", help="Fail on empty rows instead of skipping."),
    long_doc: str | None = typer.Option(None, "--long-doc", help=LONG_DOC_HELP),
    window: int | None = typer.Option(None, "--window", help=WINDOW_HELP),
    overlap: int | None = typer.Option(None, "--overlap", help=OVERLAP_HELP),
    aggregate: str | None = typer.Option(None, "--aggregate", help=AGGREGATE_HELP),
    windows: bool = typer.Option(
        False, "--windows", help="Add each document's windows and their probabilities."
    ),
    pair: str | None = typer.Option(None, "--pair", help=PAIR_HELP + " Default: as trained."),
    context: str | None = typer.Option(
        None, "--context", help=CONTEXT_HELP + " Default: as trained."
    ),
) -> None:
    """Predict labels for new documents: label, confidence and probabilities per row."""
    label_set = _labels(labels)
    if Path(model_dir).is_dir() or model_dir.split(":")[0] != "dual":
        model = api.open_model(model_dir)
    else:
        model = api.zero_shot_model(model_dir, label_set)
    model.long_doc_ = _long_doc(long_doc, window, overlap, aggregate, current=model.long_doc_)
    spec = model.input_spec_
    text_spec = text or _joined(spec.get("text"))
    if input == "-" or Path(input).is_dir():
        text_spec, template = "text", None
    keep_columns = [c.strip() for c in keep.split(",")] if keep else []
    with status(f"reading {input}"):
        data = load_dataset(
            input,
            split_columns(text_spec),
            None,
            template=template or (spec.get("template") if not text else None),
            strict=strict,
            keep=keep_columns,
            pair=pair or spec.get("pair"),
            context=context or spec.get("context"),
        )
    if data.skipped:
        err_console.print(f"[yellow]skipped {data.skipped} empty row(s)[/yellow]")
    inputs = data if model.output == "scores" else data.texts
    rows = api.predict(
        model,
        inputs,
        labels=label_set,
        top_k=top_k,
        at_least_one=at_least_one,
        adapt=adapt,
        windows=windows,
    )
    if out == "-":
        sys.stdout.writelines(api.jsonl_lines(rows, data.extra))
        return
    api.write_jsonl(out, rows, data.extra)
    err_console.print(f"wrote {len(rows):,} predictions → {out}")


@app.command()
def compare(
    model_dirs: list[Path] = typer.Argument(..., help="Saved model directories."),
    data: str = typer.Option(..., "--data", help="Labelled data all models are scored on."),
    out: Path = typer.Option(..., "--out", help="Directory for the comparison table and plot."),
    text: str | None = typer.Option(
        None, "--text", help=TEXT_HELP + " Default: the first model's."
    ),
    label: str | None = typer.Option(None, "--label", help=LABEL_HELP),
    template: str | None = typer.Option(None, "--template", help=TEMPLATE_HELP),
    label_sep: str | None = typer.Option(
        None, "--label-sep", help="Separator of multi-label strings."
    ),
) -> None:
    """Score several models on the very same rows: one table, one accuracy-vs-speed plot."""
    spec = api.input_spec_of(model_dirs[0])
    dataset = _load_as_trained(data, spec, text, label, template, label_sep, strict=False)
    rows = api.compare(model_dirs, dataset, out=out)
    _print_metrics(rows)
    out_console.print(f"comparison: {out / 'comparison.md'}")


@app.command()
def ensemble(
    model_dirs: list[Path] = typer.Argument(..., help="Saved model directories (two or more)."),
    out: Path = typer.Option(..., "--out", help="Directory the ensemble is saved to."),
    weights: str | None = typer.Option(
        None, "--weights", help="One weight per model, comma-separated (default: equal)."
    ),
) -> None:
    """Serve several saved models as one: the weighted mean of their probabilities, or of their
    scores for pair models. Each model is copied into the ensemble's directory."""
    parsed = None
    if weights is not None:
        try:
            parsed = [float(w) for w in weights.split(",")]
        except ValueError:
            raise DocsortError(f"--weights: numbers separated by commas, not {weights!r}") from None
    model = api.ensemble(model_dirs, weights=parsed, out=out)
    weights_of = model.member_weights(len(model.members_))
    shares = ", ".join(
        f"{name} {w:.2f}" for name, w in zip(model.member_names_, weights_of, strict=True)
    )
    out_console.print(f"ensemble of {len(model.members_)} {model.output} models ({shares}): {out}")


@app.command()
def demo(
    out: Path = typer.Option(Path("runs/demo"), "--out", help="Where the model and report go."),
    dataset: str = typer.Option("bbc", "--dataset", help="Built-in data set to run on."),
) -> None:
    """The main job on built-in defaults: train tfidf, evaluate it, print the table."""
    from docsort.data.builtin import BUILTINS

    if dataset not in BUILTINS:
        raise DocsortError(f"unknown built-in data set {dataset!r}; see `docsort datasets list`")
    splits = BUILTINS[dataset].splits
    test_split = "test" if "test" in splits else splits[-1]
    train_data = _load(f"builtin:{dataset}:{splits[0]}", "text", "label", None, None, None, False)
    test_data = _load(
        f"builtin:{dataset}:{test_split}", "text", "label", None, train_data.label_set, None, False
    )
    with status(f"training tfidf on {len(train_data):,} {dataset} documents"):
        model = api.train(
            train_data,
            kind="tfidf",
            out=out / "model",
            input_spec={"text": "text", "label": "label"},
        )
    metrics = api.evaluate(model, test_data, out=out / "eval", title=f"tfidf on {dataset}")
    _print_metrics([{"model": f"tfidf on {dataset} ({test_split})", **metrics}])
    out_console.print(f"model: {out / 'model'}\nreport: {out / 'eval' / 'report.md'}")


@datasets_app.command("list")
def datasets_list() -> None:
    """List the built-in data sets."""
    from docsort.data.builtin import BUILTINS

    table = Table("name", "splits", "multi-label", "source", "description")
    for spec in BUILTINS.values():
        table.add_row(
            spec.name,
            ", ".join(spec.splits),
            "yes" if spec.multi_label else "no",
            spec.source,
            spec.description,
        )
    out_console.print(table)


@datasets_app.command("show")
def datasets_show(
    name: str = typer.Argument(..., help="A built-in data set name, e.g. 20ng."),
    split: str | None = typer.Option(None, "--split", help="Split (default: the first)."),
    top: int = typer.Option(20, "--top", help="How many labels to list."),
) -> None:
    """Rows, labels, label distribution and mean length of a built-in data set."""
    from docsort.data.builtin import BUILTINS, parse_spec

    name, spec_split = parse_spec(name if name.startswith("builtin:") else f"builtin:{name}")
    split = split or spec_split
    if name not in BUILTINS:
        raise DocsortError(f"unknown built-in data set {name!r}; known: {', '.join(BUILTINS)}")
    split = split or BUILTINS[name].splits[0]
    data = _load(f"builtin:{name}:{split}", "text", "label", None, None, None, False)
    counts = data.label_counts()
    words = [len(t.split()) for t in data.texts]
    out_console.print(
        f"[bold]{name}[/bold] ({split}): {len(data):,} rows, {len(counts)} labels, "
        f"{'multi' if data.multi_label else 'single'}-label, mean "
        f"{sum(words) / len(words):.0f} words ({max(words):,} max)"
    )
    table = Table("label", "rows", "share")
    for label_name, count in counts.most_common(top):
        table.add_row(label_name, f"{count:,}", f"{count / len(data):.1%}")
    if len(counts) > top:
        table.add_row(f"… {len(counts) - top} more", "", "")
    out_console.print(table)


@models_app.command("list")
def models_list() -> None:
    """Aliases, whether each is installed, its size and local path."""
    from docsort.models.hub import models_table

    table = Table("alias", "format", "installed", "size", "path / install", "description")
    for row in models_table():
        size = f"{row['size'] / 1e6:,.0f} MB" if row["size"] else ""
        where = row["path"] or ("built on first use" if row["installed"] else row["install"])
        table.add_row(
            row["alias"],
            row["format"],
            "yes" if row["installed"] else "no",
            size,
            where,
            row["description"],
        )
    out_console.print(table)


@models_app.command("fetch")
def models_fetch(
    aliases: list[str] = typer.Argument(..., help="Aliases to resolve now, e.g. minilm static."),
) -> None:
    """Assemble aliased models into the cache now, so later runs start at once."""
    from docsort.models.hub import fetch, resolve

    fetch(aliases)  # an unknown alias is an error here, not a hub id
    for alias in aliases:
        out_console.print(f"{alias}: {resolve(alias)}")


@cache_app.command("list")
def cache_list() -> None:
    """Each cache area: its folder, items and size."""
    from docsort.cache import EMBED_LIMIT_ENV, cache_dir, embed_limit_bytes, usage

    out_console.print(f"cache folder: {cache_dir()}")
    table = Table("area", "items", "size", "cleared, it is")
    for row in usage():
        table.add_row(row["area"], f"{row['items']:,}", _megabytes(row["bytes"]), row["meaning"])
    out_console.print(table)
    out_console.print(
        f"embeddings are trimmed to {_megabytes(embed_limit_bytes())}, least recently used "
        f"first ({EMBED_LIMIT_ENV} sets the bound)"
    )


@cache_app.command("clear")
def cache_clear(
    area: str = typer.Argument(..., help="models, datasets or embeddings."),
    older_than: float | None = typer.Option(
        None, "--older-than", help="Only items unused for this many days."
    ),
) -> None:
    """Delete a cache area's items; they are rebuilt or fetched again when next needed."""
    from docsort.cache import clear

    removed, freed = clear(area, older_than)
    out_console.print(f"{area}: removed {removed:,} item(s), freed {_megabytes(freed)}")


def _megabytes(size: int) -> str:
    return f"{size / 1e6:,.1f} MB"


def _joined(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else ",".join(value)


def _print_metrics(rows: list[dict[str, Any]]) -> None:
    table = Table(
        "model", "accuracy", "macro-F1", "micro-F1", "ECE", "docs/s", "cost / 1k docs", "n"
    )
    for row in rows:
        table.add_row(
            str(row["model"]),
            f"{row['accuracy']:.4f}",
            f"{row['macro_f1']:.4f}",
            f"{row['micro_f1']:.4f}",
            f"{row['ece']:.4f}",
            f"{row['docs_per_second']:,.0f}",
            f"${row['cost_per_1k']:.6f}",
            f"{row['n']:,}",
        )
    out_console.print(table)


def _print_score_metrics(name: str, metrics: dict[str, Any]) -> None:
    table = Table("model", "Pearson r", "Spearman", "MSE", "pairs/s", "cost / 1k pairs", "n")
    table.add_row(
        name,
        f"{metrics['pearson']:.4f}",
        f"{metrics['spearman']:.4f}",
        f"{metrics['mse']:.4f}",
        f"{metrics['docs_per_second'] or 0:,.0f}",
        f"${metrics['cost_per_1k']:.6f}",
        f"{metrics['n']:,}",
    )
    out_console.print(table)


def main() -> None:
    """Console entry point: user errors become one line on stderr and exit status 2."""
    try:
        app()
    except DocsortError as exc:
        err_console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
