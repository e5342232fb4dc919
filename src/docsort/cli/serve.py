"""``docsort serve``: the REST service over one saved model (needs the ``serve`` extra)."""

from __future__ import annotations

from pathlib import Path

import typer

from docsort.api.redaction import redact_spec
from docsort.cli.app import DEVICE_HELP, THREADS_HELP, err_console, runtime_options
from docsort.cli.ingest import REDACT_ENGINE_HELP, REDACT_ENTITIES_HELP
from docsort.errors import DocsortError
from docsort.progress import status

DEFAULT_STORE = "sqlite:///docsort-serve.sqlite"


def serve(
    model_dir: str = typer.Argument(
        ..., help="A saved model directory, or a registry reference (models:/NAME@champion)."
    ),
    host: str = typer.Option(
        "127.0.0.1",
        "--host",
        help="Address to listen on. Without --api-keys only a loopback address (127.0.0.1, ::1,"
        " localhost).",
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
    api_keys: Path | None = typer.Option(
        None,
        "--api-keys",
        help="Keys file from 'docsort keys create': every /v1 route then needs "
        "Authorization: Bearer KEY (/healthz, /readyz, /metrics stay open). Re-read when it "
        "changes, so a revoked key is refused at once.",
    ),
    max_batch: int = typer.Option(
        32, "--max-batch", help="Documents per model call when concurrent requests are joined."
    ),
    max_wait_ms: float = typer.Option(
        5.0,
        "--max-wait-ms",
        help="How long the oldest waiting request may wait for others to join its model call.",
    ),
    queue_size: int = typer.Option(
        256,
        "--queue-size",
        help="Classify requests that may wait for the model; beyond it: 503 with Retry-After.",
    ),
    no_batching: bool = typer.Option(
        False, "--no-batching", help="One model call per request (same queue and limits)."
    ),
    shutdown_timeout: float = typer.Option(
        30.0,
        "--shutdown-timeout",
        help="On SIGTERM or Ctrl-C: seconds open requests get to finish before they are cut.",
    ),
    watch_seconds: float = typer.Option(
        30.0,
        "--watch-seconds",
        help="models:/NAME@ALIAS: how often to ask the registry whether "
        "the alias moved (then the new version is swapped in); 0: never.",
    ),
    drift_reference: str | None = typer.Option(
        None,
        "--drift-reference",
        help="Rows like the ones the model should see (e.g. its test set): traffic is "
        "compared with the model's predictions on them (GET /v1/drift, /metrics). Default: "
        "the first --drift-window predictions served.",
    ),
    redact: str | None = typer.Option(
        None,
        "--redact",
        help="Take personal data out of every text before the store keeps it (logged "
        "requests, feedback texts and comments): replace, mask, hash or drop; none: never. "
        "Default: as the model's training rows were redacted (docsort train --redact), else "
        "never. The model still reads the text as it was trained to.",
    ),
    redact_entities: str | None = typer.Option(
        None, "--redact-entities", help=REDACT_ENTITIES_HELP
    ),
    redact_engine: str = typer.Option("presidio", "--redact-engine", help=REDACT_ENGINE_HELP),
    drift_window: int = typer.Option(
        500, "--drift-window", help="Drift compares the last N predictions served (50 or more)."
    ),
    workers: int = typer.Option(
        1,
        "--workers",
        help="Worker processes behind the port, each with its own copy of the model and its "
        "own batching (the store, keys and /metrics are shared).",
    ),
    device: str | None = typer.Option(None, "--device", help=DEVICE_HELP),
    threads: int | None = typer.Option(None, "--threads", help=THREADS_HELP),
) -> None:
    """Serve a model over HTTP: /v1/classify, /v1/feedback, /v1/models, /healthz, /readyz,
    /metrics, and the OpenAPI schema at /docs. Concurrent classify requests share model calls
    (dynamic batching); SIGTERM lets every accepted request finish."""
    try:
        from docsort import serve as service  # the serve extra: fastapi, sqlalchemy, ...
        from docsort.serve.batching import BatchSettings
    except ImportError as exc:
        raise DocsortError(
            f"docsort serve needs the serve extra ({exc.name} is missing): "
            "pip install 'docsort[serve]'"
        ) from None
    # before the model loads: a refused --host or option costs nothing
    service.check_host(host, api_keys=api_keys is not None)
    if not 0 < port < 65536:
        raise DocsortError(f"--port must be between 1 and 65535, not {port}")
    if not 1 <= workers <= service.MAX_WORKERS:
        raise DocsortError(f"--workers must be 1 to {service.MAX_WORKERS}, not {workers}")
    if drift_window < 50:
        raise DocsortError(f"--drift-window must be 50 or more, not {drift_window}")
    if watch_seconds < 0:
        raise DocsortError(f"--watch-seconds must be 0 (never) or more, not {watch_seconds:g}")
    if not 0 <= shutdown_timeout <= 3600:
        raise DocsortError(
            f"--shutdown-timeout must be 0 to 3600 seconds, not {shutdown_timeout:g}"
        )
    redaction = (
        False
        if redact is not None and redact.lower() == "none"
        else redact_spec(redact, redact_entities, redact_engine)
    )
    batching = BatchSettings(max_batch, max_wait_ms, queue_size, batching=not no_batching)
    settings = dict(
        model=model_dir,
        store_url=None if store.lower() == "none" else store,
        log_text=log_text,
        runtime=runtime_options(device, threads),
        api_keys=api_keys,
        batching=batching,
        watch_seconds=watch_seconds,
        drift_reference=drift_reference,
        drift_window=drift_window,
        redact=redaction,
    )
    with status(f"loading {model_dir}"):
        app = service.create_app(**settings)  # with workers too: every problem shows here
    if api_keys is None:
        access = "no API keys: loopback only"
    else:
        from docsort.serve.auth import loose_permissions

        if loose_permissions(api_keys):
            err_console.print(f"warning: {api_keys} is readable by others: chmod 600 {api_keys}",
                              highlight=False, soft_wrap=True)  # fmt: skip
        access = (
            f"API keys from {api_keys} ({app.state.keys.active()} active) required on /v1; "
            "/healthz, /readyz and /metrics are open"
        )
    batches = (
        "one model call per request"
        if no_batching
        else f"batching up to {max_batch} documents, {max_wait_ms:g} ms"
    )
    shown = f"[{host}]" if ":" in host else host
    processes = f"; {workers} workers" if workers > 1 else ""
    err_console.print(
        f"serving {model_dir} on http://{shown}:{port} ({access}; {batches}, queue {queue_size}"
        f"{processes})",
        highlight=False,
        soft_wrap=True,
    )
    if workers == 1:
        service.run(app, host, port, shutdown_timeout=shutdown_timeout)
        return
    del app  # each worker loads its own model
    service.run_workers(settings, host, port, workers, shutdown_timeout=shutdown_timeout)
