"""The web page in a real browser: Debian's headless Chromium driven by Playwright, against a
real uvicorn server on a free 127.0.0.1 port serving a cascade of two tfidf stages with a
SQLite store. Classifying shows the label, confidence bars and the stage that answered; a
correction and a rating land in the store; the traffic view shows the counts; with API keys
the page works once a key is pasted."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from docsort.serve import create_app
from docsort.serve.auth import create_key
from docsort.serve.page import ASSETS, asset
from docsort.serve.store import Store, feedback

CHROMIUM = Path("/usr/bin/chromium")
HOSTILE = '<img src=x onerror="window.pwned=1">'
ABSTRACT = "We observe the galaxy cluster with a radio telescope and find dark matter halos."


class Served:
    """``app`` on uvicorn in a thread, on a socket bound to a free loopback port."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}"
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, args=([self.socket],), daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.socket.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip("no /usr/bin/chromium: install Debian's chromium (scripts/setup.sh, as root)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(10_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    def console(message: Any) -> None:  # a 4xx answer (a refused key, a damaged upload) is
        # logged by the browser itself; the page shows it, which the tests check
        refused = re.search(r"the server responded with a status of 4\d\d", message.text)
        if message.type == "error" and not refused:
            errors.append(message.text)

    page.on("console", console)
    yield page
    context.close()
    assert not errors, errors  # no script error, no CSP violation


def test_classify_correct_rate_and_see_the_traffic(
    page: Any, cascade_model_dir: Path, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    served = Served(create_app(cascade_model_dir, url))
    try:
        page.goto(served.url + "/")
        page.wait_for_selector("#model:has-text('cascade')")
        labels = page.locator("#correct-label option").all_text_contents()
        assert len(labels) == 8 and "astro-ph" in labels

        page.fill("#text", ABSTRACT)
        page.click("#run-classify")
        page.wait_for_selector("#result:not([hidden])")
        label = page.text_content("#label")
        assert label == "astro-ph"
        assert re.fullmatch(r"confidence \d+\.\d %", page.text_content("#confidence"))
        page_stage = page.text_content("#stage").removeprefix("answered by stage ")
        assert page_stage in ("cheap", "full")
        bars = page.locator("#bars li")
        assert bars.count() == 5  # the top 5 labels, the predicted one first
        assert bars.first.get_attribute("data-name") == label
        widths = [float(w.rstrip("%")) for w in page.eval_on_selector_all(
            "#bars .fill", "fills => fills.map(f => f.style.width)")]  # fmt: skip
        assert widths == sorted(widths, reverse=True) and widths[0] > 0
        prediction_id = page.text_content("#prediction-id")

        page.select_option("#correct-label", "cs.CL")
        page.click("#send-correction")
        page.wait_for_selector("#feedback-status:has-text('stored: correct label cs.CL')")
        page.click("#rating button[data-rating='4']")
        page.wait_for_selector("#feedback-status:has-text('stored: rating 4')")

        store = Store(url)
        with store.engine.connect() as connection:
            rows = connection.execute(sa.select(feedback).order_by(feedback.c.id)).all()
        assert [(r.prediction_id, r.labels, r.rating) for r in rows] == [
            (prediction_id, ["cs.CL"], None),
            (prediction_id, None, 4),
        ]

        # a stage name (from the model, via the store) that would run script if it became HTML
        hostile = {"label": "q-bio", "confidence": 0.5, "probabilities": {"q-bio": 0.5},
                   "stage": HOSTILE}  # fmt: skip
        store.add_predictions(["x"], [hostile], ("cascade", "v1"), 1.0)

        page.click("#tab-traffic")
        page.wait_for_selector("#totals dd[data-name='predictions']")
        names = ("predictions", "feedback", "corrected", "accuracy on corrected")
        totals = {name: page.text_content(f"#totals dd[data-name='{name}']") for name in names}
        assert totals == {"predictions": "2", "feedback": "2", "corrected": "1",
                          "accuracy on corrected": "0.0 %"}  # fmt: skip
        stages = page.locator("#stage-bars li .name").all_text_contents()
        assert sorted(stages) == sorted([HOSTILE, page_stage])  # shown as text
        assert page.locator("#stage-bars img").count() == 0
        assert page.evaluate("window.pwned") is None
        assert page.locator("#series tbody tr").count() == 1
        # drift: one prediction served, the reference still being collected from traffic
        page.wait_for_selector("#drift dd[data-name='drifted']")
        assert page.text_content("#drift dd[data-name='drifted']").startswith(
            "not yet: collecting the reference, 1 of 500 predictions"
        )
        assert page.is_hidden("#classify-view")
    finally:
        served.stop()


def test_a_pdf_upload_is_read_by_the_server_and_classified(
    page: Any, trained_model_dir: Path, tmp_path: Path
) -> None:
    """A PDF chosen in the page goes to /v1/extract; its text fills the box and classifies. A
    damaged one is a one-line error on the page."""
    from tests.ingest import samples

    served = Served(create_app(trained_model_dir, None))
    try:
        page.goto(served.url + "/")
        page.wait_for_selector("#model:has-text('tfidf')")
        page.set_input_files("#file", str(samples.pdf(tmp_path / "paper.pdf", [ABSTRACT])))
        page.wait_for_selector("#file-note:has-text('paper.pdf: pdf, 1 page')")
        assert " ".join(page.input_value("#text").split()) == ABSTRACT
        page.click("#run-classify")
        page.wait_for_selector("#result:not([hidden])")
        assert page.text_content("#label") == "astro-ph"
        page.set_input_files("#file", str(samples.corrupt_pdf(tmp_path / "broken.pdf")))
        page.wait_for_selector("#error:not([hidden])")
        assert page.text_content("#error").startswith("broken.pdf: a damaged PDF")
    finally:
        served.stop()


def test_with_api_keys_the_page_asks_for_one(
    page: Any, cascade_model_dir: Path, tmp_path: Path
) -> None:
    key, _ = create_key(tmp_path / "keys.json", "web page")
    served = Served(create_app(cascade_model_dir, f"sqlite:///{tmp_path / 'store.sqlite'}",
                               api_keys=tmp_path / "keys.json"))  # fmt: skip
    try:
        page.goto(served.url + "/")
        page.wait_for_selector("#error:has-text('needs an API key')")
        page.fill("#key", key)
        page.click("#use-key")
        page.wait_for_selector("#model:has-text('cascade')")
        assert page.is_hidden("#error")
        page.fill("#text", ABSTRACT)
        page.click("#run-classify")
        page.wait_for_selector("#result:not([hidden])")
        assert page.text_content("#label") == "astro-ph"
        assert key not in page.content()  # the key is in the input's value only, not the page
    finally:
        served.stop()


def test_the_review_queue_takes_a_label(page: Any, trained_model_dir: Path, tmp_path) -> None:
    """Unsure predictions are listed with the text and the suggestion; saving a label stores
    the correction and takes the document off the list."""
    import json
    import urllib.request

    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    served = Served(create_app(trained_model_dir, url, log_text="full"))
    try:
        texts = ["lunch at noon", "a note about the weather", ABSTRACT]
        request = urllib.request.Request(
            served.url + "/v1/classify", json.dumps({"texts": texts}).encode(),
            {"Content-Type": "application/json"},
        )  # fmt: skip
        with urllib.request.urlopen(request) as answer:
            predictions = json.load(answer)["predictions"]
        unsure = [p for p in predictions if p["confidence"] < 0.5]
        assert unsure
        # the model's labels arrive late, as on a slow link: the suggestion must still be chosen
        page.route("**/v1/models", lambda route: (time.sleep(0.5), route.continue_()))
        page.goto(served.url + "/#review")
        page.wait_for_selector("#review-items li")
        assert page.locator("#review-items li").count() == len(unsure)
        entry = page.locator(f"#review-items li[data-prediction='{unsure[0]['id']}']")
        assert entry.locator(".review-text").text_content() in texts
        assert entry.locator("select").input_value() == unsure[0]["label"]  # the suggestion
        entry.locator("select").select_option("econ.EM")
        entry.locator("button").click()
        page.wait_for_selector(f"#review-items li[data-prediction='{unsure[0]['id']}']",
                               state="detached")  # fmt: skip
        assert page.text_content("#review-count") == f"{len(unsure) - 1} waiting"
        with Store(url).engine.connect() as connection:
            rows = connection.execute(sa.select(feedback)).all()
        assert [(r.prediction_id, r.labels) for r in rows] == [(unsure[0]["id"], ["econ.EM"])]
    finally:
        served.stop()


def test_the_page_sets_text_only_and_ships_in_the_package() -> None:
    """No model or user string can become HTML: the script never assigns markup."""
    script = asset("app.js").decode()
    assert not re.search(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write", script)
    html = asset("index.html").decode()
    assert "<script>" not in html and not re.search(r"\son[a-z]+\s*=", html)  # no inline code
    # every file of the page is package data (pyproject), so an installed wheel has it
    tomllib = pytest.importorskip("tomllib")
    root = Path(__file__).resolve().parents[2]
    patterns = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"]["docsort.serve"]  # fmt: skip
    static = root / "src" / "docsort" / "serve" / "static"
    assert {p.name for p in static.iterdir()} == set(ASSETS)
    for name in ASSETS:
        assert any((static / name).match(pattern) for pattern in patterns), name
