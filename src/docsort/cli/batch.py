"""``docsort predict ... --engine local|ray|spark --out DIR``: run the batch job, print its
progress and summary; exit status 3 when it finished with failed rows."""

from __future__ import annotations

import typer
from rich.markup import escape

from docsort.api.batch import PARTIAL_EXIT, BatchJob, BatchRequest, BatchResult
from docsort.cli.app import err_console


def predict_batch(request: BatchRequest) -> None:
    from docsort.batch import run_batch  # the engines: an entry point beside the CLI

    result = run_batch(request, on_start=_started)
    for line in summary_lines(result):
        err_console.print(escape(line), highlight=False, soft_wrap=True)
    if result.failed_rows:
        raise typer.Exit(PARTIAL_EXIT)


def _started(job: BatchJob) -> None:
    pending = job.pending()
    line = (
        f"predicting {sum(s.count for s in pending):,} rows in {len(pending):,} shard(s) "
        f"with {job.request.engine} → {job.out}"
    )
    if job.resumed:
        line += f" ({job.resumed:,} shard(s) already done, skipped)"
    err_console.print(escape(line), highlight=False, soft_wrap=True)


def summary_lines(result: BatchResult) -> list[str]:
    lines = [
        f"wrote {result.rows:,} rows in {result.shards:,} shard(s) → {result.out}: "
        f"{result.predicted_rows:,} predicted in {result.seconds:.1f} s "
        f"({result.rows_per_second:,.0f} rows/s, {result.engine})"
        + (f", {result.resumed_shards:,} shard(s) done before" if result.resumed_shards else "")
    ]
    if not result.failed:
        return [*lines, "failed rows: 0"]
    lines.append(
        f"failed rows: {result.failed_rows:,} in {len(result.failed):,} shard(s), each written "
        "with its error (column 'error'):"
    )
    for shard in result.failed:
        shown = "; ".join(f"row {e['row']}: {e['error']}" for e in shard.errors[:5])
        more = shard.failed - min(5, len(shard.errors))
        lines.append(
            f"  {shard.name} ({shard.file}): {shard.failed:,} failed: {shown}"
            + (f"; and {more:,} more" if more > 0 else "")
        )
    return lines
