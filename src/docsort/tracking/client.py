"""MLflow, imported when first needed and set up for a command line: no telemetry, no artifact
progress bars, a few quick retries instead of MLflow's minutes of them for an unreachable
server (each only where the user has not set it), and its errors as one line.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from docsort.errors import DocsortError
from docsort.tracking.uri import (
    ARTIFACTS_NAME,
    DB_NAME,
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
    shown = tracking if tracking == registry else f"{tracking} (registry {registry})"
    with _FLUENT, one_line(shown), _pointed_at(module, tracking, registry):
        yield Session(module.MlflowClient(tracking, registry), tracking, registry)


URI_ENV = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
# MLflow's fluent URIs are process-wide: one session at a time points them (a served alias is
# checked from a thread while the main thread may open a session of its own)
_FLUENT = threading.RLock()


@contextlib.contextmanager
def _pointed_at(module: Any, tracking: str, registry: str) -> Iterator[None]:
    """MLflow's fluent API (``start_run``, ``log_model``) on these URIs for the block, and
    then exactly as before: ``set_tracking_uri`` also writes ``$MLFLOW_TRACKING_URI``, and
    setting back what ``get_tracking_uri`` said would pin MLflow's default (a
    ``./mlflow.db``) over the user's environment for the rest of the process."""
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    globals_before = (
        getattr(tracking_utils, "_tracking_uri", None),
        getattr(registry_utils, "_registry_uri", None),
    )
    env_before = {key: os.environ.get(key) for key in URI_ENV}
    module.set_tracking_uri(tracking)
    module.set_registry_uri(registry)
    try:
        yield
    finally:
        tracking_utils._tracking_uri, registry_utils._registry_uri = globals_before
        for key, value in env_before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _check_local(uri: str) -> None:
    """The folder of a SQLite registry must exist (docsort's own default one is created); a
    new database starts as a copy of an empty migrated one (``_empty_database``)."""
    db = sqlite_file(uri)
    if db is None:
        return
    if uri == default_uri():
        db.parent.mkdir(parents=True, exist_ok=True)
    elif not db.parent.is_dir():
        raise DocsortError(f"the registry {uri}: folder {db.parent} does not exist")
    if db.exists() and not db.is_file():
        raise DocsortError(f"the registry {uri}: {db} is not a database file")
    if not db.exists():
        _start_from_empty(db)


def _start_from_empty(db: Path) -> None:
    """Copy the cache's empty migrated database to ``db`` (which does not exist yet): MLflow
    creates a database by running its 60-odd migrations, 4-8 s on 2 cores, once per MLflow
    version here instead of once per registry. Its default experiment's artifacts are pointed
    beside ``db``, as for every docsort experiment; the copy appears whole or not at all."""
    template = _empty_database()
    temp = db.with_name(f".{db.name}.{os.getpid()}.tmp")
    try:
        shutil.copyfile(template, temp)
        folder = (db.resolve().parent / ARTIFACTS_NAME / "0").as_posix()
        now = int(time.time() * 1000)
        with contextlib.closing(sqlite3.connect(temp)) as connection, connection:
            connection.execute(
                "UPDATE experiments SET artifact_location = ?, creation_time = ?, "
                "last_update_time = ? WHERE experiment_id = 0",
                (folder, now, now),
            )
        with contextlib.suppress(FileExistsError):  # made by another process meanwhile
            os.link(temp, db)
    finally:
        temp.unlink(missing_ok=True)


def _empty_database() -> Path:
    from docsort import cache

    module = mlflow()

    def build(folder: Path) -> None:
        uri = f"sqlite:///{folder / DB_NAME}"
        module.MlflowClient(uri, uri).search_experiments()  # creates and migrates it

    key = f"empty-db/mlflow-{module.__version__}"
    return cache.entry("registry", key, {"mlflow": module.__version__}, build) / DB_NAME


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
