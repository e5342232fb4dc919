"""docs/export.md's inference tables are rebuilt byte-identical by benchmarks/inference.py from
the committed results (benchmarks/results/inference/), as every benchmark table is."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "export.md"
MARKERS = ("inference-options", "inference")


def _blank(text: str, name: str) -> str:
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{end}{tail}"


def test_inference_tables_rebuild_from_results(tmp_path: Path) -> None:
    if not list((ROOT / "benchmarks" / "results" / "inference").glob("*.json")):
        pytest.skip("no inference results committed yet")
    committed = PAGE.read_text(encoding="utf-8")
    blanked = committed
    for name in MARKERS:
        blanked = _blank(blanked, name)
    copy = tmp_path / "export.md"
    copy.write_text(blanked, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "benchmarks/inference.py", "--table-only", "--docs", str(copy)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert PAGE.read_text(encoding="utf-8") == committed, "the real page was written"
    assert copy.read_text(encoding="utf-8") == committed
