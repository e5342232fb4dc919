"""LoRA adapters on top of LoRA adapters, saved as one.

Reward tuning trains fresh adapters on a model that may already carry a trained adapter. The
policy is the trained adapter merged into a copy of the base (``merged``) with the fresh one on
top; what is saved must load the way the kind loads any LoRA model: the base, resolved again,
plus one adapter. Two adapters on the same modules add up exactly to one of their summed rank,
``ΔW = s₁·B₁A₁ + s₂·B₂A₂ = [s₁B₁ s₂B₂]·[A₁; A₂]`` (scaling 1), which ``stacked`` builds.
"""

from __future__ import annotations

import copy
from typing import Any

ADAPTER = "default"


def lora_parts(model: Any) -> dict[str, tuple[Any, Any, float]]:
    """Each LoRA module's ``(A, B, scaling)`` of the default adapter, by module name."""
    from peft.tuners.lora import LoraLayer

    parts = {}
    for name, module in model.named_modules():
        if isinstance(module, LoraLayer) and ADAPTER in module.lora_A:
            parts[name] = (
                module.lora_A[ADAPTER].weight.detach().clone(),
                module.lora_B[ADAPTER].weight.detach().clone(),
                float(module.scaling[ADAPTER]),
            )
    return parts


def target_modules(model: Any) -> list[str]:
    """The module names the default adapter of a PEFT model targets."""
    return sorted(model.peft_config[ADAPTER].target_modules)


def merged(model: Any) -> Any:
    """A copy of a PEFT model's base with its adapter merged in (the model is left as it is)."""
    return copy.deepcopy(model).merge_and_unload()


def stacked(first: Any, second: Any) -> Any:
    """One PEFT model over ``first`` 's unmerged base whose single adapter equals ``first`` 's
    adapter plus ``second`` 's (``second`` was trained on ``merged(first)``; both target the
    same modules)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from peft.tuners.lora import LoraLayer

    one, two = lora_parts(first), lora_parts(second)
    if set(one) != set(two):
        raise ValueError("the two adapters target different modules")
    rank = next(iter(one.values()))[0].shape[0] + next(iter(two.values()))[0].shape[0]
    config = first.peft_config[ADAPTER]
    base = copy.deepcopy(first).unload()  # the base weights, without the adapter
    out = get_peft_model(
        base,
        LoraConfig(
            task_type=config.task_type,
            r=rank,
            lora_alpha=rank,  # scaling 1: each part's own scaling is folded into its B
            lora_dropout=config.lora_dropout,
            target_modules=target_modules(first),
        ),
    )
    with torch.no_grad():
        for name, module in out.named_modules():
            if not isinstance(module, LoraLayer) or ADAPTER not in module.lora_A:
                continue
            a1, b1, s1 = one[name]
            a2, b2, s2 = two[name]
            module.lora_A[ADAPTER].weight.copy_(torch.cat([a1, a2], dim=0))
            module.lora_B[ADAPTER].weight.copy_(torch.cat([s1 * b1, s2 * b2], dim=1))
    return out


__all__ = ["lora_parts", "merged", "stacked", "target_modules"]
