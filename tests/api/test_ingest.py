"""``docsort.api.ingest``: a folder of every type plus the hostile files ingests with every
good file extracted and every bad one listed with its reason; reruns resume by content hash;
duplicates are written once; the output is read back by ``docsort train``'s reader."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from docsort.api.ingest import IngestRequest, run_ingest, walk
from docsort.errors import DocsortError
from tests.ingest import samples

GOOD = {
    "invoices/report.pdf": "pdf",
    "invoices/memo.docx": "docx",
    "invoices/book.xlsx": "xlsx",
    "invoices/sheet.ods": "ods",
    "invoices/old.xls": "xls",
    "invoices/notes.txt": "text",
    "letters/deck.pptx": "pptx",
    "letters/page.html": "html",
    "letters/readme.md": "md",
    "letters/letter.rtf": "rtf",
    "letters/mail.eml": "eml",
    "letters/outlook.msg": "msg",
    "letters/renamed.txt": "pdf",  # a PDF with the wrong extension
}
BAD = {
    "invoices/corrupt.pdf": "a damaged PDF (PDFium: Data format error)",
    "invoices/locked.pdf": "encrypted (password-protected PDF)",
    "letters/locked.docx": "encrypted (password-protected Office file): save it unprotected",
    "letters/empty.txt": "empty file",
    "letters/big.txt": "over the limit of 0.2 MB (--max-mb)",
}


@pytest.fixture(scope="module")
def inbox(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("inbox")
    inv, let = root / "invoices", root / "letters"
    inv.mkdir()
    let.mkdir()
    samples.pdf(inv / "report.pdf", ["Invoice for hydraulic valves.", "Page two of the invoice."])
    samples.docx(inv / "memo.docx", "Invoice memo: budget for the warehouse.")
    samples.xlsx(inv / "book.xlsx", {"Invoice": [["item", "amount"], ["valve", 12]]})
    samples.ods(inv / "sheet.ods", {"Invoice": [["pump", 3]]})
    samples.xls(inv / "old.xls", {"Invoice": [["seal", 2]]})
    (inv / "notes.txt").write_text("Invoice notes: paid in full.", encoding="utf-8")
    samples.pptx(let / "deck.pptx", ["Dear customer, a letter in slides."])
    samples.html(let / "page.html", "Dear reader, this letter is a web page.")
    (let / "readme.md").write_text("# Letter\n\nDear team, markdown letter.", encoding="utf-8")
    samples.rtf(let / "letter.rtf", "Dear Sir, a rich text letter.")
    samples.eml(let / "mail.eml", "Dear Bob, see attached.", "Attachment words.", "Nested words.")
    samples.msg(let / "outlook.msg", "Letter", "Dear Bob, an Outlook letter.")
    (let / "renamed.txt").write_bytes(
        samples.pdf(root / "x.pdf", ["Dear all, renamed."]).read_bytes()
    )
    (root / "x.pdf").unlink()
    samples.corrupt_pdf(inv / "corrupt.pdf")
    samples.encrypted_pdf(inv / "locked.pdf", "secret")
    samples.encrypted_docx(let / "locked.docx", "secret")
    (let / "empty.txt").write_bytes(b"")
    (let / "big.txt").write_text("big file line\n" * 20_000)  # 280 kB: over a 0.2 MB limit
    (let / ".hidden.txt").write_text("not read without --hidden")
    return root


def rows_of(path: Path) -> dict[str, dict]:
    frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_json(path, lines=True)
    return {
        Path(p).relative_to(path.parent / "in").as_posix(): r
        for p, r in zip(frame.path, frame.to_dict("records"), strict=True)
    }


def test_a_folder_of_every_type_with_hostile_files(inbox: Path, tmp_path: Path) -> None:
    (tmp_path / "in").symlink_to(inbox)
    out = tmp_path / "docs.parquet"
    request = IngestRequest([tmp_path / "in"], out, labels_from_folders=True, max_mb=0.2, workers=2)
    result = run_ingest(request)
    rows = rows_of(out)
    assert set(rows) == set(GOOD) | set(BAD)  # the hidden file is not read
    for name, kind in GOOD.items():
        row = rows[name]
        assert (row["type"], row["error"]) == (kind, ""), name
        assert row["chars"] == len(row["text"]) > 0 and len(row["sha256"]) == 64
        assert row["label"] == name.split("/")[0]
    for name, reason in BAD.items():
        assert rows[name]["error"].endswith(reason), name
        assert rows[name]["text"] == ""
    assert rows["letters/renamed.txt"]["note"] == "the extension says text, the content is pdf"
    assert (result.found, result.extracted, result.failed) == (18, 13, 5)
    assert result.partial and {f.path.split("/")[-1] for f in result.failures} == {
        Path(n).name for n in BAD
    }
    assert result.by_type["pdf"] == 2
    # a rerun extracts nothing: every file's content is in the table (the failed ones too)
    again = run_ingest(request)
    assert (again.extracted, again.failed, again.done_before, again.failed_before) == (0, 0, 18, 5)
    assert again.partial and len(pd.read_parquet(out)) == 18
    # with a higher limit, --retry-errors reads the big file; the rest stay as they were
    retried = run_ingest(
        IngestRequest([tmp_path / "in"], out, labels_from_folders=True, retry_errors=True)
    )
    assert (retried.extracted, retried.failed) == (1, 4)
    assert rows_of(out)["letters/big.txt"]["text"].startswith("big file line")


def test_duplicates_are_written_once_and_jsonl_works(inbox: Path, tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    for copy in ("a.txt", "b.txt"):
        (tmp_path / "in" / copy).write_text("the same content twice", encoding="utf-8")
    (tmp_path / "in" / "c.txt").write_text("other content", encoding="utf-8")
    out = tmp_path / "docs.jsonl"
    result = run_ingest(IngestRequest([tmp_path / "in"], out, workers=1))
    assert (result.extracted, result.duplicates, result.partial) == (2, 1, False)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [Path(r["path"]).name for r in lines] == ["a.txt", "c.txt"]
    assert "label" not in lines[0]


def test_globs_and_user_errors(inbox: Path, tmp_path: Path) -> None:
    found = [Path(p).name for p, _ in walk([f"{inbox}/**/*.pdf"])]
    assert found == ["corrupt.pdf", "locked.pdf", "report.pdf"]
    out = tmp_path / "docs.parquet"
    with pytest.raises(DocsortError, match="matches no file"):
        run_ingest(IngestRequest([f"{inbox}/*.nothing"], out))
    with pytest.raises(DocsortError, match="file not found"):
        run_ingest(IngestRequest([tmp_path / "missing"], out))
    with pytest.raises(DocsortError, match="--out must end in .parquet or .jsonl"):
        run_ingest(IngestRequest([inbox], tmp_path / "docs.csv"))
    with pytest.raises(DocsortError, match="--workers must be a whole number"):
        run_ingest(IngestRequest([inbox], out, workers=0))
    with pytest.raises(DocsortError, match="--max-seconds must be a positive number"):
        run_ingest(IngestRequest([inbox], out, max_seconds=-1))
    table = tmp_path / "mine.parquet"
    pd.DataFrame({"text": ["a user's own table"]}).to_parquet(table)
    with pytest.raises(DocsortError, match="exists and is not an ingest output"):
        run_ingest(IngestRequest([inbox], table))
    assert pd.read_parquet(table).text.tolist() == ["a user's own table"]  # untouched


def test_a_resumed_table_is_not_mixed_redacted_and_not(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text("write to ana@example.com", encoding="utf-8")
    out = tmp_path / "docs.parquet"
    run_ingest(IngestRequest([tmp_path / "in"], out, redact="replace", redact_engine="patterns"))
    row = pd.read_parquet(out).iloc[0]
    assert row.text == "write to <EMAIL_ADDRESS>" and json.loads(row.redacted) == {
        "EMAIL_ADDRESS": 1
    }
    (tmp_path / "in" / "b.txt").write_text("call +44 20 7946 0958", encoding="utf-8")
    with pytest.raises(DocsortError, match="was written with --redact"):
        run_ingest(IngestRequest([tmp_path / "in"], out))


def test_a_200_mb_file_is_refused_by_the_default_limit(tmp_path: Path) -> None:
    """A 200 MB file (sparse: no disk is filled) is listed over the default size limit, at the
    cost of its size check, and the small file beside it is read."""
    folder = tmp_path / "in"
    folder.mkdir()
    with (folder / "huge.pdf").open("wb") as handle:
        handle.truncate(200 * 2**20)
    (folder / "small.txt").write_text("A small letter.", encoding="utf-8")
    result = run_ingest(IngestRequest([folder], tmp_path / "docs.parquet", workers=1))
    rows = {Path(p).name: r for p, r in zip(*(lambda f: (f.path, f.to_dict("records")))(
        pd.read_parquet(tmp_path / "docs.parquet")), strict=True)}  # fmt: skip
    assert rows["small.txt"]["text"] == "A small letter."
    assert rows["huge.pdf"]["error"].endswith("200.0 MB, over the limit of 100 MB (--max-mb)")
    assert result.partial and result.failed == 1
