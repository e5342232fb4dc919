"""``docsort keys create|list|revoke``: the API keys file ``docsort serve --api-keys`` reads
(salted scrypt hashes only; needs the ``serve`` extra)."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import typer
from rich.table import Table

from docsort.cli.app import err_console, out_console
from docsort.errors import DocsortError

keys_app = typer.Typer(
    help="API keys for docsort serve --api-keys: the file keeps only salted hashes.",
    no_args_is_help=True,
)
FILE_HELP = "The keys file (created by the first create; written owner-only, mode 0600)."


def _auth() -> ModuleType:
    try:
        from docsort.serve import auth
    except ImportError as exc:
        raise DocsortError(
            f"docsort keys needs the serve extra ({exc.name} is missing): "
            "pip install 'docsort[serve]'"
        ) from None
    return auth


@keys_app.command("create")
def keys_create(
    file: Path = typer.Option(..., "--file", help=FILE_HELP),
    name: str = typer.Option("", "--name", help="What the key is for, shown by keys list."),
) -> None:
    """Create a key and print it once on stdout; the file stores only its salted hash."""
    auth = _auth()
    key, entry = auth.create_key(file, name)
    out_console.print(key, highlight=False, soft_wrap=True)
    err_console.print(
        f"created key {entry.id}{f' ({entry.name})' if entry.name else ''} in {file}: "
        "it is shown only this once",
        highlight=False,
        soft_wrap=True,
    )


@keys_app.command("list")
def keys_list(file: Path = typer.Option(..., "--file", help=FILE_HELP)) -> None:
    """List the keys: id, name, created, active or revoked (never a key or its hash)."""
    auth = _auth()
    entries = auth.read_keys(file)
    table = Table("id", "name", "created", "status", "revoked")
    for entry in entries:
        state = "revoked" if entry.revoked else "active"
        table.add_row(entry.id, entry.name, entry.created, state, entry.revoked_at or "")
    out_console.print(table)
    if auth.loose_permissions(file):
        err_console.print(f"warning: {file} is readable by others: chmod 600 {file}")


@keys_app.command("revoke")
def keys_revoke(
    key_id: str = typer.Argument(..., help="The key's id (from keys list) or the key itself."),
    file: Path = typer.Option(..., "--file", help=FILE_HELP),
) -> None:
    """Revoke a key: a server using the file refuses it (403) from its next request on."""
    auth = _auth()
    entry, was_active = auth.revoke_key(file, key_id)
    if was_active:
        err_console.print(f"revoked key {entry.id}", highlight=False)
    else:
        err_console.print(f"key {entry.id} was already revoked ({entry.revoked_at})",
                          highlight=False)  # fmt: skip
