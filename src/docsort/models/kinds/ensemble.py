"""Ensemble: several models answer every row; the answer is the weighted mean of theirs.

Models trained apart (another seed, base model, input or loss) make partly independent errors,
and a mean cancels part of them: on the USPTO phrase pairs the mean of three ``mpnet``
cross-encoders' scores reached 0.7764 Pearson on held-out anchors against 0.7725 for the best
of them; on banking77 the mean of tfidf and the frozen ``minilm`` probe beat both (0.942 vs
0.930 accuracy), though not on bbc, arxiv8 or patent sections (benchmarks/). Unlike a cascade,
every member reads every row, so an ensemble costs the sum of its members.

Members are saved model directories (``DIR`` or ``{model: DIR}``) or kind configs
(``{kind: tfidf, ...}``) trained on the ensemble's rows; ``weights`` defaults to equal. All
members give the same output: label models are averaged as probabilities (each calibrated as
it was saved; every member must know the same labels, in any order) and decided by the top
label; scoring models (the ``pair`` kind) as scores. Single-label only: multi-label members
decide with their own thresholds, which a mean of probabilities would not respect.

The saved ensemble is self-contained: each member is saved again inside it (``members/NN-name``),
as a cascade saves its stages, so it can be copied or served after the sources are deleted.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from docsort.data.dataset import Dataset
from docsort.errors import DocsortError
from docsort.io import write_json
from docsort.models.base import (
    Capabilities,
    Classifier,
    HoldsParts,
    Model,
    ModelSpec,
    Scorer,
    create,
    is_number,
    load,
    make_names_unique,
    numbered_dirs,
    parse_model_entry,
    read_manifest,
    register,
    summed_token_usage,
)
from docsort.models.params import Items, Number, Optional

MEMBERS_DIR = "members"
STATE = "ensemble.json"


@register("ensemble")
class Ensemble(HoldsParts, Classifier, Scorer):
    """The weighted mean of its members' probabilities (label models) or scores (pair models):
    it takes its members' role, ``Classifier`` or ``Scorer``, so it has both contracts and
    ``capabilities().output`` says which one applies."""

    parts_attribute = "members_"
    tags: ClassVar[Capabilities] = Capabilities(
        multi_label=False, long_documents=False, composite=True
    )

    # each value alone; the entries and how many weights they need: member_specs, member_weights
    param_rules = {"members": Optional(Items()), "weights": Optional(Items(Number(min=0)))}

    def __init__(
        self, members: list[Any] | None = None, weights: list[float] | None = None
    ) -> None:
        self.members = members
        self.weights = weights

    # -- configuration ------------------------------------------------------------------
    def member_specs(self) -> list[ModelSpec]:
        """The ``members`` parameter checked and parsed; a bad entry is a one-line error."""
        if not isinstance(self.members, list) or len(self.members) < 2:
            raise DocsortError(
                "ensemble needs `members:`, a list of at least two entries, each a saved model "
                "(DIR or {model: DIR}) or a kind config ({kind: tfidf, ...})"
            )
        specs = []
        for i, entry in enumerate(self.members):
            where = f"ensemble member {i + 1}"
            if isinstance(entry, str | Path):
                entry = {"model": str(entry)}
            if not isinstance(entry, dict):
                raise DocsortError(f"{where}: expected a model directory or {{kind: KIND, ...}}")
            specs.append(parse_model_entry(entry, where, ("name",)))
        make_names_unique(specs)
        return specs

    def member_weights(self, n: int) -> np.ndarray:
        """``weights`` checked and scaled to sum to 1 (equal when not given)."""
        if self.weights is None:
            return np.full(n, 1.0 / n)
        weights = self.weights
        if (
            not isinstance(weights, list | tuple)
            or len(weights) != n
            or not all(is_number(w) and w >= 0 for w in weights)
            or sum(weights) <= 0
        ):
            raise DocsortError(
                f"ensemble weights: give {n} numbers >= 0, one per member, not all 0 "
                f"(got {weights!r})"
            )
        array = np.asarray(weights, dtype=np.float64)
        return array / array.sum()

    def check(self) -> None:
        super().check()
        specs = self.member_specs()
        self.member_weights(len(specs))
        for i, spec in enumerate(specs):
            if spec.kind is not None:
                try:
                    create(spec.kind, spec.params).check()
                except DocsortError as exc:
                    raise DocsortError(f"ensemble member {i + 1} ({spec.name}): {exc}") from None

    def capabilities(self) -> Capabilities:
        """A label ensemble's or a pair ensemble's, as its members give: known from the fitted
        members, else from the configuration (a saved member's manifest or an inline member's
        kind), so the data can be read the right way before training."""
        return replace(self.tags, output=self._members_output())

    def _members_output(self) -> str:
        if hasattr(self, "members_"):
            return self.members_[0].output
        try:
            spec = self.member_specs()[0]
        except DocsortError:
            return "labels"  # fit will report the bad configuration
        if spec.model_dir is not None:
            manifest = read_manifest(spec.model_dir)
            return create(manifest["kind"], manifest.get("params") or {}).output
        return create(spec.kind or "", spec.params).output

    # -- the contract -------------------------------------------------------------------
    def fit(self, train: Dataset, valid: Dataset | None = None) -> Ensemble:
        specs = self.member_specs()
        self.member_weights(len(specs))
        members = []
        for i, spec in enumerate(specs):
            try:
                if spec.model_dir is not None:
                    model = load(spec.model_dir)
                else:
                    model = create(spec.kind or "", spec.params).fit(train, valid)
            except DocsortError as exc:
                raise DocsortError(f"ensemble member {i + 1} ({spec.name}): {exc}") from None
            members.append(model)
        if members[0].output == "labels":
            if train.multi_label:
                raise DocsortError(
                    "an ensemble needs single-label data; multi-label is not supported"
                )
            self._remember_training(train)
        else:
            self.labels_ = members[0].labels_
            self.train_fingerprint_ = train.fingerprint()
        self._set_members(members, [s.name for s in specs])
        return self

    def _set_members(self, members: list[Model], names: list[str]) -> None:
        """Keep the members, checked to agree, and map each one's label columns onto ours."""
        outputs = {m.output for m in members}
        if len(outputs) > 1:
            raise DocsortError(
                "ensemble members must all give labels or all give scores (pair models); "
                f"these mix {' and '.join(sorted(outputs))}"
            )
        columns = []
        for model, name in zip(members, names, strict=True):
            if model.output == "scores":
                continue
            if model.labels_.multi_label:
                raise DocsortError(f"ensemble member {name!r} is multi-label; members must not be")
            if sorted(model.labels_.names) != sorted(self.labels_.names):
                missing = sorted(set(self.labels_.names) ^ set(model.labels_.names))
                raise DocsortError(
                    f"ensemble member {name!r} does not know the same labels as the ensemble "
                    f"(differs on {missing[0]!r}); train every member on the same label set"
                )
            columns.append(np.array([model.labels_.index(n) for n in self.labels_.names]))
        self.member_weights(len(members))
        self.members_ = members
        self.member_names_ = names
        self._columns = columns

    def _predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        self._check_fitted()
        if self.output == "scores":
            raise DocsortError(
                "this ensemble gives scores, not label probabilities: use predict or predict_scores"
            )
        weights = self.member_weights(len(self.members_))
        total = np.zeros((len(texts), len(self.labels_)), dtype=np.float64)
        for model, columns, weight in zip(self.members_, self._columns, weights, strict=True):
            total += weight * model.predict_proba(texts)[:, columns]
        return total

    def predict_scores(self, data: Dataset) -> np.ndarray:
        """The weighted mean of the members' scores of the pairs in ``data``."""
        self._check_fitted()
        if self.output != "scores":
            raise DocsortError("this ensemble gives labels: use predict or predict_proba")
        weights = self.member_weights(len(self.members_))
        return sum(w * m.predict_scores(data) for m, w in zip(self.members_, weights, strict=True))

    def predict(self, texts: Any) -> list[Any]:  # type: ignore[override]
        if self.output != "scores":
            return super().predict(texts)
        weights = self.member_weights(len(self.members_))
        scores = [np.asarray(m.predict(texts), dtype=np.float64) for m in self.members_]
        return sum(w * s for w, s in zip(weights, scores, strict=True)).tolist()

    def token_usage(self) -> dict[str, int]:
        return summed_token_usage(getattr(self, "members_", []))

    # -- parts (docsort export replaces the members it can export) ------------------------
    def parts(self) -> list[Model]:
        """The members, in order."""
        self._check_fitted()
        return list(self.members_)

    def with_parts(self, parts: Sequence[Model]) -> Ensemble:
        """A copy averaging ``parts`` (one per member, same labels) with the same weights."""
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone._set_members(list(parts), list(self.member_names_))
        return clone

    # -- persistence --------------------------------------------------------------------
    def _member_dirs(self) -> list[str]:
        return numbered_dirs(MEMBERS_DIR, self.member_names_)

    def _save_weights(self, directory: Path) -> None:
        weights = self.member_weights(len(self.members_)).tolist()
        entries = []
        for model, name, sub, weight in zip(
            self.members_, self.member_names_, self._member_dirs(), weights, strict=True
        ):
            model.save(directory / sub)
            entries.append({"name": name, "dir": sub, "kind": model.kind, "weight": weight})
        write_json(directory / STATE, {"members": entries})

    def _load_weights(self, directory: Path) -> None:
        path = directory / STATE
        if not path.is_file():
            raise DocsortError(f"{directory}: {STATE} is missing; save the ensemble again")
        entries = json.loads(path.read_text(encoding="utf-8"))["members"]
        members = [self.load_part(directory / entry["dir"]) for entry in entries]
        self._set_members(members, [entry["name"] for entry in entries])


def build_ensemble(
    model_dirs: Sequence[str | Path], weights: Sequence[float] | None = None
) -> Ensemble:
    """An ensemble of saved models, ready to save or use: no training rows are needed, the
    labels (or score levels) and the column defaults for ``eval``/``predict`` are the first
    member's."""
    ensemble = Ensemble(
        members=[str(d) for d in model_dirs], weights=None if weights is None else list(weights)
    )
    specs = ensemble.member_specs()
    ensemble.member_weights(len(specs))
    members = []
    for i, spec in enumerate(specs):
        try:
            members.append(load(spec.model_dir or ""))
        except DocsortError as exc:
            raise DocsortError(f"ensemble member {i + 1} ({spec.name}): {exc}") from None
    ensemble.labels_ = members[0].labels_
    ensemble.train_fingerprint_ = None
    ensemble.input_spec_ = dict(getattr(members[0], "input_spec_", {}) or {})
    ensemble._set_members(members, [s.name for s in specs])
    return ensemble
