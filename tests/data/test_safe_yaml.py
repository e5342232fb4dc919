"""YAML a user hands docsort (a config, a labels file) cannot exhaust memory: aliases that
expand to gigabytes ("billion laughs") are refused in one line, at once; label names stay
short in messages however long they are."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from docsort.api.common import read_config
from docsort.data.labels import LabelSet, _preview, load_labels_file
from docsort.data.safe_yaml import MAX_VALUES, parse_yaml
from docsort.errors import DocsortError


def laughs(levels: int = 9, key: str = "C") -> str:
    """The billion-laughs document: each level ten aliases of the one before."""
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    names = "abcdefghijklmnop"
    for k in range(1, levels):
        lines.append(f"{names[k]}: &{names[k]} [{', '.join(['*' + names[k - 1]] * 10)}]")
    lines.append(f"{key}: *{names[levels - 1]}")
    return "\n".join(lines) + "\n"


def one_line_error(call, *args) -> str:
    started = time.perf_counter()
    with pytest.raises(DocsortError) as error:
        call(*args)
    assert time.perf_counter() - started < 2, "refused, but not quickly"
    message = str(error.value)
    assert "\n" not in message and len(message) < 300, message[:300]
    return message


def test_a_config_that_is_an_alias_bomb_is_refused_at_once(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(laughs(), encoding="utf-8")
    message = one_line_error(read_config, path)
    assert f"expand it to more than {MAX_VALUES:,} values" in message


def test_a_labels_file_whose_label_names_are_bombs(tmp_path: Path) -> None:
    path = tmp_path / "labels.yaml"
    path.write_text(laughs(key="labels"), encoding="utf-8")
    assert "expand it to more than" in one_line_error(load_labels_file, path)
    # a name that is a list (no alias needed) is a mistake, not a name to print
    path.write_text("labels:\n  - name: [1, 2]\n  - sport\n", encoding="utf-8")
    assert "a label name is a text, not a list" in one_line_error(load_labels_file, path)
    path.write_text("null: nothing\nsport: games\n", encoding="utf-8")
    assert "quote a label named null" in one_line_error(load_labels_file, path)


def test_an_alias_that_holds_itself_is_refused() -> None:
    assert "refers to a value that holds it" in one_line_error(parse_yaml, "a: &x [1, *x]", "x")


def test_small_aliases_still_work() -> None:
    text = "tfidf: &stage {kind: tfidf}\nstages: [*stage, *stage]\n"
    assert parse_yaml(text, "c.yaml")["stages"] == [{"kind": "tfidf"}, {"kind": "tfidf"}]
    # nine levels of aliases is a bomb; three (1,000 values) is a document
    assert len(str(parse_yaml(laughs(levels=3), "c.yaml")["C"])) > 1000


def test_a_large_document_without_aliases_is_not_refused() -> None:
    text = "labels:\n" + "".join(f"  - label{i}\n" for i in range(MAX_VALUES // 50))
    assert len(parse_yaml(text, "labels.yaml")["labels"]) == MAX_VALUES // 50


def test_not_yaml_not_utf8_and_too_deep_are_one_line(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_bytes(b"C: 1\n\xff\xfe")
    assert "not UTF-8 text" in one_line_error(read_config, path)
    path.write_text("C: [1, 2\n", encoding="utf-8")
    assert "not valid YAML (" in one_line_error(read_config, path)
    path.write_text("[" * 20_000 + "]" * 20_000, encoding="utf-8")
    one_line_error(read_config, path)
    assert "config file not found" in one_line_error(read_config, tmp_path / "absent.yaml")


def test_previews_cut_each_long_label_name() -> None:
    huge = "x" * 10_000_000
    preview = _preview([huge, "sport"])
    assert len(preview) < 200 and "(10,000,000 characters)" in preview and "'sport'" in preview
    labels = LabelSet((huge, "sport"))
    with pytest.raises(DocsortError) as error:
        labels.index("tech")
    assert len(str(error.value)) < 300
