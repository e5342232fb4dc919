"""The cache folder stays in bounds: embeddings are trimmed least recently used first, and
``docsort cache`` lists and clears areas without touching the others."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from docsort.cache import area_path, clear, embed_limit_bytes, trim, usage
from docsort.errors import DocsortError
from tests.conftest import run_cli


def _file(path: Path, size: int, age_days: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    when = path.stat().st_mtime - age_days * 86400
    os.utime(path, (when, when))
    return path


def test_trim_removes_the_least_recently_used_files_first(tmp_path: Path) -> None:
    old = _file(tmp_path / "old.npy", 400, age_days=3)
    middle = _file(tmp_path / "middle.npy", 400, age_days=2)
    new = _file(tmp_path / "new.npy", 400, age_days=1)
    lock = _file(tmp_path / ".lock", 400, age_days=9)  # hidden: not an item
    assert trim(tmp_path, 900) == 1
    assert not old.exists() and middle.exists() and new.exists() and lock.exists()
    assert trim(tmp_path, 0) == 2 and not new.exists()


def test_clear_empties_one_area_or_only_its_stale_items(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("DOCSORT_CACHE", str(tmp_path))
    stale = _file(area_path("embeddings") / "a.npy", 1000, age_days=40)
    fresh = _file(area_path("embeddings") / "b.npy", 500, age_days=1)
    model = _file(area_path("models") / "mpnet" / "weights.bin", 2000, age_days=40)
    assert clear("embeddings", older_than_days=30) == (1, 1000)
    assert not stale.exists() and fresh.exists()
    assert clear("embeddings") == (1, 500)
    assert model.exists()  # another area is left alone
    sizes = {row["area"]: (row["items"], row["bytes"]) for row in usage()}
    assert sizes == {"models": (1, 2000), "datasets": (0, 0), "embeddings": (0, 0)}
    with pytest.raises(DocsortError, match="unknown cache area 'weights'"):
        clear("weights")


def test_the_embeddings_bound_comes_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("DOCSORT_EMBED_CACHE_MB", "1.5")
    assert embed_limit_bytes() == 1_500_000
    monkeypatch.setenv("DOCSORT_EMBED_CACHE_MB", "lots")
    with pytest.raises(DocsortError, match="DOCSORT_EMBED_CACHE_MB must be a number"):
        embed_limit_bytes()


def test_embed_training_keeps_the_cache_under_its_bound(tmp_path, monkeypatch) -> None:
    """Each new training set's vectors push out the oldest; the newest is always kept
    while it fits."""
    from docsort.data.dataset import Dataset
    from docsort.models.kinds.embedding import EmbedClassifier

    monkeypatch.setenv("DOCSORT_CACHE", str(tmp_path))
    monkeypatch.setenv("DOCSORT_EMBED_CACHE_MB", "0.02")  # 20 kB: one set of 8 × 384 floats
    folder = area_path("embeddings")
    texts = ["a cat on a mat", "stock prices fell", "the team won", "rain tomorrow"] * 2
    labels = ["pets", "money", "sport", "weather"] * 2
    first = EmbedClassifier(max_length=16).fit(Dataset(texts, labels))
    (kept,) = folder.glob("*.npy")
    EmbedClassifier(max_length=16).fit(Dataset([t + "!" for t in texts], labels))
    (newest,) = folder.glob("*.npy")
    assert newest != kept and newest.stat().st_size < 20_000
    assert np.isfinite(first.predict_proba(["a dog"])).all()


def test_cache_commands_list_and_clear(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("DOCSORT_CACHE", str(tmp_path))  # the child process inherits it
    _file(tmp_path / "embeddings" / "a.npy", 3_000_000, age_days=0)
    listed = run_cli("cache", "list")
    assert listed.returncode == 0, listed.stderr
    assert "embeddings" in listed.stdout and "3.0 MB" in listed.stdout
    cleared = run_cli("cache", "clear", "embeddings")
    assert cleared.returncode == 0 and "removed 1 item(s), freed 3.0 MB" in cleared.stdout
    bad = run_cli("cache", "clear", "everything")
    assert bad.returncode == 2 and "unknown cache area 'everything'" in bad.stderr
    assert "Traceback" not in bad.stderr
