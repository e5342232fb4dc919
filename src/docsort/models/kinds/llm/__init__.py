"""The ``llm`` kind: a generative model asked to pick one label, constrained to the label set.

Three backends behind one interface (``backend.Backend``): ``llamacpp`` (a GGUF in process,
default ``qwen-0.5b``), ``openai`` (any OpenAI-compatible endpoint) and ``transformers`` (a local
causal LM). The prompt lists the labels with their descriptions, optionally k-shot examples
(fixed, or the most similar training rows by ``minilm`` embedding) and optionally asks for a
one-sentence rationale first. Every row gets a label from the label set:

1. ``logprobs``: each label's answer (its name, length-normalised; or a letter alias) is scored
   by its log-likelihood, giving a real probability distribution (exact in process; from the
   first token's top log-probabilities over HTTP). Optional per-label biases fitted on
   validation rows correct the model's preference for some answers. Names are the default: on
   40 BBC *training* rows (a validation slice), zero-shot ``qwen-0.5b`` scored 0.425 accuracy
   with names and 0.20 with letters (it answered "A" for 28 of 40).
2. ``json``: generation constrained to ``{"label": <one of the names>}`` where the backend
   enforces it (llama.cpp grammar, a server's ``response_format``), then parsed.
3. ``generate``: free text, parsed; a reply naming no label gets the fallback (the most
   frequent training label) and is counted as *unparsed*.

``finetune: lora`` (the ``transformers`` backend) instruction-tunes the LLM on the training
rows first (``finetune.py``): LoRA adapters trained on the answer tokens of the same prompts,
saved with the model, so scoring, probabilities and cascades work as for zero-shot.

Token usage per row is kept in ``last_usage_`` (the rows of the last ``predict_proba`` call)
and summed in ``usage_``, so a cost model can price API tokens.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from docsort.data.dataset import Dataset
from docsort.data.safe_yaml import read_yaml
from docsort.errors import DocsortError
from docsort.io import write_json
from docsort.models.base import Capabilities, Classifier, Runtime, register
from docsort.models.kinds.llm.backend import BACKENDS, Backend, Reply, register_backend
from docsort.models.kinds.llm.prompt import (
    ANSWERS,
    SYSTEM,
    TEMPLATE,
    Conversation,
    PromptBuilder,
    Shot,
    json_schema,
)
from docsort.models.params import (
    DEVICE,
    SEED,
    AnyOf,
    Choice,
    Flag,
    Integer,
    Items,
    Mapping,
    Number,
    Optional,
    Registered,
    Text,
)
from docsort.progress import progress_bar

SCORINGS = ("auto", "logprobs", "json", "generate")
FINETUNES = ("none", "lora")
SHOT_SELECTIONS = ("fixed", "similar")
STATE = "llm.json"
VECTORS = "shot_vectors.npy"
L2 = 1e-2  # on the biases: a few dozen calibration rows must not flip every answer
USAGE_KEYS = ("prompt_tokens", "completion_tokens", "cached_tokens", "attempts")


@register("llm")
class LLMClassifier(Classifier):
    """Zero- or few-shot classification by a generative LLM, answers limited to the labels."""

    # ``base`` as every kind calls the weights it starts from; configs and models saved before
    # call it ``model``, which still works (with a deprecation line when a user wrote it)
    param_aliases = {"model": "base"}
    param_rules = {
        "backend": Registered(BACKENDS),
        "base": Text(nonempty=True),
        "base_url": Optional(Text(nonempty=True)),
        "api_key_env": Optional(Text(nonempty=True)),
        "answer": Choice(*ANSWERS),
        "scoring": Choice(*SCORINGS),
        "length_norm": Flag(),
        "descriptions": Optional(AnyOf(Mapping(), Text(nonempty=True))),
        "shots": Integer(min=0),
        "shot_selection": Choice(*SHOT_SELECTIONS),
        "shot_encoder": Text(nonempty=True),
        "shot_pool": Integer(min=1),
        "shot_chars": Integer(min=20),
        "max_chars": Integer(min=50),
        "template": Optional(Text()),
        "system": Optional(Text()),
        "rationale": Flag(),
        "rationale_tokens": Integer(min=1),
        "max_tokens": Integer(min=1),
        "bias_calibration": Flag(),
        "calibration_rows": Integer(min=1),
        "n_ctx": Integer(min=1),
        "n_threads": Optional(Integer(min=1)),
        "timeout": Number(min=0, exclusive=True),
        "max_retries": Integer(min=0),
        "backoff": Number(min=0),
        "concurrency": Integer(min=1),
        "on_error": Choice("fallback", "raise"),
        "finetune": Choice(*FINETUNES),
        "lora_r": Integer(min=1),
        "lora_alpha": Number(min=0, exclusive=True),
        "lora_dropout": Number(min=0, max=1, exclusive="max"),
        "lora_target_modules": Optional(Items(Text(nonempty=True), min_length=1)),
        "lr": Number(min=0, exclusive=True),
        "weight_decay": Number(min=0),
        "warmup_ratio": Number(min=0, max=1, exclusive="max"),
        "epochs": Integer(min=1),
        "batch_size": Integer(min=1),
        "patience": Integer(min=1),
        "valid_rows": Integer(min=1),
        "gradient_checkpointing": Flag(),
        "device": DEVICE,
        "seed": SEED,
    }
    # the device is chosen where the model runs, never saved
    runtime_params: ClassVar[dict[str, str]] = {"device": "device"}

    def __init__(
        self,
        backend: str = "llamacpp",
        base: str = "qwen-0.5b",
        base_url: str | None = None,
        api_key_env: str | None = "OPENAI_API_KEY",
        answer: str = "name",
        scoring: str = "auto",
        length_norm: bool = True,
        descriptions: dict[str, str] | str | None = None,
        shots: int = 0,
        shot_selection: str = "fixed",
        shot_encoder: str = "minilm",
        shot_pool: int = 2000,
        shot_chars: int = 400,
        max_chars: int = 2000,
        template: str | None = None,
        system: str | None = None,
        rationale: bool = False,
        rationale_tokens: int = 48,
        max_tokens: int = 24,
        bias_calibration: bool = True,
        calibration_rows: int = 200,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        timeout: float = 60.0,
        max_retries: int = 4,
        backoff: float = 0.5,
        concurrency: int = 4,
        on_error: str = "fallback",
        finetune: str = "none",
        lora_r: int = 8,
        lora_alpha: float = 16,
        lora_dropout: float = 0.05,
        lora_target_modules: list[str] | None = None,
        lr: float = 2e-4,
        weight_decay: float = 0.0,
        warmup_ratio: float = 0.1,
        epochs: int = 2,
        batch_size: int = 4,
        patience: int = 1,
        valid_rows: int = 100,
        gradient_checkpointing: bool = False,
        device: str = "auto",
        seed: int = 0,
    ) -> None:
        self.backend = backend
        self.base = base
        self.base_url = base_url
        self.api_key_env = api_key_env
        self.answer = answer
        self.scoring = scoring
        self.length_norm = length_norm
        self.descriptions = descriptions
        self.shots = shots
        self.shot_selection = shot_selection
        self.shot_encoder = shot_encoder
        self.shot_pool = shot_pool
        self.shot_chars = shot_chars
        self.max_chars = max_chars
        self.template = template
        self.system = system
        self.rationale = rationale
        self.rationale_tokens = rationale_tokens
        self.max_tokens = max_tokens
        self.bias_calibration = bias_calibration
        self.calibration_rows = calibration_rows
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.concurrency = concurrency
        self.on_error = on_error
        self.finetune = finetune
        self.lora_r = lora_r
        self.lora_alpha = lora_alpha
        self.lora_dropout = lora_dropout
        self.lora_target_modules = lora_target_modules
        self.lr = lr
        self.weight_decay = weight_decay
        self.warmup_ratio = warmup_ratio
        self.epochs = epochs
        self.batch_size = batch_size
        self.patience = patience
        self.valid_rows = valid_rows
        self.gradient_checkpointing = gradient_checkpointing
        self.device = device
        self.seed = seed

    # -- parameters -----------------------------------------------------------------------
    def _check_params(self) -> None:
        """What depends on several values (each alone: ``param_rules``)."""
        if self.backend == "openai" and not self.base_url:
            raise DocsortError(
                "llm backend 'openai' needs base_url (e.g. http://127.0.0.1:8000/v1)"
            )
        if self.finetune != "none" and self.backend != "transformers":
            raise DocsortError(
                f"llm finetune: {self.finetune} trains the model's own weights: it needs "
                f"backend: transformers (not {self.backend!r})"
            )

    def capabilities(self) -> Capabilities:
        """GRPO from feedback (``reward_tune``) needs the weights in torch: the transformers
        backend."""
        return replace(self.tags, reward_tunes=self.backend == "transformers")

    def reward_tune(self, rows: Sequence[Any], args: Any) -> LLMClassifier:
        """A copy tuned by GRPO on feedback ``rows`` (TRL's ``GRPOTrainer``); this model is the
        frozen reference (``rewards.py``)."""
        from docsort.models.kinds.llm.rewards import reward_tune

        return reward_tune(self, rows, args)

    def logits(self, texts: Sequence[str]) -> np.ndarray:
        """Log-probabilities of ``texts`` (rows × labels), for a KL between two versions."""
        return np.log(np.clip(self.predict_proba(texts), 1e-300, None))

    def _base_tokenizer(self) -> Any:
        """No tokenizer: ``base`` names a GGUF or an endpoint's model; words measure windows."""
        return None

    def apply_runtime(self, runtime: Runtime | None) -> None:
        """``--threads`` (``Runtime.threads``) replaces ``n_threads`` for this run only: the
        saved value (the training machine's) stays in ``get_params``, so a model saved again
        keeps it. A backend already built with other threads is built again."""
        super().apply_runtime(runtime)
        if runtime is not None and runtime.threads and runtime.threads != self.threads_for_run:
            self.__dict__["run_threads_"] = runtime.threads
            self.__dict__.pop("backend_", None)

    @property
    def threads_for_run(self) -> int | None:
        return self.__dict__.get("run_threads_") or self.n_threads

    # -- the backend, built on first use --------------------------------------------------
    def _backend(self) -> Backend:
        backend = self.__dict__.get("backend_")
        if backend is None:
            backend = BACKENDS[self.backend](self)
            self.__dict__["backend_"] = backend
        return backend

    def close(self) -> None:
        """Free the loaded model or HTTP connections (they come back on the next call)."""
        backend = self.__dict__.pop("backend_", None)
        if backend is not None:
            backend.close()

    def reset_usage(self) -> None:
        """Start counting tokens, unparsed and failed rows from zero (``usage_``)."""
        self.usage_ = _empty_usage()

    def _prompts(self) -> PromptBuilder:
        return PromptBuilder(
            names=self.labels_.names,
            descriptions=self.descriptions_,
            answer=self.answer,
            template=self.template or TEMPLATE,
            system=self.system or SYSTEM,
            max_chars=self.max_chars,
            shot_chars=self.shot_chars,
        )

    # -- fitting --------------------------------------------------------------------------
    def fit(self, train: Dataset, valid: Dataset | None = None) -> LLMClassifier:
        """Keep the labels, descriptions and k-shot pool; fit per-label biases on ``valid``.

        Nothing is trained: with ``shots=0`` and no validation rows this is zero-shot."""
        self.check()
        self._remember_training(train)
        if self.labels_.multi_label:
            raise DocsortError("the llm kind is single-label: pick one label per document")
        counts = train.targets(self.labels_)
        prior = np.bincount(counts, minlength=len(self.labels_)).astype(np.float64) + 1.0
        self.prior_ = prior / prior.sum()
        self.descriptions_ = self._read_descriptions()
        self._prompts()  # check the template now, not at predict time
        self.bias_ = None
        self.fixed_shots_: list[Shot] = []
        self.pool_: list[Shot] = []
        self.pool_vectors_: np.ndarray | None = None
        if self.shots:
            self._fit_shots(train)
        self.adapter_ = None
        self.tuning_ = None
        if self.finetune == "lora":
            self._instruction_tune(train, valid)
        self.usage_ = _empty_usage()
        if valid is not None and valid.labels is not None and self.bias_calibration:
            self._fit_bias(valid)
        return self

    def _instruction_tune(self, train: Dataset, valid: Dataset | None) -> None:
        """LoRA on the answer tokens of the prompts this model scores (``finetune.py``),
        stopping early on the accuracy of up to ``valid_rows`` validation rows."""
        from docsort.models.kinds.llm.finetune import Example, TuneArgs, finetune

        self.close()  # a model fitted before holds tuned weights: start from the base again
        backend = self._backend()
        prompts = self._prompts()
        choices = prompts.choices
        y = train.targets(self.labels_)
        examples = []
        shots = self._shots_for(train.texts)
        stop = backend.end_of_answer()  # so that a generated answer ends there too (GRPO)
        for text, shot, target in zip(train.texts, shots, y, strict=True):
            prompt = backend.render(prompts.conversation(text, shot))
            ids = backend.tokens(prompt)
            answer = backend._choice(prompt, ids, choices[int(target)])
            examples.append(Example(ids, answer + stop))
        evaluate = None
        if valid is not None and valid.labels is not None:
            rows = np.random.default_rng(self.seed).permutation(len(valid))[: self.valid_rows]
            texts = [valid.texts[i] for i in rows]
            truth = valid.targets(self.labels_)[rows]

            def evaluate() -> float:
                scores, status, _ = self._answer_scores(texts, "validating llm")
                return float(np.mean((scores.argmax(axis=1) == truth) & (status == "scored")))

        args = TuneArgs(**{k: getattr(self, k) for k in TuneArgs.__dataclass_fields__})
        self.adapter_, self.tuning_ = finetune(backend, self.base, examples, args, evaluate)

    def _read_descriptions(self) -> dict[str, str]:
        found = dict(self.labels_.descriptions)
        given = self.descriptions
        if isinstance(given, str):
            path = Path(given)
            given = read_yaml(path, "llm descriptions file")
            if not isinstance(given, dict):
                raise DocsortError(f"{path}: expected a mapping {{label: description}}")
        if given:
            unknown = sorted(set(map(str, given)) - set(self.labels_.names))
            if unknown:
                raise DocsortError(f"llm descriptions name unknown label {unknown[0]!r}")
            found.update({str(k): str(v) for k, v in given.items() if v})
        return found

    def _fit_shots(self, train: Dataset) -> None:
        rng = np.random.default_rng(self.seed)
        by_label: dict[str, list[int]] = {}
        for i, label in enumerate(train.labels or []):
            by_label.setdefault(str(label), []).append(i)
        for rows in by_label.values():
            rng.shuffle(rows)
        if self.shot_selection == "fixed":  # round-robin over labels: balanced examples
            chosen: list[int] = []
            while len(chosen) < self.shots and any(by_label.values()):
                for name in self.labels_.names:
                    if by_label.get(name) and len(chosen) < self.shots:
                        chosen.append(by_label[name].pop())
            rng.shuffle(chosen)
            self.fixed_shots_ = [Shot(train.texts[i], str(train.labels[i])) for i in chosen]
            return
        order = rng.permutation(len(train))[: self.shot_pool]
        self.pool_ = [Shot(train.texts[i], str(train.labels[i])) for i in order]
        self.pool_vectors_ = self._embed([s.text for s in self.pool_])

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        from docsort.models.hub import resolve
        from docsort.models.kinds.embedding import _load_sentence_transformer

        encoder = self.__dict__.get("shot_encoder_")
        if encoder is None:
            encoder = _load_sentence_transformer(resolve(self.shot_encoder), "cpu")
            encoder.max_seq_length = 256
            self.__dict__["shot_encoder_"] = encoder
        return encoder.encode(
            [t[: self.shot_chars * 3] for t in texts],
            batch_size=32,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        ).astype(np.float32)

    def _shots_for(self, texts: Sequence[str]) -> list[list[Shot]]:
        if not self.shots:
            return [[] for _ in texts]
        if self.shot_selection == "fixed" or self.pool_vectors_ is None:
            return [self.fixed_shots_ for _ in texts]
        similarity = self._embed(texts) @ self.pool_vectors_.T
        out = []
        for row, text in zip(similarity, texts, strict=True):
            best = [int(j) for j in np.argsort(-row) if self.pool_[int(j)].text != text]
            # most similar last: nearest to the document in the prompt
            out.append([self.pool_[j] for j in reversed(best[: self.shots])])
        return out

    def _fit_bias(self, valid: Dataset) -> None:
        """Per-label additive biases on the answer scores that maximise validation likelihood.

        A small LLM prefers some answers (often "A") whatever the document; this removes that
        preference without touching how documents are ranked within a label."""
        from scipy.optimize import minimize

        rng = np.random.default_rng(self.seed)
        rows = rng.permutation(len(valid))[: self.calibration_rows]
        texts = [valid.texts[i] for i in rows]
        y = valid.targets(self.labels_)[rows]
        scores, status, _ = self._answer_scores(texts, "calibrating llm")
        keep = status == "scored"
        if keep.sum() < 2 * len(self.labels_):
            return  # too few scored rows (or a backend without logprobs): leave uncalibrated
        s, y = scores[keep], y[keep]
        n_labels = len(self.labels_)
        counts = np.bincount(y, minlength=n_labels)
        present = np.flatnonzero(counts)
        # every label seen counts equally (a sample of 20 rows once held 8 of one arXiv label and
        # none of two others: unweighted, the fit pushed the unseen labels down by 2.6 nats and
        # answered the frequent one for 26 of 30 rows); labels not seen keep no correction
        weights = 1.0 / counts[y]
        weights /= weights.sum()
        rows_idx = np.arange(len(y))

        def full(free: np.ndarray) -> np.ndarray:
            bias = np.zeros(n_labels)
            bias[present] = free - free.mean()
            return bias

        def loss(free: np.ndarray) -> tuple[float, np.ndarray]:
            bias = full(free)
            z = s + bias
            z = z - z.max(axis=1, keepdims=True)
            p = np.exp(z)
            p /= p.sum(axis=1, keepdims=True)
            nll = -(weights * np.log(p[rows_idx, y] + 1e-12)).sum()
            nll += L2 * float((bias**2).sum())
            grad = p.copy()
            grad[rows_idx, y] -= 1
            g = (weights[:, None] * grad).sum(axis=0) + 2 * L2 * bias
            g = g[present]
            return float(nll), g - g.mean()  # the chain rule through the centring

        result = minimize(loss, np.zeros(len(present)), jac=True, method="L-BFGS-B")
        self.bias_ = full(result.x)

    # -- predicting -----------------------------------------------------------------------
    def _predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        self._check_fitted()
        n_labels = len(self.labels_)
        if len(texts) == 0:
            self.last_usage_ = []
            return np.zeros((0, n_labels))
        scores, status, rows = self._answer_scores(texts, f"llm ({self.backend})")
        proba = np.tile(self.prior_, (len(texts), 1))  # fallback: the training label prior
        for i, state in enumerate(status):
            if state == "scored":
                z = scores[i] + (self.bias_ if self.bias_ is not None else 0.0)
                z = np.exp(z - z.max())
                proba[i] = z / z.sum()
            elif state == "parsed":
                proba[i] = 0.0
                proba[i, int(rows[i]["label_index"])] = 1.0
        for row in rows:
            row.pop("label_index", None)
        failed = [r for r in rows if r["status"] == "failed"]
        if failed and self.on_error == "raise":
            raise DocsortError(
                f"llm: {len(failed)} of {len(rows)} rows failed: {failed[0]['error']}"
            )
        self.last_usage_ = rows
        return proba

    def _answer_scores(
        self, texts: Sequence[str], description: str
    ) -> tuple[np.ndarray, np.ndarray, list[dict[str, Any]]]:
        """Per row: choice scores, how the row was answered, and its usage record."""
        self.check()
        prompts = self._prompts()
        backend = self._backend()
        shots = self._shots_for(texts)
        n = len(texts)
        usage = [Reply() for _ in texts]
        rationales: list[str | None] = [None] * n
        start = time.perf_counter()
        passes = 2 if self.rationale else 1
        with progress_bar(description, total=n * passes) as advance:
            conversations = [prompts.conversation(t, s) for t, s in zip(texts, shots, strict=True)]
            if self.rationale:
                asked = [
                    prompts.rationale_conversation(t, s) for t, s in zip(texts, shots, strict=True)
                ]
                for i, reply in enumerate(backend.generate(asked, self.rationale_tokens, advance)):
                    usage[i].add_usage(reply)
                    if reply.error is None:  # else: answer without a rationale
                        rationales[i] = reply.text or ""
                        conversations[i] = prompts.after_rationale(asked[i], reply.text or "")
            replies = self._ask(backend, prompts, conversations, texts, shots, advance)
        seconds = time.perf_counter() - start
        choices = prompts.choices
        scores = np.zeros((n, len(choices)))
        status = np.empty(n, dtype=object)
        rows: list[dict[str, Any]] = []
        for i, reply in enumerate(replies):
            usage[i].add_usage(reply)
            row: dict[str, Any] = {k: getattr(usage[i], k) for k in USAGE_KEYS}
            if reply.error is not None:
                status[i], row["error"] = "failed", reply.error
            elif reply.scores is not None:
                s = reply.scores
                lengths = np.asarray(reply.extra.get("choice_lengths") or np.ones(len(s)))
                scores[i] = s / lengths if self.length_norm else s
                status[i] = "scored"
            else:
                index = prompts.parse(reply.text or "")
                status[i] = "unparsed" if index is None else "parsed"
                row["label_index"] = index
            row["status"] = status[i]
            row["answer"] = reply.text
            if self.rationale:
                row["rationale"] = rationales[i]
            rows.append(row)
        self._count(rows, seconds)
        return scores, status, rows

    def _ask(
        self,
        backend: Backend,
        prompts: PromptBuilder,
        conversations: list[Conversation],
        texts: Sequence[str],
        shots: list[list[Shot]],
        advance: Any,
    ) -> list[Reply]:
        scoring = self.scoring
        if scoring in ("auto", "logprobs"):
            from docsort.models.kinds.llm.openai_backend import NoLogprobs

            try:
                return backend.score(conversations, prompts.choices, advance)
            except NoLogprobs:
                if scoring == "logprobs":
                    raise DocsortError(
                        f"the endpoint {self.base_url} returns no logprobs: "
                        "use scoring='json' or 'generate'"
                    ) from None
                scoring = "json"
        if scoring == "json":
            asked = [
                prompts.json_conversation(t, s) if not self.rationale else c
                for t, s, c in zip(texts, shots, conversations, strict=True)
            ]
            return backend.generate(
                asked, self.max_tokens, advance, schema=json_schema(prompts.names)
            )
        return backend.generate(conversations, self.max_tokens, advance)

    def _count(self, rows: list[dict[str, Any]], seconds: float) -> None:
        usage = self.__dict__.setdefault("usage_", _empty_usage())
        usage["rows"] += len(rows)
        usage["seconds"] = round(usage["seconds"] + seconds, 3)
        for row in rows:
            for key in USAGE_KEYS:
                usage[key] += row[key]
            if row["status"] in ("unparsed", "failed"):
                usage[row["status"]] += 1
        usage["unparsed_rate"] = usage["unparsed"] / max(usage["rows"], 1)
        usage["failed_rate"] = usage["failed"] / max(usage["rows"], 1)

    # -- persistence ----------------------------------------------------------------------
    def _save_weights(self, directory: Path) -> None:
        state = {
            "prior": self.prior_.tolist(),
            "bias": None if self.bias_ is None else self.bias_.tolist(),
            "descriptions": self.descriptions_,
            "fixed_shots": [[s.text, s.label] for s in self.fixed_shots_],
            "pool": [[s.text, s.label] for s in self.pool_],
        }
        if self.tuning_ is not None:
            state["tuning"] = self.tuning_
        write_json(directory / STATE, state)
        if self.pool_vectors_ is not None:
            np.save(directory / VECTORS, self.pool_vectors_)
        if self.adapter_ is not None:
            self.adapter_.save(directory)

    def _load_weights(self, directory: Path) -> None:
        path = directory / STATE
        if not path.is_file():
            raise DocsortError(f"{directory}: {STATE} is missing; save the model again")
        state = json.loads(path.read_text(encoding="utf-8"))
        self.prior_ = np.asarray(state["prior"], dtype=np.float64)
        self.bias_ = None if state.get("bias") is None else np.asarray(state["bias"])
        self.descriptions_ = dict(state.get("descriptions") or {})
        self.fixed_shots_ = [Shot(t, lab) for t, lab in state.get("fixed_shots") or []]
        self.pool_ = [Shot(t, lab) for t, lab in state.get("pool") or []]
        vectors = directory / VECTORS
        self.pool_vectors_ = np.load(vectors) if vectors.is_file() else None
        self.tuning_ = state.get("tuning")
        from docsort.models.kinds.llm.finetune import Adapter

        self.adapter_ = Adapter.load(directory)  # tuned, or reward-tuned from zero-shot
        if self.finetune != "none" and self.adapter_ is None:
            raise DocsortError(f"{directory}: the LoRA adapter is missing; save the model again")
        self.usage_ = _empty_usage()

    def _weights_problem(self) -> str | None:
        n_labels = len(self.labels_)
        for name, values in (("prior", self.prior_), ("bias", self.bias_)):
            if values is not None and values.shape != (n_labels,):
                return f"its manifest lists {n_labels} labels, its {STATE} {name} {values.size}"
        return None


def _empty_usage() -> dict[str, Any]:
    return {
        "rows": 0,
        **dict.fromkeys(USAGE_KEYS, 0),
        "unparsed": 0,
        "failed": 0,
        "unparsed_rate": 0.0,
        "failed_rate": 0.0,
        "seconds": 0.0,
    }


# -- the built-in backends, each imported only when a model uses it -------------------------


@register_backend("llamacpp")
def _llamacpp(model: LLMClassifier) -> Backend:
    from docsort.models.kinds.llm.llamacpp_backend import LlamaCppBackend

    return LlamaCppBackend(model.base, n_ctx=model.n_ctx, n_threads=model.threads_for_run)


@register_backend("openai")
def _openai(model: LLMClassifier) -> Backend:
    from docsort.models.kinds.llm.openai_backend import OpenAIBackend

    return OpenAIBackend(
        model.base_url or "",
        model.base,
        api_key_env=model.api_key_env,
        timeout=model.timeout,
        max_retries=model.max_retries,
        backoff=model.backoff,
        concurrency=model.concurrency,
    )


@register_backend("transformers")
def _transformers(model: LLMClassifier) -> Backend:
    from docsort.models.kinds.llm.hf_backend import TransformersBackend

    return TransformersBackend(
        model.base,
        n_threads=model.threads_for_run,
        device=model.device,
        adapter=getattr(model, "adapter_", None),
    )
