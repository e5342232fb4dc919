"""What running a model costs in money, so cheap and expensive models compare on one scale."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from docsort.errors import DocsortError


@dataclass
class CostModel:
    """Cost of running a model: hardware time plus API tokens.

    ``hardware_per_hour`` defaults to 0.10 USD, about the on-demand price of a 2-vCPU
    general-purpose cloud VM (e.g. AWS m5.large at ~0.096 USD/h). Token prices default to
    zero; set them for hosted LLMs (USD per 1,000 tokens, as providers quote them).
    """

    hardware_per_hour: float = 0.10
    prompt_per_1k_tokens: float = 0.0
    completion_per_1k_tokens: float = 0.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise DocsortError(f"cost model: {f.name} must be a number, got {value!r}")
            if not math.isfinite(value) or value < 0:
                raise DocsortError(f"cost model: {f.name} must be a price >= 0, got {value!r}")
            setattr(self, f.name, float(value))

    def cost(self, seconds: float, prompt_tokens: int = 0, completion_tokens: int = 0) -> float:
        """Total USD for ``seconds`` of machine time plus the given token counts."""
        if seconds < 0 or prompt_tokens < 0 or completion_tokens < 0:
            raise ValueError("seconds and token counts must be >= 0")
        return (
            seconds / 3600.0 * self.hardware_per_hour
            + prompt_tokens / 1000.0 * self.prompt_per_1k_tokens
            + completion_tokens / 1000.0 * self.completion_per_1k_tokens
        )

    def usage(self, seconds: float, tokens: dict[str, int] | None = None) -> float:
        """USD for ``seconds`` plus a token count as kinds report it (``token_usage()``:
        ``prompt_tokens``, ``completion_tokens``; other keys are not priced)."""
        tokens = tokens or {}
        return self.cost(
            seconds, int(tokens.get("prompt_tokens", 0)), int(tokens.get("completion_tokens", 0))
        )

    def per_1k_docs(
        self, n_docs: int, seconds: float, prompt_tokens: int = 0, completion_tokens: int = 0
    ) -> float:
        """USD per 1,000 documents, given what it took to process ``n_docs`` of them."""
        if n_docs <= 0:
            raise ValueError("n_docs must be > 0 to price a run per 1,000 documents")
        return self.cost(seconds, prompt_tokens, completion_tokens) * 1000.0 / n_docs

    def to_dict(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> CostModel:
        """Build from a config mapping: missing keys keep defaults, unknown keys are errors."""
        if d is None:
            return cls()
        if not isinstance(d, dict):
            raise DocsortError(f"cost model: expected a mapping, got {type(d).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise DocsortError(f"cost model: unknown keys {unknown}; use {sorted(known)}")
        return cls(**d)
