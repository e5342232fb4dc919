"""docs/quality.md's measured tables rebuild byte-identical from benchmarks/results/audit/ and
benchmarks/results/active/ (the page is never edited by hand between the markers)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "quality.md"


@pytest.mark.parametrize("script", ["audit", "active"])
def test_the_quality_tables_rebuild_from_the_results(tmp_path: Path, script: str) -> None:
    committed = PAGE.read_text(encoding="utf-8")
    blank = re.sub(
        rf"(<!-- {script}:start -->).*?(<!-- {script}:end -->)", r"\1\n\2", committed, flags=re.S
    )
    assert blank != committed  # the page has a table to blank
    copy = tmp_path / "quality.md"
    copy.write_text(blank, encoding="utf-8")
    command = [sys.executable, str(ROOT / "benchmarks" / f"{script}.py"), "--table-only"]
    done = subprocess.run(
        [*command, "--docs", str(copy)],
        cwd=ROOT / "benchmarks",
        env=dict(os.environ, DOCSORT_NO_PROGRESS="1"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert copy.read_text(encoding="utf-8") == committed
