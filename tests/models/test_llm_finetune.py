"""Instruction tuning of the ``llm`` kind (``finetune: lora``, transformers backend).

The default run uses a tiny causal LM (a two-layer Qwen2 network, randomly initialised from a
config, with minilm's tokenizer) so training takes seconds; ``qwen-0.5b`` itself is measured by
``benchmarks/llm_lora.py`` and trained once in the slow test at the end.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from docsort.data.dataset import Dataset
from docsort.data.loaders import load_dataset
from docsort.errors import DocsortError
from docsort.models.base import Runtime, create
from docsort.models.base import load as load_model
from docsort.models.hub import resolve


def tiny_causal_lm(folder: Path, tokenizer, **config: object) -> str:
    """A Hugging Face causal-LM directory: Qwen2 architecture, 2 layers of width 64, randomly
    initialised (seed 0), with ``tokenizer``."""
    import torch
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    settings = {
        "vocab_size": len(tokenizer),
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 2048,
        "tie_word_embeddings": True,
        # wide enough embeddings for logits that can single out an answer token (at the
        # default 0.02 the largest logit a 64-wide model can reach is about 1.3)
        "initializer_range": 0.3,
        "pad_token_id": tokenizer.pad_token_id,
        **config,
    }
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(Qwen2Config(**settings))
    tokenizer.save_pretrained(folder)
    model.save_pretrained(folder)
    # read back beside a Qwen2 config, a BERT tokenizer gains Qwen's end-of-text token
    tokens = len(AutoTokenizer.from_pretrained(folder))
    if tokens > settings["vocab_size"]:
        model.resize_token_embeddings(tokens)
        model.save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The tiny network with minilm's tokenizer (no chat template: prompts as plain text)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(resolve("minilm"))
    return tiny_causal_lm(tmp_path_factory.mktemp("tiny-lm"), tokenizer)


@pytest.fixture(scope="module")
def bbc() -> tuple[Dataset, Dataset]:
    """Real BBC business rows, the five labels known: the random 2-layer LM learns in seconds to
    answer "business" for them, which it did not before. (Telling sports from business apart is
    beyond it: tuned on 8 of each it reached 0.44-0.81 on its own training rows, by seed and
    text length; the slow test tunes qwen-0.5b for that.)"""
    train = load_dataset("builtin:bbc:train", "text", "label")
    business = [i for i, label in enumerate(train.labels) if label == "business"]
    rows = np.random.default_rng(0).permutation(business)
    return train.subset(sorted(rows[:16])), train.subset(sorted(rows[16:24]))


def tuned(base: str, **params: object) -> dict[str, object]:
    settings = {
        "backend": "transformers",
        "base": base,
        "finetune": "lora",
        "max_chars": 200,
        "n_threads": 1,
        "bias_calibration": False,
        "lr": 3e-2,
        "epochs": 4,
        "patience": 4,
        "valid_rows": 4,
    }
    settings.update(params)
    return settings


def accuracy(model, data: Dataset) -> float:
    return float(np.mean(np.array(model.predict(data.texts)) == np.array(data.labels)))


def test_tuning_teaches_the_answers_and_the_saved_model_predicts_the_same(
    tiny_lm: str, bbc: tuple[Dataset, Dataset], tmp_path: Path
) -> None:
    train, valid = bbc
    zero = create("llm", tuned(tiny_lm, finetune="none")).fit(train)
    model = create("llm", tuned(tiny_lm)).fit(train, valid)
    # it learnt to answer its training rows' labels, which the untuned network did not know
    assert accuracy(zero, train) < 0.7
    assert accuracy(model, train) >= 0.9
    history = model.tuning_["epochs"]
    assert all(e["valid_score"] is not None for e in history)  # early stopping had its scores
    assert history[-1]["train_loss"] < history[0]["train_loss"] / 5

    model.save(tmp_path / "tuned")
    saved = sorted(p.name for p in (tmp_path / "tuned").iterdir())
    assert "adapter.safetensors" in saved and "adapter.json" in saved
    # the model directory holds the adapter, not a copy of the base weights
    assert (tmp_path / "tuned" / "adapter.safetensors").stat().st_size < 2_000_000
    loaded = load_model(tmp_path / "tuned")
    texts = valid.texts[:4]
    np.testing.assert_allclose(loaded.predict_proba(texts), model.predict_proba(texts), atol=1e-5)


def test_a_damaged_or_missing_adapter_is_one_line(
    tiny_lm: str, bbc: tuple[Dataset, Dataset], tmp_path: Path
) -> None:
    model = create("llm", tuned(tiny_lm, epochs=1)).fit(bbc[0].subset(range(4)))
    model.save(tmp_path / "m")
    (tmp_path / "m" / "adapter.safetensors").write_bytes(b"not a tensor file")
    with pytest.raises(DocsortError, match="not a readable adapter"):
        load_model(tmp_path / "m")
    (tmp_path / "m" / "adapter.safetensors").unlink()
    with pytest.raises(DocsortError, match="adapter.safetensors is missing"):
        load_model(tmp_path / "m")


def test_finetuning_needs_the_transformers_backend_and_real_modules(
    tiny_lm: str, bbc: tuple[Dataset, Dataset]
) -> None:
    with pytest.raises(DocsortError, match="needs backend: transformers"):
        create("llm", {"finetune": "lora"}).fit(bbc[0])
    with pytest.raises(DocsortError, match="'query' is not a module"):
        create("llm", tuned(tiny_lm, lora_target_modules=["query"])).fit(bbc[0])
    with pytest.raises(DocsortError, match="finetune"):
        create("llm", tuned(tiny_lm, finetune="full")).fit(bbc[0])


def test_padded_batches_score_like_single_rows(tiny_lm: str, bbc: tuple[Dataset, Dataset]) -> None:
    """Left padding with position ids: a row's answer loss does not depend on its batch."""
    import torch

    from docsort.models.kinds.llm.finetune import Example, answer_loss

    model = create("llm", tuned(tiny_lm, finetune="none")).fit(bbc[0])
    backend = model._backend()
    prompts = model._prompts()
    rows = []
    for text, target in zip(bbc[0].texts[:3], bbc[0].targets(model.labels_)[:3], strict=True):
        prompt = backend.render(prompts.conversation(text))
        ids = backend.tokens(prompt)
        rows.append(Example(ids, backend._choice(prompt, ids, prompts.choices[int(target)])))
    assert len({len(r.prompt) for r in rows}) > 1  # really padded
    pad = backend.tokenizer.pad_token_id
    with torch.no_grad():
        alone = [answer_loss(backend.model, [r], pad, backend.device).item() for r in rows]
        together = answer_loss(backend.model, rows, pad, backend.device).item()
    weights = [len(r.answer) for r in rows]
    assert together == pytest.approx(np.average(alone, weights=weights), rel=1e-4)


def test_a_sampled_answer_is_read_from_its_start() -> None:
    from docsort.models.kinds.llm.prompt import PromptBuilder
    from docsort.models.kinds.llm.rewards import answered

    prompts = PromptBuilder(("business", "sport", "tech"), {}, answer="name")
    assert answered("sport", prompts) == 1
    assert answered(" Business. It is about money and sport", prompts) == 0
    assert answered("I would say tech", prompts) == 2  # not first: read as any reply is
    assert answered("sportswear", prompts) is None
    assert answered("", prompts) is None


def test_stacked_adapters_equal_the_two_merged_in_turn(tiny_lm: str) -> None:
    """GRPO's fresh adapter is saved stacked on the tuned one: one adapter, the same weights."""
    import torch
    from transformers import AutoModelForCausalLM

    from docsort.models.kinds.llm.finetune import Adapter

    def random_adapter(seed: int, r: int, alpha: int) -> Adapter:
        base = AutoModelForCausalLM.from_pretrained(tiny_lm)
        empty = Adapter(r, alpha, 0.0, ["q_proj", "v_proj", "down_proj"], weights={})
        net = empty.wrap(base, "tiny")
        generator = torch.Generator().manual_seed(seed)
        weights = {}
        for name, p in net.named_parameters():
            if "lora_" in name:
                weights[name] = torch.randn(p.shape, generator=generator) * 0.05
        from peft import get_peft_model_state_dict, set_peft_model_state_dict

        set_peft_model_state_dict(net, {k.replace(".default", ""): v for k, v in weights.items()})
        empty.weights = {k: v.clone() for k, v in get_peft_model_state_dict(net).items()}
        return empty

    first, second = random_adapter(1, 4, 8), random_adapter(2, 2, 16)
    in_turn = second.merged_into(first.merged_into(AutoModelForCausalLM.from_pretrained(tiny_lm)))
    at_once = first.plus(second).merged_into(AutoModelForCausalLM.from_pretrained(tiny_lm))
    assert first.plus(second).r == 6
    for (name, a), (_, b) in zip(
        in_turn.state_dict().items(), at_once.state_dict().items(), strict=True
    ):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5, msg=name)
    moved = AutoModelForCausalLM.from_pretrained(tiny_lm).state_dict()
    assert any(not torch.equal(moved[k], at_once.state_dict()[k]) for k in moved)


def test_only_the_transformers_backend_is_reward_tuned() -> None:
    assert create("llm", {"backend": "transformers"}).capabilities().reward_tunes
    assert not create("llm", {}).capabilities().reward_tunes  # llama.cpp: no torch weights


@pytest.mark.slow
def test_grpo_through_trl_gives_a_challenger_that_saves_as_one_adapter(
    bbc: tuple[Dataset, Dataset], tmp_path: Path
) -> None:
    """TRL's GRPOTrainer on a tiny LM with Qwen's tokenizer and chat template (built from the
    ``qwen-0.5b`` GGUF once), tuned first so that its answers are label names."""
    from transformers import AutoTokenizer

    from docsort.models.kinds.llm.hf_backend import _tokenizer_dir
    from docsort.models.nn.grpo import GrpoArgs, RewardRow

    tokenizer = AutoTokenizer.from_pretrained(_tokenizer_dir(Path(resolve("qwen-0.5b"))))
    folder = tiny_causal_lm(tmp_path / "tiny-qwen", tokenizer, eos_token_id=tokenizer.eos_token_id)
    train, feedback = bbc
    model = create("llm", tuned(folder, max_chars=80, epochs=2)).fit(train)
    served = model.predict(feedback.texts)
    rows = [
        RewardRow(t, (s,), 5 if s == y else 1, None if s == y else (y,))
        for t, s, y in zip(feedback.texts, served, feedback.labels, strict=True)
    ]
    args = GrpoArgs(steps=2, batch_size=2, group_size=4, updates=1).check()
    challenger = model.reward_tune(rows, args)
    summary = challenger.reward_summary_
    assert summary["steps"] == 2 and len(challenger.reward_history_) == 2
    assert -2.0 <= summary["reward_first"] <= 2.0  # rewards of feedback, not TRL's defaults
    assert challenger.adapter_.r == model.adapter_.r + args.lora_r  # stacked, one adapter
    assert model.adapter_.r == 8  # the champion is left as it was
    challenger.save(tmp_path / "challenger")
    loaded = load_model(tmp_path / "challenger")
    np.testing.assert_allclose(
        loaded.predict_proba(feedback.texts[:3]),
        challenger.predict_proba(feedback.texts[:3]),
        atol=1e-5,
    )


def test_a_tuned_llm_as_a_cascades_last_stage_gets_what_the_first_is_unsure_of(
    tiny_lm: str, bbc: tuple[Dataset, Dataset], tmp_path: Path
) -> None:
    """Routing and saving with a tuned LLM stage: thresholds chosen on rows the tuned LLM
    answers right (it learnt to say "business") and a one-row-a-label tfidf often does not,
    so each stage answers some; the saved cascade (the adapter copied inside it) routes and
    scores as before, and a run's threads reach the LLM stage."""
    train, _ = bbc
    create("llm", tuned(tiny_lm)).fit(train).save(tmp_path / "llm")
    every = load_dataset("builtin:bbc:train", "text", "label")
    few = [every.labels.index(label) for label in every.label_set.names]  # one row a label
    create("tfidf", {}).fit(every.subset(few)).save(tmp_path / "tfidf")
    stages = [{"model": str(tmp_path / "tfidf")}, {"model": str(tmp_path / "llm")}]
    cascade = create("cascade", {"stages": stages}).fit(train)
    tfidf_alone, llm_alone = (s["alone_accuracy"] for s in cascade.selection_summary()["stages"])
    print(f"\ntfidf alone {tfidf_alone}, llm alone {llm_alone}")
    assert llm_alone > tfidf_alone
    routed = cascade.route(train.texts)
    print(f"llm answered {(routed.stage == 1).sum()} of {len(routed.stage)}")
    assert 0 < (routed.stage == 1).sum() < len(train)  # each stage answered some rows
    cascade.save(tmp_path / "cascade")
    again = load_model(tmp_path / "cascade", runtime=Runtime(threads=2))
    assert again.stages_[1].threads_for_run == 2  # the run's settings reach the stages
    np.testing.assert_array_equal(again.route(train.texts).stage, routed.stage)
    np.testing.assert_allclose(
        again.predict_proba(train.texts), cascade.predict_proba(train.texts), atol=1e-5
    )
