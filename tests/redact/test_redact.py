"""Redaction on the labelled sentences of pii_cases.py: no e-mail address, phone number, IBAN
or card number survives (both engines), names go with the spaCy pipeline, the modes do what
they say, pseudonyms are stable under one key and differ under another."""

from __future__ import annotations

import re

import pytest

from docsort.errors import DocsortError
from docsort.redact import Redactor, RedactSpec
from tests.redact.pii_cases import CASES

MUST_GO = ("EMAIL_ADDRESS", "PHONE_NUMBER", "IBAN_CODE", "CREDIT_CARD")
KEY = "a-test-key-that-is-long-enough"


def digits(value: str) -> str:
    return re.sub(r"[^0-9A-Za-z]", "", value).lower()


def survivors(redactor: Redactor, kinds: tuple[str, ...]) -> list[str]:
    """The listed values of ``kinds`` still readable in the redacted texts (also with their
    spaces or dashes removed, so a half-masked number counts as surviving)."""
    left = []
    for text, entities in CASES:
        redacted, _ = redactor.redact(text)
        squashed = digits(redacted)
        for kind, value in entities:
            if kind in kinds and (value in redacted or digits(value) in squashed):
                left.append(f"{kind} {value!r} in {redacted!r}")
    return left


@pytest.fixture(scope="module")
def patterns() -> Redactor:
    return Redactor(RedactSpec(engine="patterns")).load()


@pytest.fixture(scope="module")
def presidio() -> Redactor:
    return Redactor(RedactSpec(engine="presidio")).load()


def test_no_email_phone_iban_or_card_survives_the_patterns(patterns: Redactor) -> None:
    assert survivors(patterns, MUST_GO) == []


def test_no_email_phone_iban_or_card_survives_presidio(presidio: Redactor) -> None:
    assert survivors(presidio, MUST_GO) == []


def test_presidio_also_takes_most_names(presidio: Redactor) -> None:
    names = [(t, v) for t, entities in CASES for k, v in entities if k == "PERSON"]
    left = survivors(presidio, ("PERSON",))
    assert len(left) <= len(names) // 4, left  # measured: see docs/ingest.md


def test_modes(patterns: Redactor, monkeypatch: pytest.MonkeyPatch) -> None:
    text = "Mail ana@example.com or call +44 20 7946 0958."
    assert patterns.redact(text) == (
        "Mail <EMAIL_ADDRESS> or call <PHONE_NUMBER>.",
        {"EMAIL_ADDRESS": 1, "PHONE_NUMBER": 1},
    )
    masked, _ = Redactor(RedactSpec("mask", engine="patterns")).redact(text)
    assert masked == "Mail " + "*" * 15 + " or call " + "*" * 16 + "."
    dropped, _ = Redactor(RedactSpec("drop", engine="patterns")).redact(text)
    assert dropped == "Mail  or call ."
    monkeypatch.setenv("DOCSORT_REDACT_KEY", KEY)
    hashed, counts = Redactor(RedactSpec("hash", engine="patterns")).redact(text)
    assert re.fullmatch(
        r"Mail <EMAIL_ADDRESS_[0-9a-f]{10}> or call <PHONE_NUMBER_[0-9a-f]{10}>\.", hashed
    )
    assert counts == {"EMAIL_ADDRESS": 1, "PHONE_NUMBER": 1}


def test_pseudonyms_are_stable_per_key_and_normalised(monkeypatch: pytest.MonkeyPatch) -> None:
    one = Redactor(RedactSpec("hash", engine="patterns", key=KEY))
    a, _ = one.redact("Call +44 20 7946 0958 today.")
    b, _ = one.redact("Or +442079460958, the same number written without spaces.")
    token = re.search(r"<PHONE_NUMBER_[0-9a-f]{10}>", a)
    assert token and token.group() in b
    other, _ = Redactor(RedactSpec("hash", engine="patterns", key=KEY + "x")).redact(
        "Call +44 20 7946 0958 today."
    )
    assert other != a
    monkeypatch.delenv("DOCSORT_REDACT_KEY", raising=False)
    with pytest.raises(DocsortError, match="needs a secret key of at least 16 characters"):
        RedactSpec("hash").check()


def test_the_entity_list_is_chosen_per_use() -> None:
    emails_only = Redactor(RedactSpec(entities=("EMAIL_ADDRESS",), engine="patterns"))
    text, counts = emails_only.redact("Mail ana@example.com or call +44 20 7946 0958.")
    assert text == "Mail <EMAIL_ADDRESS> or call +44 20 7946 0958." and counts == {
        "EMAIL_ADDRESS": 1
    }
    with pytest.raises(DocsortError, match="PERSON needs --redact-engine presidio"):
        RedactSpec(entities=("PERSON",), engine="patterns").check()
    with pytest.raises(DocsortError, match="unknown UK_NHS"):
        RedactSpec(entities=("UK_NHS",)).check()
    with pytest.raises(DocsortError, match="--redact must be one of"):
        RedactSpec("shred").check()


def test_a_date_is_a_date_of_birth_only_after_a_birth_cue(patterns: Redactor) -> None:
    born, _ = patterns.redact("She was born on 14 July 1979; the launch was on 14 July 2019.")
    assert born == "She was born on <DATE_OF_BIRTH>; the launch was on 14 July 2019."


def test_a_number_is_a_passport_only_after_the_word_passport(patterns: Redactor) -> None:
    text = "Passport no. C01X00T47; order C01X00T48 ships; Reisepass-Nr. 502135326."
    redacted, counts = patterns.redact(text)
    assert redacted == "Passport no. <PASSPORT>; order C01X00T48 ships; Reisepass-Nr. <PASSPORT>."
    assert counts == {"PASSPORT": 2}


def test_long_texts_are_read_in_pieces(patterns: Redactor) -> None:
    text = ("filler words " * 6_000 + "\n") * 3 + "write to ana@example.com"  # 234k characters
    redacted, counts = patterns.redact(text)
    assert redacted.endswith("write to <EMAIL_ADDRESS>") and counts == {"EMAIL_ADDRESS": 1}
