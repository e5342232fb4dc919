"""MLflow, imported when first needed and set up for a command line: no telemetry, no artifact
progress bars, a few quick retries instead of MLflow's minutes of them for an unreachable
server (each only where the user has not set it), and its errors as one line.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from docsort.errors import DocsortError
from docsort.tracking.uri import (
    default_uri,
    local_artifacts,
    registry_uri,
    sqlite_file,
    tracking_uri,
)

EXPERIMENT = "docsort"
# MLflow's defaults retry an unreachable server 7 times with doubling waits (minutes); a
# command line should say so in seconds. Each is only a default: the user's value wins.
ENV_DEFAULTS = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}


def mlflow() -> Any:
    """The ``mlflow`` module (the ``registry`` extra), set up once."""
    for key, value in ENV_DEFAULTS.items():
        os.environ.setdefault(key, value)
    try:
        import mlflow as module
    except ImportError as exc:
        raise DocsortError(
            f"the model registry needs the registry extra ({exc.name} is missing): "
            "pip install 'docsort[registry]'"
        ) from None
    for name in ("mlflow", "alembic"):  # "Creating initial MLflow database tables..." etc.
        logging.getLogger(name).setLevel(logging.WARNING)
    return module


@dataclass
class Session:
    """An MLflow client on one tracking URI and one registry URI."""

    client: Any
    tracking_uri: str
    registry_uri: str

    def experiment_id(self, name: str = EXPERIMENT) -> str:
        """The experiment runs are logged to, created on first use; in a local (SQLite)
        registry its artifacts go beside the database, not under the current folder."""
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            return found.experiment_id
        folder = local_artifacts(self.tracking_uri)
        location = None if folder is None else folder.as_uri()
        return self.client.create_experiment(name, artifact_location=location)


@contextlib.contextmanager
def session(uri: str | None = None) -> Iterator[Session]:
    """A client on ``uri`` (or the default URIs), with MLflow's fluent API pointed at the same
    URIs for the block (and pointed back after), and MLflow's errors as one line."""
    module = mlflow()
    tracking = tracking_uri(uri)
    registry = registry_uri(uri)
    for each in {tracking, registry}:
        _check_local(each)
    before = (module.get_tracking_uri(), module.get_registry_uri())
    with one_line(tracking if tracking == registry else f"{tracking} (registry {registry})"):
        module.set_tracking_uri(tracking)
        module.set_registry_uri(registry)
        try:
            yield Session(module.MlflowClient(tracking, registry), tracking, registry)
        finally:
            module.set_tracking_uri(before[0])
            module.set_registry_uri(before[1])


def _check_local(uri: str) -> None:
    """The folder of a SQLite registry must exist; docsort's own default one is created."""
    db = sqlite_file(uri)
    if db is None:
        return
    if uri == default_uri():
        db.parent.mkdir(parents=True, exist_ok=True)
    elif not db.parent.is_dir():
        raise DocsortError(f"the registry {uri}: folder {db.parent} does not exist")
    if db.exists() and not db.is_file():
        raise DocsortError(f"the registry {uri}: {db} is not a database file")


@contextlib.contextmanager
def one_line(uri: str) -> Iterator[None]:
    """MLflow's, requests' and SQLAlchemy's errors as one line naming the registry."""
    try:
        yield
    except DocsortError:
        raise
    except Exception as exc:
        message = describe(exc, uri)
        if message is None:
            raise
        raise DocsortError(message) from exc


def describe(exc: BaseException, uri: str) -> str | None:
    """One line for an error of MLflow or of what it runs on; None for anything else (a bug)."""
    module = type(exc).__module__ or ""
    text = " ".join(str(exc).split())
    if not module.startswith(("mlflow", "requests", "urllib3", "sqlalchemy")) and not isinstance(
        exc, ConnectionError | TimeoutError
    ):
        return None
    unreachable = re.search(
        r"Max retries exceeded|Connection refused|Failed to establish|Name or service not known|"
        r"timed out|ConnectionError|NewConnectionError|RemoteDisconnected",
        text,
    )
    if unreachable:
        return (
            f"the MLflow tracking server {uri} cannot be reached ({unreachable.group(0)}): "
            "start it or set MLFLOW_TRACKING_URI to one that runs"
        )
    if "unable to open database file" in text or "database is locked" in text:
        return f"the registry {uri} cannot be opened: {_cut(text)}"
    if (
        "UnsupportedModelRegistryStoreURI" in type(exc).__name__
        or "Could not find a registered" in text
    ):
        return f"{uri} is not a tracking URI MLflow supports (sqlite:///FILE, http(s)://HOST, ...)"
    return f"the registry {uri}: {_cut(text)}"


def _cut(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def error_code(exc: BaseException) -> str | None:
    """MLflow's error code of ``exc`` (``RESOURCE_DOES_NOT_EXIST``, ...), if it has one."""
    return getattr(exc, "error_code", None)
