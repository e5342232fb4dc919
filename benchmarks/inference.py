"""Inference at the machine's limit (issue 19): PyTorch vs ONNX Runtime fp32 / int8, in one run.

    .venv/bin/python benchmarks/inference.py                # train, export, measure, table
    .venv/bin/python benchmarks/inference.py --table-only   # rebuild the tables only

For the ``embed`` kind (minilm, frozen, logistic-regression head) and a fine-tuned ``encoder``
(minilm) on banking77, trained on the official training rows less a held-out validation share:

1. the fp32 ceiling first: ``efficiency.machine_gflops`` (torch matmul) ÷ the model's GFLOP per
   test document (``efficiency.encoder_gflops_per_doc``, the real token counts);
2. the quantization options: each int8 scheme (dynamic / static, per channel or tensor, 7-bit,
   calibration method, groups kept in fp32, the ``auto`` search) made from the same fp32 graph
   and measured on the validation rows against it: label agreement, flips, max / mean |Δp|;
3. the variants, each in its own process (so that its peak RSS is its own): docsort's PyTorch
   predict path as main had it (``legacy_path``), the fast PyTorch path (``models/nn/fast.py``),
   ORT fp32, ORT int8 dynamic (per channel, head in fp32: the first
   slice's), ORT int8 static with the default ``auto`` mixed precision, at batch 1 and 32 on the
   test rows: docs/s (median of ``--repeats``), % of the fp32 ceiling, label agreement with the
   PyTorch model (main's path), accuracy.

Results: benchmarks/results/inference/<model>-banking77.json; the tables between the
``<!-- inference:... -->`` markers of docs/export.md are rebuilt from them.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "inference"
DOCS = ROOT / "docs" / "export.md"
OPTIONS_START, OPTIONS_END = "<!-- inference-options:start -->", "<!-- inference-options:end -->"
SPEED_START, SPEED_END = "<!-- inference:start -->", "<!-- inference:end -->"
DATASET = "banking77"
VALID_ROWS = 600  # held out of training: the options are measured on these
CALIBRATION_ROWS = 200  # training rows the static ranges and the fp32 search read
MAX_LENGTH = 128  # every banking77 query is shorter
MODELS: dict[str, tuple[str, dict[str, Any]]] = {
    "embed-minilm": ("embed", {"base": "minilm", "max_length": MAX_LENGTH}),
    "encoder-minilm": (
        "encoder",
        {"base": "minilm", "max_length": MAX_LENGTH, "batch_size": 32, "device": "cpu"},
    ),
}


# -- one variant, in its own process ----------------------------------------------------------
def legacy_path(model: Any) -> None:
    """docsort's PyTorch predict path as main had it before ``models/nn/fast.py`` (commit
    bdeefbf): sentence-transformers' ``encode`` for ``embed``; ``Tokenized`` (a tokenizer
    call, ``tokenizer.pad`` per batch) and ``predict_logits`` for ``encoder``."""
    if model.kind == "embed":

        def embed(texts: list[str]) -> np.ndarray:
            return model._encoder().encode(
                list(texts),
                batch_size=model.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )

        model._embed = embed
    elif model.kind == "encoder":
        from docsort.models.nn.training import predict_logits

        def predict_proba(texts: list[str]) -> np.ndarray:
            rows = model._tokenized(texts)
            description = "predicting" if len(texts) >= 1000 else ""
            logits = predict_logits(
                model.net_, rows, model.eval_batch_size, model.device_, description
            )
            return model._proba(logits)

        model._predict_proba = predict_proba


def measure(
    model_dir: str, texts_file: str, batch: int, repeats: int, out: str, legacy: bool
) -> None:
    """Time ``predict_proba`` of the saved model on the texts (after a warm-up); write the
    probabilities (``out``.npy) and the numbers (``out``.json), peak RSS included."""
    import docsort
    from docsort.models.base import Runtime

    texts = json.loads(Path(texts_file).read_text())
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    model = docsort.load(model_dir, runtime=Runtime(eval_batch_size=batch))
    if legacy:
        legacy_path(model)
    load_seconds = time.perf_counter() - started
    model.predict_proba(texts[:32])  # warm-up: lazy sessions, first-call allocations
    runs, proba = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        proba = model.predict_proba(texts)
        runs.append(len(texts) / (time.perf_counter() - start))
    np.save(f"{out}.npy", proba)
    torch = sys.modules.get("torch")
    facts = {
        "docs_per_second": float(np.median(runs)),
        "docs_per_second_runs": [round(r, 1) for r in runs],
        "rows": len(texts),
        "batch": batch,
        "load_seconds": round(load_seconds, 2),
        "peak_rss_mb": peak_rss_mb(),
        "torch_imported": torch is not None,
        "torch_threads": torch.get_num_threads() if torch is not None else None,
        "ort_threads": "default (one per core)" if model.kind == "onnx" else None,
        "load_average_1m_before": round(load_before, 2),
        "load_average_1m_after": round(os.getloadavg()[0], 2),
    }
    Path(f"{out}.json").write_text(json.dumps(facts))


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM: reset by exec, unlike ``ru_maxrss``, which
    a child started by ``subprocess`` inherits from its parent)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def run_variant(
    model_dir: Path, texts_file: Path, batch: int, repeats: int, out: Path, legacy: bool
) -> dict:
    command = [sys.executable, __file__, "--measure", str(model_dir), str(texts_file),
               str(batch), str(repeats), str(out), "1" if legacy else "0"]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        raise SystemExit(f"{model_dir.name} batch {batch} failed:\n{done.stderr[-3000:]}")
    facts = json.loads(Path(f"{out}.json").read_text())
    facts["proba"] = np.load(f"{out}.npy")
    return facts


# -- the run ------------------------------------------------------------------------------------
def labels_agree(model: Any, reference: np.ndarray, proba: np.ndarray) -> float:
    same = model.decide(reference) == model.decide(proba)
    return float((same.all(axis=1) if same.ndim == 2 else same).mean())


def split(train_data: Any, valid_rows: int, calibration_rows: int) -> tuple[Any, Any, list[str]]:
    """Training rows less ``valid_rows`` held-out validation rows; calibration rows from the
    training rows (the model saw them; the options are judged on validation rows)."""
    from docsort.data.dataset import stratified_split

    share = valid_rows / len(train_data)
    fit_rows, valid = stratified_split(train_data, share, seed=0)
    rng = np.random.default_rng(0)
    picked = rng.choice(len(fit_rows), size=calibration_rows, replace=False)
    return fit_rows, valid, [fit_rows.texts[i] for i in sorted(picked)]


OPTIONS: list[tuple[str, dict[str, Any], list[str]]] = [
    # name, Scheme fields, --keep-fp32 words (the head is always fp32)
    ("dynamic, per tensor", {"method": "dynamic", "per_channel": False}, ["none"]),
    ("dynamic, per channel (first slice)", {"method": "dynamic"}, ["none"]),
    ("dynamic, per channel, 7-bit", {"method": "dynamic", "reduce_range": True}, ["none"]),
    ("dynamic, first + last layers fp32", {"method": "dynamic"}, ["first", "last"]),
    ("dynamic, ffn-output fp32", {"method": "dynamic"}, ["ffn-output"]),
    (
        "static, ORT's QDQ as is (residual rounded too)",
        {"method": "static", "fp32_residual": False},
        ["none"],
    ),
    ("static, per tensor", {"method": "static", "per_channel": False}, ["none"]),
    ("static, per channel", {"method": "static"}, ["none"]),
    ("static, per channel, 7-bit", {"method": "static", "reduce_range": True}, ["none"]),
    ("static, first + last layers fp32", {"method": "static"}, ["first", "last"]),
    ("static, attention-output fp32", {"method": "static"}, ["attention-output"]),
    ("static, ffn-output fp32", {"method": "static"}, ["ffn-output"]),
    ("static, auto (the default)", {"method": "static"}, ["auto"]),
]


def options(
    fp32_dir: Path, valid_texts: list[str], calibration: list[str], work: Path, chosen: list
) -> list:
    """Each ``chosen`` option (of ``OPTIONS``) made from the same fp32 graph, measured on the
    validation rows."""
    import docsort
    from docsort.export.onnx import head_nodes
    from docsort.export.quantize import Scheme, agreement, plan_and_quantize, using_graph
    from docsort.models.kinds.onnx import MODEL_FILE

    exported = docsort.load(fp32_dir)
    fp32 = fp32_dir / MODEL_FILE
    head = head_nodes(fp32, "head")
    reference = exported.predict_proba(valid_texts)
    rows = []
    for name, fields, keep in chosen:
        print(f"   option: {name}", flush=True)
        scheme = Scheme(**fields)
        scratch = work / "option"
        scratch.mkdir(parents=True, exist_ok=True)
        target = work / "option.onnx"
        started = time.perf_counter()
        plan = plan_and_quantize(
            exported, fp32, target, scratch, scheme, head, keep, calibration, 0.995
        )
        seconds = time.perf_counter() - started
        with using_graph(exported, target) as model:
            model.predict_proba(valid_texts[:32])
            start = time.perf_counter()
            proba = model.predict_proba(valid_texts)
            rate = len(valid_texts) / (time.perf_counter() - start)
        report = plan.report(head)
        rows.append(
            {
                "option": name,
                "keep_fp32": keep,
                "fp32_groups": report["fp32_groups"],
                "quantized_matmuls": report["quantized_matmuls"],
                "valid": agreement(exported, reference, proba),
                "calibration": report["calibration_agreement"],
                "sensitivity": report["sensitivity"],
                "search": report["search"],
                "make_seconds": round(seconds, 1),
                "graph_mb": round(target.stat().st_size / 1e6, 1),
                "valid_docs_per_second_b32": round(rate, 1),
                "load_average_1m": round(os.getloadavg()[0], 2),
            }
        )
        print(f"     {json.dumps(rows[-1]['valid'])} fp32: {rows[-1]['fp32_groups']}", flush=True)
        target.unlink()
    return rows


def run_model(name: str, args: argparse.Namespace, gflops: float) -> dict[str, Any]:
    import docsort
    from docsort.api.export import ExportRequest, run_export
    from docsort.models.hub import resolve
    from efficiency import encoder_gflops_per_doc
    from run import machine, train_test

    kind, params = MODELS[name]
    params = dict(params)
    if kind == "encoder":
        params["epochs"] = args.epochs
    work = args.work / name
    work.mkdir(parents=True, exist_ok=True)
    train_data, test_data = train_test(DATASET)
    fit_rows, valid, calibration = split(train_data, args.valid_rows, args.calibration_rows)
    limit = args.encoder_rows if kind == "encoder" else args.train_rows
    if limit and limit < len(fit_rows):
        from docsort.data.dataset import stratified_split

        _, fit_rows = stratified_split(fit_rows, limit / len(fit_rows), seed=1)
    source_dir = work / "source"
    train_seconds = None
    if not (source_dir / "docsort.yaml").is_file():
        print(f"== {name}: training on {len(fit_rows)} rows", flush=True)
        started = time.perf_counter()
        model = docsort.train(fit_rows, kind=kind, params=params)
        train_seconds = round(time.perf_counter() - started, 1)
        model.save(source_dir)
    model = docsort.load(source_dir)
    texts = list(test_data.texts)[: args.test_rows or None]
    y = test_data.targets(model.labels_)[: len(texts)]

    # files the exports read: calibration (training rows) and check (validation rows)
    import pandas as pd

    calibration_csv, check_csv = work / "calibration.csv", work / "check.csv"
    pd.DataFrame({"text": calibration}).to_csv(calibration_csv, index=False)
    pd.DataFrame({"text": valid.texts}).to_csv(check_csv, index=False)
    variants = {
        "ort-fp32": {"quantize": "none"},
        "ort-int8-dynamic": {"quantize": "dynamic"},  # per channel, the head in fp32
        "ort-int8-static-auto": {"quantize": "static", "calibration": str(calibration_csv)},
    }
    exports: dict[str, Any] = {}
    for variant, options_ in variants.items():
        out = work / variant
        print(f"== {name}: export {variant}", flush=True)
        result = run_export(
            ExportRequest(
                model=str(source_dir), out=str(out), check=str(check_csv), force=True, **options_
            )
        )
        exports[variant] = {
            k: result.report.get(k)
            for k in ("quantization", "precision", "check", "graph_mb", "export_seconds", "passed")
        }
    chosen = [o for o in OPTIONS if not args.options or o[0] in args.options]
    option_rows = options(work / "ort-fp32", list(valid.texts), calibration, work, chosen)

    per_doc = encoder_gflops_per_doc(resolve(model.base), texts, model.max_length)
    ceiling = gflops / per_doc
    texts_file = work / "test_texts.json"
    texts_file.write_text(json.dumps(texts))
    short_file = work / "test_texts_b1.json"
    short_file.write_text(json.dumps(texts[: args.batch1_rows]))
    dirs = {
        "pytorch-main": (source_dir, True),
        "pytorch-fast": (source_dir, False),
        **{v: (work / v, False) for v in variants},
    }
    rows = []
    reference: dict[int, np.ndarray] = {}
    for batch in (32, 1):
        for variant, (directory, legacy) in dirs.items():
            print(f"== {name}: {variant} batch {batch}", flush=True)
            chosen = texts_file if batch == 32 else short_file
            out = work / f"{variant}-{batch}"
            facts = run_variant(directory, chosen, batch, args.repeats, out, legacy)
            proba = facts.pop("proba")
            if variant == "pytorch-main":
                reference[batch] = proba
            n = len(proba)
            facts.update(
                variant=variant,
                agreement_with_pytorch=round(labels_agree(model, reference[batch], proba), 6),
                max_abs_dp=float(np.abs(reference[batch] - proba).max()),
                accuracy=round(float((proba.argmax(axis=1) == y[:n]).mean()), 6),
                share_of_ceiling=round(facts["docs_per_second"] / ceiling, 3),
            )
            rows.append(facts)
            print(f"   {facts['docs_per_second']:.1f} docs/s, agree "
                  f"{facts['agreement_with_pytorch']:.4f}, acc {facts['accuracy']:.4f}, "
                  f"{facts['peak_rss_mb']} MB", flush=True)  # fmt: skip
    return {
        "model": name,
        "kind": kind,
        "params": model.get_params(),
        "dataset": DATASET,
        "n_train": len(fit_rows),
        "n_valid": len(valid),
        "n_calibration": len(calibration),
        "n_test": len(texts),
        "batch1_rows": min(args.batch1_rows, len(texts)),
        "train_seconds": train_seconds,
        "machine_gflops": round(gflops, 1),
        "gflop_per_doc": round(per_doc, 4),
        "ceiling_docs_per_second": round(ceiling, 1),
        "exports": exports,
        "options": option_rows,
        "variants": rows,
        "acceptance": acceptance(rows),
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def acceptance(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The issue's bars, read off this run: ORT fp32 ≥ 90 % of the ceiling; the best int8
    ≥ 3× the PyTorch path with ≥ 99.5 % agreement and accuracy within 0.3 points."""
    out: dict[str, Any] = {}
    for batch in (32, 1):
        at = {r["variant"]: r for r in rows if r["batch"] == batch}
        torch_row, fp32 = at["pytorch-main"], at["ort-fp32"]
        int8 = [r for v, r in at.items() if "int8" in v]
        good = [
            r
            for r in int8
            if r["agreement_with_pytorch"] >= 0.995
            and abs(r["accuracy"] - torch_row["accuracy"]) <= 0.003
        ]
        best = max(good or int8, key=lambda r: r["docs_per_second"])
        out[f"batch_{batch}"] = {
            "ort_fp32_share_of_ceiling": fp32["share_of_ceiling"],
            "ort_fp32_at_least_90_percent": fp32["share_of_ceiling"] >= 0.9,
            "best_int8": best["variant"],
            "best_int8_speedup_vs_pytorch": round(
                best["docs_per_second"] / torch_row["docs_per_second"], 2
            ),
            "best_int8_keeps_answers": bool(good),
            "best_int8_at_least_3x": bool(good)
            and best["docs_per_second"] >= 3 * torch_row["docs_per_second"],
            "pytorch_fast_speedup_vs_main": round(
                at["pytorch-fast"]["docs_per_second"] / torch_row["docs_per_second"], 2
            ),
            "pytorch_fast_share_of_ceiling": at["pytorch-fast"]["share_of_ceiling"],
        }
    return out


# -- tables -------------------------------------------------------------------------------------
def results() -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(RESULTS.glob("*.json"))]


def options_table(found: list[dict[str, Any]]) -> str:
    lines = [
        "| model | option | fp32 besides the head | int8 MatMuls | agreement (valid) | flips "
        "| max \\|Δp\\| | mean \\|Δp\\| | docs/s b32 | load |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in found:
        for o in r["options"]:
            v = o["valid"]
            kept = ", ".join(o["fp32_groups"]) or "none"
            lines.append(
                f"| {r['model']} | {o['option']} | {kept} | {o['quantized_matmuls']} "
                f"| {v['label_agreement']:.4f} | {v['flips']} | {v['max_abs_dp']:.3g} "
                f"| {v['mean_abs_dp']:.2g} | {o['valid_docs_per_second_b32']:,.0f} "
                f"| {o['load_average_1m']} |"
            )
    if found:
        r = found[0]
        lines += [
            "",
            f"Agreement, flips and |Δp| against the fp32 graph on {r['n_valid']:,} validation "
            f"rows held out of banking77's training rows; static ranges and the `auto` search "
            f"on {r['n_calibration']} training rows. docs/s: one in-process run over the "
            "validation rows (indicative; the variants below are timed apart). "
            "Source: `benchmarks/results/inference/*.json` (`options`).",
        ]
    return "\n".join(lines)


def speed_table(found: list[dict[str, Any]]) -> str:
    lines = [
        "| model | variant | batch | docs/s | of fp32 ceiling | × PyTorch | agreement "
        "| accuracy | peak RSS MB | load | threads |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in found:
        base = {v["batch"]: v for v in r["variants"] if v["variant"] == "pytorch-main"}
        for v in r["variants"]:
            runs = v["docs_per_second_runs"]
            threads = f"torch {v['torch_threads']}" if v["torch_threads"] else "ORT default"
            lines.append(
                f"| {r['model']} | {v['variant']} | {v['batch']} "
                f"| {v['docs_per_second']:,.0f} ({min(runs):,.0f}–{max(runs):,.0f}) "
                f"| {v['share_of_ceiling']:.0%} "
                f"| {v['docs_per_second'] / base[v['batch']]['docs_per_second']:.2f} "
                f"| {v['agreement_with_pytorch']:.4f} | {v['accuracy']:.4f} "
                f"| {v['peak_rss_mb']:,.0f} | {v['load_average_1m_before']}–"
                f"{v['load_average_1m_after']} | {threads} |"
            )
    if found:
        r = found[0]
        lines += [
            "",
            f"banking77 test ({r['n_test']:,} queries; batch 1 on the first {r['batch1_rows']}), "
            f"each variant in its own process, docs/s the median of its runs (range). Ceiling "
            f"= {r['machine_gflops']} GFLOP/s (torch matmul, measured at the start of the run) "
            f"÷ {r['gflop_per_doc']} GFLOP per query = {r['ceiling_docs_per_second']:,.0f} "
            "docs/s; int8 can pass it. Agreement: labels equal to the PyTorch model's. "
            "Source: `benchmarks/results/inference/*.json` (`variants`).",
        ]
        for r in found:
            lines.append("")
            accepted = json.dumps(r["acceptance"])
            lines.append(f"Acceptance read off the run ({r['model']}): `{accepted}`")
    return "\n".join(lines)


def update_docs(docs: Path) -> None:
    from run import replace_docs_section

    found = results()
    replace_docs_section(OPTIONS_START, OPTIONS_END, options_table(found), docs)
    replace_docs_section(SPEED_START, SPEED_END, speed_table(found), docs)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--measure":
        _, _, model_dir, texts_file, batch, repeats, out, legacy = sys.argv
        measure(model_dir, texts_file, int(batch), int(repeats), out, legacy == "1")
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--epochs", type=int, default=1, help="Encoder epochs (default 1).")
    parser.add_argument(
        "--encoder-rows", type=int, default=0, help="Train the encoder on this many rows (0: all)."
    )
    parser.add_argument(
        "--train-rows", type=int, default=0, help="Train embed on this many rows (0: all)."
    )
    parser.add_argument("--valid-rows", type=int, default=VALID_ROWS, help="Held-out rows.")
    parser.add_argument(
        "--calibration-rows", type=int, default=CALIBRATION_ROWS, help="Calibration rows."
    )
    parser.add_argument("--test-rows", type=int, default=0, help="Test rows (0: all).")
    parser.add_argument("--options", nargs="*", default=None, help="Only these options.")
    parser.add_argument("--repeats", type=int, default=3, help="Timed runs per variant.")
    parser.add_argument("--batch1-rows", type=int, default=500, help="Test rows timed at batch 1.")
    parser.add_argument(
        "--work",
        type=Path,
        default=Path("/tmp/docsort-inference"),
        help="Models and exports (a trained source model there is reused).",
    )
    parser.add_argument("--table-only", action="store_true", help="Only rebuild the tables.")
    parser.add_argument(
        "--docs", type=Path, default=DOCS, help="Page holding the tables (default: docs/export.md)."
    )
    args = parser.parse_args()
    if not args.table_only:
        from docsort.io import write_json
        from efficiency import machine_gflops

        gflops = machine_gflops()  # at the start of the run: the ratios below hold against it
        print(f"matmul: {gflops:.1f} GFLOP/s", flush=True)
        for name in args.models:
            result = run_model(name, args, gflops)
            result["machine_gflops_at_end"] = round(machine_gflops(), 1)
            write_json(RESULTS / f"{name}-{DATASET}.json", result)
    update_docs(args.docs)


if __name__ == "__main__":
    main()
