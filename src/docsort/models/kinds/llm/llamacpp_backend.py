"""llama.cpp in process (llama-cpp-python) with a GGUF file: exact choice scores, prefix reuse.

The KV cache of the previous prompt stays in the context; a new prompt evaluates only the
tokens after the longest common prefix (the instructions and the label list are shared by every
document), which halved the time per document on ``qwen-0.5b``. A choice is scored by reading
the logits after the prompt and, for a multi-token choice, evaluating its tokens one by one.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from docsort.errors import DocsortError
from docsort.models.hub import resolve
from docsort.models.kinds.llm.backend import (
    Advance,
    LocalBackend,
    Reply,
    common_prefix,
    default_threads,
)
from docsort.models.kinds.llm.prompt import Conversation
from docsort.models.native import quiet_stderr

# no square brackets: the CLI prints errors through rich, which reads them as markup
INSTALL = "pip install llama-cpp-python==0.3.36 (compiles llama.cpp once, ~10 min on 2 cores)"


class LlamaCppBackend(LocalBackend):
    name = "llamacpp"
    exact_scores = True

    def __init__(
        self, model: str = "qwen-0.5b", n_ctx: int = 4096, n_threads: int | None = None
    ) -> None:
        try:
            import llama_cpp  # noqa: F401
        except ImportError:
            raise DocsortError(f"the llamacpp backend needs llama-cpp-python: {INSTALL}") from None
        path = Path(resolve(model))
        if not path.is_file():
            raise DocsortError(
                f"llm model {model!r}: {path} is not a GGUF file; give an alias "
                "(qwen-0.5b, qwen-1.5b, smollm2) or the path of a .gguf file"
            )
        self.path = path
        self.n_ctx = n_ctx
        self.n_threads = n_threads or default_threads()
        self.llm = _load(path, n_ctx, self.n_threads)
        self.n_vocab = self.llm.n_vocab()
        self._formatter = _chat_formatter(self.llm)
        self._choice_tokens: dict[str, list[int]] = {}

    # -- prompts --------------------------------------------------------------------------
    def render(self, conversation: Conversation) -> str:
        if self._formatter is None:  # a GGUF without a chat template: a plain transcript
            lines = [f"{m['role'].capitalize()}: {m['content']}" for m in conversation]
            return "\n\n".join(lines) + "\n\nAssistant:"
        return self._formatter(messages=conversation).prompt

    def tokens(self, text: str) -> list[int]:
        return self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)

    def _last_logits(self) -> np.ndarray:
        pointer = self.llm._ctx.get_logits_ith(-1)
        return np.ctypeslib.as_array(pointer, shape=(self.n_vocab,)).copy()

    def _evaluate(self, ids: list[int]) -> tuple[np.ndarray, None, int]:
        """Evaluate ``ids`` reusing the cached prefix; the next-token logits and tokens reused
        (the state lives in the llama.cpp context)."""
        llm = self.llm
        reused = common_prefix(llm.input_ids[: llm.n_tokens].tolist(), ids)
        reused = min(reused, len(ids) - 1)  # evaluate at least one token to get its logits
        llm.n_tokens = reused
        llm.eval(ids[reused:])
        return self._last_logits(), None, reused

    def _continue(self, ids: list[int], state: None, tokens: list[int]) -> np.ndarray:
        self.llm.n_tokens = len(ids)  # back to the end of the prompt, past any earlier choice
        steps = []
        for token in tokens:
            self.llm.eval([token])
            steps.append(self._last_logits())
        return np.stack(steps)

    def _decode(self, tokens: list[int]) -> str:
        return self.llm.detokenize(tokens).decode("utf-8", errors="replace")

    def _too_long(self, ids: list[int]) -> str | None:
        if len(ids) + 16 <= self.n_ctx:
            return None
        return (
            f"the prompt has {len(ids)} tokens, more than n_ctx={self.n_ctx} allows: "
            "lower max_chars or raise n_ctx"
        )

    def generate(
        self,
        conversations: Sequence[Conversation],
        max_tokens: int,
        advance: Advance,
        schema: dict | None = None,
    ) -> list[Reply]:
        from llama_cpp import LlamaGrammar

        grammar = None
        if schema is not None:
            import json

            with quiet_stderr():
                grammar = LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)
        stop = [self._formatter.eos_token] if self._formatter and self._formatter.eos_token else []
        replies = []
        for conversation in conversations:
            ids = self.tokens(self.render(conversation))
            error = self._too_long([*ids, *range(max_tokens)])
            if error:
                replies.append(Reply(error=error, prompt_tokens=len(ids)))
                advance(1)
                continue
            reused = common_prefix(self.llm.input_ids[: self.llm.n_tokens].tolist(), ids)
            out: Any = self.llm.create_completion(
                prompt=ids,
                max_tokens=max_tokens,
                temperature=0.0,
                stop=stop,
                grammar=grammar,
                seed=0,
            )
            usage = out.get("usage") or {}
            replies.append(
                Reply(
                    text=out["choices"][0]["text"],
                    prompt_tokens=int(usage.get("prompt_tokens", len(ids))),
                    completion_tokens=int(usage.get("completion_tokens", 0)),
                    cached_tokens=min(reused, len(ids) - 1),
                )
            )
            advance(1)
        return replies

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.llm.close()


def _load(path: Path, n_ctx: int, n_threads: int):
    from llama_cpp import Llama

    try:
        with quiet_stderr():
            return Llama(
                model_path=str(path),
                n_ctx=n_ctx,
                n_batch=512,
                n_threads=n_threads,
                n_threads_batch=n_threads,
                logits_all=False,
                seed=0,
                verbose=False,
            )
    except (ValueError, RuntimeError, OSError) as exc:
        raise DocsortError(f"llama.cpp cannot load {path}: {exc}") from None


def _chat_formatter(llm: Any):
    """The GGUF's own chat template (as llama-cpp-python renders it), or None."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    template = llm.metadata.get("tokenizer.chat_template")
    if not template:
        return None
    model = llm._model

    def text(token: int) -> str:
        return model.token_get_text(token) if token != -1 else ""

    return Jinja2ChatFormatter(
        template=template, eos_token=text(llm.token_eos()), bos_token=text(llm.token_bos())
    )
