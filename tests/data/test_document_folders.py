"""A folder of documents (PDF, DOCX, HTML, e-mail next to .txt files) is read as docsort ingest
reads it, so ``docsort train|eval|predict`` take ``./inbox/`` directly; an unreadable file is a
skipped row, not an error."""

from __future__ import annotations

from pathlib import Path

import docsort
from docsort.api import PredictRequest, run_predict
from docsort.data.loaders import load_dataset
from tests.ingest import samples

WORDS = {
    "hydraulics": "pump valve pressure hydraulic cylinder seal flow",
    "finance": "invoice payment budget account ledger balance audit",
}


def test_a_folder_of_documents_trains_and_predicts(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    for label, words in WORDS.items():
        (inbox / label).mkdir(parents=True)
        samples.pdf(inbox / label / "a.pdf", [f"{words} first"])
        samples.docx(inbox / label / "b.docx", f"{words} second")
        samples.html(inbox / label / "c.html", f"{words} third")
        (inbox / label / "d.txt").write_text(f"{words} fourth", encoding="utf-8")
    samples.corrupt_pdf(inbox / "finance" / "broken.pdf")
    data = load_dataset(inbox)
    assert len(data) == 8 and data.skipped == 1  # the broken PDF has no text
    assert sorted(set(data.labels)) == ["finance", "hydraulics"]
    assert any("pump valve" in t and "Report" in t for t in data.texts)  # the DOCX
    model = docsort.train(data, kind="tfidf")
    new = tmp_path / "new"
    new.mkdir()
    samples.pdf(new / "x.pdf", ["the hydraulic pump lost pressure at the valve seal"])
    samples.docx(new / "y.docx", "the ledger balance and the invoice payment are due")
    result = run_predict(PredictRequest(model=model, data=new))
    assert [row["label"] for row in result.rows] == ["hydraulics", "finance"]
