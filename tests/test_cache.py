"""The cache folder stays in bounds: embeddings are trimmed least recently used first, and
``docsort cache`` lists and clears areas without touching the others. Entries (hub models,
built-in sets) are built once under a lock, swapped in whole and stamped."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from docsort import cache
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
    assert sizes == {
        "models": (1, 2000),
        "datasets": (0, 0),
        "embeddings": (0, 0),
        "registry": (0, 0),
    }
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


# --------------------------------------------------------------------------- built entries

STAMP = {"source": "pkg==1.0", "parser_version": 1}


def _counting_build(calls: list[str], text: str = "built"):
    def build(folder: Path) -> None:
        calls.append(folder.name)
        (folder / "data.txt").write_text(text)
        (folder / "sub").mkdir()
        (folder / "sub" / "more.txt").write_text("more")

    return build


def _area_listing(tmp_path: Path, area: str = "datasets") -> list[str]:
    return sorted(p.name for p in (tmp_path / area).iterdir())


def test_an_entry_is_built_once_then_found(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("DOCSORT_CACHE", str(tmp_path))
    calls: list[str] = []
    assert cache.lookup("datasets", "set", STAMP) is None
    path = cache.entry("datasets", "set", STAMP, _counting_build(calls))
    assert path == tmp_path / "datasets" / "set" and (path / "sub" / "more.txt").is_file()
    assert cache.entry("datasets", "set", dict(STAMP), _counting_build(calls)) == path
    assert len(calls) == 1 and calls[0].startswith(".set.")  # built in a temporary folder
    assert cache.lookup("datasets", "set", STAMP) == path
    stamp = json.loads((path / cache.STAMP).read_text())
    assert stamp == {**STAMP, "files": {"data.txt": 5, "sub/more.txt": 4}}
    assert _area_listing(tmp_path) == [".set.lock", "set"]  # no temporary folder left
    # a key may name a subfolder; it may not leave the area
    nested = cache.entry("datasets", "_downloads/pkg", STAMP, _counting_build(calls))
    assert nested == tmp_path / "datasets" / "_downloads" / "pkg"
    for bad in ("../models/x", "/abs", "", "a/../b"):
        with pytest.raises(DocsortError, match="a cache key is a relative name"):
            cache.entry("datasets", bad, STAMP, _counting_build(calls))


def test_a_stale_stamp_or_a_damaged_file_rebuilds(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("DOCSORT_CACHE", str(tmp_path))
    calls: list[str] = []
    path = cache.entry("datasets", "set", STAMP, _counting_build(calls, "old"))
    newer = {**STAMP, "parser_version": 2}
    assert cache.lookup("datasets", "set", newer) is None
    assert cache.entry("datasets", "set", newer, _counting_build(calls, "new")) == path
    assert len(calls) == 2 and (path / "data.txt").read_text() == "new"
    assert cache.entry("datasets", "set", newer, _counting_build(calls)) == path
    assert len(calls) == 2
    (path / "sub" / "more.txt").write_text("damaged")  # another size: found and rebuilt
    assert cache.lookup("datasets", "set", newer) is None
    cache.entry("datasets", "set", newer, _counting_build(calls))
    assert len(calls) == 3 and (path / "sub" / "more.txt").read_text() == "more"
    (path / cache.STAMP).write_text("{not json")  # an unreadable stamp is no stamp
    assert cache.lookup("datasets", "set", newer) is None
    # a folder stamped by the hub before the shared mechanism (same format) is still found
    (path / cache.STAMP).rename(path / ".docsort-model.json")
    (path / ".docsort-model.json").write_text(
        json.dumps({**newer, "files": {"data.txt": 5, "sub/more.txt": 4}})
    )
    assert cache.lookup("datasets", "set", newer) == path


def test_a_failed_build_leaves_no_entry_and_no_temporary_folder(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("DOCSORT_CACHE", str(tmp_path))

    def failing(folder: Path) -> None:
        (folder / "half.txt").write_text("half")
        raise DocsortError("the registry is unreachable")

    with pytest.raises(DocsortError, match="unreachable"):
        cache.entry("datasets", "set", STAMP, failing)
    assert _area_listing(tmp_path) == [".set.lock"]
    with pytest.raises(DocsortError, match="wrote no files"):  # else it would rebuild forever
        cache.entry("datasets", "set", STAMP, lambda folder: None)
    assert _area_listing(tmp_path) == [".set.lock"]

    calls: list[str] = []
    path = cache.entry("datasets", "set", STAMP, _counting_build(calls, "good"))
    with pytest.raises(DocsortError):  # a failed rebuild keeps the entry there was
        cache.entry("datasets", "set", {**STAMP, "parser_version": 2}, failing)
    assert (path / "data.txt").read_text() == "good" and not (path / "half.txt").exists()
    assert cache.lookup("datasets", "set", STAMP) == path
    assert _area_listing(tmp_path) == [".set.lock", "set"]


@pytest.mark.parametrize("umask", [0o002, 0o027])
def test_entry_files_get_the_umask_permissions(tmp_path: Path, monkeypatch, umask: int) -> None:
    """Not mkdtemp's owner-only folder, nor the owner-only files some writers make (safetensors):
    other users of a shared cache read what the umask allows."""
    monkeypatch.setenv("DOCSORT_CACHE", str(tmp_path))

    def build(folder: Path) -> None:
        _counting_build([])(folder)
        os.close(os.open(folder / "weights.bin", os.O_WRONLY | os.O_CREAT, 0o600))
        os.chmod(folder / "weights.bin", 0o600)  # whatever the umask, as safetensors does

    old = os.umask(umask)
    try:
        path = cache.entry("models", "m", STAMP, build)
    finally:
        os.umask(old)
    modes = {
        p.relative_to(path).as_posix(): stat.S_IMODE(p.stat().st_mode)
        for p in [path, *path.rglob("*")]
    }
    folder, file = 0o777 & ~umask, 0o666 & ~umask
    assert modes == {
        ".": folder,
        "sub": folder,
        "data.txt": file,
        "sub/more.txt": file,
        "weights.bin": file,
        cache.STAMP: file,
    }


def _python(code: str, cache_dir: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "DOCSORT_CACHE": str(cache_dir)}
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


BUILD_AFTER_BARRIER = """
    import os, sys, time
    from pathlib import Path
    from docsort import cache

    me, barrier = sys.argv[1], Path(sys.argv[2])
    (barrier / me).touch()
    while len(list(barrier.iterdir())) < 2:  # both processes are here: race for the entry
        time.sleep(0.01)

    def build(folder):
        with open(barrier.parent / "builds.txt", "a") as log:
            print(me, file=log)
        time.sleep(1.0)  # long enough for the other process to look and wait
        (folder / "who.txt").write_text(me)

    print(cache.entry("models", "shared", {"v": 1}, build))
"""


def test_two_processes_build_one_key_once(tmp_path: Path) -> None:
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    children = [_python(BUILD_AFTER_BARRIER, tmp_path / "c", me, str(barrier)) for me in "ab"]
    results = [child.communicate(timeout=120) for child in children]
    assert [child.returncode for child in children] == [0, 0], results
    builders = (tmp_path / "builds.txt").read_text().split()
    assert len(builders) == 1  # the other one waited, then found it built
    entry = tmp_path / "c" / "models" / "shared"
    assert [out.strip() for out, _ in results] == [str(entry)] * 2
    assert (entry / "who.txt").read_text() == builders[0]
    assert sorted(p.name for p in entry.parent.iterdir()) == [".shared.lock", "shared"]


KILLED_MID_BUILD = """
    import os, signal
    from docsort import cache

    def build(folder):
        (folder / "half.bin").write_bytes(b"x" * 1_000_000)
        os.kill(os.getpid(), signal.SIGKILL)  # no finally block, no cleanup

    cache.entry("models", "big", {"v": 1}, build)
"""


def test_a_killed_build_is_cleaned_up_by_the_next_build(tmp_path: Path, monkeypatch) -> None:
    child = _python(KILLED_MID_BUILD, tmp_path)
    _, err = child.communicate(timeout=120)
    assert child.returncode == -signal.SIGKILL, err
    models = tmp_path / "models"
    (leftover,) = [p for p in models.iterdir() if p.name.endswith(".tmp")]
    assert leftover.name.startswith(f".big.{child.pid}-") and (leftover / "half.bin").is_file()
    assert not (models / "big").exists()

    monkeypatch.setenv("DOCSORT_CACHE", str(tmp_path))
    assert cache.lookup("models", "big", {"v": 1}) is None  # a leftover is not an entry
    calls: list[str] = []
    path = cache.entry("models", "big", {"v": 1}, _counting_build(calls))  # lock was released
    assert calls and (path / "data.txt").is_file()
    assert sorted(p.name for p in models.iterdir()) == [".big.lock", "big"]
