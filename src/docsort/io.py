"""Atomic file and directory writes, so an interrupted run never leaves half a file behind.

Outputs are written to a hidden temporary ``.NAME.<pid>-<random>.tmp`` beside the target and
renamed onto it at the end. The pid in the name lets a later write remove the leftovers of a
run that was killed (SIGKILL gives no chance to clean up). Paths the user cannot write become
a one-line ``DocsortError`` that quotes the path.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import re
import secrets
import shutil
import signal
import stat
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

from docsort.errors import DocsortError

# what the user should know about an OSError while preparing or committing a write
_REASONS = {
    errno.EACCES: "permission denied (choose a folder you can write to)",
    errno.EPERM: "permission denied (choose a folder you can write to)",
    errno.EROFS: "the file system is read-only (choose a writable folder)",
    errno.ENAMETOOLONG: "the name is too long (at most 255 bytes per name, 4096 per path)",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    # mkdir(parents=True) of a folder below a file says "exists" rather than "not a folder"
    errno.EEXIST: "a part of the path is a file, not a folder",
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "the disk quota is exhausted",
}
_DESCRIPTOR = re.compile(r"/dev/(fd/\d+|std(in|out|err))|/proc/(self|thread-self|\d+)/fd/\d+")


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; renamed onto ``path`` only if the block succeeds.

    A symlink is written through (its target is replaced, the link stays). A device, a FIFO
    or a ``/dev/fd/N`` is not a file that can be swapped: the block writes into it directly.
    A new file gets the umask's permissions, an existing one keeps its mode.
    """
    if _is_stream(path):
        yield Path(path)
        return
    with _user_errors(path):
        target = _target(path)
        if target.is_dir():
            raise DocsortError(f"cannot write {_q(path)}: it is a folder (give a file name)")
        target.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale(target)
        mode = target.stat().st_mode if target.exists() else None
        tmp = _new_temp(target, _create_file)
        if mode is not None:
            os.chmod(tmp, stat.S_IMODE(mode))
    try:
        yield tmp
        with _user_errors(path):
            os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | Path, data: Any) -> None:
    write_text(path, json.dumps(data, indent=2, ensure_ascii=False, default=_json_default) + "\n")


def write_yaml(path: str | Path, data: Any) -> None:
    write_text(path, yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


def _json_default(value: Any) -> Any:
    """Turn numpy scalars and arrays into plain JSON values."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"cannot serialise {type(value).__name__} to JSON")


@contextlib.contextmanager
def atomic_dir(
    path: str | Path,
    replaces: Callable[[Path], bool] | None = None,
    what: str = "a folder",
) -> Iterator[Path]:
    """Yield a temporary directory; it replaces ``path`` only when the block succeeds.

    ``replaces`` guards what may be overwritten, so a mistyped ``--out`` never deletes a user's
    files: an existing directory is replaced only if it is empty or ``replaces(path)`` is true
    (``None``: any directory, for folders the program owns such as caches); a file or other
    non-directory never is. Otherwise a ``DocsortError`` says "``path`` exists and is not
    ``what``". Models pass ``replaces=is_model_dir``; a report folder can pass e.g.
    ``lambda p: (p / "metrics.json").is_file()`` with ``what="a docsort report"``.

    The swap is crash-safe: on Linux the old and new directories are exchanged in one
    ``renameat2(RENAME_EXCHANGE)``, so ``path`` always holds a complete old or new folder.
    Where that is unsupported (other systems, some file systems) the old one is moved aside
    first, and a write after a crash between the two renames puts it back. New directories
    get the umask's permissions.
    """
    with _user_errors(path):
        target = _target(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        _restore_moved_aside(target)
        _remove_stale(target)
        check_replaceable(path, replaces, what)
        tmp = _new_temp(target, _create_dir)
    try:
        yield tmp
        with _user_errors(path):
            check_replaceable(path, replaces, what)
            if not target.is_dir():
                os.replace(tmp, target)
            elif not _exchange(tmp, target):
                aside = _temp_name(target, ".old")
                os.replace(target, aside)
                try:
                    _after_move_aside()
                    os.replace(tmp, target)
                except BaseException:
                    os.replace(aside, target)  # an error, not a crash: put the old one back
                    raise
                shutil.rmtree(aside, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def check_replaceable(
    path: str | Path, replaces: Callable[[Path], bool] | None = None, what: str = "a folder"
) -> None:
    """Raise ``DocsortError`` unless ``atomic_dir(path, replaces, what)`` may write ``path``:
    callers can check before a long run (training) instead of failing at its end."""
    target = _target(path)
    if not os.path.lexists(target):
        return
    if target.is_dir() and (replaces is None or not any(target.iterdir()) or replaces(target)):
        return
    raise DocsortError(f"{_q(path)} exists and is not {what} (use an empty or new path)")


def install_termination_handler() -> None:
    """Make SIGTERM end the program as Ctrl-C does, with ``SystemExit(143)``: ``finally``
    blocks run and remove temporary files. A second SIGTERM kills at once (default action)."""
    if threading.current_thread() is not threading.main_thread():
        return  # signal handlers can only be set from the main thread

    def terminate(signum: int, frame: Any) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, terminate)


# --------------------------------------------------------------------------- helpers


def _q(path: str | Path) -> str:
    """A path quoted for a message; escapes keep a newline in a name on one line."""
    return repr(str(path))


@contextlib.contextmanager
def _user_errors(path: str | Path) -> Iterator[None]:
    """OSErrors a user can fix (permissions, read-only, name too long) as one-line errors."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in _REASONS:
            raise
        raise DocsortError(f"cannot write {_q(path)}: {_REASONS[exc.errno]}") from None


def _is_stream(path: str | Path) -> bool:
    """A device, FIFO, socket or file descriptor: written in place, never renamed onto."""
    if _DESCRIPTOR.fullmatch(os.path.abspath(path)):
        return True
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def _target(path: str | Path) -> Path:
    """The absolute path to replace: symlinks followed, so a link keeps pointing at the output;
    ``.`` gets a name (its folder's)."""
    target = Path(os.path.realpath(path))
    if not target.name:
        raise DocsortError(f"cannot write {_q(path)}: give a file or folder name")
    return target


def _temp_name(target: Path, suffix: str = ".tmp") -> Path:
    """``.NAME.<pid>-<random><suffix>`` beside ``target``; NAME shortened so that the temporary
    name stays within the file system's 255 bytes when ``target``'s own name does."""
    name = os.fsdecode(os.fsencode(target.name)[:200])
    return target.with_name(f".{name}.{os.getpid()}-{secrets.token_hex(4)}{suffix}")


def _create_file(path: Path) -> None:
    """A new empty file with the umask's permissions (mkstemp's would be owner-only)."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))


def _create_dir(path: Path) -> None:
    """A new directory with the umask's permissions (mkdtemp's would be owner-only)."""
    os.mkdir(path, 0o777)


def _new_temp(target: Path, create: Callable[[Path], None]) -> Path:
    while True:
        tmp = _temp_name(target)
        try:
            create(tmp)
            return tmp
        except FileExistsError:
            continue


def _leftovers(target: Path) -> Iterator[tuple[Path, str]]:
    """Temporaries (``.tmp``) and moved-aside old folders (``.old``) for ``target`` whose
    creating process is gone; ours or a live process's are still in use."""
    name = os.fsdecode(os.fsencode(target.name)[:200])
    pattern = re.compile(re.escape(f".{name}.") + r"(\d+)-[0-9a-f]+\.(tmp|old)")
    try:
        entries = list(target.parent.iterdir())
    except OSError:
        return
    for entry in entries:
        match = pattern.fullmatch(entry.name)
        if match and not _alive(int(match.group(1))):
            yield entry, match.group(2)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's live process
    return True


def _remove_stale(target: Path) -> None:
    """Delete what killed runs left beside ``target`` (never anything a live run still uses)."""
    for entry, _ in _leftovers(target):
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


def _restore_moved_aside(target: Path) -> None:
    """After a crash between the two renames of the fallback swap, ``target`` is missing and
    its old folder waits beside it: put it back before anything else happens."""
    if os.path.lexists(target):
        return
    legacy = target.with_name(f".{target.name}.old")  # the name earlier versions used
    candidates = [entry for entry, kind in _leftovers(target) if kind == "old"] + [legacy]
    for entry in candidates:
        if os.path.isdir(entry) and not os.path.islink(entry):  # False for a too-long name
            os.replace(entry, target)
            return


def _after_move_aside() -> None:
    """Between the fallback swap's two renames; tests replace it to simulate a crash there."""


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap two directories atomically (Linux ``renameat2``); False where it is unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False  # a C library without renameat2 (glibc before 2.28, musl)
    renameat2.argtypes = [
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_uint,
    ]
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
        return False  # the file system cannot exchange: fall back to two renames
    raise OSError(code, os.strerror(code), str(b))
