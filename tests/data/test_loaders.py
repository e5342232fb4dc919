"""Every file format a user may hand us reads into the same dataset."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from docsort.data.dataset import from_frame, stratified_split
from docsort.data.labels import LabelSet, load_labels_file
from docsort.data.loaders import load_dataset, read_table
from docsort.errors import DocsortError
from tests.conftest import ARXIV_8CAT, ARXIV_MULTI, PATENT_SECTIONS


@pytest.fixture(scope="module")
def patents() -> pd.DataFrame:
    return pd.read_csv(PATENT_SECTIONS).head(40)


@pytest.fixture(scope="module")
def tricky_rows() -> pd.DataFrame:
    """Real arXiv abstracts holding double quotes and line breaks, which writers quote."""
    frame = pd.read_csv(ARXIV_8CAT)
    hard = frame.abstract.str.contains('"') & frame.abstract.str.contains("\n")
    return frame[hard].head(8).rename(columns={"abstract": "text", "category": "section"})


def test_csv_with_two_fields_joined_by_template() -> None:
    data = load_dataset(ARXIV_8CAT, label="category", template="{title}. {abstract}")
    frame = pd.read_csv(ARXIV_8CAT)
    assert len(data) == len(frame) == 1600
    assert data.texts[0] == f"{frame.title[0].strip()}. {frame.abstract[0].strip()}"
    assert data.label_set.names == tuple(sorted(frame.category.unique()))
    assert len(data.label_set) == 8 and not data.multi_label


def test_several_text_columns_without_template_are_joined_by_lines() -> None:
    data = load_dataset(ARXIV_8CAT, text=["title", "abstract"], label="category")
    assert data.texts[0].split("\n")[0] == pd.read_csv(ARXIV_8CAT).title[0].strip()


@pytest.mark.parametrize("suffix", [".tsv", ".jsonl", ".parquet", ".json"])
def test_formats_read_the_same_rows(
    patents: pd.DataFrame, tricky_rows: pd.DataFrame, tmp_path: Path, suffix: str
) -> None:
    patents = pd.concat([patents, tricky_rows[["section", "text"]]], ignore_index=True)
    path = tmp_path / f"patents{suffix}"
    if suffix == ".tsv":
        patents.to_csv(path, sep="\t", index=False)
    elif suffix == ".jsonl":
        patents.to_json(path, orient="records", lines=True)
    elif suffix == ".json":
        patents.to_json(path, orient="records")
    else:
        patents.to_parquet(path)
    data = load_dataset(path, label="section")
    assert data.texts == [t.strip() for t in patents.text]
    assert any('"' in t for t in data.texts)  # quoted fields come back unchanged
    assert data.labels == [str(s) for s in patents.section]


def test_folder_of_label_subfolders(patents: pd.DataFrame, tmp_path: Path) -> None:
    for i, row in patents.iterrows():
        folder = tmp_path / row.section
        folder.mkdir(exist_ok=True)
        (folder / f"{i:03d}.txt").write_text(row.text, encoding="utf-8")
    data = load_dataset(tmp_path)
    assert len(data) == len(patents)
    assert sorted(data.labels) == sorted(patents.section)
    assert set(data.texts) == {t.strip() for t in patents.text}


def test_folder_of_plain_files_is_unlabelled(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("first document", encoding="utf-8")
    (tmp_path / "b.txt").write_bytes("caf\xe9 latin-1".encode("latin-1"))
    frame = read_table(tmp_path)
    assert "label" not in frame.columns
    assert list(frame.text) == ["first document", "café latin-1"]


def test_multi_label_from_python_list_strings() -> None:
    data = load_dataset(ARXIV_MULTI, text=["titles", "summaries"], label="terms")
    assert data.multi_label
    assert all(isinstance(v, tuple) and v for v in data.labels)
    y = data.targets()
    assert y.shape == (len(data), len(data.label_set)) and (y.sum(axis=1) >= 1).all()


def test_multi_label_from_delimited_strings() -> None:
    frame = pd.DataFrame({"text": ["a b", "c d", "e f"], "tags": ["x|y", "y", "x | z"]})
    data = from_frame(frame, label="tags", label_sep="|")
    assert data.labels == [("x", "y"), ("y",), ("x", "z")]
    assert data.label_set.names == ("x", "y", "z")


def test_empty_rows_are_skipped_and_counted_or_rejected_when_strict() -> None:
    frame = pd.DataFrame(
        {"text": ["good one", "", None, "   ", "another"], "label": ["a", "b", "a", "b", None]}
    )
    data = from_frame(frame)
    assert data.texts == ["good one"] and data.skipped == 4
    with pytest.raises(DocsortError, match="4 row"):
        from_frame(frame, strict=True)


def test_unknown_column_lists_the_columns() -> None:
    with pytest.raises(DocsortError, match="no column 'body'.*'title', 'abstract'"):
        load_dataset(ARXIV_8CAT, text="body", label="category")


def test_labels_file_fixes_order_and_rejects_unknown_labels(tmp_path: Path) -> None:
    path = tmp_path / "labels.yaml"
    path.write_text(
        "multi_label: false\nlabels:\n"
        + "".join(f"  - name: {s}\n    description: CPC section {s}\n" for s in "HGFEDCBA"),
        encoding="utf-8",
    )
    labels = load_labels_file(path)
    assert labels.names == tuple("HGFEDCBA") and labels.description("A") == "CPC section A"
    frame = pd.read_csv(PATENT_SECTIONS)
    data = from_frame(frame[frame.section != "Y"], label="section", labels=labels)
    assert data.label_set is labels and data.targets()[0] == labels.index("A")
    with pytest.raises(DocsortError, match="label 'Y' is not in the labels file"):
        from_frame(frame, label="section", labels=labels)


def test_labels_file_errors(tmp_path: Path) -> None:
    with pytest.raises(DocsortError, match="not found"):
        load_labels_file(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("labels: [a, b\n", encoding="utf-8")
    with pytest.raises(DocsortError, match="not valid YAML"):
        load_labels_file(bad)
    dup = tmp_path / "dup.yaml"
    dup.write_text("labels: [a, a]\n", encoding="utf-8")
    with pytest.raises(DocsortError, match="twice"):
        load_labels_file(dup)
    assert LabelSet.from_dict({"labels": ["a", "b"]}).names == ("a", "b")


def test_stratified_split_is_seeded_and_keeps_proportions() -> None:
    data = load_dataset(PATENT_SECTIONS, label="section")
    train, test = stratified_split(data, 0.2, seed=3)
    again_train, _ = stratified_split(data, 0.2, seed=3)
    other_train, _ = stratified_split(data, 0.2, seed=4)
    assert train.texts == again_train.texts and train.texts != other_train.texts
    assert len(train) + len(test) == len(data)
    assert not set(train.texts) & set(test.texts) - set(
        t for t in data.texts if data.texts.count(t) > 1
    )
    for label, count in data.label_counts().items():
        assert abs(test.label_counts()[label] - 0.2 * count) <= 1


def test_bad_files(tmp_path: Path) -> None:
    with pytest.raises(DocsortError, match="file not found"):
        read_table(tmp_path / "nope.csv")
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"text": "ok", "label": "a"}\n{"text": oops}\n', encoding="utf-8")
    with pytest.raises(DocsortError, match="line 2: not valid JSON"):
        read_table(broken)
    odd = tmp_path / "data.xlsx"
    odd.write_bytes(b"PK")
    with pytest.raises(DocsortError, match="unknown file type .xlsx"):
        read_table(odd)
    not_list = tmp_path / "obj.json"
    not_list.write_text(json.dumps({"text": "x"}), encoding="utf-8")
    with pytest.raises(DocsortError, match="list of objects"):
        read_table(not_list)


def test_fingerprint_tracks_texts_and_labels() -> None:
    frame = pd.read_csv(PATENT_SECTIONS).groupby("section").head(2)
    a = from_frame(frame, label="section")
    b = from_frame(frame, label="section")
    c = from_frame(frame.assign(section=frame.section.iloc[::-1].values), label="section")
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()
