"""The FastAPI app: one loaded model, the same ``docsort.api`` request as ``docsort predict``,
so the service answers with the CLI's numbers; every 4xx is one line saying what to fix."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException

from docsort import api
from docsort.errors import DocsortError
from docsort.serve.limits import MAX_BODY_BYTES, BodyLimit, one_line
from docsort.serve.metrics import Metrics, MetricsMiddleware
from docsort.serve.schemas import (
    ClassifyAnswer,
    ClassifyRequest,
    FeedbackAnswer,
    FeedbackRequest,
    Health,
    ModelInfo,
    ModelList,
    Problem,
)
from docsort.serve.store import KeyReused, Store, StoreUnavailable, UnknownPrediction


def _problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    why = {
        400: "The body is not valid JSON",
        404: "The prediction id is not in the store",
        409: "The idempotency key was used for other feedback",
        413: "The body is larger than the limit (refused before it is read)",
        422: "A field has the wrong type or size, or the model cannot read the input",
        503: "Not ready: the store is unreachable or not configured",
    }
    return {code: {"model": Problem, "description": why[code]} for code in codes}


class Service:
    """The loaded model, its store, and a lock: one model call at a time (dynamic batching,
    which gathers concurrent requests into one call, is the next slice)."""

    def __init__(self, model: Any, name: str, store: Store | None) -> None:
        self.model = model
        self.store = store
        self.lock = threading.Lock()
        version = getattr(model, "train_fingerprint_", None) or "unversioned"
        self.info = ModelInfo(name=name, kind=model.kind, version=str(version)[:12])

    def classify(self, body: ClassifyRequest) -> list[dict[str, Any]]:
        inputs = body.inputs()
        if self.model.capabilities().scores and body.records is None:
            columns = ", ".join(_trained_columns(self.model))
            raise DocsortError(f"this model scores pairs: send records with {columns}")
        start = time.perf_counter()
        request = api.PredictRequest(model=self.model, data=inputs, top_k=body.top_k)
        with self.lock:
            rows = api.run_predict(request).rows
        latency_ms = (time.perf_counter() - start) * 1000
        if len(rows) != len(inputs):  # read_rows skips records with empty text
            raise DocsortError("every record needs a non-empty text in the trained columns")
        if self.store is None:
            ids = [uuid.uuid4().hex for _ in rows]
        else:
            ids = self.store.add_predictions(inputs, rows, (self.info.name, self.info.version),
                                             latency_ms)  # fmt: skip
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
            raise DocsortError(
                f"label {unknown[0]!r} is unknown to this model, which knows {shown}"
            )


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
) -> FastAPI:
    """Load ``model`` once and open the store (migrating it) before the port is bound, so a
    wrong model dir or database URL fails at start, in one line, not on the first request."""
    store = None if store_url is None else Store(store_url, log_text)
    service = Service(api.open_model(model, runtime), Path(model).resolve().name, store)
    metrics = Metrics()
    app = FastAPI(
        title="docsort",
        summary="Classify documents with a saved docsort model and collect feedback.",
    )
    app.state.service = service

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
        return _problem(exc.status_code, str(exc.detail))

    for error, status in ((UnknownPrediction, 404), (KeyReused, 409), (StoreUnavailable, 503),
                          (DocsortError, 422)):  # fmt: skip
        app.add_exception_handler(error, _answer_with(status))

    @app.post("/v1/classify", response_model=ClassifyAnswer, response_model_exclude_none=True,
              responses=_problems(400, 413, 422, 503))  # fmt: skip
    def classify(body: ClassifyRequest) -> dict[str, Any]:
        """Labels (or a pair's score) for one text, several, or records of the trained columns:
        each prediction as ``docsort predict`` writes it, plus its id."""
        predictions = service.classify(body)
        metrics.batch_size.observe(len(predictions))
        for row in predictions:
            if "stage" in row:
                metrics.stages.labels(row["stage"]).inc()
        return {"model": service.info, "predictions": predictions}

    @app.post("/v1/feedback", status_code=201, response_model=FeedbackAnswer,
              responses={200: {"model": FeedbackAnswer,
                               "description": "This idempotency key was stored before: "
                                              "the first row's id, nothing new written"},
                         **_problems(400, 404, 409, 413, 422, 503)})  # fmt: skip
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
        if stored.replayed:
            response.status_code = 200
        else:
            metrics.feedback.inc()
        return FeedbackAnswer(id=stored.id, prediction_id=body.prediction_id,
                              replayed=stored.replayed)  # fmt: skip

    @app.get("/v1/models", response_model=ModelList)
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
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    routes = {"/v1/classify", "/v1/feedback", "/v1/models", "/healthz", "/readyz", "/metrics"}
    app.add_middleware(BodyLimit, limit=max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=metrics, routes=routes)  # outermost: counts 413s
    return app


def _problem(status: int, reason: str) -> JSONResponse:
    return JSONResponse({"detail": one_line(reason)}, status_code=status)


def _answer_with(status: int) -> Any:
    async def handler(_request: Request, exc: Exception) -> JSONResponse:
        return _problem(status, str(exc))

    return handler
