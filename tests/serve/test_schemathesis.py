"""Schemathesis over the service's own OpenAPI schema, against a real tfidf model with a SQLite
store, with and without API keys: the schema's boundary cases (schemathesis' coverage phase),
then generated valid and invalid requests. No answer may be a 5xx, a status the schema does not
document for its operation, a body or header unlike the documented ones, or a wrong content
type; a request the schema calls invalid must be refused, and one it calls valid may be refused
only for what depends on the model (its labels, its columns), not for a rule the schema could
have stated. Bounded and derandomized: a few seconds, and a failure reproduces."""

from __future__ import annotations

import itertools
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis", reason="the dev extra is not installed")
from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.checks import (  # noqa: E402
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

# the loop of schemathesis' pytest plugin (its from_fixture reads a node attribute pytest 9
# no longer has): one Hypothesis test per operation, with the phases the config enables
from schemathesis.pytest.lazy import get_all_tests  # noqa: E402

from docsort.serve import create_app  # noqa: E402
from docsort.serve.auth import create_key  # noqa: E402

# a schema-valid request refused with a 422 for one of these reasons is fine: they depend on
# the model served, which the schema does not name
MODEL_REASONS = re.compile(
    r"is unknown to this model|gives one label per text|^records: no column|"
    r"needs a non-empty text in the trained columns"
)


def valid_refused_only_for_the_model(_ctx: Any, response: Any, case: Any) -> bool | None:
    """schemathesis' positive_data_acceptance, less the 422s that depend on the model."""
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return None
    if response.status_code == 422 and case.path != "/v1/extract":  # an upload's 422 says
        # what its bytes lack (a text layer, a readable format): no schema can state that
        detail = response.json()["detail"]
        assert MODEL_REASONS.search(detail), f"a schema-valid request was refused: {detail}"
    return None


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
    valid_refused_only_for_the_model,
]
# a request that breaks the schema must be refused with one of these (413: over the body limit,
# refused before it is parsed; 404: a prediction id the store does not hold)
REFUSED = [400, 401, 403, 404, 409, 413, 422]
CONFIG = schemathesis.Config.from_dict(
    {"checks": {"negative_data_rejection": {"expected-statuses": REFUSED}}}
)
BOUNDED = settings(
    max_examples=20,  # generated requests per operation, after its boundary cases
    deadline=None,
    database=None,  # no .hypothesis/ folder in the work tree; derandomized instead
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)


def fuzz(app: Any, headers_for: Any = lambda case: {}, examples: int = 20) -> Counter:
    """Every operation of ``app``'s schema; returns how often each (operation, status) was
    answered. Hypothesis shrinks a failure to a small request and raises it."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=CONFIG)
    seen: Counter = Counter()

    def check(case: Any) -> None:
        response = case.call_and_validate(headers=headers_for(case), checks=CHECKS)
        seen[case.operation.label, response.status_code] += 1

    bounded = settings(BOUNDED, max_examples=examples)
    for result in get_all_tests(schema=schema, test_func=check, settings=bounded,
                                given_kwargs=None):  # fmt: skip
        operation, test = result.ok()
        try:
            test()
        except Exception as exc:
            exc.add_note(f"in {operation.label}")
            raise
    return seen


@pytest.fixture(scope="module")
def served(trained_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    store = tmp_path_factory.mktemp("fuzz") / "store.sqlite"
    return create_app(trained_model_dir, f"sqlite:///{store}")


@pytest.fixture(scope="module")
def guarded(trained_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    folder = tmp_path_factory.mktemp("fuzz-keys")
    key, _ = create_key(folder / "keys.json", "fuzz")
    app = create_app(trained_model_dir, f"sqlite:///{folder / 'store.sqlite'}",
                     api_keys=folder / "keys.json")  # fmt: skip
    app.state.fuzz_key = key
    return app


def test_no_5xx_and_no_undocumented_status(served: Any) -> None:
    seen = fuzz(served)
    # the run reached the model and the store, not only the refusals
    assert seen["POST /v1/classify", 200] > 10 and seen["POST /v1/classify", 422] > 10
    assert seen["POST /v1/feedback", 201] > 0 and seen["POST /v1/feedback", 404] > 0


def test_with_keys_no_5xx_and_no_undocumented_status(guarded: Any) -> None:
    key = {"Authorization": f"Bearer {guarded.state.fuzz_key}"}

    calls = itertools.count()

    def half_with_the_key(case: Any) -> dict[str, str]:
        # every other valid request carries the key and reaches the endpoint, the rest are
        # refused (401) before it; an invalid one is sent as generated (its Authorization
        # header may be what is wrong with it)
        return key if case.meta.generation.mode.is_positive and next(calls) % 2 else {}

    seen = fuzz(guarded, half_with_the_key, examples=10)  # the open run above tries more
    assert seen["POST /v1/classify", 200] > 0 and seen["POST /v1/classify", 401] > 0
    assert seen["GET /v1/models", 200] > 0 and seen["GET /v1/models", 401] > 0
