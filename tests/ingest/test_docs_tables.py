"""docs/ingest.md's measured tables rebuild byte-identical from benchmarks/results/ingest/ (the
page is never edited by hand where the markers are)."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "ingest.md"


def test_the_ingest_tables_rebuild_from_the_results(tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        spec = importlib.util.spec_from_file_location(
            "bench_ingest", ROOT / "benchmarks" / "ingest.py"
        )
        assert spec is not None and spec.loader is not None
        bench = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(bench)
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    committed = PAGE.read_text(encoding="utf-8")
    blank = re.sub(
        r"(<!-- (ingest-[a-z]+):start -->).*?(<!-- \2:end -->)", r"\1\n\3", committed, flags=re.S
    )
    assert blank != committed  # the page has tables to blank
    copy = tmp_path / "ingest.md"
    copy.write_text(blank, encoding="utf-8")
    bench.update_docs(copy)
    assert copy.read_text(encoding="utf-8") == committed
    for marker in bench.TABLES:
        assert f"<!-- {marker}:start -->" in committed
