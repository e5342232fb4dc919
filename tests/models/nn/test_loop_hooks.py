"""The fine-tuning loop's hook for searches: a LoRA adapter moved to another rank keeps what it
learnt (PBT perturbs lora_r and the recipient continues from the donor's adapter)."""

from __future__ import annotations

import torch
from torch import nn

from docsort.models.nn.training import _fitted_weights, _load_weights, trainable_state


def lora_net(rank: int) -> nn.Module:
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(rank)
    base = nn.Sequential(nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 4))
    torch.manual_seed(0)
    for p in base.parameters():  # the same frozen base in every net
        nn.init.normal_(p)
    torch.manual_seed(rank)
    return get_peft_model(base, LoraConfig(r=rank, lora_alpha=8, target_modules=["0", "2"]))


def test_a_lora_adapter_moved_to_a_larger_rank_gives_the_same_outputs() -> None:
    donor = lora_net(4)
    with torch.no_grad():
        for name, p in donor.named_parameters():
            if "lora_B" in name:
                p.normal_()  # a trained adapter: B is no longer zero
    x = torch.randn(5, 16)
    weights = trainable_state(donor)
    wider = lora_net(8)
    fitted = _fitted_weights(wider, weights)
    _load_weights(wider, fitted)
    torch.testing.assert_close(wider(x), donor(x), rtol=1e-4, atol=1e-4)
    plain = lora_net(4)  # the same base with an untrained adapter
    narrower = lora_net(2)
    _load_weights(narrower, _fitted_weights(narrower, weights))
    # rank 2 keeps the two largest directions of the rank-4 update: closer than no adapter
    assert (narrower(x) - donor(x)).norm() < (plain(x) - donor(x)).norm()
    # the extra directions of the wider adapter start as LoRA does (B zero), so they can learn
    extra = [v for k, v in fitted.items() if "lora_B" in k]
    assert all(torch.count_nonzero(b[:, 4:]) == 0 for b in extra)
