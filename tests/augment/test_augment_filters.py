"""What an augmented row must not be, and how an LLM's answer is cleaned."""

from __future__ import annotations

from docsort.augment.filters import copied_share, normalised, why_dropped
from docsort.augment.paraphrase import clean_answer

SOURCE = (
    "We propose a new method for speaker diarization that handles overlapping speech by "
    "treating the problem as multi-label classification over frames."
)


def test_a_verbatim_copy_or_a_prefix_of_the_source_counts_as_copied() -> None:
    assert copied_share(SOURCE, SOURCE) == 1.0
    assert copied_share(SOURCE[:80], SOURCE) == 1.0
    restated = "Overlapping voices are assigned to several speakers at once by a frame classifier."
    assert copied_share(restated, SOURCE) < 0.3


def test_rows_are_dropped_for_being_empty_copies_or_duplicates() -> None:
    seen = {normalised("An existing training text.")}
    assert why_dropped("ok", SOURCE, seen, 0.9) == "empty"
    assert why_dropped(SOURCE.upper(), SOURCE, seen, 0.9) == "copy"
    assert why_dropped("An existing, training text!", SOURCE, seen, 0.9) == "duplicate"
    fresh = "A frame classifier gives overlapping voices to several speakers."
    assert why_dropped(fresh, SOURCE, seen, 0.9) is None
    assert why_dropped(fresh, SOURCE, seen, 0.9) == "duplicate"  # the second time


def test_answers_lose_their_preamble_quotes_and_line_breaks() -> None:
    assert clean_answer('Summary: "Speech overlaps.\nIt is handled."') == (
        "Speech overlaps. It is handled."
    )
    assert clean_answer("Here is the paraphrase: A b c d") == "A b c d"
    assert clean_answer("Plain answer") == "Plain answer"
