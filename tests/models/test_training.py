"""The shared training loop: what a resumed run reports."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from docsort.models.nn import training


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


def test_the_fused_optimizer_makes_the_same_updates_as_the_plain_one() -> None:
    """CPU training uses the fused AdamW kernel for speed; the weights it learns must not
    change with it: decayed and undecayed groups and the head's own rate included."""

    def run(fuse: bool) -> list[torch.Tensor]:
        torch.manual_seed(0)
        encoder, head = nn.Sequential(nn.Linear(6, 6), nn.LayerNorm(6)), nn.Linear(6, 1)
        optimizer, scheduler = training.adamw_with_warmup(
            encoder,
            list(head.parameters()),
            lr=1e-2,
            head_lr=1e-1,
            weight_decay=0.1,
            schedule="linear",
            warmup_ratio=0.2,
            steps=10,
        )
        assert optimizer.defaults["fused"] is True
        if not fuse:
            optimizer.defaults["fused"] = None
            for group in optimizer.param_groups:
                group["fused"] = None
        x, y = torch.randn(32, 6), torch.randn(32)
        for step in range(10):
            rows = slice(step * 3, step * 3 + 8)
            loss = ((head(encoder(x[rows])).squeeze(-1) - y[rows]) ** 2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
        return [p.detach().clone() for p in [*encoder.parameters(), *head.parameters()]]

    fused, plain = run(True), run(False)
    assert plain[0].abs().sum() > 0
    for a, b in zip(fused, plain, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
