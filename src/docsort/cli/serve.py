"""``docsort serve``: the REST service over one saved model (needs the ``serve`` extra)."""

from __future__ import annotations

import typer

from docsort.cli.app import DEVICE_HELP, THREADS_HELP, err_console, runtime_options
from docsort.errors import DocsortError
from docsort.progress import status

DEFAULT_STORE = "sqlite:///docsort-serve.sqlite"


def serve(
    model_dir: str = typer.Argument(..., help="A saved model directory."),
    host: str = typer.Option(
        "127.0.0.1", "--host", help="Address to listen on: loopback only until API keys exist."
    ),
    port: int = typer.Option(8000, "--port", help="TCP port."),
    store: str = typer.Option(
        DEFAULT_STORE,
        "--store",
        help="SQLAlchemy URL of the prediction and feedback store (none: no store, no "
        "feedback). Default: a SQLite file in the current folder.",
    ),
    log_text: str = typer.Option(
        "hash", "--log-text", help="What a logged prediction keeps of its text: off, hash, full."
    ),
    device: str | None = typer.Option(None, "--device", help=DEVICE_HELP),
    threads: int | None = typer.Option(None, "--threads", help=THREADS_HELP),
) -> None:
    """Serve a model over HTTP: /v1/classify, /v1/feedback, /v1/models, /healthz, /readyz,
    /metrics, and the OpenAPI schema at /docs."""
    try:
        from docsort import serve as service  # the serve extra: fastapi, sqlalchemy, ...
    except ImportError as exc:
        raise DocsortError(
            f"docsort serve needs the serve extra ({exc.name} is missing): "
            "pip install 'docsort[serve]'"
        ) from None
    service.check_host(host)  # before the model loads: a refused --host costs nothing
    if not 0 < port < 65536:
        raise DocsortError(f"--port must be between 1 and 65535, not {port}")
    with status(f"loading {model_dir}"):
        app = service.create_app(
            model_dir,
            None if store.lower() == "none" else store,
            log_text=log_text,
            runtime=runtime_options(device, threads),
        )
    err_console.print(
        f"serving {model_dir} on http://{host}:{port} (no API keys: loopback only)",
        highlight=False,
        soft_wrap=True,
    )
    service.run(app, host, port)
