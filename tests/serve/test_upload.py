"""POST /v1/extract: an uploaded file's text as ``docsort ingest`` reads it, for the web page
to classify; a file that cannot be read is a one-line 422, an oversized one a 413."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from tests.ingest import samples

ABSTRACT = "We observe the galaxy cluster with a radio telescope and find dark matter halos."


def upload(client: TestClient, data: bytes, name: str) -> dict:
    answer = client.post(f"/v1/extract?name={name}", content=data,
                         headers={"content-type": "application/octet-stream"})  # fmt: skip
    return {"status": answer.status_code, **answer.json()}


def test_a_pdf_and_a_word_file_give_their_text_which_classifies(
    client: TestClient, tmp_path: Path
) -> None:
    pdf = samples.pdf(tmp_path / "paper.pdf", [ABSTRACT, "Second page on stellar spectra."])
    word = samples.docx(tmp_path / "paper.docx", ABSTRACT)
    read = upload(client, pdf.read_bytes(), "paper.pdf")
    assert read["status"] == 200 and read["type"] == "pdf" and read["pages"] == 2
    assert ABSTRACT in " ".join(read["text"].split()) and "stellar spectra" in read["text"]
    # the name's suffix is only a hint: a Word file named .pdf is read as Word
    renamed = upload(client, word.read_bytes(), "misnamed.pdf")
    assert renamed["status"] == 200 and renamed["type"] == "docx" and ABSTRACT in renamed["text"]
    label = client.post("/v1/classify", json={"text": read["text"]}).json()["predictions"][0]
    assert label["label"] == "astro-ph"
    assert client.app.state.service.store.count("predictions") == 1  # extracting stores nothing


def test_unreadable_and_oversized_uploads_are_refused_in_one_line(
    client: TestClient, tmp_path: Path
) -> None:
    broken = upload(client, samples.corrupt_pdf(tmp_path / "broken.pdf").read_bytes(), "x.pdf")
    assert broken["status"] == 422 and broken["detail"].startswith("x.pdf: a damaged PDF")
    locked = samples.encrypted_pdf(tmp_path / "locked.pdf", ABSTRACT).read_bytes()
    assert "password" in upload(client, locked, "locked.pdf")["detail"]
    empty = upload(client, b"", "empty.txt")
    assert empty["status"] == 422 and "\n" not in empty["detail"]
    big = upload(client, b"%PDF-1.7\n" + b"0" * (21 * 2**20), "big.pdf")
    assert big["status"] == 413 and "20,971,520-byte limit" in big["detail"]
    odd = upload(client, b"plain words about qubits", "../../etc/passwd")
    assert odd["status"] == 200 and odd["text"] == "plain words about qubits"
