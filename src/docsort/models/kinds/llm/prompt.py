"""Prompts for the ``llm`` kind and the answers they ask for.

A prompt is a chat conversation. Everything that does not depend on the document (instructions,
the label list with descriptions, fixed k-shot examples) comes first, so that every backend can
reuse the evaluated prefix across documents (llama.cpp's KV cache, a transformers
``past_key_values``, a server's prompt cache). The model answers with a *choice*: a letter alias
per label ("A", "B", ...), which is one token in the common tokenizers, or the label name.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Sequence
from dataclasses import dataclass

from docsort.errors import DocsortError

Conversation = list[dict[str, str]]
ANSWERS = ("letter", "name")

SYSTEM = "You are a careful assistant that sorts documents into categories."
TEMPLATE = (
    "Classify the document into exactly one of these categories:\n"
    "{labels}\n\n"
    "{examples}"
    'Document:\n"""\n{text}\n"""\n\n'
    "{instruction}"
)
INSTRUCTIONS = {
    "letter": "Answer with the letter of the category only.",
    "name": "Answer with the category name only.",
    "json": 'Answer in JSON only, as {{"label": "<category name>"}}.',
}
RATIONALE_ASK = "In one short sentence, say which category fits the document and why."
RATIONALE_THEN = "Now answer with the {what} only."


def letter_aliases(n: int) -> list[str]:
    """``A``..``Z``, then ``AA``, ``AB``, ...: one short, distinct answer per label."""
    letters = string.ascii_uppercase
    out = list(letters[:n])
    for first in letters:
        if len(out) >= n:
            break
        out.extend(first + second for second in letters[: n - len(out)])
    return out[:n]


@dataclass(frozen=True)
class Shot:
    text: str
    label: str


@dataclass
class PromptBuilder:
    """Turns a document (and its k-shot examples) into a chat conversation."""

    names: tuple[str, ...]
    descriptions: dict[str, str]
    answer: str = "name"  # what the model answers: label "name"s or "letter" aliases
    template: str = TEMPLATE
    system: str = SYSTEM
    max_chars: int = 2000  # of the document: longer texts are cut (LLM time grows with tokens)
    shot_chars: int = 400

    def __post_init__(self) -> None:
        if self.answer not in ANSWERS:
            raise DocsortError(f"llm answer must be one of {ANSWERS}, not {self.answer!r}")
        missing = [f for f in ("{labels}", "{text}") if f not in self.template]
        if missing:
            raise DocsortError(f"llm template must contain {' and '.join(missing)}")
        try:
            self.template.format(labels="", examples="", text="", instruction="")
        except (KeyError, IndexError, ValueError) as exc:
            raise DocsortError(
                f"llm template has an unknown placeholder or stray brace ({exc}); use "
                "{labels}, {examples}, {text}, {instruction} and double other braces"
            ) from None

    @property
    def choices(self) -> list[str]:
        """The answer string of each label, in label order."""
        return letter_aliases(len(self.names)) if self.answer == "letter" else list(self.names)

    def label_lines(self) -> str:
        lines = []
        for choice, name in zip(self.choices, self.names, strict=True):
            description = self.descriptions.get(name)
            head = f"{choice}. {name}" if self.answer == "letter" else f"- {name}"
            lines.append(f"{head}: {description}" if description else head)
        return "\n".join(lines)

    def _examples(self, shots: Sequence[Shot]) -> str:
        if not shots:
            return ""
        choice_of = dict(zip(self.names, self.choices, strict=True))
        blocks = [
            f'Document:\n"""\n{_cut(s.text, self.shot_chars)}\n"""\nAnswer: {choice_of[s.label]}'
            for s in shots
        ]
        return "Examples:\n\n" + "\n\n".join(blocks) + "\n\n"

    def conversation(
        self, text: str, shots: Sequence[Shot] = (), instruction: str | None = None
    ) -> Conversation:
        user = self.template.format(
            labels=self.label_lines(),
            examples=self._examples(shots),
            text=_cut(text, self.max_chars),
            instruction=instruction if instruction is not None else INSTRUCTIONS[self.answer],
        )
        return [{"role": "system", "content": self.system}, {"role": "user", "content": user}]

    def json_conversation(self, text: str, shots: Sequence[Shot] = ()) -> Conversation:
        return self.conversation(text, shots, INSTRUCTIONS["json"])

    def rationale_conversation(self, text: str, shots: Sequence[Shot] = ()) -> Conversation:
        return self.conversation(text, shots, RATIONALE_ASK)

    def after_rationale(self, conversation: Conversation, rationale: str) -> Conversation:
        """The conversation with the model's reason, then a request for the bare answer."""
        what = "letter of the category" if self.answer == "letter" else "category name"
        return [
            *conversation,
            {"role": "assistant", "content": rationale.strip()},
            {"role": "user", "content": RATIONALE_THEN.format(what=what)},
        ]

    # -- reading free-text answers -------------------------------------------------------
    def parse(self, reply: str) -> int | None:
        """The label a free-text (or JSON) reply names, or ``None`` when it names none clearly.

        Tries, in order: a JSON ``label`` field, an exact choice or label name, a leading letter
        alias (``"B."``, ``"(B)"``), and a single label name found in the text."""
        text = reply.strip()
        if not text:
            return None
        candidates = [text]
        parsed = _json_label(text)
        if parsed is not None:
            candidates.insert(0, parsed)
        lowered_names = [n.lower() for n in self.names]
        choices = self.choices
        for candidate in candidates:
            clean = candidate.strip().strip("\"'`*.:()[] \n").strip()
            for i, (choice, name) in enumerate(zip(choices, self.names, strict=True)):
                if clean == choice or clean.lower() == name.lower():
                    return i
            if clean.lower() in lowered_names:
                return lowered_names.index(clean.lower())
        if self.answer == "letter":
            match = re.match(r"^\W*(?:answer\W*)?([A-Z]{1,2})\b", text, flags=re.IGNORECASE)
            if match and match.group(1).upper() in choices:
                return choices.index(match.group(1).upper())
        found = {
            i
            for i, name in enumerate(self.names)
            if re.search(rf"(?<![\w.]){re.escape(name)}(?![\w])", text, flags=re.IGNORECASE)
        }
        return found.pop() if len(found) == 1 else None


def _json_label(text: str) -> str | None:
    match = re.search(r"\{.*\}", text, flags=re.DOTALL)
    if not match:
        return None
    try:
        value = json.loads(match.group(0))
    except ValueError:
        return None
    label = value.get("label") if isinstance(value, dict) else None
    return str(label) if label is not None else None


def _cut(text: str, limit: int) -> str:
    """At most ``limit`` characters, cut at a word boundary, whitespace squashed."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[:limit]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit * 0.8 else cut) + " …"


def json_schema(names: Sequence[str]) -> dict:
    """The JSON schema of an answer naming one label: for constrained generation."""
    return {
        "type": "object",
        "properties": {"label": {"type": "string", "enum": list(names)}},
        "required": ["label"],
        "additionalProperties": False,
    }
