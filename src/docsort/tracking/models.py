"""docsort models as versions of MLflow registered models: logging one (a run with its
parameters, metrics and report, and the MLflow model), listing versions, moving the
``champion`` and ``challenger`` aliases (with the champions before, so a rollback restores
one), archiving, and a local copy of a version for ``docsort.load``.

MLflow ≥ 2.9 replaced stages (Staging, Production, Archived) by aliases; "archived" here is a
version tag (``docsort.archived``), which keeps the version and its history readable.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import string
import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from docsort import cache
from docsort.data.safe_yaml import read_yaml
from docsort.errors import DocsortError, warn
from docsort.models.base import MANIFEST
from docsort.tracking.client import Session, error_code, mlflow
from docsort.tracking.uri import ALIASES, Reference

ARTIFACT = "model"  # the key of the saved model directory among the MLflow model's artifacts
CACHE_AREA = "registry"
TAG = "docsort."
HISTORY_TAG = "docsort.champion_history"  # versions that were champion before, latest last
ARCHIVED_TAG = "docsort.archived"
KEY_METRICS = ("accuracy", "macro_f1", "spearman")  # shown by registry list
SKIPPED_METRICS = {
    "per_class",
    "confusion_matrix",
    "reliability",
    "model_info",
    "stages",
    "sweep",
    "selection",
    "thresholds",
    "per_level",
}
MAX_PARAM_CHARS = 500
CODE = Path(__file__).with_name("model_code.py")


def input_columns(spec: Mapping[str, Any]) -> list[str]:
    """The columns a model reads (its saved input spec): the text column(s) or the ones its
    template joins, a pair model's pair and context columns."""
    if spec.get("template"):
        fields = [f for _, f, _, _ in string.Formatter().parse(str(spec["template"])) if f]
        columns = list(dict.fromkeys(fields))
    else:
        text = spec.get("text") or "text"
        columns = [text] if isinstance(text, str) else list(text)
    return columns + [spec[c] for c in ("pair", "context") if spec.get(c)]


@dataclass
class Registered:
    name: str
    version: str
    run_id: str
    model_uri: str
    metrics: dict[str, float]
    parent: str | None  # the champion when this version was registered
    aliases: list[str] = field(default_factory=list)


def register(
    session: Session,
    model_dir: Path,
    manifest: dict[str, Any],
    name: str,
    *,
    metrics: dict[str, Any] | None = None,
    report_dir: Path | None = None,
    description: str | None = None,
) -> Registered:
    """Log ``model_dir`` as a run (parameters, metrics, the report's files) whose MLflow model
    becomes the next version of ``name``; the version's tags say the docsort kind and version
    and the training data's fingerprint, and the champion it may replace (its parent)."""
    module = mlflow()
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    from docsort import __version__

    parent = _alias_version(session, name, "champion")
    tags = {
        f"{TAG}kind": str(manifest["kind"]),
        f"{TAG}kind_version": str(manifest.get("kind_version", 1)),
        f"{TAG}version": str(manifest.get("docsort_version") or "?"),
        f"{TAG}train_fingerprint": str(manifest.get("train_fingerprint") or ""),
        f"{TAG}labels": str(len(manifest.get("labels") or [])),
        f"{TAG}source": str(model_dir.resolve()),
        **({f"{TAG}parent_version": parent} if parent else {}),
    }
    flat_metrics = numeric_metrics(metrics or {})
    columns = input_columns(manifest.get("input") or {})
    signature = ModelSignature(inputs=Schema([ColSpec("string", c) for c in columns]))
    experiment = session.experiment_id()
    with module.start_run(experiment_id=experiment, run_name=f"register {name}", tags=tags) as run:
        module.log_params(flat_params(manifest))
        if flat_metrics:
            module.log_metrics(flat_metrics)
        if report_dir is not None:
            for file in ("metrics.json", "report.md"):
                if (report_dir / file).is_file():
                    module.log_artifact(str(report_dir / file), artifact_path="report")
        # "an input example was not provided": on purpose, one would run the model to log it
        with warnings.catch_warnings(), _requirements_checked_by_name():
            warnings.simplefilter("ignore", UserWarning)
            info = module.pyfunc.log_model(
                name=ARTIFACT,
                python_model=str(CODE),
                artifacts={ARTIFACT: str(model_dir.resolve())},
                signature=signature,
                # what loading needs; docsort itself is installed beside it (mlflow models
                # serve --env-manager local), its kind's extras with it
                pip_requirements=[
                    f"docsort=={__version__}",
                    f"mlflow-skinny=={module.__version__}",
                ],
                tags=tags,
            )
    client = session.client
    if not _exists(session, name):
        try:
            client.create_registered_model(name)
        except Exception as exc:  # registered by another process meanwhile
            if error_code(exc) != "RESOURCE_ALREADY_EXISTS":
                raise
    created = client.create_model_version(
        name,
        source=info.model_uri,
        run_id=run.info.run_id,
        tags=tags,
        description=description,
        model_id=getattr(info, "model_id", None),
    )
    version = str(created.version)
    return Registered(name, version, run.info.run_id, info.model_uri, flat_metrics, parent)


@contextlib.contextmanager
def _requirements_checked_by_name() -> Iterator[None]:
    """MLflow checks the logged pip requirements against this environment after mapping every
    installed distribution's files to its modules, once per process: 4-10 s here, with torch
    and transformers installed, for two requirements that ``importlib.metadata`` finds by name.
    The map starts empty for the block (so each is looked up by name) and is as before after
    it, so a notebook's later ``log_model`` infers its requirements as usual."""
    try:
        from mlflow.utils import requirements_utils as requirements
    except ImportError:  # moved in another MLflow: the check just takes its time
        yield
        return
    before = (getattr(requirements, "_MODULES_TO_PACKAGES", None),
              getattr(requirements, "_PACKAGES_TO_MODULES", None))  # fmt: skip
    if before[0] is None:
        requirements._MODULES_TO_PACKAGES = {}
    try:
        yield
    finally:
        requirements._MODULES_TO_PACKAGES, requirements._PACKAGES_TO_MODULES = before


def flat_params(manifest: Mapping[str, Any]) -> dict[str, str]:
    """A model's parameters as MLflow params (nested ones dotted, long values cut), with its
    kind and label count."""
    params: dict[str, str] = {"kind": str(manifest["kind"])}
    for key, value in _flatten(manifest.get("params") or {}):
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        params[key] = text if len(text) <= MAX_PARAM_CHARS else text[: MAX_PARAM_CHARS - 1] + "…"
    params["n_labels"] = str(len(manifest.get("labels") or []))
    params["multi_label"] = str(bool(manifest.get("multi_label")))
    return params


def numeric_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The numbers of an evaluation's metrics.json as MLflow metrics (``cost.total_usd``),
    without per-class tables, confusion matrices and stage breakdowns."""
    found: dict[str, float] = {}
    for key, value in _flatten({k: v for k, v in metrics.items() if k not in SKIPPED_METRICS}):
        if isinstance(value, bool) or not isinstance(value, int | float) or "cost_model" in key:
            continue  # (the prices the cost was computed with are not results)
        if value == value and abs(value) != float("inf"):  # MLflow refuses NaN in SQL stores
            found[re.sub(r"[^\w./ -]", "_", key)] = float(value)
    return found


def _flatten(mapping: Mapping[str, Any], prefix: str = "") -> Iterable[tuple[str, Any]]:
    for key, value in mapping.items():
        if isinstance(value, Mapping) and value:
            yield from _flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


# ---- versions and aliases --------------------------------------------------------------


@dataclass(frozen=True)
class Version:
    """A model version as docsort reads it (MLflow's version numbers are ints in some stores,
    strings in others: here always a string)."""

    name: str
    version: str
    source: str
    run_id: str | None
    tags: dict[str, str]
    description: str
    created: int | None

    @classmethod
    def of(cls, found: Any) -> Version:
        return cls(
            found.name,
            str(found.version),
            str(found.source),
            found.run_id,
            dict(found.tags or {}),
            found.description or "",
            found.creation_timestamp,
        )


def registered_model(session: Session, name: str) -> Any:
    """The registered model ``name``, or one line naming the ones there are."""
    try:
        return session.client.get_registered_model(name)
    except Exception as exc:
        if error_code(exc) != "RESOURCE_DOES_NOT_EXIST":
            raise
        names = [m.name for m in session.client.search_registered_models(max_results=20)]
        known = f"it has {', '.join(names)}" if names else "it has none yet"
        raise DocsortError(
            f"no registered model {name!r} in {session.registry_uri} ({known}): "
            "docsort registry register MODEL_DIR --name NAME adds one"
        ) from None


def version_of(session: Session, name: str, version: str) -> Version:
    """Version ``version`` of ``name``, checked in one line."""
    registered_model(session, name)
    if not str(version).isdigit():
        raise DocsortError(f"a version is a number (1, 2, ...) or an alias, not {version!r}")
    try:
        return Version.of(session.client.get_model_version(name, str(int(version))))
    except Exception as exc:
        if error_code(exc) != "RESOURCE_DOES_NOT_EXIST":
            raise
        have = [v.version for v in _versions(session, name)]
        raise DocsortError(
            f"{name} has no version {version} (its versions: {', '.join(have) or 'none'})"
        ) from None


def by_alias(session: Session, name: str, alias: str) -> Version:
    """The version ``alias`` points to, or one line saying which aliases there are."""
    model = registered_model(session, name)
    version = (model.aliases or {}).get(alias)
    if version is None:
        shown = ", ".join(f"{a} → {v}" for a, v in sorted((model.aliases or {}).items()))
        have = f"its aliases: {shown}" if shown else "no aliases yet"
        raise DocsortError(f"{name} has no alias {alias!r} ({have})")
    return Version.of(session.client.get_model_version(name, str(version)))


def resolve(session: Session, reference: Reference | str, name: str | None = None) -> Version:
    """A reference (or, with ``name``, a version number or alias) as a model version."""
    if isinstance(reference, Reference):
        name, given = reference.name, reference.alias or reference.version
    else:
        given = reference
    assert name is not None and given is not None
    if str(given).isdigit():
        return version_of(session, name, str(given))
    return by_alias(session, name, str(given))


def champion_of(session: Session, name: str) -> str | None:
    """The champion's version of ``name`` (which must exist), if it has one."""
    return _alias_of(registered_model(session, name), "champion")


def _alias_version(session: Session, name: str, alias: str) -> str | None:
    try:
        model = session.client.get_registered_model(name)
    except Exception as exc:
        if error_code(exc) == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise
    return _alias_of(model, alias)


def _alias_of(model: Any, alias: str) -> str | None:
    """The version (a string) ``alias`` of a registered model points to, if any."""
    version = (model.aliases or {}).get(alias)
    return None if version is None else str(version)


def _exists(session: Session, name: str) -> bool:
    try:
        session.client.get_registered_model(name)
    except Exception as exc:
        if error_code(exc) == "RESOURCE_DOES_NOT_EXIST":
            return False
        raise
    return True


def _versions(session: Session, name: str) -> list[Version]:
    found = session.client.search_model_versions(f"name = '{_quoted(name)}'", max_results=1000)
    return sorted((Version.of(v) for v in found), key=lambda v: int(v.version))


def _quoted(name: str) -> str:
    return name.replace("\\", "\\\\").replace("'", "\\'")


def is_archived(version: Version) -> bool:
    return version.tags.get(ARCHIVED_TAG) == "true"


def history(model: Any) -> list[str]:
    raw = (model.tags or {}).get(HISTORY_TAG) or "[]"
    try:
        versions = json.loads(raw)
    except ValueError:
        return []
    return [str(v) for v in versions] if isinstance(versions, list) else []


def set_alias(session: Session, name: str, alias: str, version: str) -> str | None:
    """Point ``alias`` at ``version``; returns the version it pointed to before. Moving
    ``champion`` pushes the previous one onto the history ``rollback`` pops, and a challenger
    made champion is no longer the challenger."""
    if alias not in ALIASES:
        raise DocsortError(f"the aliases are {' and '.join(ALIASES)}, not {alias!r}")
    target = version_of(session, name, version)
    if is_archived(target):
        raise DocsortError(
            f"version {version} of {name} is archived: register it again to use it as {alias}"
        )
    model = registered_model(session, name)
    before = _alias_of(model, alias)
    client = session.client
    client.set_registered_model_alias(name, alias, target.version)
    if alias == "champion":
        if before is not None and before != target.version:
            client.set_registered_model_tag(
                name, HISTORY_TAG, json.dumps([*history(model), before])
            )
        if _alias_of(model, "challenger") == target.version:
            client.delete_registered_model_alias(name, "challenger")
    return before


def rollback(session: Session, name: str) -> tuple[str | None, str]:
    """Make the champion before the current one champion again; returns (from, to)."""
    model = registered_model(session, name)
    earlier = history(model)
    current = _alias_of(model, "champion")
    if not earlier:
        raise DocsortError(f"{name} has no earlier champion to roll back to")
    target = earlier[-1]
    version = version_of(session, name, target)
    if is_archived(version):
        raise DocsortError(
            f"the earlier champion of {name}, version {target}, is archived: promote the "
            "version you want instead"
        )
    session.client.set_registered_model_alias(name, "champion", target)
    session.client.set_registered_model_tag(name, HISTORY_TAG, json.dumps(earlier[:-1]))
    return current, target


def archive(session: Session, name: str, version: str) -> Version:
    """Mark a version archived (it keeps its files and history; no alias may point to it)."""
    found = version_of(session, name, version)
    aliases = [
        a
        for a, v in (registered_model(session, name).aliases or {}).items()
        if str(v) == found.version
    ]
    if "champion" in aliases:
        raise DocsortError(
            f"version {found.version} of {name} is the champion: promote another version (or "
            "roll back) before archiving it"
        )
    for alias in aliases:
        session.client.delete_registered_model_alias(name, alias)
    session.client.set_model_version_tag(name, found.version, ARCHIVED_TAG, "true")
    return found


def version_rows(session: Session, name: str) -> list[dict[str, Any]]:
    """Every version of ``name``: aliases, archived or not, kind, key metrics, parent."""
    model = registered_model(session, name)
    aliases: dict[str, list[str]] = {}
    for alias, version in (model.aliases or {}).items():
        aliases.setdefault(str(version), []).append(alias)
    rows = []
    for version in _versions(session, name):
        tags = version.tags
        metrics: dict[str, float] = {}
        if version.run_id:
            try:
                run_metrics = session.client.get_run(version.run_id).data.metrics
            except Exception as exc:  # a run deleted on the server: the version still lists
                if error_code(exc) != "RESOURCE_DOES_NOT_EXIST":
                    raise
                run_metrics = {}
            metrics = {k: run_metrics[k] for k in KEY_METRICS if k in run_metrics}
        rows.append(
            {
                "version": version.version,
                "aliases": sorted(aliases.get(version.version, [])),
                "archived": is_archived(version),
                "kind": tags.get(f"{TAG}kind", "?"),
                "docsort_version": tags.get(f"{TAG}version"),
                "train_fingerprint": tags.get(f"{TAG}train_fingerprint"),
                "parent": tags.get(f"{TAG}parent_version"),
                "created": version.created,
                "metrics": metrics,
                "description": version.description,
            }
        )
    return rows


def model_rows(session: Session) -> list[dict[str, Any]]:
    """Every registered model: versions, champion, challenger."""
    rows = []
    for model in session.client.search_registered_models(max_results=1000):
        versions = _versions(session, model.name)
        rows.append(
            {
                "name": model.name,
                "versions": len(versions),
                "latest": versions[-1].version if versions else None,
                "champion": _alias_of(model, "champion"),
                "challenger": _alias_of(model, "challenger"),
            }
        )
    return sorted(rows, key=lambda r: r["name"])


# ---- a local copy ----------------------------------------------------------------------


def local_copy(session: Session, version: Version) -> Path:
    """The saved model directory of ``version``, downloaded into docsort's cache once (a
    version's files never change) and checked to be a docsort model."""
    name = version.name
    ident = hashlib.sha256(f"{session.registry_uri}\n{name}".encode()).hexdigest()[:12]
    slug = re.sub(r"[^\w.-]", "_", name)[:40] or "model"
    key = f"{slug}-{ident}/{version.version}"
    stamp = {
        "registry": session.registry_uri,
        "name": name,
        "version": version.version,
        "source": version.source,
    }
    if is_archived(version):
        warn(f"version {version.version} of {name} is archived")

    def download(folder: Path) -> None:
        mlflow().artifacts.download_artifacts(
            artifact_uri=f"models:/{name}/{version.version}",
            dst_path=str(folder),
            tracking_uri=session.tracking_uri,
            registry_uri=session.registry_uri,
        )

    folder = cache.entry(CACHE_AREA, key, stamp, download)
    return saved_dir(folder, f"version {version.version} of {name}")


def saved_dir(folder: Path, what: str) -> Path:
    """The docsort model directory inside a downloaded MLflow model."""
    not_ours = DocsortError(f"{what} is not a docsort model: register it with docsort registry")
    if not (folder / "MLmodel").is_file():
        raise not_ours
    flavors = (read_yaml(folder / "MLmodel", "MLmodel") or {}).get("flavors") or {}
    artifacts = (flavors.get("python_function") or {}).get("artifacts") or {}
    path = (artifacts.get(ARTIFACT) or {}).get("path")
    if not isinstance(path, str):
        raise not_ours
    saved = (folder / path).resolve()
    if not saved.is_relative_to(folder.resolve()) or not (saved / MANIFEST).is_file():
        raise not_ours
    return saved
