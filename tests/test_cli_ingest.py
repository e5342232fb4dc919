"""``docsort ingest`` as a user runs it: a labelled folder of mixed documents with one bad file
exits 3 (partial success) and lists the file with its reason; the table it writes trains a
model with ``docsort train`` as it is; with --redact no e-mail address reaches the table."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from docsort.cli import app, main
from tests.conftest import run_cli
from tests.ingest import samples

TOPICS = {
    "hydraulics": "pump valve pressure hydraulic cylinder seal flow",
    "finance": "invoice payment budget account ledger balance audit",
}


def labelled_inbox(root: Path) -> Path:
    """Two label folders of a PDF, a DOCX, an HTML page and a text file each, plus a broken
    PDF: nine files, eight readable."""
    inbox = root / "inbox"
    for label, words in TOPICS.items():
        folder = inbox / label
        folder.mkdir(parents=True)
        text = [f"{words} report {i}, written by ana{i}@example.com" for i in range(4)]
        samples.pdf(folder / "doc0.pdf", [text[0]])
        samples.docx(folder / "doc1.docx", text[1])
        samples.html(folder / "doc2.html", text[2])
        (folder / "doc3.txt").write_text(text[3], encoding="utf-8")
    samples.corrupt_pdf(inbox / "finance" / "broken.pdf")
    return inbox


def test_ingest_exits_3_listing_the_bad_file_and_train_reads_the_table(tmp_path: Path) -> None:
    inbox, out = labelled_inbox(tmp_path), tmp_path / "docs.parquet"
    runner = CliRunner()
    done = runner.invoke(app, ["ingest", str(inbox), "--out", str(out), "--labels-from-folders"])
    assert done.exit_code == 3, done.output
    assert "broken.pdf: a damaged PDF (PDFium: Data format error)" in done.output
    assert "ingested 9 file(s): 8 extracted, 1 failed, 0 already in docs.parquet" in done.output
    table = pd.read_parquet(out)
    assert sorted(table.label.unique()) == ["finance", "hydraulics"]
    assert set(table.type) == {"pdf", "docx", "html", "text"}
    trained = runner.invoke(app, ["train", str(out), "--out", str(tmp_path / "model")])
    assert trained.exit_code == 0, trained.output
    assert "trained tfidf on 8 documents, 2 labels" in trained.output
    assert "skipped 1 row(s)" in trained.output  # the broken file's row has no text


def test_ingest_help() -> None:
    shown = CliRunner().invoke(app, ["ingest", "--help"], env={"COLUMNS": "120"})
    assert shown.exit_code == 0
    for option in ("--labels-from-folders", "--workers", "--max-seconds", "--redact"):
        assert option in shown.output
    assert "Exit status: 0 every file read, 3 some could not be" in " ".join(shown.output.split())


def test_a_usage_error_is_one_line_and_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Through docsort's main, in this process (a fresh interpreter costs seconds)."""
    args = ["docsort", "ingest", str(tmp_path / "nope"), "--out", str(tmp_path / "d.parquet")]
    monkeypatch.setattr(sys, "argv", args)
    with pytest.raises(SystemExit) as stop:
        main()
    assert stop.value.code == 2
    assert capsys.readouterr().err.strip() == f"error: file not found: {tmp_path / 'nope'}"


@pytest.mark.slow
def test_the_whole_flow_as_a_user_runs_it(tmp_path: Path) -> None:
    """In child processes: ingest with --redact on two workers, rerun (nothing new), train."""
    inbox, out = labelled_inbox(tmp_path), tmp_path / "docs.parquet"
    args = ("ingest", str(inbox), "--out", str(out), "--labels-from-folders", "--workers", "2")
    first = run_cli(*args, "--redact", "replace")
    assert first.returncode == 3, first.stderr
    assert "broken.pdf: a damaged PDF" in first.stderr
    assert "8 extracted, 1 failed" in first.stdout and "redacted EMAIL_ADDRESS 8" in first.stdout
    assert not pd.read_parquet(out).text.str.contains("@example.com").any()
    again = run_cli(*args, "--redact", "replace")
    assert again.returncode == 3 and "9 already in docs.parquet" in again.stdout
    trained = run_cli("train", str(out), "--out", str(tmp_path / "model"))
    assert trained.returncode == 0, trained.stderr
