"""``docsort serve``: a REST service over one saved model (FastAPI + uvicorn), with a
prediction and feedback store. An entry point like the CLI: it builds ``docsort.api``
requests and imports nothing else of docsort but ``docsort.errors`` (a layering test checks).
"""

from __future__ import annotations

from typing import Any

from docsort.serve.app import create_app
from docsort.serve.limits import check_host
from docsort.serve.workers import MAX_WORKERS, run_workers

__all__ = ["MAX_WORKERS", "check_host", "create_app", "run", "run_workers"]


def run(app: Any, host: str, port: int, shutdown_timeout: float | None = 30.0) -> None:
    """Serve ``app`` until SIGTERM or Ctrl-C; loopback only without API keys. On SIGTERM
    uvicorn stops accepting, lets open requests finish (at most ``shutdown_timeout``
    seconds), then the app's shutdown answers what is still queued for the model."""
    import uvicorn

    check_host(host, api_keys=getattr(app.state, "keys", None) is not None)
    uvicorn.run(app, host=host, port=port, log_level="info", access_log=False,
                timeout_graceful_shutdown=shutdown_timeout)  # fmt: skip
