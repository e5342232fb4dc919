"""Tables that used to give silent wrong answers or tracebacks now read right or fail in one
line (issue: defects found by testing as a new user would)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from docsort.data.dataset import MAX_TEXT_CHARS, from_frame
from docsort.data.loaders import load_dataset
from docsort.errors import DocsortError


def test_labels_named_na_none_or_null_are_labels(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text(
        "text,label\n"
        + "".join(f"row {i},{n}\n" for i in range(5) for n in ("NA", "None", "null"))
        + "row x,\n"
    )
    data = load_dataset(path)
    assert sorted(data.label_counts()) == ["NA", "None", "null"]
    assert len(data) == 15 and data.skipped == 1  # only the empty cell is missing


def test_an_all_empty_label_column_is_named_in_the_error(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("text,label\nfirst,\nsecond,\n")
    with pytest.raises(DocsortError, match="no row has a label in column 'label'"):
        load_dataset(path)


@pytest.mark.parametrize("template", ["{text", "{text!r:>{x}}", "{}", "{0}"])
def test_malformed_templates_are_one_line_errors(template: str) -> None:
    frame = pd.DataFrame({"text": ["a", "b"], "label": ["x", "y"]})
    with pytest.raises(DocsortError, match="--template"):
        from_frame(frame, template=template)


def test_an_oversized_text_is_cut_and_counted() -> None:
    frame = pd.DataFrame({"text": ["a" * (MAX_TEXT_CHARS + 10), "short"], "label": ["x", "y"]})
    data = from_frame(frame)
    assert len(data.texts[0]) == MAX_TEXT_CHARS and data.texts[1] == "short"
    assert data.truncated == 1
