"""How close a transformer kind runs to this machine's limit.

``efficiency = docs/s ÷ (machine GFLOP/s ÷ GFLOP per doc)``: 1.0 would mean every multiply-add
the CPU can do went into the model. FLOPs per document are counted from the encoder's shape
(2 × non-embedding weights × tokens, plus attention's 4 × layers × tokens² × width), with the
tokens each test document really has after truncation.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np


def machine_gflops(size: int = 1024, repeats: int = 10) -> float:
    """Measured float32 matmul throughput of torch on this machine, in GFLOP/s."""
    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * size**3 * repeats / (time.perf_counter() - start) / 1e9


def encoder_gflops_per_doc(model_dir: str, texts: Sequence[str], max_length: int) -> float:
    """Mean forward-pass GFLOP of a BERT-style encoder over ``texts`` (truncated as in use)."""
    from transformers import AutoConfig, AutoTokenizer

    config = AutoConfig.from_pretrained(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokens = np.array(
        [
            len(ids)
            for ids in tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"]
        ]
    )
    width, layers = config.hidden_size, config.num_hidden_layers
    per_layer = 4 * width * width + 2 * width * config.intermediate_size  # attention + MLP
    dense = 2 * layers * per_layer * tokens
    attention = 4 * layers * width * tokens.astype(float) ** 2
    return float(np.mean(dense + attention) / 1e9)


def efficiency(model: Any, texts: Sequence[str], docs_per_second: float) -> dict[str, float]:
    """The fields a benchmark result records for a transformer-based model."""
    from docsort.models.hub import resolve

    gflops = machine_gflops()
    per_doc = encoder_gflops_per_doc(resolve(model.base), texts, model.max_length)
    ceiling = gflops / per_doc
    return {
        "machine_gflops": round(gflops, 1),
        "gflop_per_doc": round(per_doc, 3),
        "ceiling_docs_per_second": round(ceiling, 1),
        "efficiency": round(docs_per_second / ceiling, 3),
    }
