"""Reward fine-tuning from feedback: GRPO against supervised retraining on the same feedback and
against no update, with simulated people who know the true labels.

    nice .venv/bin/python benchmarks/grpo.py run --seeds 0 1 2
    .venv/bin/python benchmarks/grpo.py table        # rebuild the docs section only

Per seed, on real arXiv titles (8 categories, ../shared/data/arxiv/arxiv_8cat.csv, label
descriptions from benchmarks/descriptions/arxiv8.yaml), three disjoint row sets are drawn:
the champion's training rows (8 per category), the rows sent to the service (20 per category)
and held-out rows (40 per category). The champion, a few-shot LoRA ``dual`` on ``minilm``, is
registered in a fresh MLflow registry and served by the real service (``docsort serve``'s app)
with a SQLite store; every answer is rated 5 if right and 1 if wrong, and a share of the wrong
ones (``--correction-share``, the rows drawn with the seed) also gets its true label. Then, on
that same store:
- **none**: the champion as it is;
- **supervised**: ``docsort retrain --with-feedback`` (trained anew on its 64 rows plus the
  feedback rows that carry a label: the corrections and the 5-rated answers);
- **grpo**: ``docsort retrain --method grpo`` (the champion tuned from the ratings and the
  corrections, every feedback row counts, see docs/registry.md).
Each is scored on the held-out rows and on the fed-back rows (all of them, and the corrected
ones), with its KL divergence from the champion on the held-out rows and its wall time (the
whole ``run_retrain``, registration included). Each result file records the machine's load,
how many cores other processes kept busy during the retraining (``/proc/stat``) and torch's
thread count. The section between the ``<!-- grpo:start -->`` markers of docs/benchmarks.md
is rebuilt from benchmarks/results/grpo/*.json only.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from docsort.io import write_json
from run import _busy_seconds, _own_seconds, add_docs_option, machine, replace_docs_section

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
ARXIV = SHARED / "arxiv" / "arxiv_8cat.csv"
RESULTS = ROOT / "benchmarks" / "results" / "grpo"
DESCRIPTIONS = ROOT / "benchmarks" / "descriptions" / "arxiv8.yaml"
START, END = "<!-- grpo:start -->", "<!-- grpo:end -->"
TRAIN, FED, HELD = 8, 20, 40  # rows per category: champion's, sent to the service, held out
CHAMPION = {  # a few-shot LoRA dual on titles: quick here, and wrong often enough to correct
    "base": "minilm",
    "max_length": 48,
    "label_max_length": 32,
    "epochs": 2,
    "batch_size": 16,
    "lora": True,
    "lr": 5e-4,
}
GRPO = {"steps": 40, "batch_size": 16, "group_size": 8, "lr": 3e-4, "kl_beta": 0.05}
METHODS = ("none", "supervised", "grpo")


def split(seed: int) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    frame = pd.read_csv(ARXIV)[["title", "category"]].rename(
        columns={"title": "text", "category": "label"}
    )
    frame = frame.drop_duplicates("text").sample(frac=1.0, random_state=seed)
    parts = [[], [], []]
    for _, rows in frame.groupby("label"):
        parts[0].append(rows.iloc[:TRAIN])
        parts[1].append(rows.iloc[TRAIN : TRAIN + FED])
        parts[2].append(rows.iloc[TRAIN + FED : TRAIN + FED + HELD])
    return tuple(pd.concat(p).reset_index(drop=True) for p in parts)  # type: ignore[return-value]


def send_feedback(
    reference: str, store: str, rows: pd.DataFrame, share: float, seed: int
) -> pd.DataFrame:
    """Serve ``rows``; rate each answer 5 if right, 1 if wrong; correct ``share`` of the
    wrong ones (drawn with ``seed``). Returns the rows with what was served and sent."""
    from fastapi.testclient import TestClient

    from docsort.serve import create_app

    rng = np.random.default_rng(seed)
    out = rows.copy()
    with TestClient(create_app(reference, store, log_text="full")) as client:
        answer = client.post("/v1/classify", json={"texts": list(rows.text)})
        answer.raise_for_status()
        predictions = answer.json()["predictions"]
        out["served"] = [p["label"] for p in predictions]
        wrong = np.flatnonzero(out.served.to_numpy() != out.label.to_numpy())
        corrected = set(rng.choice(wrong, int(round(share * len(wrong))), replace=False).tolist())
        out["corrected"] = [i in corrected for i in range(len(out))]
        for i, p in enumerate(predictions):
            right = out.served[i] == out.label[i]
            body: dict[str, Any] = {"prediction_id": p["id"], "rating": 5 if right else 1}
            if out.corrected[i]:
                body["label"] = out.label[i]
            client.post("/v1/feedback", json=body).raise_for_status()
    return out


def score(model: Any, champion: Any, held: pd.DataFrame, fed: pd.DataFrame) -> dict[str, Any]:
    from sklearn.metrics import f1_score

    from docsort.models.nn.grpo import mean_kl

    held_pred = np.asarray(model.predict(list(held.text)))
    fed_pred = np.asarray(model.predict(list(fed.text)))
    right = fed_pred == fed.label.to_numpy()
    corrected = fed.corrected.to_numpy()
    wrong_uncorrected = (fed.served != fed.label).to_numpy() & ~corrected
    multi = champion.labels_.multi_label
    held_texts = list(held.text)
    return {
        "held_accuracy": float(np.mean(held_pred == held.label.to_numpy())),
        "held_macro_f1": float(f1_score(held.label, held_pred, average="macro")),
        "fed_accuracy": float(right.mean()),
        "corrected_accuracy": float(right[corrected].mean()) if corrected.any() else None,
        "rated_wrong_accuracy": (
            float(right[wrong_uncorrected].mean()) if wrong_uncorrected.any() else None
        ),
        "kl_from_champion": mean_kl(model.logits(held_texts), champion.logits(held_texts), multi),
    }


def run_seed(seed: int, share: float, threads: int) -> dict[str, Any]:
    import torch

    import docsort
    from docsort import api
    from docsort.api.registry import RegisterRequest, run_register
    from docsort.api.retrain import RetrainRequest, run_retrain
    from docsort.models.base import Runtime
    from docsort.models.nn.grpo import GrpoArgs

    torch.set_num_threads(threads)
    runtime = Runtime(threads=threads)
    train, fed, held = split(seed)
    with tempfile.TemporaryDirectory(prefix="grpo-bench-") as tmp_name:
        tmp = Path(tmp_name)
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp / 'mlflow.db'}"
        os.environ["DOCSORT_CACHE"] = str(tmp / "cache")
        train.to_csv(tmp / "train.csv", index=False)
        started = time.perf_counter()
        request = api.TrainRequest(
            data=tmp / "train.csv",
            out=tmp / "v1",
            kind="dual",
            params={**CHAMPION, "seed": seed},
            labels=DESCRIPTIONS,
            seed=seed,
            runtime=runtime,
        )
        api.fit(api.prepare_train(request))
        champion_seconds = time.perf_counter() - started
        name = f"arxiv-grpo-{seed}"
        run_register(RegisterRequest(tmp / "v1", name, alias="champion"))
        store = f"sqlite:///{tmp / 'store.sqlite'}"
        fed = send_feedback(f"models:/{name}@champion", store, fed, share, seed)
        champion = docsort.load(tmp / "v1", runtime=runtime)
        rows: dict[str, dict[str, Any]] = {
            "none": {**score(champion, champion, held, fed), "seconds": 0.0}
        }
        for method in ("supervised", "grpo"):
            load = machine()
            busy, own, wall = _busy_seconds(), _own_seconds(), time.perf_counter()
            extra: dict[str, Any] = {}
            if method == "grpo":
                extra = {"method": "grpo", "grpo": GrpoArgs.from_pairs({**GRPO, "seed": seed})}
            result = run_retrain(
                RetrainRequest(name, tmp / method, store=store, runtime=runtime, **extra)
            )
            seconds = time.perf_counter() - wall
            others = None
            if busy is not None:
                used = _busy_seconds() - busy - (_own_seconds() - own)
                others = round(max(used, 0.0) / seconds, 2)
            model = docsort.load(tmp / method, runtime=runtime)
            rows[method] = {
                **score(model, champion, held, fed),
                "seconds": round(seconds, 1),
                "feedback_rows": result.feedback_rows,
                "load_average_1m_before": load["load_average_1m"],
                "other_cores_busy": others,
                "reward": None if result.reward is None else result.reward.summary,
            }
        return {
            "benchmark": "GRPO from feedback vs supervised retraining vs no update",
            "dataset": "arxiv8 titles",
            "seed": seed,
            "rows_per_category": {"champion": TRAIN, "fed_back": FED, "held_out": HELD},
            "correction_share": share,
            "served_wrong": int((fed.served != fed.label).sum()),
            "corrected": int(fed.corrected.sum()),
            "fed_back": len(fed),
            "held_out": len(held),
            "champion_params": CHAMPION,
            "champion_seconds": round(champion_seconds, 1),
            "grpo_settings": GRPO,
            "methods": rows,
            "machine": {**machine(), "torch_threads": threads},
        }


def _mean_sd(values: list[float | None], digits: int = 3) -> str:
    kept = [v for v in values if v is not None]
    if not kept:
        return ""
    if len(kept) == 1:
        return f"{kept[0]:.{digits}f}"
    return f"{statistics.mean(kept):.{digits}f} ± {statistics.stdev(kept):.{digits}f}"


def table(results: list[dict[str, Any]]) -> str:
    if not results:
        return "(no results yet: run `benchmarks/grpo.py run`)"
    first = results[0]
    lines = [
        f"arXiv titles, 8 categories; champion: few-shot LoRA `dual` ({TRAIN} rows a category, "
        f"minilm); {FED * 8} rows sent to the service and rated (5 right, 1 wrong), "
        f"{first['correction_share']:.0%} of the wrong ones corrected; {HELD * 8} held-out rows; "
        f"{len(results)} seeds ({', '.join(str(r['seed']) for r in results)}), mean ± sd. "
        f"Served wrong: {', '.join(str(r['served_wrong']) for r in results)} of {first['fed_back']}"
        f"; corrected: {', '.join(str(r['corrected']) for r in results)}.",
        "",
        "| method | held-out accuracy | held-out macro-F1 | fed-back accuracy | corrected rows "
        "| wrong, rated 1 only | KL from champion (held-out) | seconds | load before | "
        "other cores busy |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for method in METHODS:
        rows = [r["methods"][method] for r in results]
        load = [r.get("load_average_1m_before") for r in rows]
        others = [r.get("other_cores_busy") for r in rows]
        timed = method != "none"
        lines.append(
            f"| {method} | {_mean_sd([r['held_accuracy'] for r in rows])} "
            f"| {_mean_sd([r['held_macro_f1'] for r in rows])} "
            f"| {_mean_sd([r['fed_accuracy'] for r in rows])} "
            f"| {_mean_sd([r['corrected_accuracy'] for r in rows])} "
            f"| {_mean_sd([r['rated_wrong_accuracy'] for r in rows])} "
            f"| {_mean_sd([r['kl_from_champion'] for r in rows], 4)} "
            f"| {_mean_sd([r['seconds'] for r in rows], 0) if timed else ''} "
            f"| {_mean_sd(load, 1) if timed else ''} "
            f"| {_mean_sd(others, 2) if timed else ''} |"
        )
    held = {m: statistics.mean(r["methods"][m]["held_accuracy"] for r in results) for m in METHODS}
    fed = {m: statistics.mean(r["methods"][m]["fed_accuracy"] for r in results) for m in METHODS}
    best_held, best_fed = max(held, key=held.get), max(fed, key=fed.get)
    threads = first["machine"].get("torch_threads")
    lines += [
        "",
        f"Held-out accuracy is highest with **{best_held}** ({held[best_held]:.3f}; "
        + ", ".join(f"{m} {held[m]:.3f}" for m in METHODS if m != best_held)
        + f"); on the fed-back rows with **{best_fed}** ({fed[best_fed]:.3f}; "
        + ", ".join(f"{m} {fed[m]:.3f}" for m in METHODS if m != best_fed)
        + f"). torch threads: {threads}; GRPO: "
        + ", ".join(f"{k} {v}" for k, v in first["grpo_settings"].items())
        + ".",
    ]
    return "\n".join(lines)


def load_results() -> list[dict[str, Any]]:
    return [
        json.loads(p.read_text(encoding="utf-8")) for p in sorted(RESULTS.glob("arxiv8-*.json"))
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["run", "table"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--correction-share", type=float, default=0.5)
    parser.add_argument("--threads", type=int, default=1)
    add_docs_option(parser)
    args = parser.parse_args()
    if args.command == "run":
        for seed in args.seeds:
            result = run_seed(seed, args.correction_share, args.threads)
            RESULTS.mkdir(parents=True, exist_ok=True)
            write_json(RESULTS / f"arxiv8-seed{seed}.json", result)
            print(json.dumps({m: r for m, r in result["methods"].items()}, indent=1, default=str))
    replace_docs_section(START, END, table(load_results()), args.docs)


if __name__ == "__main__":
    main()
