"""A local causal LM through transformers: exact choice scores with the prompt prefix reused.

Takes a Hugging Face model directory, a hub id (for users with network access), or a GGUF
file/alias such as ``qwen-0.5b``. transformers dequantises a GGUF into fp32 torch weights, which
took 71 s for ``qwen-0.5b`` here (its tokenizer minutes more), so the result is saved once beside
the GGUF in the model cache (``<name>-hf/``, 2.5 GB for ``qwen-0.5b``) and read from there in
seconds afterwards. The key/value cache of the previous prompt is cropped to the prefix it
shares with the next one, so the instructions and the label list are read once.

A fine-tuned ``llm`` model passes its LoRA adapter (``finetune.Adapter``): it is merged into the
weights on load, so scoring costs what the base model's does.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from docsort.models.kinds.llm.finetune import Adapter


class TransformersBackend(LocalBackend):
    name = "transformers"
    exact_scores = True

    def __init__(
        self,
        model: str = "qwen-0.5b",
        n_threads: int | None = None,
        device: str = "cpu",
        adapter: Adapter | None = None,
    ) -> None:
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError:
            raise DocsortError(
                "the transformers backend needs torch and transformers: "
                "pip install torch==2.13.0 transformers"
            ) from None
        from transformers.utils import logging as hf_logging

        from docsort.models.nn.training import resolve_device

        hf_logging.disable_progress_bar()
        self.n_threads = n_threads or default_threads()
        torch.set_num_threads(self.n_threads)
        self.device = resolve_device(device)
        path = resolve(model)
        try:
            if path.endswith(".gguf"):
                path = str(_hf_dir(Path(path)))
            self.tokenizer = AutoTokenizer.from_pretrained(path)
            self.model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
        except (OSError, ValueError, ImportError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise DocsortError(f"transformers cannot load llm model {model!r}: {first}") from None
        if adapter is not None:
            self.model = adapter.merged_into(self.model)
        self.model.to(self.device).eval()
        forward = inspect.signature(self.model.forward).parameters
        self._cache_arg = "cache" if "cache" in forward else "past_key_values"  # transformers 5
        self._cache: Any = None  # past_key_values of the tokens in ``_cached_ids``
        self._cached_ids: list[int] = []
        self._choice_tokens: dict[str, list[int]] = {}

    def render(self, conversation: Conversation) -> str:
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template(
                conversation, add_generation_prompt=True, tokenize=False
            )
        lines = [f"{m['role'].capitalize()}: {m['content']}" for m in conversation]
        return "\n\n".join(lines) + "\n\nAssistant:"

    def tokens(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _forward(self, ids: Sequence[int], cache: Any) -> tuple[Any, Any]:
        """Logits ``[len(ids), vocab]`` and the cache after reading ``ids``."""
        import torch

        with torch.inference_mode():
            out = self.model(
                input_ids=torch.tensor([list(ids)], device=self.device),
                use_cache=True,
                **{self._cache_arg: cache},
            )
        new_cache = getattr(out, "cache", None) or getattr(out, "past_key_values", None)
        return out.logits[0].float().cpu().numpy(), new_cache

    def _evaluate(self, ids: list[int]) -> tuple[np.ndarray, Any, int]:
        """Next-token logits after ``ids``, the cache holding ``ids``, and tokens reused."""
        reused = min(common_prefix(self._cached_ids, ids), len(ids) - 1)
        cache = None
        if self._cache is not None and reused > 0:
            # keep the shared prefix only (a negative crop removes tokens in transformers 4 and 5)
            self._cache.crop(reused - len(self._cached_ids))
            self._cached_ids = self._cached_ids[:reused]
            cache = copy.deepcopy(self._cache)
        else:
            reused = 0
        logits, cache = self._forward(ids[reused:], cache)
        if self._cache is None or reused == 0:  # first prompt: its cache becomes the prefix
            self._cache = copy.deepcopy(cache)
            self._cached_ids = list(ids)
        return logits[-1], cache, reused

    def _continue(self, ids: list[int], state: Any, tokens: list[int]) -> np.ndarray:
        steps, _ = self._forward(tokens, copy.deepcopy(state))
        return steps

    def _decode(self, tokens: list[int]) -> str:
        return self.tokenizer.decode(tokens)

    def generate(
        self,
        conversations: Sequence[Conversation],
        max_tokens: int,
        advance: Advance,
        schema: dict | None = None,
    ) -> list[Reply]:
        """Greedy generation; transformers has no grammar here, so ``schema`` is not enforced
        (the kind parses the text, counting what it cannot read)."""
        eos = self.model.generation_config.eos_token_id
        stops = {self.tokenizer.eos_token_id, *(eos if isinstance(eos, list) else [eos])}
        replies = []
        for conversation in conversations:
            ids = self.tokens(self.render(conversation))
            logits, cache, reused = self._evaluate(ids)
            generated: list[int] = []
            for _ in range(max_tokens):
                token = int(np.argmax(logits))
                if token in stops:
                    break
                generated.append(token)
                steps, cache = self._forward([token], cache)
                logits = steps[-1]
            replies.append(
                Reply(
                    text=self.tokenizer.decode(generated, skip_special_tokens=True),
                    prompt_tokens=len(ids),
                    completion_tokens=len(generated),
                    cached_tokens=reused,
                )
            )
            advance(1)
        return replies

    def end_of_answer(self) -> list[int]:
        """The token that ends the assistant's turn (end of sequence, else BERT's separator)."""
        tokenizer = self.tokenizer
        stop = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else None
        stop = stop if stop is not None else tokenizer.sep_token_id
        return [] if stop is None else [int(stop)]

    def with_model(self, model: Any) -> TransformersBackend:
        """This backend (tokenizer, threads, device) over other weights, e.g. a tuned copy."""
        other = copy.copy(self)
        other.model = model
        other._choice_tokens = dict(self._choice_tokens)
        other.forget_prompts()
        return other

    def forget_prompts(self) -> None:
        """Drop the cached prompt prefix: the weights changed (a training step), so it is stale."""
        self._cache = None
        self._cached_ids = []

    def close(self) -> None:
        self.forget_prompts()


def _hf_dir(gguf: Path) -> Path:
    """The GGUF dequantised into a Hugging Face model directory (fp32 safetensors and the
    tokenizer), built once beside it in the model cache."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from docsort.io import atomic_dir
    from docsort.progress import status

    dest = gguf.with_name(gguf.stem + "-hf")
    if (dest / "config.json").is_file() and (dest / "tokenizer_config.json").is_file():
        return dest
    tokenizer = AutoTokenizer.from_pretrained(str(_tokenizer_dir(gguf)))
    with status(f"Dequantising {gguf.name} into torch weights (a minute or two, once)..."):
        model = AutoModelForCausalLM.from_pretrained(
            str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32
        )
        # the weights are plain fp32 tensors now; transformers still marks the model as
        # GGUF-quantised, which only stops it from being saved
        model.hf_quantizer = None
        model.config.__dict__.pop("quantization_config", None)
        with atomic_dir(dest) as tmp:
            model.save_pretrained(str(tmp))
            tokenizer.save_pretrained(str(tmp))
    return dest


def _tokenizer_dir(gguf: Path) -> Path:
    """The GGUF's tokenizer as a Hugging Face directory, built once beside it."""
    from transformers import AutoTokenizer

    from docsort.io import atomic_dir
    from docsort.progress import status

    dest = gguf.with_name(gguf.stem + "-tokenizer")
    if (dest / "tokenizer_config.json").is_file():
        return dest
    with status(f"Reading the tokenizer of {gguf.name} (a minute or two, once)..."):
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        with atomic_dir(dest) as tmp:
            tokenizer.save_pretrained(str(tmp))
    return dest
