"""Prometheus metrics, one registry per app (two apps in one test process do not collide).

With ``--workers N`` every worker process writes its numbers to files under
``PROMETHEUS_MULTIPROC_DIR`` (prometheus-client's multiprocess mode, set before the workers
start) and a scrape of any worker reads all of them: counters, histograms, the queue depth and
the redaction counts are summed over the workers; the drift gauges are those of the worker
that answered the scrape (each worker watches its own window of traffic, as GET /v1/drift)."""

from __future__ import annotations

import os
import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.multiprocess import MultiProcessCollector


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "docsort_requests", "HTTP requests by route, method and status",
            ["route", "method", "status"], registry=self.registry,
        )  # fmt: skip
        self.errors = Counter(
            "docsort_request_errors", "HTTP answers with status 400 or more",
            ["route", "status"], registry=self.registry,
        )  # fmt: skip
        self.latency = Histogram(
            "docsort_request_seconds", "Time to answer a request", ["route"],
            registry=self.registry,
        )  # fmt: skip
        self.batch_size = Histogram(
            "docsort_batch_size", "Documents per model call",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256), registry=self.registry,
        )  # fmt: skip
        self.batch_requests = Histogram(
            "docsort_batch_requests", "Requests answered by one model call (dynamic batching)",
            buckets=(1, 2, 4, 8, 16, 32, 64), registry=self.registry,
        )  # fmt: skip
        self.queue_depth = Gauge(
            "docsort_queue_depth",
            "Classify requests accepted and not answered yet (queued or in the model call)",
            registry=self.registry, multiprocess_mode="livesum",
        )  # fmt: skip
        self.stages = Counter(
            "docsort_predictions_by_stage", "Predictions by the cascade stage that answered",
            ["stage"], registry=self.registry,
        )  # fmt: skip
        self.feedback = Counter(
            "docsort_feedback", "Feedback rows stored (replays not counted)",
            registry=self.registry,
        )  # fmt: skip

        self.drift_psi = Gauge(
            "docsort_drift_psi", "Population stability index of the last served predictions "
            "against the drift reference (confidence, labels, stages)", ["signal"],
            registry=self.registry, multiprocess_mode="livemostrecent",
        )  # fmt: skip
        self.drift_ks_pvalue = Gauge(
            "docsort_drift_ks_pvalue", "Kolmogorov-Smirnov p-value of the top probabilities "
            "against the reference's", registry=self.registry, multiprocess_mode="livemostrecent",
        )  # fmt: skip
        self.drift_rows = Gauge(
            "docsort_drift_window_rows", "Predictions in the drift window",
            registry=self.registry, multiprocess_mode="livemostrecent",
        )  # fmt: skip
        self.drift_review = Gauge(
            "docsort_drift_escalated_share", "A cascade's share escalated (or sent to people) "
            "in the drift window", registry=self.registry, multiprocess_mode="livemostrecent",
        )  # fmt: skip
        self.redacted = Gauge(
            "docsort_redacted", "Personal data redacted from texts before they were stored, by "
            "type, since the server started", ["entity"], registry=self.registry,
            multiprocess_mode="livesum",
        )  # fmt: skip
        self.drifted = Gauge(
            "docsort_drifted", "1 when a drift signal is past its threshold, else 0",
            registry=self.registry, multiprocess_mode="livemostrecent",
        )  # fmt: skip

    def exposition(self) -> CollectorRegistry:
        """What a scrape shows: this app's registry, or with worker processes every worker's
        files (a fresh collector per scrape, as prometheus-client's multiprocess mode asks)."""
        if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            return self.registry
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return registry

    def observe_drift(self, report: dict[str, Any]) -> None:
        """The drift report's numbers as gauges (set when /metrics is scraped)."""
        self.drift_rows.set(report["rows"])
        if report.get("drifted") is None:
            return
        self.drifted.set(1 if report["drifted"] else 0)
        self.drift_ks_pvalue.set(report["confidence"]["ks_pvalue"])
        for signal in ("confidence", "labels", "stages"):
            if report.get(signal):
                self.drift_psi.labels(signal).set(report[signal]["psi"])
        if report.get("review"):
            self.drift_review.set(report["review"]["share"])

    def requests_by_route(self, prefix: str) -> dict[str, int]:
        """Requests answered since start, summed over methods and statuses, per route."""
        counts: dict[str, int] = {}
        for metric in self.exposition().collect():
            if metric.name != "docsort_requests":
                continue
            for sample in metric.samples:
                route = sample.labels.get("route", "")
                if sample.name.endswith("_total") and route.startswith(prefix):
                    counts[route] = counts.get(route, 0) + int(sample.value)
        return counts

    def observe_redacted(self, counts: dict[str, int]) -> None:
        """The store's redaction counts, set after each write (so every worker's are current
        when another worker answers a scrape)."""
        for entity, n in list(counts.items()):
            self.redacted.labels(entity).set(n)

    def observe_batch(self, documents: int, requests: int) -> None:
        self.batch_size.observe(documents)
        self.batch_requests.observe(requests)


class MetricsMiddleware:
    """Counts every answer, the 413s of the body limit and the 500s of a crash included.
    Routes outside ``routes`` are counted as ``other``, so a scan of random paths cannot
    grow the label set without bound."""

    def __init__(self, app: Any, metrics: Metrics, routes: set[str]) -> None:
        self.app, self.metrics, self.routes = app, metrics, routes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        start = time.perf_counter()

        async def send_status(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        except Exception:
            status = 500
            raise
        finally:
            route = scope["path"] if scope["path"] in self.routes else "other"
            self.metrics.requests.labels(route, scope["method"], str(status)).inc()
            if status >= 400:
                self.metrics.errors.labels(route, str(status)).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - start)
