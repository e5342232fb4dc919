"""The FastAPI app: one loaded model, the same ``docsort.api`` request as ``docsort predict``,
so the service answers with the CLI's numbers; every 4xx is one line saying what to fix.

Classify requests go through the batcher (``batching.py``): gathered into one model call in a
worker thread, with a bounded queue. With ``api_keys`` every ``/v1`` path needs a bearer key
(``auth.py``), checked before the body is read."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import uuid
from collections.abc import AsyncIterator, Hashable, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Query, Request, Response, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.security import HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from docsort import api
from docsort.api.redaction import loaded_redactor, trained_redaction
from docsort.errors import DocsortError
from docsort.serve.auth import AuthMissing, AuthRefused, KeyRing, bearer_token
from docsort.serve.batching import Batcher, BatchSettings, QueueFull
from docsort.serve.drift import DEFAULT_WINDOW as DRIFT_WINDOW
from docsort.serve.drift import DriftMonitor, monitor_for
from docsort.serve.limits import (
    MAX_BODY_BYTES,
    MAX_EXTRACTIONS,
    MAX_UPLOAD_BYTES,
    BodyLimit,
    one_line,
)
from docsort.serve.metrics import Metrics, MetricsMiddleware
from docsort.serve.page import add_page
from docsort.serve.registry_watch import AliasWatch
from docsort.serve.schemas import (
    ClassifyAnswer,
    ClassifyRequest,
    Drift,
    Extracted,
    FeedbackAnswer,
    FeedbackRequest,
    Health,
    ModelInfo,
    ModelList,
    Problem,
    ReviewItem,
    ReviewQueue,
    Traffic,
)
from docsort.serve.store import KeyReused, Store, StoreUnavailable, UnknownPrediction


def _problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    why = {
        400: "The body is not valid JSON",
        404: "The prediction id is not in the store",
        409: "The idempotency key was used for other feedback",
        413: "The body is larger than the limit (refused before it is read)",
        401: "No API key: send Authorization: Bearer KEY (a WWW-Authenticate header says so)",
        403: "The API key is unknown or revoked",
        422: "A field has the wrong type or size, or the model cannot read the input",
        503: "Not ready: the store is unreachable or not configured",
    }
    return {code: {"model": Problem, "description": why[code]} for code in codes}


class Service:
    """The loaded model, its store, and the batcher whose one worker thread runs the model
    (the lock is held around each call, so the model can be swapped between calls)."""

    def __init__(
        self, model: Any, name: str, store: Store | None, batching: BatchSettings, metrics: Metrics
    ) -> None:
        self.model = model
        self.store = store
        self.metrics = metrics
        self.lock = threading.Lock()
        version = getattr(model, "train_fingerprint_", None) or "unversioned"
        self.info = ModelInfo(name=name, kind=model.kind, version=str(version)[:12])
        self.batcher = Batcher(self._predict, batching, observe=metrics.observe_batch,
                               depth=metrics.queue_depth.set)  # fmt: skip
        self.drift: DriftMonitor | None = None  # set by create_app, and again at a swap
        self.new_drift = lambda model: None  # a monitor for a model swapped in

    def _predict(self, inputs: Sequence[Any], key: Hashable) -> list[dict[str, Any]]:
        """In the model thread: the rows of ``docsort predict`` for ``inputs``."""
        top_k, explain = key[0], key[1]  # type: ignore[index]
        with self.lock:
            request = api.PredictRequest(
                model=self.model, data=list(inputs), top_k=top_k, explain=explain
            )
            return api.run_predict(request).rows

    async def classify(self, body: ClassifyRequest) -> list[dict[str, Any]]:
        inputs = body.inputs()
        if self.model.capabilities().scores and body.records is None:
            columns = ", ".join(_trained_columns(self.model))
            raise DocsortError(f"this model scores pairs: send records with {columns}")
        start = time.perf_counter()
        rows = await self.batcher.submit(_read_alike(body), inputs)
        latency_ms = (time.perf_counter() - start) * 1000
        if len(rows) != len(inputs):  # read_rows skips records with empty text
            raise DocsortError("every record needs a non-empty text in the trained columns")
        if self.drift is not None:
            self.drift.observe(rows)
        if self.store is None:
            ids = [uuid.uuid4().hex for _ in rows]
        else:
            model = (self.info.name, self.info.version)
            ids = await run_in_threadpool(
                self.store.add_predictions, inputs, rows, model, latency_ms
            )
            self.metrics.observe_redacted(self.store.redacted)
        return [{"id": i, **row} for i, row in zip(ids, rows, strict=True)]

    def check_labels(self, labels: list[str] | None) -> None:
        if labels is None:
            return
        if self.model.capabilities().scores:
            raise DocsortError("this model gives scores, not labels: rate the prediction instead")
        if len(labels) > 1 and not self.model.labels_.multi_label:
            raise DocsortError("this model gives one label per text: send label, not labels")
        known = self.model.labels_.names
        unknown = [label for label in labels if label not in known]
        if unknown:
            shown = ", ".join(known[:10]) + (", …" if len(known) > 10 else "")
            raise DocsortError(  # the label cut short, so the reason is never cut off
                f"label {_cut(unknown[0])!r} is unknown to this model, which knows {shown}"
            )


def _review_item(row: dict[str, Any]) -> ReviewItem:
    text, record = row["text"], None
    if text is not None and row["is_record"]:
        import json

        record = {str(k): str(v) for k, v in json.loads(text).items()}
        text = "\n".join(record.values())
    created = row["created"]
    if created.tzinfo is None:  # SQLite gives naive datetimes back; they were stored as UTC
        created = created.replace(tzinfo=timezone.utc)
    return ReviewItem(
        prediction_id=row["id"], created=created.isoformat(timespec="seconds"), text=text,
        record=record, label=row["label"], labels=row["labels"], confidence=row["confidence"],
        probabilities=row["probabilities"], stage=row["stage"],
        model_version=row["model_version"],
    )  # fmt: skip


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 6) if whole else None


def _cut(text: str, at: int = 40) -> str:
    return text if len(text) <= at else text[: at - 1] + "…"


def _read_alike(body: ClassifyRequest) -> Hashable:
    """Requests with equal keys are read alike and may share a model call: the same top_k
    and explain, and plain texts, or records that all have the same columns (a request whose
    records differ runs alone, as a table with missing cells would be read otherwise)."""
    if body.records is None:
        return (body.top_k, body.explain, "texts")
    columns = {tuple(sorted(record)) for record in body.records}
    return (body.top_k, body.explain, columns.pop() if len(columns) == 1 else object())


def _trained_columns(model: Any) -> list[str]:
    spec = getattr(model, "input_spec_", {}) or {}
    text = spec.get("text") or "text"
    columns = [text] if isinstance(text, str) else list(text)
    return columns + [spec[c] for c in ("pair", "context") if spec.get(c)]


def create_app(
    model: str | Path,
    store_url: str | None = None,
    log_text: str = "hash",
    runtime: api.Runtime | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
    api_keys: str | Path | None = None,
    batching: BatchSettings | None = None,
    watch_seconds: float = 30.0,
    drift_reference: str | None = None,
    drift_window: int = DRIFT_WINDOW,
    redact: Any = None,
) -> FastAPI:
    """Load ``model`` once, read the keys file and open the store (migrating it) before the
    port is bound, so a wrong model dir, keys file or database URL fails at start, in one
    line, not on the first request. Traffic is compared with ``drift_reference`` rows as the
    model predicts them (default: the first ``drift_window`` predictions served). Stored texts
    are redacted with ``redact`` (a ``RedactSpec``; ``None``: as the model's training rows
    were, if they were; ``False``: never)."""
    keys = None if api_keys is None else KeyRing(api_keys)
    loaded = api.open_model(model, runtime)
    spec = trained_redaction(loaded) if redact is None else (redact or None)
    redactor = None
    if spec is not None and store_url is not None:
        redactor = loaded_redactor(spec)  # at start: a missing NLP model fails here
    store = None if store_url is None else Store(store_url, log_text, redactor=redactor)
    metrics = Metrics()
    service = Service(loaded, Path(model).resolve().name, store, batching or BatchSettings(),
                      metrics)  # fmt: skip
    service.new_drift = lambda loaded: monitor_for(loaded, drift_reference, drift_window)
    service.drift = service.new_drift(service.model)
    # models:/NAME@champion: named by its registry version, and followed when the alias moves
    watch = AliasWatch.follow(model, service, runtime, watch_seconds)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        service.batcher.start()
        if watch is not None:
            watch.start()
        yield
        if watch is not None:
            watch.stop()
        await service.batcher.close()  # uvicorn has let every open request finish by now

    app = FastAPI(
        title="docsort",
        summary="Classify documents with a saved docsort model and collect feedback.",
        lifespan=lifespan,
    )
    app.state.service = service
    app.state.keys = keys
    # with keys, /v1 routes declare the bearer scheme (and their 401/403) in the schema; the
    # check itself is KeyCheck below, which runs before the body is read
    guard = [] if keys is None else [Security(BEARER)]
    refusals = () if keys is None else (401, 403)

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return _problem(400, "the body is not valid JSON")
        first = errors[0]  # its "input" (maybe megabytes of text) is never sent back
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "body"
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        return _problem(422, f"{where}: {first.get('msg', 'invalid')}{more}")

    @app.exception_handler(HTTPException)
    async def http_error(_request: Request, exc: HTTPException) -> JSONResponse:
        return _problem(exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(QueueFull)
    async def busy(_request: Request, exc: QueueFull) -> JSONResponse:
        return _problem(503, str(exc), {"Retry-After": str(exc.retry_after)})

    for error, status in ((UnknownPrediction, 404), (KeyReused, 409), (StoreUnavailable, 503),
                          (DocsortError, 422)):  # fmt: skip
        app.add_exception_handler(error, _answer_with(status))

    classify_responses = _problems(400, *refusals, 413, 422)
    classify_responses[503] = {
        "model": Problem,
        "description": "Busy: too many requests are waiting for the model (retry after the "
        "Retry-After header's seconds), or the store is unavailable",
        "headers": {"Retry-After": {"description": "Seconds to wait before retrying",
                                    "schema": {"type": "integer"}}},
    }  # fmt: skip

    @app.post("/v1/classify", response_model=ClassifyAnswer, response_model_exclude_none=True,
              responses=classify_responses, dependencies=guard)  # fmt: skip
    async def classify(body: ClassifyRequest) -> dict[str, Any]:
        """Labels (or a pair's score) for one text, several, or records of the trained columns:
        each prediction as ``docsort predict`` writes it, plus its id. Concurrent requests
        share model calls (dynamic batching) without changing any number."""
        predictions = await service.classify(body)
        for row in predictions:
            if "stage" in row:
                metrics.stages.labels(row["stage"]).inc()
        return {"model": service.info, "predictions": predictions}

    @app.post("/v1/feedback", status_code=201, response_model=FeedbackAnswer,
              responses={200: {"model": FeedbackAnswer,
                               "description": "This idempotency key was stored before: "
                                              "the first row's id, nothing new written"},
                         **_problems(400, *refusals, 404, 409, 413, 422, 503)},
              dependencies=guard)  # fmt: skip
    def feedback(body: FeedbackRequest, response: Response) -> FeedbackAnswer:
        """Store a correction or a rating; 201 once it is committed to disk."""
        if service.store is None:
            raise StoreUnavailable("no store configured: start the server with --store URL")
        labels = body.given_labels()
        service.check_labels(labels)
        stored = service.store.add_feedback(
            body.idempotency_key, prediction_id=body.prediction_id, text=body.text,
            labels=labels, rating=body.rating, comment=body.comment,
        )  # fmt: skip
        metrics.observe_redacted(service.store.redacted)
        if stored.replayed:
            response.status_code = 200
        else:
            metrics.feedback.inc()
        return FeedbackAnswer(id=stored.id, prediction_id=body.prediction_id,
                              replayed=stored.replayed)  # fmt: skip

    extracting = asyncio.Semaphore(MAX_EXTRACTIONS)
    upload = {"content": {"application/octet-stream": {"schema": {"type": "string",
                                                                  "format": "binary"}}},
              "required": True, "description": "The file's bytes, as they are"}  # fmt: skip

    @app.post("/v1/extract", response_model=Extracted, dependencies=guard,
              responses=_problems(*refusals, 413, 422),
              openapi_extra={"requestBody": upload})  # fmt: skip
    async def extract(
        request: Request,
        name: Annotated[
            str,
            Query(min_length=1, max_length=255,
                  description="The file's name (its type is read from its content)"),
        ] = "upload",
    ) -> Extracted:  # fmt: skip
        """The text of an uploaded file (PDF, Word, PowerPoint, Excel, HTML, e-mail, ...), to
        classify next: extracted as ``docsort ingest`` extracts a file, in a worker process
        with time, memory and page limits. Nothing is stored."""
        from docsort.api.ingest import extract_upload  # pdf and office readers: only when asked

        data = await request.body()
        async with extracting:  # each runs a worker process: a burst of uploads waits here
            found = await run_in_threadpool(extract_upload, data, name)
        return Extracted(text=found.text, type=found.type or "unknown", pages=found.pages,
                         language=found.language or None, notes=found.notes)  # fmt: skip

    @app.get("/v1/models", response_model=ModelList, responses=_problems(*refusals),
             dependencies=guard)  # fmt: skip
    def models() -> ModelList:
        model = service.model
        caps = model.capabilities()
        entry = {
            **service.info.model_dump(),
            "output": caps.output,
            "multi_label": bool(model.labels_.multi_label) and not caps.scores,
            "labels": None if caps.scores else list(model.labels_.names),
            "input": _trained_columns(model),
        }
        return ModelList(models=[entry])

    @app.get("/v1/traffic", response_model=Traffic, dependencies=guard,
             responses=_problems(*refusals, 422, 503))  # fmt: skip
    def traffic(
        days: Annotated[float, Query(gt=0, le=366, description="The window: the last N days")] = 7,
        bucket: Annotated[
            Literal["hour", "day"] | None,
            Query(description="The series' step (default: hour for 2 days or less, else day)"),
        ] = None,
    ) -> Traffic:
        """Recent traffic from the store, for the web page: predictions by the cascade stage
        that answered, feedback, ratings, and accuracy on the corrected rows, in total and per
        hour or day; with the requests answered since the server started."""
        if service.store is None:
            raise StoreUnavailable("no store configured: start the server with --store URL")
        step = bucket or ("hour" if days <= 2 else "day")
        since = datetime.now(timezone.utc) - timedelta(days=days)
        seen = service.store.traffic(since, step)
        totals = {"predictions": 0, "feedback": 0, "corrected": 0, "correct": 0}
        stages: dict[str, int] = {}
        for entry in seen["series"]:
            entry["accuracy"] = _share(entry["correct"], entry["corrected"])
            for name in totals:
                totals[name] += entry[name]
            for stage, n in entry["stages"].items():
                stages[stage] = stages.get(stage, 0) + n
        return Traffic(
            since=since.isoformat(timespec="seconds"), bucket=step, **totals, stages=stages,
            accuracy=_share(totals["correct"], totals["corrected"]),
            ratings={str(k): v for k, v in seen["ratings"].items()},
            requests=metrics.requests_by_route("/v1/"), series=seen["series"],
        )  # fmt: skip

    @app.get("/v1/review", response_model=ReviewQueue, dependencies=guard,
             responses=_problems(*refusals, 422, 503))  # fmt: skip
    def review(
        limit: Annotated[int, Query(ge=1, le=500, description="Items at most")] = 50,
        max_confidence: Annotated[
            float | None,
            Query(
                ge=0,
                le=1,
                description="Queue predictions less confident than this too "
                "(default 0.5; 0: only a cascade's human stage)",
            ),  # fmt: skip
        ] = 0.5,
    ) -> ReviewQueue:
        """The review queue, newest first: predictions a cascade sent to its human stage, or
        less confident than ``max_confidence``, with no feedback yet. Each comes with the
        model's suggestion; a correction (POST /v1/feedback) takes it off the queue."""
        if service.store is None:
            raise StoreUnavailable("no store configured: start the server with --store URL")
        human = getattr(service.model, "human_", None)
        stages = [human["name"]] if human else []
        bound = max_confidence if max_confidence else None
        rows = service.store.review_queue(stages, bound, limit)
        return ReviewQueue(stages=stages, max_confidence=bound,
                           items=[_review_item(row) for row in rows])  # fmt: skip

    @app.get("/v1/drift", response_model=Drift, dependencies=guard,
             responses=_problems(*refusals, 404))  # fmt: skip
    def drift() -> Drift:
        """The last served predictions against the drift reference: the confidence's PSI and
        KS test, the label and stage shares' PSI, and a cascade's escalated share against its
        budget (``drifted`` is null until the window holds enough predictions)."""
        if service.drift is None:
            raise UnknownPrediction("this model gives pair scores: there is no label drift")
        return Drift(**service.drift.report())

    @app.get("/healthz", response_model=Health)
    def healthz() -> Health:
        """The process is up."""
        return Health(status="ok")

    @app.get("/readyz", response_model=Health, responses={503: {"model": Health}})
    def readyz() -> Any:
        """The model is loaded and the store (if any) answers."""
        store = None if service.store is None else service.store.ping()
        health = Health(status="ready" if store is not False else "store unreachable", store=store)
        if store is False:
            return JSONResponse(health.model_dump(), status_code=503)
        return health

    @app.get("/metrics", response_class=PlainTextResponse,
             responses={200: {"content": {CONTENT_TYPE_LATEST: {}},
                              "description": "Prometheus text format"}})  # fmt: skip
    def prometheus() -> Response:
        if service.store is not None:
            metrics.observe_redacted(service.store.redacted)
        if service.drift is not None:
            metrics.observe_drift(service.drift.report())
        return Response(generate_latest(metrics.exposition()), media_type=CONTENT_TYPE_LATEST)

    routes = {"/v1/classify", "/v1/feedback", "/v1/extract", "/v1/models", "/v1/traffic",
              "/v1/drift", "/v1/review", "/healthz", "/readyz",
              "/metrics", *add_page(app)}  # fmt: skip
    app.add_middleware(BodyLimit, limit=max_body_bytes,
                       paths={"/v1/extract": max(max_body_bytes, MAX_UPLOAD_BYTES)})  # fmt: skip
    if keys is not None:
        app.add_middleware(KeyCheck, keys=keys)  # before the body is read or limited
    app.add_middleware(MetricsMiddleware, metrics=metrics, routes=routes)  # outermost: counts 413s
    return app


# declared on the /v1 routes for the OpenAPI schema (a security scheme named bearer); it checks
# nothing itself: KeyCheck does, for every /v1 path, before FastAPI reads the body
BEARER = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="An API key from `docsort keys create`: `Authorization: Bearer dsk_...`",
)


class KeyCheck:
    """Every ``/v1`` path needs a valid key when the server has keys: 401 (with
    ``WWW-Authenticate``) without one or with a malformed header, 403 for an unknown or
    revoked key. The body is not read first, so a client without a key costs no parsing."""

    def __init__(self, app: Any, keys: KeyRing) -> None:
        self.app, self.keys = app, keys

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not (path == "/v1" or path.startswith("/v1/")):
            await self.app(scope, receive, send)
            return
        header = _header(scope, b"authorization")
        try:
            token = bearer_token(header)
            await run_in_threadpool(self.keys.check, token)  # scrypt: off the event loop
        except AuthMissing as exc:
            challenge = 'Bearer realm="docsort"'
            if header is not None:
                challenge += ', error="invalid_request"'
            await _send_problem(send, scope, 401, str(exc), {"WWW-Authenticate": challenge})
            return
        except AuthRefused as exc:
            await _send_problem(send, scope, 403, str(exc))
            return
        await self.app(scope, receive, send)


def _header(scope: dict, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


async def _send_problem(
    send: Any, scope: dict, status: int, reason: str, headers: dict[str, str] | None = None
) -> None:
    response = _problem(status, reason, headers)
    has_body = _header(scope, b"content-length") not in (None, "0")
    if has_body or _header(scope, b"transfer-encoding"):
        response.headers["connection"] = "close"  # the unread body is not waited for

    async def nothing() -> dict:
        return {"type": "http.disconnect"}

    await response(scope, nothing, send)


def _problem(status: int, reason: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": one_line(reason)}, status_code=status, headers=headers)


def _answer_with(status: int) -> Any:
    async def handler(_request: Request, exc: Exception) -> JSONResponse:
        return _problem(status, str(exc))

    return handler
