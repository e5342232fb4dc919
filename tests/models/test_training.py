"""The shared training loop: what a resumed run reports."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from docsort.models import training


def _loop(folder: Path, resume: bool) -> training.LoopResult:
    torch.manual_seed(0)
    net = nn.Linear(3, 1)
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-2)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    x, y = torch.randn(40, 3), torch.randn(40)

    def loss_of(rows: np.ndarray) -> torch.Tensor:
        time.sleep(0.05)  # a step that takes measurable time
        return ((net(x[rows]).squeeze(-1) - y[rows]) ** 2).mean()

    settings = training.LoopSettings(
        epochs=1,
        patience=1,
        max_grad_norm=1.0,
        checkpoint_dir=folder,
        checkpoint_every=1,
        resume=resume,
        run_id="tiny",
        metric="r",
    )
    return training.train_loop(
        net,
        optimizer,
        scheduler,
        lambda epoch: np.array_split(np.arange(40), 10),
        loss_of,
        lambda: 0.5,
        settings,
        torch.amp.GradScaler(enabled=False),
    )


def test_an_epoch_split_by_a_resume_reports_both_parts_of_its_time(
    tmp_path, killed_at_save
) -> None:
    """Ten steps of 50 ms, killed after six: the resumed epoch still reports ~0.5 s, not the
    ~0.2 s of its second part (benchmarks report training time from this history)."""
    with killed_at_save(6):
        _loop(tmp_path, resume=False)
    resumed = _loop(tmp_path, resume=True)
    assert resumed.resumed_from_step == 6
    assert resumed.steps == 10
    assert resumed.history[0]["seconds"] >= 0.5
