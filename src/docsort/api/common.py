"""What the train, evaluate and predict requests share: opening a model, reading a config,
and long-document settings checked against what the model reads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from docsort.data.labels import LabelSet
from docsort.data.safe_yaml import read_yaml
from docsort.errors import DocsortError
from docsort.models.base import Model, Runtime, load
from docsort.text.chunking import LongDoc
from docsort.tracking.uri import is_reference

LONG_DOC_SETTINGS = ("strategy", "size", "overlap", "aggregate", "train_on")
DEFAULT_WINDOW = LongDoc().size  # for a model with no fixed token limit (words are counted)


def open_model(model: Model | str | Path, runtime: Runtime | None = None) -> Model:
    """A model object as given, or the saved model at a path or a registry reference
    (``models:/NAME@champion``, ``models:/NAME/3``), set up with ``runtime``."""
    if isinstance(model, Model):
        model.apply_runtime(runtime)
        return model
    if is_reference(model):  # models:/NAME@champion: the registry's copy, downloaded once
        from docsort.api.registry import local_model

        model = local_model(str(model))
    return load(model, runtime=runtime)


def zero_shot_spec(spec: str) -> str | None:
    """``dual`` or ``dual:BASE`` (a model named by kind, not a directory): the base, or "" for
    the default one; ``None`` for anything else."""
    kind, _, base = str(spec).partition(":")
    if kind != "dual" or Path(str(spec)).is_dir():
        return None
    return base


def zero_shot_model(spec: str, labels: LabelSet | None) -> Model:
    """A dual encoder that scores ``labels`` from their descriptions with no training rows
    (``docsort predict dual:minilm DATA --labels FILE``)."""
    base = zero_shot_spec(spec)
    if base is None:
        raise DocsortError(f"model directory not found: {spec!r}")
    if labels is None:
        raise DocsortError(f"{spec} scores the labels of a labels file: pass --labels FILE")
    from docsort.models.kinds.dual import zero_shot

    return zero_shot(labels, **({"base": base} if base else {}))


def read_config(path: str | Path | None) -> dict[str, Any]:
    """A YAML mapping of parameter: value (``kind:`` may name the kind)."""
    if path is None:
        return {}
    path = Path(path)
    # not UTF-8, not YAML, or aliases expanding it to gigabytes: refused here, in one line
    config = read_yaml(path, "config file") or {}
    if not isinstance(config, dict):
        raise DocsortError(f"{path}: expected a mapping of parameter: value")
    return config


def models_beside(entries: Any, config: str | Path | None) -> None:
    """Saved-model entries of a composite's list (``DIR`` or ``{model: DIR}``) read relative to
    the config file when they are not found as given."""
    if config is None or not isinstance(entries, list):
        return
    folder = Path(config).parent
    for i, entry in enumerate(entries):
        given = entry.get("model") if isinstance(entry, dict) else entry
        if not isinstance(given, str):
            continue
        path, beside = Path(given), folder / given
        if not path.is_absolute() and not path.exists() and beside.exists():
            if isinstance(entry, dict):
                entry["model"] = str(beside)
            else:
                entries[i] = str(beside)


def long_doc_for(
    model: Model, given: dict[str, Any] | LongDoc | None, current: LongDoc | None = None
) -> LongDoc | None:
    """The long-document settings ``given`` (on top of the model's ``current`` ones), checked
    against what the model can read: a window longer than the model reads would be cut
    silently, so it is an error; with no window size given, windows are as long as the model
    reads. ``{"strategy": "none"}`` switches windows off."""
    if isinstance(given, LongDoc):
        given = given.to_dict()
    given = {k: v for k, v in (given or {}).items() if v is not None}
    if not given:
        return current
    unknown = sorted(set(given) - set(LONG_DOC_SETTINGS))
    if unknown:
        raise DocsortError(f"long documents: unknown setting {unknown[0]!r}")
    if given.get("strategy") == "none":
        return None
    caps = model.capabilities()
    if not caps.long_documents:
        if caps.composite:
            raise DocsortError(
                f"a {model.kind} reads long documents as each of its models does: give the "
                "long-document settings to them (train them with --long-doc), not to it"
            )
        raise DocsortError(
            f"the {model.kind} model scores short pairs: long-document options do not apply"
        )
    if current is None and "strategy" not in given:
        raise DocsortError("--window, --overlap, --aggregate and --train-on need --long-doc")
    limit = model.tokens_read()
    settings = {**(current.to_dict() if current is not None else {}), **given}
    if "size" not in settings:
        settings["size"] = limit or DEFAULT_WINDOW
    if limit is not None and settings["size"] > limit:
        raise DocsortError(
            f"a window of {settings['size']} tokens is longer than the {limit} this "
            f"{model.kind} model reads (max_length {getattr(model, 'max_length', '?')}): "
            f"use --window {limit} or less, or raise max_length"
        )
    return LongDoc.from_dict(settings)
