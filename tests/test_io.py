"""Atomic writes (docsort.io): what a replaced output may be, what a killed run leaves behind,
links, devices and FIFOs written in place, permissions, and paths that cannot be written."""

from __future__ import annotations

import errno
import os
import signal
import stat
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from docsort import io
from docsort.errors import DocsortError
from docsort.io import atomic_dir, check_replaceable, write_text


def is_model(path: Path) -> bool:
    return (path / "docsort.yaml").is_file()


def write_model(path: Path, version: str) -> None:
    """A stand-in model folder: a manifest and a weights file that name their version."""
    with atomic_dir(path, replaces=is_model, what="a docsort model") as tmp:
        (tmp / "weights.bin").write_text(version)
        (tmp / "docsort.yaml").write_text(f"version: {version}\n")


def model_version(path: Path) -> str:
    """The version of a complete stand-in model (both files present and agreeing)."""
    manifest = (path / "docsort.yaml").read_text()
    weights = (path / "weights.bin").read_text()
    assert manifest == f"version: {weights}\n", (manifest, weights)
    return weights


def hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def dead_pid() -> int:
    """The pid of a process that has exited."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def run_python(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


# --------------------------------------------------------------------- what may be replaced


def test_a_folder_that_is_not_a_model_is_never_replaced(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "src").mkdir(parents=True)
    (project / "notes.txt").write_text("my notes")
    (project / "src" / "main.py").write_text("print('hi')")
    with pytest.raises(DocsortError) as caught:
        write_model(project, "1")
    assert str(caught.value) == (
        f"'{project}' exists and is not a docsort model (use an empty or new path)"
    )
    assert (project / "notes.txt").read_text() == "my notes"
    assert (project / "src" / "main.py").read_text() == "print('hi')"
    assert sorted(p.name for p in project.iterdir()) == ["notes.txt", "src"]
    assert hidden(tmp_path) == []


def test_a_file_is_never_replaced_by_a_folder(tmp_path: Path) -> None:
    data = tmp_path / "mydata.csv"
    data.write_text("text,label\n")
    with pytest.raises(DocsortError, match="is not a docsort model"):
        write_model(data, "1")
    assert data.read_text() == "text,label\n"
    # not even a folder the program owns (a cache: replaces=None) replaces a file
    with pytest.raises(DocsortError, match="exists and is not a folder"), atomic_dir(data):
        pass
    assert data.read_text() == "text,label\n"


def test_a_model_and_an_empty_folder_are_replaced(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    write_model(empty, "1")
    assert model_version(empty) == "1"
    write_model(empty, "2")
    assert model_version(empty) == "2"
    assert hidden(tmp_path) == []


def test_a_plain_output_folder_is_swapped_in_whole(tmp_path: Path) -> None:
    """An eval report folder: replaced only when it is a report, and only once complete."""
    report = tmp_path / "report"

    def is_report(p: Path) -> bool:
        return (p / "metrics.json").is_file()

    for run in ("1", "2"):
        with (
            pytest.raises(KeyboardInterrupt),
            atomic_dir(report, replaces=is_report, what="a docsort report") as tmp,
        ):
            (tmp / "metrics.json").write_text(run)
            raise KeyboardInterrupt  # interrupted before report.md
        assert not report.exists() or (report / "report.md").is_file()
        with atomic_dir(report, replaces=is_report, what="a docsort report") as tmp:
            (tmp / "metrics.json").write_text(run)
            (tmp / "report.md").write_text(run)
        assert sorted(p.name for p in report.iterdir()) == ["metrics.json", "report.md"]
    assert (report / "report.md").read_text() == "2"
    (report / "metrics.json").unlink()
    with pytest.raises(DocsortError, match="is not a docsort report"):
        check_replaceable(report, is_report, "a docsort report")
    assert hidden(tmp_path) == []


# --------------------------------------------------------------------- crash-safe swap


def test_folders_are_exchanged_atomically_here(tmp_path: Path) -> None:
    """On Linux file systems that support it, the swap is one renameat2 exchange."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "in-a").touch()
    if not io._exchange(tmp_path / "a", tmp_path / "b"):
        pytest.skip("this file system cannot exchange folders")
    assert (tmp_path / "b" / "in-a").exists() and not (tmp_path / "a" / "in-a").exists()


CRASH = """
    import os, signal
    from pathlib import Path
    from docsort import io
    {patch}

    def is_model(p):
        return (p / "docsort.yaml").is_file()

    with io.atomic_dir(Path("model"), replaces=is_model) as tmp:
        (tmp / "weights.bin").write_text("2")
        (tmp / "docsort.yaml").write_text("version: 2\\n")
"""
KILL = "os.kill(os.getpid(), signal.SIGKILL)"


def test_killed_right_after_the_exchange_leaves_the_new_model(tmp_path: Path) -> None:
    write_model(tmp_path / "model", "1")
    patch = f"""
    real = io._exchange
    def exchange_then_die(a, b):
        real(a, b)
        {KILL}
    io._exchange = exchange_then_die
    """
    result = run_python(textwrap.dedent(CRASH).format(patch=textwrap.dedent(patch)), tmp_path)
    assert result.returncode == -signal.SIGKILL, result.stderr
    assert model_version(tmp_path / "model") == "2"
    assert len(hidden(tmp_path)) == 1  # the old model, in the killed run's temporary folder
    write_model(tmp_path / "model", "3")
    assert model_version(tmp_path / "model") == "3"
    assert hidden(tmp_path) == []


def test_killed_between_the_two_renames_the_old_model_comes_back(tmp_path: Path) -> None:
    """Without an exchange (other systems): killed with the old model moved aside and the new
    one not in place yet; the next write puts the old one back before doing anything."""
    write_model(tmp_path / "model", "1")
    patch = f"""
    io._exchange = lambda a, b: False
    io._after_move_aside = lambda: {KILL}
    """
    result = run_python(textwrap.dedent(CRASH).format(patch=textwrap.dedent(patch)), tmp_path)
    assert result.returncode == -signal.SIGKILL, result.stderr
    assert not (tmp_path / "model").exists()
    assert len(hidden(tmp_path)) == 2  # the old model moved aside, the new one unfinished
    with atomic_dir(tmp_path / "model", replaces=is_model) as tmp:
        assert model_version(tmp_path / "model") == "1"  # back before the new one is written
        (tmp / "weights.bin").write_text("3")
        (tmp / "docsort.yaml").write_text("version: 3\n")
    assert model_version(tmp_path / "model") == "3"
    assert hidden(tmp_path) == []


def test_an_error_between_the_two_renames_puts_the_old_model_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_model(tmp_path / "model", "1")
    monkeypatch.setattr(io, "_exchange", lambda a, b: False)
    real_replace = os.replace
    calls: list[object] = []

    def replace_once(src: object, dst: object) -> None:
        calls.append(src)
        if len(calls) == 2:
            raise OSError(errno.EIO, "simulated failure")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace_once)
    with pytest.raises(OSError, match="simulated"):
        write_model(tmp_path / "model", "2")
    monkeypatch.setattr(os, "replace", real_replace)
    assert model_version(tmp_path / "model") == "1"
    assert hidden(tmp_path) == []


def test_a_crash_left_by_the_old_swap_is_recovered(tmp_path: Path) -> None:
    """Earlier versions moved the old model to ``.NAME.old``; a kill then left nothing."""
    old = tmp_path / ".model.old"
    old.mkdir()
    (old / "weights.bin").write_text("1")
    (old / "docsort.yaml").write_text("version: 1\n")
    with pytest.raises(KeyboardInterrupt), atomic_dir(tmp_path / "model", replaces=is_model):
        assert model_version(tmp_path / "model") == "1"
        raise KeyboardInterrupt
    assert model_version(tmp_path / "model") == "1"
    assert hidden(tmp_path) == []


# --------------------------------------------------------------------- leftovers of killed runs


def test_leftovers_of_dead_runs_are_removed_on_the_next_write(tmp_path: Path) -> None:
    dead = dead_pid()
    (tmp_path / f".out.json.{dead}-0123abcd.tmp").touch()
    (tmp_path / f".model.{dead}-89abcdef.tmp").mkdir()
    (tmp_path / f".model.{dead}-89abcdef.tmp" / "weights.bin").touch()
    (tmp_path / f".model.{dead}-89abcdef.old").mkdir()  # model exists: a stale old copy
    kept = [
        f".out.json.{os.getpid()}-0123abcd.tmp",  # a live process's (ours)
        f".other.json.{dead}-0123abcd.tmp",  # another output's
        f".out.json.v2.{dead}-0123abcd.tmp",  # out.json.v2's, not out.json's
        ".out.json.backup.tmp",  # not a name docsort makes
        f".out.json.{dead}-0123abcd.tmp.keep",
    ]
    for name in kept:
        (tmp_path / name).touch()
    write_model(tmp_path / "model", "1")
    write_text(tmp_path / "out.json", "{}")
    write_model(tmp_path / "model", "2")
    assert hidden(tmp_path) == sorted(kept)


def test_a_sigkilled_write_is_cleaned_up_by_the_next(tmp_path: Path) -> None:
    code = f"""
    import os, signal
    from docsort.io import atomic_path
    with atomic_path("preds.jsonl") as tmp:
        tmp.write_text("half")
        {KILL}
    """
    result = run_python(code, tmp_path)
    assert result.returncode == -signal.SIGKILL, result.stderr
    assert len(hidden(tmp_path)) == 1
    write_text(tmp_path / "preds.jsonl", "whole\n")
    assert hidden(tmp_path) == []
    assert (tmp_path / "preds.jsonl").read_text() == "whole\n"


@pytest.mark.parametrize("kind", ["file", "folder"])
def test_sigterm_removes_the_temporary_output(tmp_path: Path, kind: str) -> None:
    code = f"""
    import os, signal, time
    from docsort.io import atomic_dir, atomic_path, install_termination_handler
    install_termination_handler()
    with {"atomic_path" if kind == "file" else "atomic_dir"}("out") as tmp:
        {"tmp.write_text('half')" if kind == "file" else "(tmp / 'weights.bin').touch()"}
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(30)
    """
    result = run_python(code, tmp_path)
    assert result.returncode == 143, result.stderr
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------- links, devices, FIFOs


def test_a_symlink_is_written_through(tmp_path: Path) -> None:
    target = tmp_path / "real" / "preds.jsonl"
    target.parent.mkdir()
    target.write_text("old\n")
    link = tmp_path / "latest.jsonl"
    link.symlink_to(target)
    write_text(link, "new\n")
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_text() == "new\n"
    assert hidden(tmp_path) == [] and hidden(target.parent) == []


def test_a_symlinked_model_folder_is_replaced_behind_the_link(tmp_path: Path) -> None:
    write_model(tmp_path / "v1", "1")
    link = tmp_path / "current"
    link.symlink_to(tmp_path / "v1")
    write_model(link, "2")
    assert link.is_symlink() and model_version(tmp_path / "v1") == "2"
    assert hidden(tmp_path) == []


def test_a_link_to_a_device_is_written_into(tmp_path: Path) -> None:
    link = tmp_path / "null"
    link.symlink_to(os.devnull)
    write_text(link, "discarded\n")
    assert link.is_symlink()
    assert stat.S_ISCHR(os.stat(link).st_mode)
    assert hidden(tmp_path) == []


def test_a_fifo_is_written_into(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_text()), daemon=True)
    reader.start()
    write_text(fifo, "through the pipe\n")
    reader.join(timeout=10)
    assert got == ["through the pipe\n"]
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert hidden(tmp_path) == []


def test_a_file_descriptor_path_is_written_into() -> None:
    read_end, write_end = os.pipe()
    with os.fdopen(read_end) as reader:
        try:
            write_text(f"/dev/fd/{write_end}", "to the descriptor\n")
        finally:
            os.close(write_end)
        assert reader.read() == "to the descriptor\n"


# --------------------------------------------------------------------- permissions


def test_new_outputs_follow_the_umask(tmp_path: Path, umask_022: None) -> None:
    write_text(tmp_path / "preds.jsonl", "x\n")
    write_model(tmp_path / "model", "1")
    assert stat.S_IMODE(os.stat(tmp_path / "preds.jsonl").st_mode) == 0o644
    assert stat.S_IMODE(os.stat(tmp_path / "model").st_mode) == 0o755
    assert stat.S_IMODE(os.stat(tmp_path / "model" / "docsort.yaml").st_mode) == 0o644


def test_a_replaced_file_keeps_its_mode(tmp_path: Path, umask_022: None) -> None:
    for mode in (0o664, 0o600):
        out = tmp_path / f"preds-{mode:o}.jsonl"
        out.write_text("old\n")
        out.chmod(mode)
        write_text(out, "new\n")
        assert out.read_text() == "new\n"
        assert stat.S_IMODE(os.stat(out).st_mode) == mode


# --------------------------------------------------------------------- paths that cannot be written


def test_dot_is_the_current_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "notes.txt").touch()
    monkeypatch.chdir(tmp_path / "work")
    with pytest.raises(DocsortError, match=r"^'\.' exists and is not a docsort model"):
        write_model(Path("."), "1")
    with pytest.raises(DocsortError, match=r"^cannot write '\.': it is a folder"):
        write_text(".", "x")
    with pytest.raises(DocsortError, match=r"^cannot write '/': give a file or folder name"):
        check_replaceable("/")
    assert sorted(p.name for p in (tmp_path / "work").iterdir()) == ["notes.txt"]


def test_a_model_in_the_current_folder_can_be_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_model(tmp_path / "model", "1")
    monkeypatch.chdir(tmp_path / "model")
    write_model(Path("."), "2")
    assert model_version(tmp_path / "model") == "2"


@pytest.mark.parametrize(
    "relative", ["a" * 256 + "/model", "/".join(["b" * 250] * 17) + "/model"], ids=["name", "path"]
)
def test_too_long_names_are_one_line_errors(tmp_path: Path, relative: str) -> None:
    out = tmp_path / relative
    for write in (lambda: write_model(out, "1"), lambda: write_text(out, "x")):
        with pytest.raises(DocsortError) as caught:
            write()
        assert str(caught.value) == (
            f"cannot write '{out}': the name is too long (at most 255 bytes per name, 4096 per "
            "path)"
        )


def test_a_long_name_that_fits_is_written(tmp_path: Path) -> None:
    """The temporary name must not be what overflows: a 255-byte name is legal."""
    out = tmp_path / ("c" * 255)
    write_text(out, "x")
    write_model(tmp_path / ("d" * 255), "1")
    assert out.read_text() == "x" and model_version(tmp_path / ("d" * 255)) == "1"


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (errno.EACCES, "permission denied (choose a folder you can write to)"),
        (errno.EROFS, "the file system is read-only (choose a writable folder)"),
    ],
)
def test_unwritable_folders_are_one_line_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int, reason: str
) -> None:
    """Simulated: this suite may run as root, whom permissions do not stop."""
    real_open, real_mkdir = os.open, os.mkdir

    def refuse(real):  # type: ignore[no-untyped-def]
        def call(path, *args, **kwargs):  # type: ignore[no-untyped-def]
            if str(path).startswith(str(tmp_path)):
                raise OSError(code, os.strerror(code), str(path))
            return real(path, *args, **kwargs)

        return call

    monkeypatch.setattr(os, "open", refuse(real_open))
    monkeypatch.setattr(os, "mkdir", refuse(real_mkdir))
    for out, write in (
        (tmp_path / "ro" / "model", write_model),
        (tmp_path / "preds.jsonl", write_text),
    ):
        with pytest.raises(DocsortError) as caught:
            write(out, "1")
        assert str(caught.value) == f"cannot write '{out}': {reason}"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_folder_is_a_one_line_error(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir(mode=0o555)
    try:
        with pytest.raises(DocsortError) as caught:
            write_text(folder / "preds.jsonl", "x")
    finally:
        folder.chmod(0o755)
    assert str(caught.value) == (
        f"cannot write '{folder / 'preds.jsonl'}': permission denied (choose a folder you can "
        "write to)"
    )


def test_a_newline_in_a_path_stays_on_one_line(tmp_path: Path) -> None:
    folder = tmp_path / "two\nlines"
    folder.mkdir()
    (folder / "notes.txt").touch()
    with pytest.raises(DocsortError) as caught:
        write_model(folder, "1")
    assert "\n" not in str(caught.value) and "two\\nlines" in str(caught.value)
