"""A LoRA adapter trained on top of a merged one saves as one adapter over the original base
that gives the same vectors: what a GRPO-tuned LoRA dual model is saved as."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")


def randomised(model, seed: int):
    """LoRA's B starts at zero (no change): give every adapter weight a random value."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_" in name:
                p.copy_(0.05 * torch.randn(p.shape, generator=gen))
    return model


@pytest.mark.slow
def test_stacked_adapters_equal_the_merged_model_with_the_new_one(tmp_path: Path) -> None:
    from peft import PeftModel
    from transformers import AutoTokenizer

    from docsort.models.hub import resolve
    from docsort.models.nn import lora_stack, training

    path = resolve("minilm")
    tokenizer = AutoTokenizer.from_pretrained(path)
    batch = tokenizer(
        ["Quarterly profits rose at the bank.", "The striker scored twice."],
        padding=True,
        return_tensors="pt",
    )

    def lora(encoder, r: int, seed: int):
        wrapped = training.add_lora(
            encoder, r=r, alpha=2 * r, dropout=0.0, targets=None, what="t", base="minilm"
        )
        return randomised(wrapped, seed).eval()

    first = lora(training.load_encoder(path), 4, 0)
    second = lora(lora_stack.merged(first), 2, 1)
    one = lora_stack.stacked(first, second).eval()
    with torch.no_grad():
        expected = training.pooled(second, batch, "mean")
        assert torch.allclose(training.pooled(one, batch, "mean"), expected, atol=1e-5)
        assert not torch.allclose(training.pooled(first, batch, "mean"), expected, atol=1e-3)
    # saved as the dual kind saves a LoRA model, and loaded on a fresh base
    one.save_pretrained(tmp_path / "adapter")
    again = PeftModel.from_pretrained(training.load_encoder(path), str(tmp_path / "adapter"))
    assert again.peft_config["default"].r == 6
    with torch.no_grad():
        assert torch.allclose(training.pooled(again.eval(), batch, "mean"), expected, atol=1e-5)
