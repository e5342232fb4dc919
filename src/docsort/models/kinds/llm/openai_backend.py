"""Any OpenAI-compatible chat/completions endpoint: vLLM, Ollama, llama.cpp's server, hosted APIs.

One request per document through a bounded thread pool (``concurrency``). Every request has a
timeout; timeouts, connection errors, 429 and 5xx answers and malformed JSON are retried with
exponential back-off (``Retry-After`` honoured); a row that still fails is reported on its own
(``Reply.error``) while the rest of the batch goes on. Token usage comes from each response's
``usage`` (with ``prompt_tokens_details.cached_tokens`` where the server reports its prefix
cache). Scores come from the first answer token's ``top_logprobs``; a server without logprobs
is detected once and the kind falls back to JSON-constrained generation.
"""

from __future__ import annotations

import math
import os
import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any

import numpy as np

from docsort.errors import DocsortError
from docsort.models.kinds.llm.backend import Advance, Backend, Reply
from docsort.models.kinds.llm.prompt import Conversation

RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
MAX_BACKOFF = 30.0
TOP_LOGPROBS = 20  # OpenAI's maximum; llama.cpp's server and vLLM accept it too


class RequestFailed(Exception):
    """A request that failed for good (after retries, or at once for a 4xx)."""

    def __init__(self, message: str, status: int | None = None, attempts: int = 0) -> None:
        super().__init__(message)
        self.status = status
        self.attempts = attempts


class NoLogprobs(Exception):
    """The endpoint refuses or ignores ``logprobs``: score by generation instead."""


class OpenAIBackend(Backend):
    name = "openai"
    exact_scores = False

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key_env: str | None = "OPENAI_API_KEY",
        timeout: float = 60.0,
        max_retries: int = 4,
        backoff: float = 0.5,
        concurrency: int = 4,
        top_logprobs: int = TOP_LOGPROBS,
    ) -> None:
        try:
            import httpx
        except ImportError:
            raise DocsortError("the openai backend needs httpx: pip install httpx") from None
        if not base_url:
            raise DocsortError(
                "the openai backend needs base_url, e.g. http://127.0.0.1:8000/v1 "
                "(llama.cpp server, vLLM) or http://127.0.0.1:11434/v1 (Ollama)"
            )
        if timeout <= 0 or max_retries < 0 or backoff < 0 or concurrency < 1:
            raise DocsortError(
                "openai backend: timeout > 0, max_retries >= 0, backoff >= 0, concurrency >= 1"
            )
        headers = {"Content-Type": "application/json"}
        if api_key_env:
            key = os.environ.get(api_key_env)
            if key:
                headers["Authorization"] = f"Bearer {key}"
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.max_retries = max_retries
        self.backoff = backoff
        self.concurrency = concurrency
        self.top_logprobs = top_logprobs
        self.json_format: str | None = "json_schema"  # which response_format the server takes
        self.logprobs_ok: bool | None = None  # learnt from the first answer
        self._lock = threading.Lock()
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout), headers=headers, follow_redirects=True
        )
        self._sleep: Callable[[float], None] = time.sleep

    # -- one request ----------------------------------------------------------------------
    def _post(self, body: dict[str, Any]) -> tuple[dict[str, Any], int]:
        """POST with retries; the parsed answer and the number of attempts it took."""
        import httpx

        last = "no attempt"
        last_status: int | None = None
        retry_after: float | None = None
        for attempt in range(self.max_retries + 1):
            if attempt:
                self._sleep(self._delay(attempt, retry_after))
            retry_after = None
            try:
                response = self._client.post(self.url, json=body)
            except httpx.TimeoutException:
                last, last_status = f"timed out after {self._client.timeout.read}s", None
                continue
            except httpx.TransportError as exc:
                last, last_status = f"connection failed ({type(exc).__name__}: {exc})", None
                continue
            refused = _validation_error(response.status_code, response.text)
            if response.status_code in RETRY_STATUS and not refused:
                last = f"HTTP {response.status_code}: {_snippet(response.text)}"
                last_status = response.status_code
                retry_after = _retry_after(response.headers.get("retry-after"))
                continue
            if response.status_code >= 400:  # the request itself is wrong: retrying won't help
                raise RequestFailed(
                    f"HTTP {response.status_code}: {_snippet(response.text)}",
                    response.status_code,
                    attempt + 1,
                )
            try:
                data = response.json()
                _ = data["choices"][0]["message"]
            except (ValueError, KeyError, IndexError, TypeError):
                last, last_status = f"malformed answer: {_snippet(response.text)}", None
                continue
            return data, attempt + 1
        raise RequestFailed(
            f"gave up after {self.max_retries + 1} attempts: {last}",
            last_status,
            self.max_retries + 1,
        )

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        delay = min(MAX_BACKOFF, self.backoff * 2 ** (attempt - 1))
        delay += random.uniform(0, delay / 4)  # jitter: concurrent retries don't stampede
        if retry_after is not None:
            delay = max(delay, min(retry_after, MAX_BACKOFF))
        return delay

    def _body(self, conversation: Conversation, max_tokens: int) -> dict[str, Any]:
        return {
            "model": self.model,
            "messages": conversation,
            "max_tokens": max_tokens,
            "temperature": 0.0,
            "seed": 0,
        }

    # -- batches --------------------------------------------------------------------------
    def _map(
        self, work: Callable[[Conversation], Reply], items: Sequence[Conversation], advance: Advance
    ) -> list[Reply]:
        replies: list[Reply | None] = [None] * len(items)
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            futures = {pool.submit(work, item): i for i, item in enumerate(items)}
            for future in as_completed(futures):
                replies[futures[future]] = future.result()
                advance(1)
        return [r if r is not None else Reply(error="no answer") for r in replies]

    def score(
        self, conversations: Sequence[Conversation], choices: Sequence[str], advance: Advance
    ) -> list[Reply]:
        if self.logprobs_ok is False:
            raise NoLogprobs
        probed: list[Reply] = []
        # learn once whether logprobs come back: one row at a time until an answer says so
        # (a row that fails for its own reason, e.g. too long for the context, says nothing)
        while self.logprobs_ok is None and len(probed) < len(conversations):
            probed.append(self._score_one(conversations[len(probed)], choices))
            if self.logprobs_ok is False:
                raise NoLogprobs
            advance(1)
        rest = conversations[len(probed) :]
        return [*probed, *self._map(lambda c: self._score_one(c, choices), rest, advance)]

    def _score_one(self, conversation: Conversation, choices: Sequence[str]) -> Reply:
        body = self._body(conversation, 1)
        body.update(logprobs=True, top_logprobs=self.top_logprobs)
        try:
            data, attempts = self._post(body)
        except RequestFailed as exc:
            refused = exc.status in (400, 422) and "logprob" in str(exc).lower()
            if refused and self.logprobs_ok is None:
                with self._lock:
                    self.logprobs_ok = False
            return Reply(error=str(exc), attempts=exc.attempts)
        reply = _usage(data, attempts)
        choice = data["choices"][0]
        reply.text = (choice.get("message") or {}).get("content") or ""
        top = _top_logprobs(choice)
        if top is None:
            with self._lock:
                if self.logprobs_ok is None:
                    self.logprobs_ok = False
            return reply  # text only: the kind parses it
        with self._lock:
            self.logprobs_ok = True
        reply.scores = choice_scores(top, choices)
        return reply

    def generate(
        self,
        conversations: Sequence[Conversation],
        max_tokens: int,
        advance: Advance,
        schema: dict | None = None,
    ) -> list[Reply]:
        return self._map(
            lambda c: self._generate_one(c, max_tokens, schema), conversations, advance
        )

    def _generate_one(
        self, conversation: Conversation, max_tokens: int, schema: dict | None
    ) -> Reply:
        while True:
            body = self._body(conversation, max_tokens)
            fmt = self.json_format if schema is not None else None
            if fmt == "json_schema":  # OpenAI, vLLM, Ollama
                body["response_format"] = {
                    "type": "json_schema",
                    "json_schema": {"name": "label", "schema": schema, "strict": True},
                }
            elif fmt == "json_object":  # llama.cpp's server: JSON mode with a schema
                body["response_format"] = {"type": "json_object", "schema": schema}
            try:
                data, attempts = self._post(body)
            except RequestFailed as exc:
                refused = exc.status in (400, 422) or "response_format" in str(exc)
                if fmt is not None and exc.status is not None and refused:  # next JSON dialect
                    with self._lock:
                        if self.json_format == fmt:
                            self.json_format = "json_object" if fmt == "json_schema" else None
                    continue
                return Reply(error=str(exc), attempts=exc.attempts)
            reply = _usage(data, attempts)
            reply.text = (data["choices"][0].get("message") or {}).get("content") or ""
            reply.extra["json_format"] = fmt
            return reply

    def close(self) -> None:
        self._client.close()


def choice_scores(top: dict[str, float], choices: Sequence[str]) -> np.ndarray:
    """Log-probability of each choice from the first answer token's top log-probabilities.

    A token counts for the choice it spells (``"B"``, ``" B"``) or, failing that, for every
    choice it begins (``"bus"`` → ``business``). A choice outside the top list gets an equal
    share of the probability the list leaves, at most the smallest listed probability."""
    mass = np.zeros(len(choices))
    lowered = [c.lower() for c in choices]
    for token, logprob in top.items():
        key = token.strip().strip("\"'`*.:()[]").lower()
        if not key:
            continue
        hits = [i for i, c in enumerate(lowered) if c == key]
        if not hits:
            hits = [i for i, c in enumerate(lowered) if c.startswith(key)]
        for i in hits:
            mass[i] += math.exp(logprob) / len(hits)
    listed = [math.exp(v) for v in top.values()]
    missing = mass == 0
    if missing.any():
        left = max(0.0, 1.0 - sum(listed)) / int(missing.sum())
        floor = min(listed) if listed else 1.0 / len(choices)
        mass[missing] = max(min(left, floor), 1e-12)
    return np.log(mass)


def _top_logprobs(choice: dict[str, Any]) -> dict[str, float] | None:
    """``{token: logprob}`` of the first answer token (chat or completions layout), or None."""
    logprobs = choice.get("logprobs")
    if not isinstance(logprobs, dict):
        return None
    content = logprobs.get("content")
    if isinstance(content, list) and content:
        first = content[0]
        top = first.get("top_logprobs") or []
        out: dict[str, float] = {}
        for entry in top:
            token, value = entry.get("token"), entry.get("logprob")
            if isinstance(token, str) and isinstance(value, (int, float)):
                out[token] = max(out.get(token, -math.inf), float(value))
        if isinstance(first.get("token"), str) and isinstance(first.get("logprob"), (int, float)):
            out.setdefault(first["token"], float(first["logprob"]))
        return out or None
    tops = logprobs.get("top_logprobs")  # the completions layout: a list of {token: logprob}
    if isinstance(tops, list) and tops and isinstance(tops[0], dict):
        return {str(k): float(v) for k, v in tops[0].items()} or None
    return None


def _usage(data: dict[str, Any], attempts: int) -> Reply:
    usage = data.get("usage") or {}
    details = usage.get("prompt_tokens_details") or {}
    return Reply(
        prompt_tokens=int(usage.get("prompt_tokens") or 0),
        completion_tokens=int(usage.get("completion_tokens") or 0),
        cached_tokens=int(details.get("cached_tokens") or 0),
        attempts=attempts,
    )


def _validation_error(status: int, text: str) -> bool:
    """A request the server will never accept, whatever its status: llama.cpp's server answers
    a request it fails to validate (e.g. an unknown ``response_format``) with HTTP 500."""
    return status >= 500 and "validation error" in text.lower()


def _retry_after(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _snippet(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "…"
