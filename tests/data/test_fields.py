"""Texts read from several columns keep their fields (title, abstract) for the kinds that read
them apart, while every other kind and path still sees one plain joined text."""

from __future__ import annotations

import json
import pickle

import pandas as pd
import pytest

from docsort.data.dataset import from_frame, stratified_split
from docsort.data.fields import FieldText, field_names, field_values
from docsort.errors import DocsortError
from tests.conftest import ARXIV_8CAT


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return pd.read_csv(ARXIV_8CAT).groupby("category", group_keys=False).head(5)


def test_several_columns_give_joined_texts_that_know_their_fields(frame) -> None:
    data = from_frame(frame, text=["title", "abstract"], label="category")
    first = data.texts[0]
    assert first == f"{frame.title.iloc[0].strip()}\n{frame.abstract.iloc[0].strip()}"
    assert first.fields == {"title": frame.title.iloc[0].strip(),
                            "abstract": frame.abstract.iloc[0].strip()}  # fmt: skip
    train, _ = stratified_split(data, 0.2, seed=0)
    assert field_names(train.texts) == ["title", "abstract"]  # subsets keep them
    again = pickle.loads(pickle.dumps(first))  # worker processes and Ray get them too
    assert isinstance(again, FieldText) and again.fields == first.fields
    assert json.loads(json.dumps([first])) == [str(first)]  # written out as a plain text


def test_one_column_gives_plain_texts_and_a_one_line_error_for_fields(frame) -> None:
    data = from_frame(frame, text="abstract", label="category")
    assert type(data.texts[0]) is str and field_names(data.texts) == []
    with pytest.raises(DocsortError, match="row 1 has one text, no fields: read the data with"):
        field_values(data.texts, ["title", "abstract"])
    other = from_frame(frame, text=["title", "category"], label="label")
    with pytest.raises(DocsortError, match="has fields title, category"):
        field_values(other.texts, ["title", "abstract"])
