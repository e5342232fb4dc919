"""Progress off a terminal: occasional plain lines in a log, nothing for short work."""

from __future__ import annotations

import re
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


def test_a_resumed_run_estimates_time_left_from_its_own_speed(logged, capsys) -> None:
    """50 of 100 steps were done by an earlier process; 5 steps of ~60 ms here leave 45: about
    2.7 s left, not the ~0.25 s an average over all 55 steps would give."""
    logged.setenv("DOCSORT_PROGRESS_SECONDS", "0.25")
    with progress_bar("training", total=100, completed=50) as advance:
        for _ in range(5):
            time.sleep(0.06)
            advance()
    line = capsys.readouterr().err.splitlines()[-1]
    # the line falls on step 4 or 5 (sleeps overshoot on a busy machine); either way the time
    # left comes from this run's ~60 ms a step, 2.7 s or more, not from 55 steps in 0.3 s
    done = re.match(r"training: (\d+)/100 \(\d+%\), .*, ~(\d+)s left$", line)
    assert done is not None, line
    assert int(done.group(1)) in (54, 55) and int(done.group(2)) >= 2, line
