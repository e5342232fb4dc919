"""``docsort serve``: a REST service over one saved model (FastAPI + uvicorn), with a
prediction and feedback store. An entry point like the CLI: it builds ``docsort.api``
requests and imports nothing else of docsort but ``docsort.errors`` (a layering test checks).
"""

from __future__ import annotations

from typing import Any

from docsort.serve.app import create_app
from docsort.serve.limits import check_host

__all__ = ["check_host", "create_app", "run"]


def run(app: Any, host: str, port: int) -> None:
    """Serve ``app`` until interrupted; loopback only until API keys exist."""
    import uvicorn

    check_host(host)
    uvicorn.run(app, host=host, port=port, log_level="info", access_log=False)
