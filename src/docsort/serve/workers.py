"""``docsort serve --workers N``: N uvicorn worker processes behind one port.

Each worker is a fresh process that builds the same app from the same settings (the parent
has built it once first, so a wrong model dir, keys file or store URL fails in one line before
any worker starts, and the store's migrations have run once). Every worker loads its own copy
of the model and batches its own requests; the store, the keys file and the registry alias are
shared through what they already are (a database, a file, MLflow). Prometheus metrics use
prometheus-client's multiprocess mode, so /metrics adds up every worker's counts whichever
worker answers the scrape.

The settings reach the workers as a pickle in a private temporary folder (mode 0700, removed
at exit) named by an environment variable, because uvicorn starts workers from an import
string, not from an app object.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

from docsort.serve.app import create_app
from docsort.serve.limits import check_host

SETTINGS = "DOCSORT_SERVE_SETTINGS"  # the path of the pickled create_app arguments
MAX_WORKERS = 64


def run_workers(
    settings: dict[str, Any], host: str, port: int, workers: int, shutdown_timeout: float = 30.0
) -> None:
    """Serve ``create_app(**settings)`` from ``workers`` processes until SIGTERM or Ctrl-C
    (uvicorn passes the signal to each worker, which lets its open requests finish)."""
    import uvicorn

    check_host(host, api_keys=settings.get("api_keys") is not None)
    with tempfile.TemporaryDirectory(prefix="docsort-serve-") as state:
        metrics = Path(state) / "metrics"
        metrics.mkdir()
        path = Path(state) / "settings.pickle"
        path.write_bytes(pickle.dumps(settings))
        os.environ[SETTINGS] = str(path)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics)
        uvicorn.run(
            "docsort.serve.workers:app_from_settings",
            factory=True,
            workers=workers,
            host=host,
            port=port,
            log_level="info",
            access_log=False,
            timeout_graceful_shutdown=shutdown_timeout,
        )


def app_from_settings() -> Any:
    """In a worker: the app the parent checked, built again from its settings."""
    with open(os.environ[SETTINGS], "rb") as settings:
        return create_app(**pickle.load(settings))
