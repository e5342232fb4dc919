"""Cost arithmetic: hardware time and tokens, priced per 1,000 documents."""

from __future__ import annotations

import pytest

from docsort.errors import DocsortError
from docsort.evaluation import CostModel


def test_one_hour_at_ten_cents_for_1000_docs_is_ten_cents_per_1k() -> None:
    model = CostModel()  # 0.10 USD per hour by default
    assert model.cost(3600) == pytest.approx(0.10)
    assert model.per_1k_docs(1000, 3600) == pytest.approx(0.10)


def test_per_1k_scales_with_document_count() -> None:
    # 3600 s for 10,000 docs: 0.10 USD in all, so 0.01 USD per 1,000 docs.
    assert CostModel().per_1k_docs(10_000, 3600) == pytest.approx(0.01)


def test_tokens_are_priced_per_thousand() -> None:
    model = CostModel(hardware_per_hour=0.0, prompt_per_1k_tokens=0.5, completion_per_1k_tokens=1.5)
    # 1500 prompt tokens * 0.5/1k = 0.75; 500 completion tokens * 1.5/1k = 0.75.
    assert model.cost(0, prompt_tokens=1500, completion_tokens=500) == pytest.approx(1.5)
    # The same spend over 300 docs: 1.5 * 1000 / 300 = 5.0 per 1k docs.
    assert model.per_1k_docs(300, 0, 1500, 500) == pytest.approx(5.0)


def test_hardware_and_tokens_add_up() -> None:
    model = CostModel(hardware_per_hour=0.36, prompt_per_1k_tokens=0.1)
    # 100 s * 0.36/3600 = 0.01; 2000 tokens * 0.1/1k = 0.2.
    assert model.cost(100, prompt_tokens=2000) == pytest.approx(0.21)


def test_dict_round_trip_and_defaults() -> None:
    model = CostModel(hardware_per_hour=1.2, completion_per_1k_tokens=0.6)
    assert CostModel.from_dict(model.to_dict()) == model
    assert CostModel.from_dict({}) == CostModel()
    assert CostModel.from_dict(None) == CostModel()


def test_bad_config_is_a_user_error() -> None:
    with pytest.raises(DocsortError, match="unknown keys"):
        CostModel.from_dict({"hardware_per_hr": 1.0})
    with pytest.raises(DocsortError, match=">= 0"):
        CostModel(hardware_per_hour=-1.0)
    with pytest.raises(DocsortError, match="number"):
        CostModel.from_dict({"prompt_per_1k_tokens": "cheap"})


def test_per_1k_needs_documents() -> None:
    with pytest.raises(ValueError):
        CostModel().per_1k_docs(0, 10)


def test_usage_prices_a_kind_s_token_counts_and_ignores_other_keys() -> None:
    model = CostModel(hardware_per_hour=3.6, prompt_per_1k_tokens=0.5, completion_per_1k_tokens=2)
    tokens = {"prompt_tokens": 2000, "completion_tokens": 500, "cached_tokens": 10**6}
    assert model.usage(10, tokens) == pytest.approx(0.01 + 1.0 + 1.0)
    assert model.usage(10) == pytest.approx(0.01)
