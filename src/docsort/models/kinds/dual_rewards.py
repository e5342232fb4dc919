"""GRPO for the dual encoder: the kind's side of ``models/nn/grpo.py``.

The trained model is the frozen reference; the policy is a copy with fresh LoRA adapters on
its encoder (a trained adapter is merged in first). Its logits are computed as ``predict``
computes them: documents and label descriptions through the encoder, the label vectors leaned
on the stored prototypes, the scale and bias as trained (neither tuned), dropout off so that the
probability ratio is exactly 1 before an update. The copy saves as any dual model does: a LoRA
model as one adapter over the base (the two stacked, ``nn/lora_stack.py``), others as a full
encoder with the adapters merged in.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from docsort.models.kinds.dual import DualEncoderClassifier
    from docsort.models.nn.grpo import GrpoArgs, RewardRow


def reward_tune(
    model: DualEncoderClassifier, rows: Sequence[RewardRow], args: GrpoArgs
) -> DualEncoderClassifier:
    """A copy of ``model`` tuned by GRPO on feedback ``rows`` (texts as the model reads them);
    ``model`` itself is left as it was."""
    import torch
    from torch.nn.functional import normalize

    from docsort.models.kinds.dual import _average_torch, _copy
    from docsort.models.nn import grpo, lora_stack, training

    model._check_fitted()
    args.check()
    multi, labels = model.labels_.multi_label, model.labels_
    targets = grpo.reward_targets(rows, labels)
    texts = [row.text for row in rows]
    reference = model.logits(texts)
    training.seed_everything(args.seed)
    policy = _copy(model)
    net = copy.deepcopy(model.net_)
    stacked_on = model.net_.encoder if model.trained_ and model.lora else None
    if stacked_on is not None:
        net.encoder = lora_stack.merged(stacked_on)
    net.encoder = training.add_lora(
        net.encoder,
        r=args.lora_r,
        alpha=args.lora_alpha,
        dropout=0.0,
        targets=(
            lora_stack.target_modules(stacked_on)
            if stacked_on is not None
            else model.lora_target_modules
        ),
        what="dual lora_target_modules",
        base=model.base,
    )
    net.log_scale.requires_grad_(False)
    net.bias.requires_grad_(False)
    net.eval()  # no dropout: the same logits before and after sampling
    policy.net_ = net
    device = model.device_
    docs = model._tokenized(texts, model.max_length)
    label_texts, owner = model._label_texts(labels)
    label_rows = model._tokenized(label_texts, model.label_max_length)
    every_text = np.arange(len(label_texts))
    owner_t = torch.tensor(owner, device=device)
    lean = None
    if model.prototypes_ is not None and model.prototype_weight_:
        lean = torch.tensor(model.prototype_weight_ * model.prototypes_, device=device)
    scale, bias = model.scale_, model.bias_

    def logits_of(batch: np.ndarray) -> torch.Tensor:
        doc = normalize(net.embed(docs.batch(batch, device)), dim=-1)
        described = normalize(net.embed(label_rows.batch(every_text, device)), dim=-1)
        vectors = _average_torch(described, owner_t, len(labels))
        if lean is not None:
            vectors = normalize(vectors + lean, dim=-1)
        z = scale * (doc.float() @ vectors.float().T)
        return z + bias if multi else z

    trainable = [p for p in net.parameters() if p.requires_grad]
    result = grpo.train(logits_of, trainable, reference, targets, multi, args)
    policy.label_vectors_ = policy._leaned(policy._label_vectors(labels), model.prototypes_)
    if stacked_on is not None:
        net.encoder = lora_stack.stacked(stacked_on, net.encoder)
    elif not model.lora:
        net.encoder = net.encoder.merge_and_unload()
    net.requires_grad_(False)
    policy.trained_ = True
    policy.reward_history_ = result.history
    policy.reward_summary_ = result.summary()
    policy.train_seconds_ = result.seconds
    policy.trained_on_ = {
        **(getattr(model, "trained_on_", None) or {}),
        "reward_tuned": {"rows": len(rows), **args.to_dict()},
    }
    return policy


__all__ = ["reward_tune"]
