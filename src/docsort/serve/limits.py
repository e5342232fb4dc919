"""What one request may hold, and where each limit is enforced.

The body limit comes first and is the one that protects the process: ``BodyLimit`` refuses a
body from its Content-Length, or while it streams in, before any byte is parsed, so a 10 MB
upload costs nothing. The text and batch limits are declared on the
request schemas (so the OpenAPI schema shows them) and keep one request's model call bounded.
Without API keys the server binds to loopback only; with them any address may be served.
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any

from starlette.exceptions import HTTPException

from docsort.errors import DocsortError

MAX_BODY_BYTES = 4 * 1024 * 1024  # a batch of 256 texts of ~16 kB each
MAX_UPLOAD_BYTES = 20 * 1024 * 1024  # one file to extract text from (POST /v1/extract)
MAX_EXTRACTIONS = 2  # uploads extracted at once (each in a worker process of up to 2 GB)
MAX_TEXT_CHARS = 100_000  # characters of one text or one record field
MAX_BATCH = 256  # texts or records in one classify request
MAX_COMMENT_CHARS = 2_000
MAX_KEY_CHARS = 200  # an idempotency key
MAX_REASON_CHARS = 200  # a 4xx body's one line: never the whole input echoed back


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_host(host: str, api_keys: bool = False) -> None:
    """Without API keys anyone who reaches the port may classify and write feedback, so the
    server listens on this machine only; with keys (``--api-keys FILE``) any address."""
    if not api_keys and not is_loopback(host):
        raise DocsortError(
            f"--host {host}: without API keys docsort serve binds to a loopback address only "
            "(127.0.0.1, ::1 or localhost); give --api-keys FILE to serve other addresses"
        )


def one_line(reason: str) -> str:
    """A reason as one short line: newlines folded, cut at ``MAX_REASON_CHARS``."""
    line = " ".join(str(reason).split())
    return line if len(line) <= MAX_REASON_CHARS else line[: MAX_REASON_CHARS - 1] + "…"


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the body is larger than the {limit:,}-byte limit")


class BodyLimit:
    """Refuse a body over ``limit`` bytes before it is parsed: at once from its
    Content-Length, or as soon as the streamed bytes pass it (a chunked upload states no
    length). Starlette's own ``max_body_size`` would do the same but answers in plain text,
    replacing the app's one-line JSON reason."""

    def __init__(self, app: Any, limit: int, paths: dict[str, int] | None = None) -> None:
        self.app, self.default, self.paths = app, limit, paths or {}

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.paths.get(scope.get("path", ""), self.default)  # an upload may be larger
        length = dict(scope["headers"]).get(b"content-length", b"")
        if length.isdigit() and int(length) > limit:
            await _refuse(limit, send)
            return
        seen = 0
        started = False

        async def counted() -> dict:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > limit:
                raise BodyTooLarge(limit)
            return message

        async def watched(message: dict) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except BodyTooLarge:  # read outside a route's handler (which answers it itself)
            if started:
                raise
            await _refuse(limit, send)


async def _refuse(limit: int, send: Any) -> None:
    body = json.dumps({"detail": str(BodyTooLarge(limit).detail)}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body)),
               (b"connection", b"close")]  # fmt: skip
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})
