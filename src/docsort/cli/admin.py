"""``docsort demo``, ``datasets``, ``models`` and ``cache``."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from docsort import api
from docsort.cli import render
from docsort.cli.app import cache_app, datasets_app, models_app, out_console
from docsort.progress import status


def demo(
    out: Path = typer.Option(Path("runs/demo"), "--out", help="Where the model and report go."),
    dataset: str = typer.Option("bbc", "--dataset", help="Built-in data set to run on."),
) -> None:
    """The main job on built-in defaults: train tfidf, evaluate it, print the table."""
    with status(f"training tfidf on {dataset} and evaluating it"):
        result = api.run_demo(out, dataset)
    name = f"tfidf on {dataset} ({result['test_split']})"
    render.metrics_table([{"model": name, **result["metrics"]}])
    out_console.print(f"model: {result['model_dir']}\nreport: {result['report']}")


@datasets_app.command("list")
def datasets_list() -> None:
    """List the built-in data sets."""
    table = Table("name", "splits", "multi-label", "source", "description")
    for spec in api.builtin_datasets():
        table.add_row(
            spec["name"],
            ", ".join(spec["splits"]),
            "yes" if spec["multi_label"] else "no",
            spec["source"],
            spec["description"],
        )
    out_console.print(table)


@datasets_app.command("show")
def datasets_show(
    name: str = typer.Argument(..., help="A built-in data set name, e.g. 20ng."),
    split: str | None = typer.Option(None, "--split", help="Split (default: the first)."),
    top: int = typer.Option(20, "--top", help="How many labels to list."),
) -> None:
    """Rows, labels, label distribution and mean length of a built-in data set."""
    s = api.dataset_summary(name, split)
    counts = s["label_counts"]
    out_console.print(
        f"[bold]{s['name']}[/bold] ({s['split']}): {s['rows']:,} rows, {len(counts)} labels, "
        f"{'multi' if s['multi_label'] else 'single'}-label, mean "
        f"{s['mean_words']:.0f} words ({s['max_words']:,} max)"
    )
    table = Table("label", "rows", "share")
    for label_name, count in counts[:top]:
        table.add_row(label_name, f"{count:,}", f"{count / s['rows']:.1%}")
    if len(counts) > top:
        table.add_row(f"… {len(counts) - top} more", "", "")
    out_console.print(table)


@models_app.command("list")
def models_list() -> None:
    """Aliases, whether each is installed, its size and local path."""
    table = Table("alias", "format", "installed", "size", "path / install", "description")
    for row in api.models_table():
        size = f"{row['size'] / 1e6:,.0f} MB" if row["size"] else ""
        where = row["path"] or ("built on first use" if row["installed"] else row["install"])
        table.add_row(
            row["alias"],
            row["format"],
            "yes" if row["installed"] else "no",
            size,
            where,
            row["description"],
        )
    out_console.print(table)


@models_app.command("fetch")
def models_fetch(
    aliases: list[str] = typer.Argument(..., help="Aliases to resolve now, e.g. minilm static."),
) -> None:
    """Assemble aliased models into the cache now, so later runs start at once."""
    for alias, path in api.fetch_models(aliases).items():
        out_console.print(f"{alias}: {path}")


@cache_app.command("list")
def cache_list() -> None:
    """Each cache area: its folder, items and size."""
    usage = api.cache_usage()
    out_console.print(f"cache folder: {usage['folder']}")
    table = Table("area", "items", "size", "cleared, it is")
    for row in usage["areas"]:
        table.add_row(
            row["area"], f"{row['items']:,}", render.megabytes(row["bytes"]), row["meaning"]
        )
    out_console.print(table)
    out_console.print(
        f"embeddings are trimmed to {render.megabytes(usage['embed_limit_bytes'])}, least "
        f"recently used first ({usage['embed_limit_env']} sets the bound)"
    )


@cache_app.command("clear")
def cache_clear(
    area: str = typer.Argument(..., help="models, datasets or embeddings."),
    older_than: float | None = typer.Option(
        None, "--older-than", help="Only items unused for this many days."
    ),
) -> None:
    """Delete a cache area's items; they are rebuilt or fetched again when next needed."""
    removed, freed = api.clear_cache(area, older_than)
    out_console.print(f"{area}: removed {removed:,} item(s), freed {render.megabytes(freed)}")
