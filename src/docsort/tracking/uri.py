"""Where the registry is and what a registry reference is; imports no MLflow.

The tracking and registry URI is ``$MLFLOW_TRACKING_URI`` (``$MLFLOW_REGISTRY_URI`` for the
registry, if set) or, by default, a SQLite file in docsort's state folder: ``$DOCSORT_HOME``,
else ``.docsort`` in the current folder (``.docsort/mlflow.db``, artifacts in
``.docsort/mlartifacts``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from docsort.errors import DocsortError

HOME_ENV = "DOCSORT_HOME"
DEFAULT_HOME = ".docsort"
DB_NAME = "mlflow.db"
ARTIFACTS_NAME = "mlartifacts"
PREFIX = "models:/"
ALIASES = ("champion", "challenger")
_ALIAS = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def state_dir() -> Path:
    """``$DOCSORT_HOME``, else ``./.docsort``: docsort's own state (the local registry)."""
    env = os.environ.get(HOME_ENV, "").strip()
    return Path(env).expanduser() if env else Path(DEFAULT_HOME)


def default_uri() -> str:
    return f"sqlite:///{(state_dir() / DB_NAME).resolve()}"


def tracking_uri(given: str | None = None) -> str:
    """The URI runs are logged to: ``given``, ``$MLFLOW_TRACKING_URI``, or the local default."""
    uri = (given or os.environ.get("MLFLOW_TRACKING_URI") or "").strip()
    return uri or default_uri()


def registry_uri(given: str | None = None) -> str:
    """The URI of the model registry: ``given``, ``$MLFLOW_REGISTRY_URI``, else the tracking
    URI (as MLflow itself chooses)."""
    uri = (given or os.environ.get("MLFLOW_REGISTRY_URI") or "").strip()
    return uri or tracking_uri(given)


def sqlite_file(uri: str) -> Path | None:
    """The database file of a ``sqlite:///PATH`` URI, else None."""
    if not uri.startswith("sqlite:"):
        return None
    path = unquote(urlparse(uri).path)
    if uri.startswith("sqlite:////"):  # absolute: sqlite:////abs/path
        return Path("/" + path.lstrip("/"))
    return Path(path.lstrip("/")) if path not in ("", "/", "/:memory:") else None


def local_artifacts(uri: str) -> Path | None:
    """Where a local (SQLite) registry keeps its artifacts: beside the database file. MLflow's
    own default is ``./mlruns`` under whatever folder the command ran in, which would scatter
    one registry's versions over many folders."""
    db = sqlite_file(uri)
    return None if db is None else db.resolve().parent / ARTIFACTS_NAME


@dataclass(frozen=True)
class Reference:
    """``models:/NAME@ALIAS`` or ``models:/NAME/VERSION``."""

    name: str
    version: str | None = None
    alias: str | None = None

    def __str__(self) -> str:
        return (
            f"{PREFIX}{self.name}@{self.alias}"
            if self.alias
            else f"{PREFIX}{self.name}/{self.version}"
        )


def is_reference(model: object) -> bool:
    """``models:/...``, also as a ``Path`` (a CLI argument typed as one keeps the text)."""
    return isinstance(model, str | Path) and str(model).startswith(PREFIX)


def parse_reference(text: str) -> Reference:
    """A reference, checked: one line saying the two forms otherwise."""
    body = text[len(PREFIX) :] if text.startswith(PREFIX) else ""
    forms = "models:/NAME@ALIAS (e.g. models:/docs@champion) or models:/NAME/VERSION"
    if "@" in body:
        name, _, alias = body.rpartition("@")
        if name and "/" not in name and _ALIAS.match(alias):
            return Reference(name=name, alias=alias)
    elif "/" in body:
        name, _, version = body.rpartition("/")
        if name and "/" not in name and version.isdigit() and int(version) > 0:
            return Reference(name=name, version=str(int(version)))
    raise DocsortError(f"{text!r} is not a registry reference: give {forms}")
