"""The web page at ``/``: plain HTML, one stylesheet and one script, no build step. The files
are package data (``docsort/serve/static/``), read through ``importlib.resources`` so they load
from an installed wheel as from the source tree. The page holds no data: everything it shows
comes from the ``/v1`` endpoints, called by the browser with the key the user pastes (kept in
the page's memory only), so it is open like ``/docs`` while ``/v1`` needs a key.

Every answer carries a Content-Security-Policy that allows only the app's own script and
stylesheet (no inline script, no other origin), a second line of defence behind the script's
rule of never putting a model's or a user's string into HTML (it sets ``textContent``)."""

from __future__ import annotations

from functools import cache
from importlib import resources

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response

from docsort.serve.limits import one_line

# the files the page is made of, and their content types (nothing else is served)
ASSETS = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


@cache
def asset(name: str) -> bytes:
    """One file of the page, from the installed package."""
    return resources.files("docsort.serve").joinpath("static", name).read_bytes()


def _answer(name: str) -> Response:
    return Response(asset(name), media_type=ASSETS[name], headers=SECURITY_HEADERS)


def add_page(app: FastAPI) -> set[str]:
    """Serve the page on ``app`` (outside the OpenAPI schema: it is not part of the API);
    returns its paths, for the metrics' route labels."""

    @app.get("/", include_in_schema=False)
    def page() -> Response:
        return _answer("index.html")

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> Response:
        if name not in ASSETS or name == "index.html":
            return JSONResponse({"detail": f"no such file {one_line(name)[:40]!r}: the page is /"},
                                status_code=404)  # fmt: skip
        return _answer(name)

    return {"/", *(f"/static/{name}" for name in ASSETS if name != "index.html")}
