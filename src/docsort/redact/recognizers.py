"""The recognizers redaction uses: Presidio's own pattern recognizers (with their checksums:
IBAN mod 97, Luhn for cards, SSN area rules), a date-of-birth recognizer (a date only after
"born", "DOB", "date of birth", so the date of an event stays), a passport-number recognizer
(an identifier only after "passport", so order and ticket numbers stay), and a tokenizer-only
NLP engine for the ``patterns`` engine (context words still raise scores; no model is
loaded)."""

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


# "passport", "passport no.", "passport number:", "Reisepass-Nr." ... then the number: 6 to 9
# letters and digits (at least 5 digits: "C01X00T47", "502135326", "GB 123456789")
_PASSPORT = re.compile(
    r"\b(?:passport|passeport|reisepass|pasaporte|passaporto)(?:\s*[-.]?\s*"
    r"(?:no\.?|nr\.?|num(?:ber)?|#|id))?\s*(?:is|was)?\s*[:#\-]?\s*"
    r"(?P<id>(?:[A-Z]{2}\s)?(?=(?:[A-Z]*\d){5})[A-Z0-9]{6,9})\b",
    re.I,
)


class PassportRecognizer(LocalRecognizer):
    """A passport number: an identifier right after the word passport (in five languages);
    the number alone is the entity. Without the cue, a 9-character code is as likely an order
    or a part number."""

    SCORE = 0.85

    def __init__(self) -> None:
        super().__init__(supported_entities=["PASSPORT"], name="PassportRecognizer")

    def load(self) -> None:
        pass

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
    ) -> list[RecognizerResult]:
        return [
            RecognizerResult(
                "PASSPORT",
                match.start("id"),
                match.end("id"),
                self.SCORE,
                recognition_metadata={
                    RecognizerResult.RECOGNIZER_NAME_KEY: self.name,
                    RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id,
                },
            )
            for match in _PASSPORT.finditer(text)
            if match.group("id").upper() == match.group("id")  # numbers are written in capitals
        ]


# runs of 7+ digits with the separators phone numbers are written with (a cheap first pass)
_PHONE_CANDIDATE = re.compile(r"(?:\+|\(|\b)\d(?:[\d \t().\-/]{5,22})\d\b")
# words after which a number is an identifier, not a phone number ("order 4500012345")
_ID_CUE = re.compile(
    r"\b(?:invoice|inv|order|po|purchase\s+order|part|ref|reference|ticket|serial|sn|"
    r"batch|lot|tracking|version|patent|isbn|item|sku|case|claim)\b\.?"
    r"(?:\s*(?:no\.?|number|num|nr\.?|#|id))?[\s.:#\-]*$",
    re.I,
)


def after_id_cue(text: str, start: int) -> bool:
    """Whether the words right before ``start`` name an identifier (an order, part, ticket
    number...): such a number is not a phone number, whatever its digits."""
    return bool(_ID_CUE.search(text[max(0, start - 30) : start]))


def phone_recognizer(regions: Iterable[str]) -> Any:
    """Presidio's PhoneRecognizer (libphonenumber's matcher, for each region), run only on the
    stretches of text that look like a number: ~10x faster on prose than matching every region
    over the whole text, with the same matches; numbers right after an identifier's name
    ("order", "part no.", "ticket") are left alone."""
    from presidio_analyzer.predefined_recognizers import PhoneRecognizer

    class CandidatePhoneRecognizer(PhoneRecognizer):
        def analyze(self, text: str, entities: list[str], nlp_artifacts: Any = None) -> list[Any]:
            found: dict[tuple[int, int], Any] = {}
            for candidate in _PHONE_CANDIDATE.finditer(text):
                if sum(c.isdigit() for c in candidate.group()) < 7:
                    continue
                lo, hi = max(0, candidate.start() - 2), min(len(text), candidate.end() + 2)
                for result in super().analyze(text[lo:hi], entities, None):
                    start, end = result.start + lo, result.end + lo
                    if not after_id_cue(text, start):
                        result.start, result.end = start, end
                        found.setdefault((start, end), result)
            return list(found.values())

    return CandidatePhoneRecognizer(supported_regions=tuple(regions))


def pattern_recognizers(entities: Iterable[str], phone_regions: Iterable[str]) -> list[Any]:
    """Presidio's recognizer for each wanted entity (and ours for dates of birth)."""
    from presidio_analyzer.predefined_recognizers import (
        CreditCardRecognizer,
        EmailRecognizer,
        IbanRecognizer,
        IpRecognizer,
        UkNinoRecognizer,
        UrlRecognizer,
        UsSsnRecognizer,
    )

    makers = {
        "EMAIL_ADDRESS": EmailRecognizer,
        "PHONE_NUMBER": lambda: phone_recognizer(phone_regions),
        "IBAN_CODE": IbanRecognizer,
        "CREDIT_CARD": CreditCardRecognizer,
        "IP_ADDRESS": IpRecognizer,
        "URL": UrlRecognizer,
        "US_SSN": UsSsnRecognizer,
        "UK_NINO": UkNinoRecognizer,
        "DATE_OF_BIRTH": DateOfBirthRecognizer,
        "PASSPORT": PassportRecognizer,
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
