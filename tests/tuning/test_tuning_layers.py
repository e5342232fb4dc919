"""The search backends sit below the API: they run the objective it builds and never import
the API or the CLI (docs/architecture.md)."""

from __future__ import annotations

from tests.api.test_layers import offending


def test_the_tuning_package_imports_neither_the_api_nor_the_cli() -> None:
    assert offending("tuning", forbidden=("docsort.api", "docsort.cli")) == []
