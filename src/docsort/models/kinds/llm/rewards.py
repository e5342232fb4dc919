"""GRPO for the ``llm`` kind from feedback, through TRL's ``GRPOTrainer``: the kind's side of
``docsort retrain NAME --method grpo``.

The trained model is the frozen reference (TRL disables the fresh adapter to read it); the
policy is a copy of its weights with fresh LoRA adapters. For each feedback document the
trainer samples ``group_size`` answers to the very prompt the kind scores, and each answer is
read as a label (``PromptBuilder.parse``) and rewarded exactly as the dual encoder's GRPO
rewards a sampled label (``nn/grpo.rewards``: agreeing with a correction, the rating of the
served answer); an answer naming no label gets ``UNPARSED_REWARD``. Advantages are normalised
per group, the ratio clipped at ``clip_eps``, the KL to the reference weighted by ``kl_beta``,
each sampled batch used for ``updates`` gradient steps. The fresh adapter is then stacked onto
the model's own (two LoRA adapters on the same modules are one of their summed rank), so the
challenger saves and loads like any tuned ``llm`` model.

Generating answers needs a chat-template tokenizer or takes the rendered prompt as text.
"""

from __future__ import annotations

import copy
import re
import tempfile
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from docsort.errors import DocsortError
from docsort.progress import progress_bar

if TYPE_CHECKING:
    from docsort.models.kinds.llm import LLMClassifier
    from docsort.models.kinds.llm.prompt import PromptBuilder
    from docsort.models.nn.grpo import GrpoArgs, RewardRow

UNPARSED_REWARD = -1.0  # an answer that names no label: as wrong as a wrong label
COMPLETION_TOKENS = 16  # a label's answer is a few tokens; a longer reply is cut here


def reward_tune(model: LLMClassifier, rows: Sequence[RewardRow], args: GrpoArgs) -> LLMClassifier:
    """A copy of ``model`` tuned by GRPO on feedback ``rows``; ``model`` is left as it was."""
    try:
        from datasets import Dataset as Rows
        from peft import LoraConfig, get_peft_model_state_dict
        from trl import GRPOConfig, GRPOTrainer
    except ImportError:
        raise DocsortError(
            "GRPO for the llm kind runs on TRL: pip install 'docsort[trl]'"
        ) from None
    from docsort.models.kinds.llm.finetune import Adapter
    from docsort.models.nn import grpo, training

    model._check_fitted()
    args.check()
    labels = model.labels_
    targets = grpo.reward_targets(rows, labels)
    texts = [row.text for row in rows]
    backend = model._backend()
    prompts = model._prompts()
    conversations = [
        prompts.conversation(t, s) for t, s in zip(texts, model._shots_for(texts), strict=True)
    ]
    chat = bool(getattr(backend.tokenizer, "chat_template", None))
    records = [
        {"prompt": c if chat else backend.render(c), "row": i} for i, c in enumerate(conversations)
    ]

    def reward(completions: list[Any], row: list[int], **_: Any) -> list[float]:
        out = []
        for completion, i in zip(completions, row, strict=True):
            text = completion[-1]["content"] if isinstance(completion, list) else completion
            index = answered(text, prompts)
            if index is None:
                out.append(UNPARSED_REWARD)
                continue
            sampled = np.zeros((1, 1, len(labels)), dtype=np.float32)
            sampled[0, 0, index] = 1.0
            out.append(float(grpo.rewards(sampled, targets.take(np.array([i])), args)[0, 0]))
        return out

    targets_modules = (
        list(model.adapter_.target_modules)
        if model.adapter_ is not None
        else list(model.lora_target_modules or training.lora_targets(backend.model))
    )
    training.seed_everything(args.seed)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="docsort-grpo-") as scratch:
        config = GRPOConfig(
            output_dir=scratch,
            per_device_train_batch_size=args.batch_size * args.group_size,
            num_generations=args.group_size,
            max_completion_length=COMPLETION_TOKENS,
            max_steps=args.steps,
            num_iterations=args.updates,
            learning_rate=args.lr,
            epsilon=args.clip_eps,
            beta=args.kl_beta,
            max_grad_norm=args.max_grad_norm,
            seed=args.seed,
            temperature=1.0,
            disable_dropout=True,
            use_cpu=backend.device.type == "cpu",
            bf16=False,
            report_to=[],
            save_strategy="no",
            logging_steps=1,
            disable_tqdm=True,
        )
        with training.quiet_transformers():
            trainer = GRPOTrainer(
                model=copy.deepcopy(backend.model),  # the reference's weights stay untouched
                reward_funcs=reward,
                args=config,
                train_dataset=Rows.from_list(records),
                processing_class=backend.tokenizer,
                peft_config=LoraConfig(
                    task_type="CAUSAL_LM",
                    r=args.lora_r,
                    lora_alpha=args.lora_alpha,
                    lora_dropout=0.0,
                    target_modules=targets_modules,
                ),
            )
            from transformers import PrinterCallback, TrainerCallback

            trainer.remove_callback(PrinterCallback)  # its dict per step: our bar says it
            with progress_bar("GRPO (TRL)", total=args.steps) as advance:

                class Progress(TrainerCallback):
                    def on_log(self, _args: Any, state: Any, _control: Any, logs=None, **_: Any):
                        if logs and "reward" in logs:
                            advance(1, f"step {state.global_step} reward {logs['reward']:+.3f}")

                trainer.add_callback(Progress())
                trainer.train()
    seconds = time.perf_counter() - started
    net = trainer.model
    fresh = Adapter(
        args.lora_r,
        args.lora_alpha,
        0.0,
        targets_modules,
        weights={k: v.detach().cpu().clone() for k, v in get_peft_model_state_dict(net).items()},
    )
    policy = object.__new__(type(model))  # the same parameters and state; its own backend
    policy.__dict__.update(model.__dict__)
    policy.reset_usage()
    policy.adapter_ = fresh if model.adapter_ is None else model.adapter_.plus(fresh)
    policy.__dict__["backend_"] = backend.with_model(net.merge_and_unload().eval())
    history = [
        {"step": int(e["step"]), "reward": float(e["reward"]), "kl": float(e.get("kl", 0.0))}
        for e in trainer.state.log_history
        if "reward" in e
    ]
    policy.reward_history_ = history
    policy.reward_summary_ = {
        "steps": float(trainer.state.global_step),
        "reward_first": history[0]["reward"] if history else float("nan"),
        "reward_last": history[-1]["reward"] if history else float("nan"),
        "seconds": seconds,
    }
    policy.trained_on_ = {
        **(getattr(model, "trained_on_", None) or {}),
        "reward_tuned": {"rows": len(rows), **args.to_dict()},
    }
    return policy


def answered(text: str, prompts: PromptBuilder) -> int | None:
    """The label a sampled answer gives: the choice it starts with (the answer the kind scores
    comes first), else whatever ``PromptBuilder.parse`` reads in it."""
    head = text.strip().lower()
    starts = [
        (len(choice), i)
        for i, choice in enumerate(prompts.choices)
        if re.match(rf"{re.escape(choice.lower())}(?![\w])", head)
    ]
    return max(starts)[1] if starts else prompts.parse(text)


__all__ = ["answered", "reward_tune"]
