"""New training rows for a weak class, written from its real rows.

Two writers: ``paraphrase`` (a generative LLM asked to restate each text, once per prompt:
llama.cpp with a local GGUF such as ``qwen-0.5b``, or any OpenAI-compatible endpoint) and
``backtranslate`` (a seq2seq translation model there and another back, e.g. MarianMT
en→de→en, given by hub id or path). ``filters`` then drops what adds nothing: empty or
near-verbatim copies of the source, duplicates of any training text, and (optionally)
rows a model trained on the real rows assigns to another class. ``docsort.api.augmentation``
runs them for ``docsort augment`` and for a training config's ``augment:``.
"""

from docsort.augment.backtranslate import BackTranslator
from docsort.augment.filters import copied_share, normalised
from docsort.augment.paraphrase import PROMPTS, Paraphraser

__all__ = ["PROMPTS", "BackTranslator", "Paraphraser", "copied_share", "normalised"]
