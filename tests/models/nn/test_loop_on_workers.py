"""The fine-tuning loop on two DDP workers (two real processes, gloo, no Ray): each trains on a
disjoint share of every batch, and the weights they end with are the weights one process gets
on the whole batches, uneven batches and a batch of one row included. Slow: each spawned
worker imports torch again (24 s at load 5.7 on 2 cores)."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from docsort.models.nn import training
from docsort.models.nn.distributed import summary
from docsort.models.nn.hooks import Workers, on_workers

pytestmark = pytest.mark.slow

ROWS = 21  # batches of 4: five of 4 and one of a single row


def batches(epoch: int) -> list[np.ndarray]:
    order = np.random.default_rng([7, epoch]).permutation(ROWS)
    return [order[i : i + 4] for i in range(0, ROWS, 4)]


def fit() -> tuple[nn.Module, list[dict]]:
    """Two epochs of AdamW with clipping on a linear classifier; validation picks the epoch."""
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(1)
    x, y = torch.randn(ROWS, 5, generator=generator), torch.randint(0, 3, (ROWS,))
    net = nn.Linear(5, 3)
    optimizer = torch.optim.AdamW(net.parameters(), lr=0.05)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 / (1 + step))

    def loss_of(rows: np.ndarray) -> torch.Tensor:
        return nn.functional.cross_entropy(net(x[rows]), y[rows])

    def evaluate() -> float:
        with torch.no_grad():
            return float((net(x).argmax(1) == y).float().mean())

    settings = training.LoopSettings(
        epochs=2, patience=2, max_grad_norm=1.0, checkpoint_dir=None, checkpoint_every=0,
        resume=False, run_id="tiny",
    )  # fmt: skip
    scaler = torch.amp.GradScaler("cuda", enabled=False)
    result = training.train_loop(
        net, optimizer, scheduler, batches, loss_of, evaluate, settings, scaler
    )
    return net, result.history


def worker(rank: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    torch.set_num_threads(1)
    workers = Workers(
        rank=rank,
        size=2,
        wrap=lambda module: nn.parallel.DistributedDataParallel(
            module, find_unused_parameters=True
        ),
    )
    with on_workers(workers):
        net, history = fit()
    facts = summary(workers)
    seen = {e: np.concatenate(p).tolist() for e, p in workers.seen.items()}
    Path(out, f"rank{rank}.json").write_text(
        json.dumps(
            {
                "weight": net.weight.detach().tolist(),
                "bias": net.bias.detach().tolist(),
                "history": history,
                "seen": seen,
                "summary": facts,
            }
        )
    )
    dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_workers_take_disjoint_shares_and_end_where_one_process_does(tmp_path) -> None:
    mp.start_processes(worker, args=(free_port(), str(tmp_path)), nprocs=2, start_method="spawn")
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    alone, history = fit()
    for rank in ranks:  # every worker holds the same weights, those of the one process
        np.testing.assert_allclose(rank["weight"], alone.weight.detach().numpy(), atol=1e-5)
        np.testing.assert_allclose(rank["bias"], alone.bias.detach().numpy(), atol=1e-5)
        assert [h["valid_score"] for h in rank["history"]] == [h["valid_score"] for h in history]
    for epoch in ("0", "1"):
        first, second = (set(rank["seen"][epoch]) for rank in ranks)
        assert not first & second and first | second == set(range(ROWS))
    assert ranks[0]["summary"] == {
        "workers": 2,
        "epochs": 2,
        "rows_per_worker": [11, 10],  # 2 + 2 of each batch of 4, the single row to rank 0
        "shared_rows": 0,
        "distinct_rows": ROWS,
    }
