"""Progress off a terminal: occasional plain lines in a log, nothing for short work."""

from __future__ import annotations

import time

import pytest

from docsort.errors import DocsortError
from docsort.progress import progress_bar


@pytest.fixture
def logged(monkeypatch):
    """stderr is pytest's capture here (not a terminal), as in a nohup or CI log."""
    monkeypatch.delenv("DOCSORT_NO_PROGRESS", raising=False)
    return monkeypatch


def test_long_work_in_a_log_prints_counts_and_time_left(logged, capsys) -> None:
    logged.setenv("DOCSORT_PROGRESS_SECONDS", "0.05")
    with progress_bar("training", total=4) as advance:
        for step in range(4):
            time.sleep(0.06)
            advance(1, f"training epoch 1/1 loss {0.5 - step / 10:.1f}")
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 4
    assert lines[0].startswith("training epoch 1/1 loss 0.5: 1/4 (25%)")
    assert "left" in lines[0] and "elapsed" in lines[0]
    assert lines[-1].startswith("training epoch 1/1 loss 0.2: 4/4 (100%)")
    assert "left" not in lines[-1]


def test_short_work_and_silenced_progress_print_nothing(logged, capsys) -> None:
    with progress_bar("predicting", total=1000) as advance:  # default: a line a minute
        advance(1000)
    logged.setenv("DOCSORT_NO_PROGRESS", "1")
    logged.setenv("DOCSORT_PROGRESS_SECONDS", "0.01")
    with progress_bar("predicting", total=3) as advance:
        for _ in range(3):
            time.sleep(0.02)
            advance()
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("value", ["soon", "0", "-5"])
def test_a_bad_interval_is_a_user_error(logged, value) -> None:
    logged.setenv("DOCSORT_PROGRESS_SECONDS", value)
    match = "DOCSORT_PROGRESS_SECONDS must be a positive"
    with pytest.raises(DocsortError, match=match), progress_bar("training", total=10):
        pass
