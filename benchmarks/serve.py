"""Load on ``docsort serve``: concurrent clients against 127.0.0.1, with and without batching.

    .venv/bin/python benchmarks/serve.py                        # tfidf and embed, 1/8/32 clients
    .venv/bin/python benchmarks/serve.py --models embed --seconds 30
    .venv/bin/python benchmarks/serve.py --table-only           # rebuild the table only

Each model gets two real servers side by side, batched and unbatched (``python -m
docsort.cli serve MODEL --store none``, the second with ``--no-batching``), each on a free
port; every client level is measured on one and then the other, so a change in the machine's
other load hits both alike. A level is a bounded loop of asyncio + httpx clients: every client
sends one arXiv abstract per request (``{"text": ...}``) and waits for the answer before
sending the next, until
``--seconds`` have passed or ``--max-requests`` have been sent. The first
``--warmup`` seconds of each level are not counted. A level records p50 / p95 / p99 latency,
requests/s, documents/s, errors (any answer but 200, and transport failures), the documents
per model call the server reports in /metrics, and the load average before and after.

The clients run on the same two cores as the server, so a fast model (tfidf) is partly
measuring the load generator; the numbers say what this machine does, not what the server
alone could. Models are trained once into ``--work`` (default ``runs/serve-bench``): tfidf and
an ``embed`` probe on ``minilm`` (max_length 128) on 480 arXiv rows; the requests are other
arXiv rows. Results: benchmarks/results/serve/<model>-<mode>.json; the table between the
serve markers of docs/benchmarks.md is built from them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd

from docsort.io import write_json
from run import ROOT, add_docs_option, machine, replace_docs_section

RESULTS = ROOT / "benchmarks" / "results" / "serve"
START, END = "<!-- serve:start -->", "<!-- serve:end -->"
ARXIV = ROOT.parent / "shared" / "data" / "arxiv" / "arxiv_8cat.csv"
MODELS = {
    "tfidf": {},
    "embed": {"base": "minilm", "max_length": 128, "batch_size": 32},
}
CLIENTS = (1, 8, 32)
MODES = ("batched", "unbatched")


def rows() -> tuple[pd.DataFrame, list[str]]:
    """480 training rows (60 per category) and the other rows' texts to send."""
    frame = pd.read_csv(ARXIV)
    train = frame.groupby("category", group_keys=False).head(60)
    rest = frame.drop(train.index)
    texts = (rest["title"] + ". " + rest["abstract"]).tolist()
    return train, texts


def trained(model: str, work: Path, train_rows: pd.DataFrame) -> Path:
    out = work / model
    if (out / "docsort.yaml").exists():
        return out
    csv, config = work / "train.csv", work / f"{model}.yaml"
    train_rows.to_csv(csv, index=False)
    config.write_text(json.dumps(MODELS[model]), encoding="utf-8")  # JSON is YAML
    print(f"training {model} into {out}", flush=True)
    subprocess.run([sys.executable, "-m", "docsort.cli", "train", str(csv), "--text",
                    "title,abstract", "--label", "category", "--model", model, "--config",
                    str(config), "--out", str(out)], check=True)  # fmt: skip
    return out


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(model_dir: Path, mode: str, port: int, log: Path, options: list[str]) -> Any:
    unbatched = ["--no-batching"] if mode == "unbatched" else []
    command = [sys.executable, "-m", "docsort.cli", "serve", str(model_dir), "--port", str(port),
               "--store", "none", *options, *unbatched]  # fmt: skip
    server = subprocess.Popen(command, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                              env={**os.environ, "DOCSORT_NO_PROGRESS": "1"})  # fmt: skip
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server stopped: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit(f"the server was not ready in 180 s: {log.read_text()[-2000:]}")


def scraped(base: str) -> dict[str, float]:
    text = httpx.get(f"{base}/metrics", timeout=10).text
    found = {}
    for name in ("docsort_batch_size_sum", "docsort_batch_size_count"):
        match = re.search(rf"^{name} ([0-9.e+]+)$", text, re.MULTILINE)
        found[name] = float(match.group(1)) if match else 0.0
    return found


async def drive(base: str, texts: list[str], clients: int, seconds: float, warmup: float,
                max_requests: int) -> dict[str, Any]:  # fmt: skip
    """``clients`` loops, each one request at a time; latencies after the warm-up."""
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    sent = 0
    start = time.perf_counter()
    counted_from = start + warmup
    stop_at = counted_from + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as http:

        async def client(worker: int) -> None:
            nonlocal sent
            i = worker
            while time.perf_counter() < stop_at and sent < max_requests:
                sent += 1
                text = texts[i % len(texts)]
                i += clients
                began = time.perf_counter()
                try:
                    answer = await http.post("/v1/classify", json={"text": text})
                    status = str(answer.status_code)
                except httpx.HTTPError as exc:
                    status = type(exc).__name__
                ended = time.perf_counter()
                if began >= counted_from:
                    latencies.append(ended - began)
                    statuses[status] = statuses.get(status, 0) + 1

        await asyncio.gather(*(client(w) for w in range(clients)))
    elapsed = time.perf_counter() - counted_from
    ok = statuses.get("200", 0)
    ms = np.array(latencies) * 1000 if latencies else np.zeros(1)
    return {
        "clients": clients,
        "seconds": round(elapsed, 2),
        "requests": len(latencies),
        "errors": len(latencies) - ok,
        "statuses": statuses,
        "requests_per_second": round(len(latencies) / elapsed, 2),
        "docs_per_second": round(ok / elapsed, 2),  # one document per request
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p95_ms": round(float(np.percentile(ms, 95)), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2),
    }


def run_model(model: str, model_dir: Path, texts: list[str], args: Any) -> dict[str, dict]:
    """Both servers (batched and unbatched) run side by side; each client level is measured on
    one and then the other, so a change in the machine's other load hits both alike."""
    options = ["--max-batch", str(args.max_batch), "--max-wait-ms", str(args.max_wait_ms),
               "--threads", str(args.threads)]  # fmt: skip
    servers, bases, levels = {}, {}, {mode: [] for mode in args.modes}
    try:
        for mode in args.modes:
            port = free_port()
            log = args.work / f"server-{model}-{mode}.log"
            servers[mode] = start_server(model_dir, mode, port, log, options)
            bases[mode] = f"http://127.0.0.1:{port}"
        for clients in args.clients:
            for mode in args.modes:
                base = bases[mode]
                before = scraped(base)
                load_before = round(os.getloadavg()[0], 2)
                level = asyncio.run(drive(base, texts, clients, args.seconds, args.warmup,
                                          args.max_requests))  # fmt: skip
                after = scraped(base)
                calls = after["docsort_batch_size_count"] - before["docsort_batch_size_count"]
                docs = after["docsort_batch_size_sum"] - before["docsort_batch_size_sum"]
                level["docs_per_model_call"] = round(docs / calls, 2) if calls else None
                level["load_before"] = load_before
                level["load_after"] = round(os.getloadavg()[0], 2)
                print(json.dumps({"model": model, "mode": mode, **level}), flush=True)
                levels[mode].append(level)
    finally:
        for server in servers.values():
            server.send_signal(signal.SIGTERM)
        for server in servers.values():
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                server.kill()
    return {
        mode: {
            "model": model,
            "params": MODELS[model],
            "mode": mode,
            "server_options": options + (["--no-batching"] if mode == "unbatched" else []),
            "request": "one arXiv title + abstract per request ({'text': ...})",
            "load_generator": "asyncio + httpx on the same machine, one request in flight a "
            "client; the batched and unbatched servers measured one after the other per level",
            "warmup_seconds": args.warmup,
            "levels": levels[mode],
            "machine": {**machine(), "server_torch_threads": args.threads},
        }
        for mode in args.modes
    }


def build_table() -> str:
    files = sorted(RESULTS.glob("*.json"))
    if not files:
        return "_No serve results yet: run benchmarks/serve.py._"
    results = [json.loads(f.read_text(encoding="utf-8")) for f in files]
    lines = [
        "| model | mode | clients | docs/s | p50 ms | p95 ms | p99 ms | errors "
        "| docs per call | load before / after |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    order = {m: i for i, m in enumerate(MODELS)}
    results.sort(key=lambda r: (order.get(r["model"], 99), MODES.index(r["mode"])))
    for r in results:
        for level in r["levels"]:
            lines.append(
                f"| {r['model']} | {r['mode']} | {level['clients']} "
                f"| {level['docs_per_second']:.1f} | {level['p50_ms']:.1f} "
                f"| {level['p95_ms']:.1f} | {level['p99_ms']:.1f} | {level['errors']} "
                f"| {level['docs_per_model_call'] or ''} "
                f"| {level['load_before']} / {level['load_after']} |"
            )
    ratios = []
    for model in MODELS:
        by_mode = {r["mode"]: r for r in results if r["model"] == model}
        if set(by_mode) != set(MODES):
            continue
        at = {m: {lv["clients"]: lv for lv in by_mode[m]["levels"]} for m in MODES}
        for clients in sorted(set(at["batched"]) & set(at["unbatched"])):
            unbatched = at["unbatched"][clients]["docs_per_second"]
            if unbatched:
                ratio = at["batched"][clients]["docs_per_second"] / unbatched
                ratios.append(f"{model} at {clients} clients {ratio:.2f}×")
    first = results[0]
    opts = " ".join(first["server_options"][:6])
    note = (
        f"\nServer `docsort serve MODEL --store none {opts}` on 127.0.0.1, "
        f"{first['warmup_seconds']:g} s warm-up then the measured seconds per level; clients "
        "(asyncio + httpx, one request in flight each, one text per request) share the "
        f"machine's {first['machine']['cores']} cores with the server. *docs per call*: "
        "documents per model call from the server's /metrics. *load*: 1-minute load average "
        "before / after the level."
    )
    if ratios:
        note += " Batched / unbatched docs/s: " + ", ".join(ratios) + "."
    return "\n".join(lines) + "\n" + note


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    parser.add_argument("--clients", nargs="+", type=int, default=list(CLIENTS))
    parser.add_argument("--seconds", type=float, default=20.0, help="Measured seconds a level.")
    parser.add_argument("--warmup", type=float, default=3.0, help="Seconds not counted first.")
    parser.add_argument("--max-requests", type=int, default=20_000, help="Bound per level.")
    parser.add_argument("--max-batch", type=int, default=32)
    parser.add_argument("--max-wait-ms", type=float, default=5.0)
    parser.add_argument("--threads", type=int, default=2, help="The server's torch threads.")
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "serve-bench")
    parser.add_argument("--table-only", action="store_true", help="Only rebuild the table.")
    add_docs_option(parser)
    args = parser.parse_args()
    if not args.table_only:
        args.work.mkdir(parents=True, exist_ok=True)
        train_rows, texts = rows()
        for model in args.models:
            model_dir = trained(model, args.work, train_rows)
            for mode, result in run_model(model, model_dir, texts, args).items():
                write_json(RESULTS / f"{model}-{mode}.json", result)
    replace_docs_section(START, END, build_table(), args.docs)


if __name__ == "__main__":
    main()
