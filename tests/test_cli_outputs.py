"""What ``docsort`` may overwrite and what it leaves behind: a mistyped ``--out`` never deletes
a user's files, outputs follow the umask, links/FIFOs are written through, killed runs leave
no debris for long."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from tests.cli_runner import run_cli

ENV = {**os.environ, "DOCSORT_NO_PROGRESS": "1", "COLUMNS": "200"}
NOT_A_MODEL = "exists and is not a docsort model (use an empty or new path)"


def docsort(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``docsort ARGS`` in a child process run from ``cwd`` (forked from the tests' CLI zygote:
    tests/cli_runner.py)."""
    return run_cli(*args, cwd=cwd)


def python(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the CLI's ``main`` in a child Python after ``code`` set a trap."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=ENV,
        timeout=300,
    )


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def tree(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): p.read_text() for p in sorted(folder.rglob("*")) if p.is_file()
    }


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """A folder holding ``good.csv``: 40 rows, two labels, so tfidf trains in a blink."""
    rows = ["text,label"]
    for i in range(20):
        rows.append(f"the cat {i} purrs and sleeps on the warm sofa,pets")
        rows.append(f"shares of company {i} rose as the market rallied,finance")
    (tmp_path / "good.csv").write_text("\n".join(rows) + "\n")
    return tmp_path


def train(work: Path, out: str) -> subprocess.CompletedProcess[str]:
    return docsort("train", "good.csv", "--out", out, cwd=work)


# --------------------------------------------------------------------- what --out may replace


def test_train_never_deletes_a_folder_that_is_not_a_model(work: Path) -> None:
    project = work / "project"
    (project / "src").mkdir(parents=True)
    (project / "notes.txt").write_text("my notes\n")
    (project / "src" / "main.py").write_text("print('hello')\n")
    before = tree(project)
    line = one_error_line(train(work, "project"))
    assert line == f"error: 'project' {NOT_A_MODEL}"
    assert tree(project) == before
    assert hidden(work) == [] and hidden(project) == []


def test_train_never_turns_its_data_into_a_model(work: Path) -> None:
    data = (work / "good.csv").read_text()
    line = one_error_line(train(work, "good.csv"))
    assert line == f"error: 'good.csv' {NOT_A_MODEL}"
    assert (work / "good.csv").is_file() and (work / "good.csv").read_text() == data


def test_train_out_dot_in_a_project_is_refused(work: Path) -> None:
    project = work / "project"
    project.mkdir()
    (project / "notes.txt").write_text("my notes\n")
    (work / "good.csv").rename(project / "good.csv")
    line = one_error_line(train(project, "."))
    assert line == f"error: '.' {NOT_A_MODEL}"
    assert sorted(p.name for p in project.iterdir()) == ["good.csv", "notes.txt"]


def test_train_fills_an_empty_folder_and_replaces_a_model(work: Path) -> None:
    (work / "model").mkdir()
    for _ in range(2):
        result = train(work, "model")
        assert result.returncode == 0, result.stderr
        assert (work / "model" / "docsort.yaml").is_file()
    result = docsort("predict", "model", "good.csv", "--out", "preds.jsonl", cwd=work)
    assert result.returncode == 0, result.stderr
    assert len((work / "preds.jsonl").read_text().splitlines()) == 40
    assert hidden(work) == []


def test_a_model_folder_inside_an_ensemble_is_guarded_too(work: Path) -> None:
    """The ensemble saves through Classifier.save as well: its --out is guarded the same way."""
    assert train(work, "a").returncode == 0
    assert train(work, "b").returncode == 0
    (work / "mine").mkdir()
    (work / "mine" / "keep.txt").write_text("keep\n")
    result = docsort("ensemble", "a", "b", "--out", "mine", cwd=work)
    assert one_error_line(result) == f"error: 'mine' {NOT_A_MODEL}"
    assert tree(work / "mine") == {"keep.txt": "keep\n"}


def test_a_too_long_out_is_a_one_line_error(work: Path) -> None:
    line = one_error_line(train(work, "m" * 300))
    assert line.startswith("error: cannot write 'mmm") and "the name is too long" in line


def test_predict_out_that_is_a_folder_is_a_one_line_error(work: Path) -> None:
    assert train(work, "model").returncode == 0
    line = one_error_line(docsort("predict", "model", "good.csv", "--out", ".", cwd=work))
    assert line == "error: cannot write '.': it is a folder (give a file name)"


# --------------------------------------------------------------------- links, FIFOs, permissions


def test_predict_writes_through_a_symlink_and_into_a_fifo(work: Path) -> None:
    assert train(work, "model").returncode == 0
    (work / "runs").mkdir()
    (work / "runs" / "today.jsonl").write_text("old\n")
    (work / "latest.jsonl").symlink_to(work / "runs" / "today.jsonl")
    result = docsort("predict", "model", "good.csv", "--out", "latest.jsonl", cwd=work)
    assert result.returncode == 0, result.stderr
    assert (work / "latest.jsonl").is_symlink()
    assert len((work / "runs" / "today.jsonl").read_text().splitlines()) == 40

    os.mkfifo(work / "pipe")
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.append((work / "pipe").read_text()), daemon=True)
    reader.start()
    result = docsort("predict", "model", "good.csv", "--out", "pipe", cwd=work)
    reader.join(timeout=60)
    assert result.returncode == 0, result.stderr
    assert len(got) == 1 and len(got[0].splitlines()) == 40
    json.loads(got[0].splitlines()[0])
    assert stat.S_ISFIFO(os.lstat(work / "pipe").st_mode)
    assert hidden(work) == [] and hidden(work / "runs") == []


def test_outputs_follow_the_umask_and_keep_an_existing_mode(work: Path) -> None:
    old = os.umask(0o022)  # the child processes inherit it
    try:
        assert train(work, "model").returncode == 0
        assert docsort("predict", "model", "good.csv", "--out", "p.jsonl", cwd=work).returncode == 0
        (work / "shared.jsonl").write_text("")
        (work / "shared.jsonl").chmod(0o664)
        assert (
            docsort("predict", "model", "good.csv", "--out", "shared.jsonl", cwd=work).returncode
            == 0
        )
    finally:
        os.umask(old)
    model = work / "model"
    assert stat.S_IMODE(model.stat().st_mode) == 0o755
    for path in model.rglob("*"):
        assert stat.S_IMODE(path.stat().st_mode) == (0o755 if path.is_dir() else 0o644), path
    assert stat.S_IMODE((work / "p.jsonl").stat().st_mode) == 0o644
    assert stat.S_IMODE((work / "shared.jsonl").stat().st_mode) == 0o664


# --------------------------------------------------------------------- interrupted runs


def test_leftovers_of_a_killed_train_are_removed_by_the_next(work: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (work / f".model.{dead.pid}-0123abcd.tmp").mkdir()
    (work / f".model.{dead.pid}-0123abcd.tmp" / "half.bin").write_text("x")
    (work / f".preds.jsonl.{dead.pid}-89abcdef.tmp").write_text("half")
    assert train(work, "model").returncode == 0
    assert hidden(work) == [f".preds.jsonl.{dead.pid}-89abcdef.tmp"]  # not model's
    assert docsort("predict", "model", "good.csv", "--out", "preds.jsonl", cwd=work).returncode == 0
    assert hidden(work) == []


def test_sigterm_while_writing_leaves_no_temporary_file(work: Path) -> None:
    assert train(work, "model").returncode == 0
    code = """
    import os, signal, sys, time

    def terminated_while_renaming(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(30)

    os.replace = terminated_while_renaming
    sys.argv = ["docsort", "predict", "model", "good.csv", "--out", "preds.jsonl"]
    from docsort.cli import main
    main()
    """
    result = python(code, work)
    assert result.returncode == 128 + signal.SIGTERM, result.stderr
    assert not (work / "preds.jsonl").exists()
    assert hidden(work) == []


def test_a_model_killed_during_the_swap_still_loads(work: Path) -> None:
    """Killed right after the old and new model folders were exchanged: the path holds the new,
    complete model; the old one, left in a temporary folder, goes on the next write."""
    assert train(work, "model").returncode == 0
    code = """
    import os, signal, sys
    from docsort import io

    real = io._exchange
    def exchange_then_die(a, b):
        real(a, b)
        os.kill(os.getpid(), signal.SIGKILL)

    io._exchange = exchange_then_die
    sys.argv = ["docsort", "train", "good.csv", "--out", "model"]
    from docsort.cli import main
    main()
    """
    result = python(code, work)
    assert result.returncode == -signal.SIGKILL, result.stderr
    assert len(hidden(work)) == 1
    result = docsort("predict", "model", "good.csv", "--out", "preds.jsonl", cwd=work)
    assert result.returncode == 0, result.stderr
    assert train(work, "model").returncode == 0
    assert hidden(work) == []
