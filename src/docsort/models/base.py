"""The contract every kind follows (a ``Model`` in one of two roles, ``Classifier`` or
``Scorer``), and the registry that finds a kind by name.

scikit-learn style: parameters are ``__init__`` arguments, ``fit`` returns ``self``, fitted
state ends in ``_``. A saved model is a directory holding ``docsort.yaml`` (kind, params,
labels, versions, training-data fingerprint) plus whatever weights the kind writes.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import platform
import re
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import numpy as np

from docsort import registry
from docsort.data.dataset import Dataset, Label
from docsort.data.labels import LabelSet, _cut, _preview
from docsort.data.safe_yaml import read_yaml
from docsort.errors import DocsortError, warn
from docsort.io import atomic_dir, write_yaml
from docsort.models.params import Items, Mapping, Number, Rule, check_params, shown

if TYPE_CHECKING:
    from docsort.text.chunking import LongDoc

MANIFEST = "docsort.yaml"
REGISTRY: dict[str, type[Model]] = {}
C = TypeVar("C", bound="type[Model]")


@dataclass(frozen=True)
class Capabilities:
    """What a kind can do, declared in one place (scikit-learn's tags are the model): callers
    ask these, never a kind's name."""

    output: str = "labels"  # "labels": label probabilities; "scores": one number per text pair
    multi_label: bool = True  # can learn multi-label data
    scores_new_labels: bool = False  # predict with a labels file may name labels never trained
    adapts: bool = False  # ``adapt(texts)``: re-aims itself on the texts it is about to sort
    long_documents: bool = True  # reads long texts in windows or truncated (``long_doc_``)
    composite: bool = False  # made of other models (their settings, e.g. long_doc, are theirs)
    trains_without_rows: bool = False  # can be built from labels and descriptions alone
    trains_on_workers: bool = False  # fit's loop runs as DDP on workers (train --workers N)
    selects_thresholds: bool = False  # chooses routing thresholds on validation rows (cascade)
    exportable: bool = False  # ``export_network()``: ``docsort export`` writes it as ONNX
    explains: bool = False  # ``top_features(texts, labels, n)``: what pushed a text to a label
    reward_tunes: bool = False  # ``reward_tune(rows, args)``: GRPO from feedback (nn/grpo.py)

    @property
    def scores(self) -> bool:
        """A pair scorer: judged by correlation, predicting ``{"score": s}`` rows."""
        return self.output == "scores"


@dataclass(frozen=True)
class Runtime:
    """How to run a model on this machine, given at load or run time and never saved: a model
    trained on a GPU must load on a CPU server (model2vec reads the device off the weights, not
    the config; SetFit passes the batch size to ``predict_proba``)."""

    device: str | None = None  # "auto", "cpu", "cuda", "cuda:1"; None: the kind's default
    threads: int | None = None  # torch, llama.cpp and embedding-engine threads; None: default
    eval_batch_size: int | None = None
    checkpoint_dir: str | None = None
    checkpoint_every: int | None = None
    resume: bool | None = None

    def __post_init__(self) -> None:
        device = self.device
        if device is not None and device not in ("auto", "cpu") and not device.startswith("cuda"):
            raise DocsortError(f"device must be 'auto', 'cpu' or 'cuda[:N]', not {device!r}")
        for name in ("threads", "eval_batch_size", "checkpoint_every"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise DocsortError(f"{name} must be a whole number of at least 1, not {value!r}")

    def given(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


def register(name: str, version: int = 1) -> Callable[[C], C]:
    """Class decorator: make a kind available by ``name`` to configs, the CLI and ``load``.

    ``version`` is recorded in every saved model (``kind_version``, spaCy's ``.v3`` names are
    the model): raise it when a kind's saved weights or parameters change meaning, so a model
    saved by a newer version is refused in one line instead of misread."""

    def wrap(cls: C) -> C:
        registry.add(REGISTRY, name, cls, "kind")
        cls.kind = name
        cls.kind_version = version
        return cls

    return wrap


def get_kind(name: str) -> type[Model]:
    import docsort.models  # noqa: F401  (registers the built-in kinds)

    if not isinstance(name, str) or name not in REGISTRY:
        raise DocsortError(
            f"unknown model kind {shown(name)}; available kinds: {', '.join(sorted(REGISTRY))}"
        )
    return REGISTRY[name]


def create(kind: str, params: dict[str, Any] | None = None) -> Model:
    """Build an unfitted classifier of ``kind``; unknown parameters are a user error, and a
    parameter's old name (``param_aliases``) still works, with a one-line deprecation warning."""
    cls = get_kind(kind)
    params = renamed_params(cls, params)
    accepted = cls.param_names()
    unknown = sorted((p for p in params if p not in accepted), key=str)
    if unknown:
        raise DocsortError(
            f"kind {kind!r} has no parameter {shown(unknown[0])}; it accepts: {', '.join(accepted)}"
        )
    return cls(**params)


def renamed_params(
    cls: type[Model], params: dict[str, Any] | None, quiet: bool = False
) -> dict[str, Any]:
    """``params`` with every old parameter name (``cls.param_aliases``) replaced by its new
    one; unless ``quiet`` (a saved manifest: the user did not write it), one deprecation line
    says so. Both names at once is an error."""
    params = dict(params or {})
    for old, new in cls.param_aliases.items():
        if old not in params:
            continue
        if new in params:
            raise DocsortError(
                f"{cls.kind}: give {new!r} only ({old!r} is its deprecated old name), not both"
            )
        params[new] = params.pop(old)
        if not quiet:
            warn(f"{cls.kind} parameter {old!r} is deprecated: call it {new!r}")
    return params


class Model:
    """What every kind shares: parameters checked by rules, run-time settings, ``fit``, and a
    saved directory with a manifest. A kind takes one of two roles on top of it: a
    ``Classifier`` (label probabilities) or a ``Scorer`` (one number per text pair, a regressor's
    contract). Subclasses implement ``fit``, their role's prediction and the two weight hooks."""

    kind: ClassVar[str] = ""
    kind_version: ClassVar[int] = 1
    tags: ClassVar[Capabilities] = Capabilities()
    # run-time settings the kind takes as parameters: Runtime field -> parameter name. They are
    # accepted in a config for training but never saved; ``load(dir, runtime)`` sets them
    runtime_params: ClassVar[dict[str, str]] = {}
    # what each parameter may be (docsort.models.params): name -> rule, checked by ``check``
    # before any data is read, and on load (a manifest's values)
    param_rules: ClassVar[dict[str, Rule]] = {}
    # a parameter's deprecated old name -> its name: accepted by ``create`` with a warning
    param_aliases: ClassVar[dict[str, str]] = {}

    labels_: LabelSet
    thresholds_: np.ndarray | None = None
    temperature_: float | None = None  # set by ``calibrate``; None: probabilities as trained
    calibration_: dict[str, Any] | None = None  # which rows the temperature was fitted on
    long_doc_: LongDoc | None = None  # how texts longer than the model reads are windowed
    train_fingerprint_: str | None = None
    input_spec_: dict[str, Any]  # text/label columns used in training: defaults for eval

    def capabilities(self) -> Capabilities:
        """What this model can do: its kind's tags, unless what it is made of decides."""
        return self.tags

    @property
    def output(self) -> str:
        return self.capabilities().output

    def tokens_read(self) -> int | None:
        """How many tokens of a text the model reads at once (None: no fixed limit), so that
        long-document windows can be checked against it."""
        return None

    def selection_summary(self) -> dict[str, Any] | None:
        """How validation rows chose the model's routing thresholds (a cascade), else None."""
        return None

    def apply_runtime(self, runtime: Runtime | None) -> None:
        """Take the run-time settings this kind understands; the rest do not apply to it."""
        if runtime is None:
            return
        for field_name, value in runtime.given().items():
            param = self.runtime_params.get(field_name)
            if param is not None:
                setattr(self, param, value)

    def check(self) -> None:
        """Every parameter checked before any data is read or any model trained, so a wrong
        value costs a second, not a training run: the declared rules (type, range, choices),
        then the kind's own checks (``_check_params``: values that depend on each other)."""
        self.check_values()
        self._check_params()

    @classmethod
    def rules(cls) -> dict[str, Rule]:
        """The kind's parameter rules (``param_rules``)."""
        return cls.param_rules

    def check_values(self) -> None:
        """Each parameter against its declared rule; the first refused one is a
        ``DocsortError`` naming the kind, the parameter, the value and what is allowed."""
        values = {name: getattr(self, name) for name in self.param_names()}
        check_params(self.kind, self.rules(), values)

    def _check_params(self) -> None:
        """The kind's own checks of its parameters; raise ``DocsortError`` naming the one."""

    # -- the contract -------------------------------------------------------------------
    def fit(self, train: Dataset, valid: Dataset | None = None) -> Model:
        raise NotImplementedError

    def predict(self, texts: Any) -> list[Any]:
        """Labels (a classifier) or scores (a scorer), one per input row."""
        raise NotImplementedError

    def token_usage(self) -> dict[str, int]:
        """Tokens used so far (``prompt_tokens``, ``completion_tokens``), for kinds that pay per
        token (an LLM, a hosted API): they count them in ``usage_``. Evaluation prices the
        difference before and after a run; local kinds use none."""
        return {key: int(value) for key, value in (getattr(self, "usage_", None) or {}).items()}

    # -- parameters ---------------------------------------------------------------------
    @classmethod
    def param_names(cls) -> list[str]:
        signature = inspect.signature(cls.__init__)
        return [p for p in signature.parameters if p != "self"]

    def get_params(self, runtime: bool = False) -> dict[str, Any]:
        """The model's parameters, as saved; ``runtime`` adds the run-time settings."""
        skip = set() if runtime else set(self.runtime_params.values())
        return {n: _plain(getattr(self, n)) for n in self.param_names() if n not in skip}

    # -- persistence --------------------------------------------------------------------
    def _save_weights(self, directory: Path) -> None:
        raise NotImplementedError

    def _load_weights(self, directory: Path) -> None:
        raise NotImplementedError

    def _check_fitted(self) -> None:
        if not hasattr(self, "labels_"):
            raise DocsortError(f"this {self.kind} model is not fitted yet: call fit first")

    def _remember_training(self, train: Dataset) -> None:
        if train.label_set is None:
            raise DocsortError(f"{train.name or 'training data'} has no labels to learn from")
        if len(train.label_set) < 2:
            raise DocsortError(
                f"{train.name or 'training data'} has one label only "
                f"({train.label_set.names[0]!r}): a classifier needs at least two"
            )
        self.labels_ = train.label_set
        self.train_fingerprint_ = train.fingerprint()

    def save(self, directory: str | Path) -> Path:
        """Write the model to ``directory`` atomically: an existing model is replaced at the end.

        Only a model or an empty folder is replaced: any other existing path (a project
        folder, the training data file) is a mistyped ``--out`` and a ``DocsortError``."""
        self._check_fitted()
        from docsort import __version__

        directory = Path(directory)
        manifest = {
            "kind": self.kind,
            "kind_version": self.kind_version,
            "docsort_version": __version__,
            "python": platform.python_version(),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "train_fingerprint": self.train_fingerprint_,
            "params": self.get_params(),
            "thresholds": None if self.thresholds_ is None else self.thresholds_.tolist(),
            "temperature": self.temperature_,
            "calibration": self.calibration_,
            "long_doc": None if self.long_doc_ is None else self.long_doc_.to_dict(),
            "input": getattr(self, "input_spec_", {}),
            "trained_on": getattr(self, "trained_on_", None),
            **self.labels_.to_dict(),
        }
        with atomic_dir(directory, replaces=is_model_dir, what="a docsort model") as tmp:
            self._save_weights(tmp)
            write_yaml(tmp / MANIFEST, manifest)
        return directory

    @classmethod
    def load(cls, directory: str | Path, runtime: Runtime | None = None) -> Model:
        """The model saved in ``directory``, its manifest cross-checked against its weights:
        a manifest and weights that disagree (another label count, a weights file holding
        something else) are a corrupt model, said in one line, not an IndexError later."""
        manifest = read_manifest(directory)
        kind = get_kind(manifest["kind"])
        _warn_if_newer(manifest.get("docsort_version"), directory)
        params = manifest.get("params") or {}
        if not isinstance(params, dict):
            raise corrupt_model(directory, f"its {MANIFEST} params are not a mapping")
        # run-time settings saved by older versions (a device: cuda) are not the model's
        saved = {
            k: v
            for k, v in renamed_params(kind, params, quiet=True).items()
            if k not in kind.runtime_params.values()
        }
        try:
            model = create(manifest["kind"], saved)
        except DocsortError as exc:  # a parameter this docsort does not know: a newer one's
            raise DocsortError(f"{str(directory)!r}: {exc}") from None
        try:  # the saved values, before this machine's run-time settings are put in
            model.check_values()
        except DocsortError as exc:
            raise corrupt_model(directory, f"in its {MANIFEST}, {exc}") from None
        model.apply_runtime(runtime)
        if not isinstance(model, cls):
            raise DocsortError(f"{directory} holds a {manifest['kind']!r} model, not {cls.kind!r}")
        model.labels_ = LabelSet.from_dict(manifest, source=str(directory))
        model._read_manifest_state(manifest, Path(directory))
        try:
            model._load_weights(Path(directory))
            problem = model._weights_problem()
        except DocsortError:
            raise
        except Exception as exc:  # any unreadable weight file is a corrupt model dir
            raise corrupt_model(
                directory,
                f"the model weights cannot be read ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0] if str(exc) else ''})",
            ) from None
        if problem:
            raise corrupt_model(directory, problem)
        return model

    def _read_manifest_state(self, manifest: dict[str, Any], directory: Path) -> None:
        """The fitted state a manifest holds besides labels and parameters, checked: thresholds
        (one per label), temperature, calibration, long-document settings, input columns."""
        n_labels = len(self.labels_)
        thresholds = manifest.get("thresholds")
        if thresholds is not None and not (
            Items(Number()).accepts(thresholds) and len(thresholds) == n_labels
        ):
            raise corrupt_model(directory, f"its thresholds are not {n_labels} numbers")
        self.thresholds_ = None if thresholds is None else np.asarray(thresholds, dtype=float)
        self.train_fingerprint_ = manifest.get("train_fingerprint")
        temperature = manifest.get("temperature")
        if temperature is not None and not Number(min=0, exclusive=True).accepts(temperature):
            raise corrupt_model(directory, f"its temperature {shown(temperature)} is not > 0")
        self.temperature_ = None if temperature is None else float(temperature)
        self.calibration_ = manifest.get("calibration")
        from docsort.text.chunking import LongDoc

        long_doc, spec = manifest.get("long_doc"), manifest.get("input")
        for name, value in (("long_doc", long_doc), ("input", spec)):
            if value is not None and not Mapping().accepts(value):
                raise corrupt_model(directory, f"its {name} is {shown(value)}, not a mapping")
        try:
            self.long_doc_ = LongDoc.from_dict(long_doc)
        except (DocsortError, TypeError, ValueError) as exc:  # a size: "abc" compares badly
            raise corrupt_model(directory, f"its long_doc settings: {exc}") from None
        self.input_spec_ = dict(spec or {})
        trained_on = manifest.get("trained_on")
        self.trained_on_ = dict(trained_on) if Mapping().accepts(trained_on) else None

    def _weights_problem(self) -> str | None:
        """After ``_load_weights``: why the weights do not fit the manifest (they know another
        number of labels, or are not what the kind saves), else None. Each kind that can tell
        says so; the base class cannot."""
        return None


class Classifier(Model):
    """The classifier role: ``_predict_proba`` gives label probabilities, from which come
    decisions, calibration, long-document windows and ``predict``'s labels."""

    def _predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """What each kind implements: probabilities ``[n, n_labels]`` as the model gives them."""
        raise NotImplementedError

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Probabilities ``[n, n_labels]`` in the order of ``labels_.names``: long texts read
        in windows when ``long_doc_`` says so, temperature-scaled when calibrated."""
        return self.scale_proba(self._raw_proba(texts))

    def scale_proba(self, raw: np.ndarray) -> np.ndarray:
        """``raw`` probabilities through the fitted temperature (unchanged when uncalibrated):
        the one place a model's calibration is applied, whoever computed ``raw``."""
        if self.temperature_ is None:
            return raw
        from docsort.models.calibration import apply_temperature

        return apply_temperature(raw, self.temperature_, self.labels_.multi_label)

    def _raw_proba_traced(self, texts: Sequence[str]) -> tuple[np.ndarray, Any]:
        """``_raw_proba`` and a trace of how it was made, for evaluation to report on: None for
        most kinds; a cascade returns which stage answered each row and what each stage cost."""
        return self._raw_proba(texts), None

    def _join_traces(self, traces: Sequence[Any]) -> Any:
        """The traces of consecutive batches as one trace of the whole input (None: no trace)."""
        return None

    def _raw_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Probabilities before any temperature: one pass, or windows aggregated per text."""
        if self.long_doc_ is None or len(texts) == 0:
            return self._predict_proba(texts)
        from docsort.text.chunking import aggregate, split_texts

        pieces, owner = split_texts(texts, self.long_doc_, self.token_spans())
        thresholds = self.thresholds_ if self.thresholds_ is not None else 0.5
        return aggregate(
            self._predict_proba([piece.text for piece in pieces]),
            owner,
            np.array([max(piece.tokens, 1) for piece in pieces], dtype=np.float64),
            len(texts),
            self.long_doc_.aggregate,
            self.labels_.multi_label,
            thresholds,
        )

    def window_scores(self, texts: Sequence[str]) -> list[list[dict[str, Any]]]:
        """Per text, the pieces it was read in: their character span, tokens and probabilities
        (a text read whole is one piece)."""
        from docsort.text.chunking import LongDoc, split_texts

        config = self.long_doc_ or LongDoc(strategy="window", size=10**9, overlap=0)
        pieces, owner = split_texts(texts, config, self.token_spans())
        proba = self.scale_proba(self._predict_proba([piece.text for piece in pieces]))
        out: list[list[dict[str, Any]]] = [[] for _ in texts]
        for piece, doc, row in zip(pieces, owner, proba, strict=True):
            out[doc].append(
                {
                    "start": piece.start,
                    "end": piece.end,
                    "tokens": piece.tokens,
                    "probabilities": dict(zip(self.labels_.names, map(float, row), strict=True)),
                }
            )
        return out

    def token_spans(self) -> Callable[[str], list[tuple[int, int]]]:
        """How this model counts tokens for long-document windows: its own Hugging Face
        tokenizer when it has one (``tokenizer_``, or that of its ``base``), else words."""
        cached = self.__dict__.get("_token_spans")
        if cached is not None:
            return cached
        from docsort.text.chunking import tokenizer_spans, word_spans

        spans = word_spans
        tokenizer = getattr(self, "tokenizer_", None) or self._base_tokenizer()
        if tokenizer is not None and getattr(tokenizer, "is_fast", False):
            spans = tokenizer_spans(tokenizer)
        self.__dict__["_token_spans"] = spans
        return spans

    def _base_tokenizer(self) -> Any:
        base = getattr(self, "base", None)
        if not isinstance(base, str):
            return None
        try:
            from transformers import AutoTokenizer

            from docsort.models.hub import resolve

            path = resolve(base)
            if not Path(path).is_dir() or not (Path(path) / "tokenizer_config.json").is_file():
                return None
            return AutoTokenizer.from_pretrained(path)
        except (ImportError, OSError, ValueError, DocsortError):
            return None

    def calibrate(self, valid: Dataset) -> Classifier:
        """Fit a temperature on held-out labelled rows so that confidence matches accuracy.

        Decisions do not change: argmax is kept, and multi-label thresholds are moved with the
        probabilities. Returns ``self``."""
        from docsort.models.calibration import fit_temperature

        self._check_fitted()
        if valid.labels is None or len(valid) == 0:
            raise DocsortError("calibration needs labelled validation rows")
        check_labels_known(self, list(valid.label_counts()), valid.name or "validation data")
        multi = self.labels_.multi_label
        old = self.temperature_ or 1.0
        self.temperature_ = None
        proba = self._raw_proba(valid.texts)
        temperature = fit_temperature(proba, valid.targets(self.labels_), multi)
        if multi and self.thresholds_ is not None:
            from docsort.models.calibration import apply_temperature

            # a threshold is a probability too: map it through the same change of temperature
            moved = apply_temperature(np.atleast_2d(self.thresholds_), temperature / old, True)
            self.thresholds_ = moved.ravel()
        self.temperature_ = temperature
        return self

    def decide(self, proba: np.ndarray) -> np.ndarray:
        """Turn probabilities into decisions: indices (single-label) or multi-hot (multi-label)."""
        if not self.labels_.multi_label:
            return proba.argmax(axis=1)
        thresholds = self.thresholds_ if self.thresholds_ is not None else 0.5
        return (proba >= thresholds).astype(np.int64)

    def predict(self, texts: Sequence[str]) -> list[Label]:
        decisions = self.decide(self.predict_proba(texts))
        names = self.labels_.names
        if not self.labels_.multi_label:
            return [names[i] for i in decisions]
        return [tuple(names[j] for j in np.flatnonzero(row)) for row in decisions]


class Scorer(Model):
    """The scorer role (a regressor's contract): one number per (text, text_pair[, context])
    row, judged by correlation, never label probabilities. ``labels_`` holds the score levels
    seen in training (their names are the numbers), for the manifest and ordinal losses."""

    tags: ClassVar[Capabilities] = Capabilities(
        output="scores", multi_label=False, long_documents=False
    )

    def predict_scores(self, data: Dataset) -> np.ndarray:
        """One score per row of ``data``, on the training data's scale: what a scorer implements."""
        raise NotImplementedError

    def score(
        self,
        anchors: Sequence[str],
        targets: Sequence[str],
        contexts: Sequence[str] | None = None,
    ) -> np.ndarray:
        """Scores of (anchor, target) pairs, with context codes if the model reads them."""
        if len(anchors) != len(targets) or (contexts is not None and len(contexts) != len(anchors)):
            raise DocsortError("anchors, targets and contexts must have the same length")
        data = Dataset(
            texts=list(anchors),
            text_pair=list(targets),
            context=None if contexts is None else list(contexts),
        )
        return self.predict_scores(data)

    def predict(self, texts: Any) -> list[float]:
        """Scores for a pair ``Dataset`` or for ``(anchor, target[, context])`` tuples."""
        if isinstance(texts, Dataset):
            return self.predict_scores(texts).tolist()
        rows = [tuple(row) for row in texts]
        if any(isinstance(row, str) or len(row) not in (2, 3) for row in texts):
            raise DocsortError(f"a {self.kind} model predicts (anchor, target[, context]) tuples")
        contexts = [row[2] for row in rows] if rows and len(rows[0]) == 3 else None
        return self.score([r[0] for r in rows], [r[1] for r in rows], contexts).tolist()


def read_manifest(directory: str | Path) -> dict[str, Any]:
    directory = Path(directory)
    if not directory.is_dir():
        raise DocsortError(f"model directory not found: {directory}")
    path = directory / MANIFEST
    if not path.is_file():
        raise DocsortError(f"{directory} is not a docsort model: it has no {MANIFEST}")
    try:
        manifest = read_yaml(path, MANIFEST)
    except DocsortError as exc:  # not YAML, not UTF-8, an alias bomb
        detail = str(exc).removeprefix(f"{str(path)!r}: ")
        raise corrupt_model(directory, f"{MANIFEST}: {detail}") from None
    if not isinstance(manifest, dict) or "kind" not in manifest or "labels" not in manifest:
        raise corrupt_model(directory, f"its {MANIFEST} names no kind or labels")
    return manifest


def corrupt_model(directory: str | Path, problem: str) -> DocsortError:
    """The one-line error of a model directory whose files do not make a model."""
    return DocsortError(f"{str(directory)!r} is a corrupt model: {problem}; save it again")


_newer_versions_warned: set[str] = set()


def _warn_if_newer(saved: Any, directory: str | Path) -> None:
    """One line on stderr when a model was saved by a newer docsort than this one (once per
    version: a cascade's stages were saved by the same one)."""
    from packaging.version import InvalidVersion, Version

    from docsort import __version__

    try:
        newer = Version(str(saved)) > Version(__version__)
    except InvalidVersion:
        return
    if newer and str(saved) not in _newer_versions_warned:
        _newer_versions_warned.add(str(saved))
        warn(
            f"{str(directory)!r} was saved by docsort {saved}, newer than this docsort "
            f"({__version__}): it may not load or predict as it did there; upgrade docsort"
        )


def load(directory: str | Path, runtime: Runtime | None = None) -> Model:
    """Reopen any saved model, whatever its kind, to run with ``runtime`` (device, threads,
    batch size: this machine's, not the training machine's)."""
    manifest = read_manifest(directory)
    kind = get_kind(manifest["kind"])
    saved = manifest.get("kind_version", 1)
    if not isinstance(saved, int) or saved > kind.kind_version:
        raise DocsortError(
            f"{str(directory)!r} holds a {kind.kind} model of version {saved!r}, newer than this "
            f"docsort's {kind.kind} (version {kind.kind_version}): upgrade docsort to load it"
        )
    model = kind.load(directory, runtime=runtime)
    if runtime is not None and runtime.threads and "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(runtime.threads)
    return model


class HoldsParts:
    """For a model made of saved models (cascade stages, ensemble members, in the attribute
    ``parts_attribute``): run-time settings (``--device``, ``--threads``...) are its parts',
    kept for the parts it loads (``load_part``) and handed to those it holds."""

    parts_attribute: ClassVar[str]

    def apply_runtime(self, runtime: Runtime | None) -> None:
        super().apply_runtime(runtime)  # type: ignore[misc]
        self.__dict__["part_runtime_"] = runtime
        for part in self.__dict__.get(self.parts_attribute) or []:
            part.apply_runtime(runtime)

    def load_part(self, directory: str | Path) -> Model:
        return load(directory, self.__dict__.get("part_runtime_"))


@dataclass
class ModelSpec:
    """One entry of a composite model's list (cascade stages, ensemble members): a saved model
    directory, or a kind and its parameters to train."""

    name: str
    model_dir: str | None = None
    kind: str | None = None
    params: dict[str, Any] = field(default_factory=dict)


def parse_model_entry(entry: dict[str, Any], where: str, own_keys: Sequence[str]) -> ModelSpec:
    """One ``{model: DIR}`` or ``{kind: KIND, ...params}`` entry of a composite's list, checked;
    ``own_keys`` are the composite's settings for the entry, not the kind's parameters."""
    if ("model" in entry) == ("kind" in entry):
        raise DocsortError(f"{where}: give either `model: DIR` or `kind: KIND`, not both")
    rest = {k: v for k, v in entry.items() if k not in ("model", "kind", *own_keys)}
    if "model" in entry and rest:
        raise DocsortError(
            f"{where}: a saved model takes no parameters (got {sorted(rest)[0]!r}); "
            f"allowed: model, {', '.join(own_keys)}"
        )
    name = entry.get("name") or (
        Path(str(entry["model"])).name if "model" in entry else str(entry["kind"])
    )
    return ModelSpec(
        name=str(name),
        model_dir=str(entry["model"]) if "model" in entry else None,
        kind=str(entry["kind"]) if "kind" in entry else None,
        params=rest,
    )


def make_names_unique(specs: Sequence[ModelSpec]) -> None:
    """Entries sharing a name get their position appended: names identify them in reports."""
    names = [s.name for s in specs]
    for k, spec in enumerate(specs):
        if names.count(spec.name) > 1:
            spec.name = f"{spec.name}-{k + 1}"


def summed_token_usage(models: Sequence[Model]) -> dict[str, int]:
    """The token counts of models that run together (cascade stages, ensemble members)."""
    total: dict[str, int] = {}
    for model in models:
        for key, value in model.token_usage().items():
            total[key] = total.get(key, 0) + value
    return total


def numbered_dirs(folder: str, names: Sequence[str]) -> list[str]:
    """``folder/NN-name`` for each model a composite saves inside itself, in order; the name
    made safe as a directory name."""
    return [
        f"{folder}/{k:02d}-{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}" for k, name in enumerate(names)
    ]


def is_number(value: Any) -> bool:
    """A finite int or float, and not a bool (a YAML ``true`` is not a threshold)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_labels_known(model: Classifier, labels: Sequence[str], source: str) -> None:
    """A label the model never learnt cannot be predicted: say so instead of scoring it wrong."""
    unknown = sorted(set(labels) - set(model.labels_.names))
    if unknown:
        raise DocsortError(
            f"{source}: label {_cut(unknown[0])} is unknown to this model, which knows "
            f"{_preview(model.labels_.names)}"
        )


@contextlib.contextmanager
def quiet_sklearn_fit() -> Iterator[None]:
    """Silence scikit-learn warnings that are expected here, not signs of trouble.

    A label seen only in validation rows has no positive training row (it scores 0, by design),
    and an iteration cap reached on a separable problem still gives a usable model.
    """
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.filterwarnings("ignore", message="Label not .* is present", category=UserWarning)
        yield


LABELS_KEPT = "docsort_labels_"  # attribute: the label names a scikit-learn model was fitted on


def keep_label_names(fitted: object, labels: LabelSet) -> None:
    """Before saving a scikit-learn model: record on it the label names it was fitted on, so
    that a manifest listing others is seen to be corrupt on load (``sklearn_labels_problem``),
    not trusted to name its probability columns."""
    setattr(fitted, LABELS_KEPT, list(labels.names))


def sklearn_labels_problem(fitted: object, labels: LabelSet, weights: str) -> str | None:
    """Whether a fitted scikit-learn model (its ``classes_``: label indices, or one column per
    label when multi-label) fits the manifest's ``labels``; the label names it was saved with
    (``keep_label_names``), when it kept them, must be the manifest's."""
    kept = getattr(fitted, LABELS_KEPT, None)
    if kept is not None and len(kept) != len(labels):
        return f"its manifest lists {len(labels)} labels, its weights ({weights}) {len(kept)}"
    if kept is not None and list(kept) != list(labels.names):
        return f"its manifest's labels are not those of its weights ({weights}), or not in order"
    classes = np.asarray(fitted.classes_)  # type: ignore[attr-defined]
    if labels.multi_label and len(classes) != len(labels):
        return f"its manifest lists {len(labels)} labels, its weights give {len(classes)}"
    if classes.dtype.kind not in "iu" or (len(classes) and classes.max() >= len(labels)):
        return f"its weights ({weights}) know more labels than the {len(labels)} of its manifest"
    return None


def _plain(value: Any) -> Any:
    """Parameters as YAML-safe values (tuples become lists)."""
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    return value


def is_model_dir(path: str | Path) -> bool:
    """A saved docsort model (it has a manifest): what ``save`` may overwrite."""
    return (Path(path) / MANIFEST).is_file()
