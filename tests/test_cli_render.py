"""What the CLI prints: rates below one document a second keep two significant digits."""

from __future__ import annotations

import pytest

from docsort.cli.render import rate


@pytest.mark.parametrize(
    ("per_second", "shown"),
    [
        (0.3, "0.3"),
        (0.0412, "0.041"),
        (2.567, "2.6"),
        (12.4, "12"),
        (35_791.2, "35,791"),
        (None, "–"),
    ],
)
def test_rates_below_one_are_not_printed_as_zero(per_second, shown) -> None:
    assert rate(per_second) == shown
