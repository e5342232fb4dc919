"""Back-translation: a text translated into a pivot language and back (seed 003's augmentation).

Any seq2seq translation pair that transformers loads (``AutoModelForSeq2SeqLM``), given by hub
id or local path: MarianMT ``Helsinki-NLP/opus-mt-en-de`` there and ``opus-mt-de-en`` back, an
NLLB or T5 model with its own prompts. The way there is greedy; the way back keeps the ``n``
best beams, so one source gives ``n`` different rows. No translation weights install from the
package registries here, so the tests use a tiny randomly initialised Marian model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from docsort.errors import DocsortError


class BackTranslator:
    """``forward`` translates into the pivot language, ``backward`` back into the source's."""

    def __init__(
        self,
        forward: str | Path,
        backward: str | Path,
        max_length: int = 256,
        batch_size: int = 8,
        device: str = "cpu",
    ) -> None:
        self.there = _load(forward, device)
        self.back = _load(backward, device)
        self.max_length = max_length
        self.batch_size = batch_size
        self.device = device

    def write(
        self, texts: Sequence[str], n: int, advance: Callable[[int], None] = lambda k: None
    ) -> list[list[str]]:
        """``n`` back-translations of each text (fewer distinct ones are padded with "")."""
        if n < 1:
            raise DocsortError(f"backtranslate n={n}: give 1 or more")
        out: list[list[str]] = []
        for start in range(0, len(texts), self.batch_size):
            batch = list(texts[start : start + self.batch_size])
            pivot = self._translate(self.there, batch, beams=1)
            back = self._translate(self.back, [p[0] for p in pivot], beams=n)
            out += [(row + [""] * n)[:n] for row in back]
            advance(len(batch) * n)
        return out

    def _translate(self, pair: tuple[Any, Any], texts: list[str], beams: int) -> list[list[str]]:
        import torch

        tokenizer, model = pair
        inputs = tokenizer(
            texts, return_tensors="pt", padding=True, truncation=True, max_length=self.max_length
        ).to(self.device)
        inputs.pop("token_type_ids", None)  # BERT-style tokenizers add them; seq2seq models don't
        try:
            with torch.inference_mode():
                ids = model.generate(
                    **inputs,
                    max_new_tokens=self.max_length,
                    num_beams=max(beams, 1),
                    num_return_sequences=beams,
                    do_sample=False,
                )
        except (RuntimeError, IndexError, ValueError) as exc:  # a model that cannot take these
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise DocsortError(
                f"translation failed ({first[:200]}); is max_tokens={self.max_length} more "
                "than the model's positions, or the tokenizer not the model's?"
            ) from None
        decoded = tokenizer.batch_decode(ids, skip_special_tokens=True)
        decoded = [" ".join(text.split()) for text in decoded]
        rows = [decoded[i * beams : (i + 1) * beams] for i in range(len(texts))]
        return [list(dict.fromkeys(row)) for row in rows]  # distinct beams, best first


def _load(name: str | Path, device: str) -> tuple[Any, Any]:
    try:
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer
    except ImportError:
        raise DocsortError(
            "backtranslate needs transformers: pip install 'docsort[encoders]'"
        ) from None
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(name))
        model = AutoModelForSeq2SeqLM.from_pretrained(str(name)).to(device).eval()
    except (OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DocsortError(
            f"translation model {str(name)!r} could not be loaded ({first[:200]}); give a hub "
            "id such as Helsinki-NLP/opus-mt-en-de or the folder of a saved seq2seq model"
        ) from None
    return tokenizer, model
