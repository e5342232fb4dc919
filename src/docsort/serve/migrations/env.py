"""Alembic environment: the store passes its open connection (``attributes["connection"]``),
so migrations run in the server's own transaction, with its SQLite pragmas."""

from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
