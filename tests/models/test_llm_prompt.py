"""The llm kind's prompts and answer reading: no model needed."""

from __future__ import annotations

import math

import numpy as np
import pytest

from docsort.errors import DocsortError
from docsort.models.kinds.llm.openai_backend import choice_scores
from docsort.models.kinds.llm.prompt import PromptBuilder, Shot, letter_aliases

NAMES = ("business", "entertainment", "politics", "sport", "tech")


def builder(answer: str = "letter") -> PromptBuilder:  # letters: the harder parsing case
    return PromptBuilder(NAMES, {"tech": "computers, software and gadgets"}, answer=answer)


def test_letter_aliases_are_distinct_beyond_26_labels() -> None:
    aliases = letter_aliases(30)
    assert aliases[:3] == ["A", "B", "C"] and aliases[26:28] == ["AA", "AB"]
    assert len(set(aliases)) == 30


def test_prompt_lists_labels_with_descriptions_before_the_document() -> None:
    conversation = builder().conversation("Shares fell.", [Shot("Arsenal won 2-0.", "sport")])
    user = conversation[-1]["content"]
    assert "E. tech: computers, software and gadgets" in user and "A. business" in user
    assert user.index("Answer: D") < user.index("Shares fell.")  # the example's answer: sport
    # the shared prefix (labels, examples) does not depend on the document
    other = builder().conversation("Other text.", [Shot("Arsenal won 2-0.", "sport")])
    assert user.split("Shares fell.")[0] == other[-1]["content"].split("Other text.")[0]


def test_long_documents_are_cut_to_max_chars() -> None:
    user = builder().conversation("word " * 5000)[-1]["content"]
    assert len(user) < 2600


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("D", 3),
        (" B.", 1),
        ("(C) politics", 2),
        ("Answer: E", 4),
        ('{"label": "sport"}', 3),
        ("The category is tech.", 4),
        ("sport", 3),
        ("", None),
        ("I cannot tell", None),
        ("politics or sport", None),
    ],
)
def test_parse_reads_letters_names_and_json(reply: str, expected: int | None) -> None:
    assert builder().parse(reply) == expected


def test_parse_by_name() -> None:
    names = builder("name")
    assert names.parse("Entertainment") == 1
    assert names.parse('```json\n{"label": "tech"}\n```') == 4
    assert names.parse("A") is None  # letters mean nothing when names are asked for


def test_bad_templates_are_user_errors() -> None:
    with pytest.raises(DocsortError, match="must contain"):
        PromptBuilder(NAMES, {}, template="no placeholders")
    with pytest.raises(DocsortError, match="unknown placeholder"):
        PromptBuilder(NAMES, {}, template="{labels} {text} {oops}")


def test_choice_scores_from_top_logprobs() -> None:
    top = {"B": math.log(0.6), " B": math.log(0.1), "A": math.log(0.2), "The": math.log(0.05)}
    scores = np.exp(choice_scores(top, ["A", "B", "C", "D"]))
    assert scores[1] == pytest.approx(0.7) and scores[0] == pytest.approx(0.2)
    # C and D share what the list leaves (0.05), capped by the smallest listed probability
    assert scores[2] == pytest.approx(0.025) and scores[3] == pytest.approx(0.025)
    by_prefix = np.exp(choice_scores({"bus": math.log(0.9)}, ["business", "sport"]))
    assert by_prefix[0] == pytest.approx(0.9) and by_prefix[1] < 0.1
