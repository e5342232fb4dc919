"""The recognizers redaction uses: Presidio's own pattern recognizers (with their checksums:
IBAN mod 97, Luhn for cards, SSN area rules), a date-of-birth recognizer (a date only after
"born", "DOB", "date of birth", so the date of an event stays), and a tokenizer-only NLP engine
for the ``patterns`` engine (context words still raise scores; no model is loaded)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import spacy
from presidio_analyzer import LocalRecognizer, RecognizerResult
from presidio_analyzer.nlp_engine import NlpArtifacts, NlpEngine

MONTHS = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
    r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
)
DAY = r"(?:0?[1-9]|[12]\d|3[01])(?:st|nd|rd|th)?"
DATE = (
    rf"(?:\d{{4}}-\d{{1,2}}-\d{{1,2}}"  # 1985-03-12
    rf"|\d{{1,2}}[/.\-]\d{{1,2}}[/.\-](?:\d{{4}}|\d{{2}})"  # 12/03/1985, 12.03.85
    rf"|{DAY}\s+(?:of\s+)?{MONTHS},?\s+\d{{4}}"  # 12 March 1985, 3rd of March, 1985
    rf"|{MONTHS}\s+{DAY},?\s+\d{{4}})"  # March 12, 1985
)
CUE = (
    r"\b(?:born(?:\s+on)?|date\s+of\s+birth|birth\s*date|d\.?\s?o\.?\s?b\.?|birthday)"
    r"(?:\s+(?:is|was))?\s*[:\-]?\s*"
)
_BIRTH = re.compile(rf"{CUE}(?P<date>{DATE})\b", re.I)


class DateOfBirthRecognizer(LocalRecognizer):
    """A date right after a birth cue; the date alone is the entity."""

    SCORE = 0.85

    def __init__(self) -> None:
        super().__init__(supported_entities=["DATE_OF_BIRTH"], name="DateOfBirthRecognizer")

    def load(self) -> None:
        pass

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
    ) -> list[RecognizerResult]:
        results = []
        for match in _BIRTH.finditer(text):
            results.append(
                RecognizerResult(
                    "DATE_OF_BIRTH",
                    match.start("date"),
                    match.end("date"),
                    self.SCORE,
                    recognition_metadata={
                        RecognizerResult.RECOGNIZER_NAME_KEY: self.name,
                        RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id,
                    },
                )
            )
        return results


def pattern_recognizers(entities: Iterable[str], phone_regions: Iterable[str]) -> list[Any]:
    """Presidio's recognizer for each wanted entity (and ours for dates of birth)."""
    from presidio_analyzer.predefined_recognizers import (
        CreditCardRecognizer,
        EmailRecognizer,
        IbanRecognizer,
        IpRecognizer,
        PhoneRecognizer,
        UkNinoRecognizer,
        UrlRecognizer,
        UsSsnRecognizer,
    )

    makers = {
        "EMAIL_ADDRESS": EmailRecognizer,
        "PHONE_NUMBER": lambda: PhoneRecognizer(supported_regions=tuple(phone_regions)),
        "IBAN_CODE": IbanRecognizer,
        "CREDIT_CARD": CreditCardRecognizer,
        "IP_ADDRESS": IpRecognizer,
        "URL": UrlRecognizer,
        "US_SSN": UsSsnRecognizer,
        "UK_NINO": UkNinoRecognizer,
        "DATE_OF_BIRTH": DateOfBirthRecognizer,
    }
    return [makers[e]() for e in makers if e in set(entities)]


class TokenizerNlpEngine(NlpEngine):
    """spaCy's rule-based English tokenizer (``spacy.blank("en")``: no model, no download) as
    Presidio's NLP engine; lower-cased tokens stand in for lemmas, so context words such as
    "phone" or "IBAN" still raise a match's score."""

    def __init__(self) -> None:
        self.nlp: Any = None

    def load(self) -> None:
        self.nlp = spacy.blank("en")

    def is_loaded(self) -> bool:
        return self.nlp is not None

    def process_text(self, text: str, language: str) -> NlpArtifacts:
        return self._artifacts(self.nlp(text))

    def process_batch(self, texts: Iterable[str], language: str, **kwargs: Any) -> Any:
        for doc in self.nlp.pipe(texts):
            yield doc.text, self._artifacts(doc)

    def is_stopword(self, word: str, language: str) -> bool:
        return bool(self.nlp.vocab[word].is_stop)

    def is_punct(self, word: str, language: str) -> bool:
        return bool(self.nlp.vocab[word].is_punct)

    def get_supported_entities(self) -> list[str]:
        return []

    def get_supported_languages(self) -> list[str]:
        return ["en"]

    def _artifacts(self, doc: Any) -> NlpArtifacts:
        return NlpArtifacts(
            entities=[],
            tokens=doc,
            tokens_indices=[token.idx for token in doc],
            lemmas=[token.lower_ for token in doc],
            nlp_engine=self,
            language="en",
            scores=[],
        )
