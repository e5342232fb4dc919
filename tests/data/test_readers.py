"""A new file format is one registered reader: every command reads it, nothing else changes."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from docsort.data.loaders import READERS, load_dataset, register_reader
from docsort.errors import DocsortError


@pytest.fixture
def pipe_reader():
    @register_reader(".psv")
    def read_psv(path: Path) -> pd.DataFrame:
        return pd.read_csv(path, sep="|")

    yield read_psv
    READERS.pop(".psv")


def test_a_registered_reader_serves_its_suffix(tmp_path: Path, pipe_reader) -> None:
    path = tmp_path / "rows.psv"
    path.write_text("text|label\nthe match|sport\nshares fell|business\n")
    data = load_dataset(path)
    assert data.texts == ["the match", "shares fell"] and sorted(data.label_counts()) == [
        "business",
        "sport",
    ]


def test_an_unknown_suffix_names_the_formats_there_are(tmp_path: Path) -> None:
    path = tmp_path / "rows.xyz"
    path.write_text("x")
    with pytest.raises(DocsortError, match=r"unknown file type \.xyz; use one of .*\.csv"):
        load_dataset(path)


def test_a_suffix_takes_one_reader(pipe_reader) -> None:
    with pytest.raises(ValueError, match="registered twice"):
        register_reader(".psv")(lambda path: pd.DataFrame())
