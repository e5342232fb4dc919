"""The model registry (MLflow) as requests: register a saved model as a new version, list
versions, promote a version (or the challenger) to champion behind an optional evaluation
gate, roll back to the champion before, archive a version; and registry references
(``models:/NAME@champion``, ``models:/NAME/3``) opened wherever a model directory is.

Everything the user gave is checked before MLflow is imported (a second or more) or the
registry is opened; the registry's own answers (no such name, version or alias, a server
that cannot be reached) are one line too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from docsort.api.rows import Source
from docsort.errors import DocsortError
from docsort.models.base import Runtime, read_manifest
from docsort.tracking.uri import ALIASES, is_reference, parse_reference, registry_uri

LOWER_IS_BETTER = {"ece", "ece_uncalibrated", "mse", "mae", "log_loss", "brier"}
GATE_TAG = "docsort.gate"


def check_name(name: str) -> str:
    """A registered model name usable in a reference: no ``/``, ``@`` or ``:``."""
    name = (name or "").strip()
    if not name or any(c in name for c in "/@:") or len(name) > 200:
        raise DocsortError(
            f"--name {name!r}: give a name without '/', '@' or ':' (it goes into "
            "models:/NAME@champion), e.g. arxiv-topics"
        )
    return name


def _check_alias(alias: str | None) -> None:
    if alias is not None and alias not in ALIASES:
        raise DocsortError(f"--alias is {' or '.join(ALIASES)}, not {alias!r}")


@dataclass(frozen=True)
class Resolved:
    """What a registry reference names now: the registered model, the version an alias points
    to (or the version given), and its local copy."""

    reference: str
    name: str
    version: str
    path: Path
    alias: str | None = None  # the version can change: the alias may move


def resolve_reference(reference: str | Path, tracking_uri: str | None = None) -> Resolved:
    """Ask the registry which version ``reference`` names and give its local copy (downloaded
    once into the cache). A service serving ``models:/NAME@champion`` can call it again to see
    whether the alias has moved (``version`` changed) and load the new ``path`` if so."""
    from docsort.tracking import models
    from docsort.tracking.client import session

    parsed = parse_reference(str(reference))
    with session(tracking_uri) as registry:
        version = models.resolve(registry, parsed)
        path = models.local_copy(registry, version)
    return Resolved(str(reference), version.name, version.version, path, parsed.alias)


def local_model(reference: str | Path) -> Path:
    """The saved model directory a registry reference names, downloaded once into the cache."""
    return resolve_reference(reference).path


def local_model_dir(model: str | Path) -> str | Path:
    """``model`` as given, or the local copy of a registry reference."""
    return local_model(model) if is_reference(model) else model


# ---- register ---------------------------------------------------------------------------


@dataclass
class RegisterRequest:
    """Log a saved model as the next version of ``name``; ``metrics`` is a report folder an
    ``eval`` wrote (or its metrics.json), logged with it."""

    model: str | Path
    name: str
    metrics: str | Path | None = None
    alias: str | None = None  # challenger (or champion: as ``promote`` moves it)
    description: str | None = None
    tracking_uri: str | None = None


@dataclass
class RegisterResult:
    name: str
    version: str
    run_id: str
    model_uri: str
    registry: str
    metrics: dict[str, float]
    parent: str | None
    alias: str | None = None
    previous: str | None = None  # what the alias pointed to before


def run_register(request: RegisterRequest) -> RegisterResult:
    name = check_name(request.name)
    _check_alias(request.alias)
    if is_reference(request.model):
        raise DocsortError(f"{request.model} is in the registry already: register a model dir")
    model_dir = Path(request.model)
    manifest = read_manifest(model_dir)
    metrics, report_dir = _read_metrics(request.metrics, manifest, model_dir)
    from docsort.tracking import models
    from docsort.tracking.client import session

    with session(request.tracking_uri) as registry:
        logged = models.register(
            registry,
            model_dir,
            manifest,
            name,
            metrics=metrics,
            report_dir=report_dir,
            description=request.description,
        )
        previous = None
        if request.alias is not None:
            previous = models.set_alias(registry, name, request.alias, logged.version)
        return RegisterResult(
            name,
            logged.version,
            logged.run_id,
            logged.model_uri,
            registry.registry_uri,
            logged.metrics,
            logged.parent,
            request.alias,
            previous,
        )


def _read_metrics(
    given: str | Path | None, manifest: dict[str, Any], model_dir: Path
) -> tuple[dict[str, Any] | None, Path | None]:
    """The metrics.json of a report folder (or the file itself), checked to be an evaluation of
    a model of this kind trained on the same rows."""
    if given is None:
        return None, None
    path = Path(given)
    file = path / "metrics.json" if path.is_dir() else path
    if not file.is_file():
        raise DocsortError(f"--metrics {str(given)!r}: no metrics.json there (docsort eval --out)")
    try:
        metrics = json.loads(file.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise DocsortError(f"--metrics {str(file)!r} is not JSON: {exc}") from None
    if not isinstance(metrics, dict):
        raise DocsortError(f"--metrics {str(file)!r} is not a metrics object")
    info = metrics.get("model_info") or {}
    kind, fingerprint = info.get("kind"), info.get("train_fingerprint")
    if (kind and kind != manifest.get("kind")) or (
        fingerprint
        and manifest.get("train_fingerprint")
        and fingerprint != manifest["train_fingerprint"]
    ):
        raise DocsortError(
            f"--metrics {str(file)!r} evaluated a {kind} model trained on other rows "
            f"(fingerprint {str(fingerprint)[:12]}), not {model_dir} "
            f"({manifest.get('kind')}, {str(manifest.get('train_fingerprint'))[:12]})"
        )
    return metrics, file.parent


# ---- list, promote, rollback, archive -------------------------------------------------------


def registry_list(name: str | None = None, tracking_uri: str | None = None) -> dict[str, Any]:
    """``{"registry", "models": [...]}`` or, with ``name``, ``{"registry", "name",
    "versions": [...]}`` (aliases, archived, kind, key metrics, parent)."""
    from docsort.tracking import models
    from docsort.tracking.client import session

    with session(tracking_uri) as registry:
        if name is None:
            return {"registry": registry.registry_uri, "models": models.model_rows(registry)}
        rows = models.version_rows(registry, check_name(name))
        return {"registry": registry.registry_uri, "name": name, "versions": rows}


@dataclass
class PromoteRequest:
    """Make ``version`` (a number, or ``challenger``) the champion of ``name``. With
    ``holdout``, both it and the current champion are evaluated on those rows first, and a
    candidate worse than the champion by more than ``tolerance`` on ``metric`` is refused
    unless ``force``."""

    name: str
    version: str
    holdout: Source | None = None
    tolerance: float = 0.01
    metric: str | None = None  # default: macro_f1 (spearman for a pair model)
    force: bool = False
    tracking_uri: str | None = None
    runtime: Runtime | None = None


@dataclass
class PromoteResult:
    name: str
    version: str
    previous: str | None
    gate: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)


def run_promote(request: PromoteRequest) -> PromoteResult:
    name = check_name(request.name)
    given = str(request.version).strip()
    if not (given.isdigit() or given in ALIASES):
        raise DocsortError(f"promote a version number or challenger, not {given!r}")
    if given == "champion":
        raise DocsortError("the champion is the champion already: promote a version or challenger")
    tolerance = request.tolerance
    number = isinstance(tolerance, int | float) and not isinstance(tolerance, bool)
    if not number or not 0 <= tolerance < float("inf"):  # NaN fails both
        raise DocsortError(f"--tolerance must be 0 or more (e.g. 0.01), not {tolerance!r}")
    if request.holdout is not None and not isinstance(request.holdout, list):
        holdout = str(request.holdout)
        if not holdout.startswith("builtin:") and holdout != "-" and not Path(holdout).exists():
            raise DocsortError(f"--holdout file not found: {holdout!r}")
    from docsort.tracking import models
    from docsort.tracking.client import session

    with session(request.tracking_uri) as registry:
        candidate = models.resolve(registry, given, name=name)
        champion = models.champion_of(registry, name)
        notes: list[str] = []
        gate = None
        if champion == candidate.version:
            raise DocsortError(f"version {candidate.version} of {name} is the champion already")
        if models.is_archived(candidate):  # before any evaluation
            raise DocsortError(
                f"version {candidate.version} of {name} is archived: register it again to use it"
            )
        if request.holdout is not None and champion is None:
            notes.append(f"{name} has no champion yet: nothing to compare on the holdout")
        elif request.holdout is not None:
            gate = _gate(registry, name, candidate, champion, request)
            registry.client.set_model_version_tag(
                name, candidate.version, GATE_TAG, json.dumps(gate)
            )
            if not gate["passed"] and not request.force:
                raise DocsortError(_refusal(gate, name))
            if not gate["passed"]:
                notes.append(f"promoted with --force, though {_shortfall(gate, name)}")
        previous = models.set_alias(registry, name, "champion", candidate.version)
        return PromoteResult(name, candidate.version, previous, gate, notes)


def _gate(
    registry: Any, name: str, candidate: Any, champion: str, request: PromoteRequest
) -> dict[str, Any]:
    """Both versions evaluated on the holdout rows: their metric, the difference, passed."""
    from docsort.api.evaluation import EvalRequest, run_evaluate
    from docsort.tracking import models

    scores: dict[str, float] = {}
    metric = request.metric
    for role, version in (
        ("candidate", candidate),
        ("champion", models.version_of(registry, name, champion)),
    ):
        result = run_evaluate(
            EvalRequest(
                model=models.local_copy(registry, version),
                data=request.holdout,
                sweep=False,
                runtime=request.runtime,
            )
        )
        if metric is None:
            metric = "spearman" if result.scores else "macro_f1"
        value = result.metrics.get(metric)
        if isinstance(value, bool) or not isinstance(value, int | float):
            numeric = sorted(
                k
                for k, v in result.metrics.items()
                if isinstance(v, int | float) and not isinstance(v, bool)
            )
            raise DocsortError(
                f"--metric {metric!r} is not in the evaluation's metrics; "
                f"give one of {', '.join(numeric)}"
            )
        scores[role] = float(value)
    assert metric is not None
    # how much worse the candidate is: positive = worse, whichever way the metric points
    worse = scores["champion"] - scores["candidate"]
    if metric in LOWER_IS_BETTER:
        worse = -worse
    return {
        "metric": metric,
        "holdout": str(request.holdout) if not isinstance(request.holdout, list) else "records",
        "candidate_version": candidate.version,
        "candidate": round(scores["candidate"], 6),
        "champion_version": champion,
        "champion": round(scores["champion"], 6),
        "worse_by": round(worse, 6),
        "tolerance": request.tolerance,
        "passed": worse <= request.tolerance + 1e-12,
    }


def _shortfall(gate: dict[str, Any], name: str) -> str:
    direction = "lower" if gate["metric"] in LOWER_IS_BETTER else "higher"
    return (
        f"version {gate['candidate_version']} of {name} has {gate['metric']} "
        f"{gate['candidate']:.4f} on {gate['holdout']}, {gate['worse_by']:.4f} worse than the "
        f"champion (version {gate['champion_version']}, {gate['champion']:.4f}; {direction} is "
        f"better), more than the tolerance {gate['tolerance']:g}"
    )


def _refusal(gate: dict[str, Any], name: str) -> str:
    return f"refused: {_shortfall(gate, name)}; --force promotes it anyway"


def run_rollback(name: str, tracking_uri: str | None = None) -> tuple[str | None, str]:
    """The champion before the current one made champion again: (from, to)."""
    from docsort.tracking import models
    from docsort.tracking.client import session

    with session(tracking_uri) as registry:
        return models.rollback(registry, check_name(name))


def run_archive(name: str, version: str, tracking_uri: str | None = None) -> str:
    """Mark a version archived (kept, with no alias); returns its number."""
    from docsort.tracking import models
    from docsort.tracking.client import session

    with session(tracking_uri) as registry:
        return models.archive(registry, check_name(name), str(version).strip()).version


def registry_location(tracking_uri: str | None = None) -> str:
    """The registry URI requests go to (no MLflow import)."""
    return registry_uri(tracking_uri)


__all__ = [
    "PromoteRequest",
    "PromoteResult",
    "RegisterRequest",
    "RegisterResult",
    "Resolved",
    "check_name",
    "local_model",
    "local_model_dir",
    "registry_list",
    "registry_location",
    "resolve_reference",
    "run_archive",
    "run_promote",
    "run_register",
    "run_rollback",
]
