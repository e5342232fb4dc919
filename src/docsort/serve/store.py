"""The prediction and feedback store: SQLAlchemy 2 Core over any URL, SQLite by default.

The schema is created and upgraded by the Alembic migrations shipped in ``migrations/`` when
the store opens, so a server started on an older store file brings it up to date. A write is
acknowledged only after its transaction commits; on SQLite that commit is durable: WAL with
``synchronous=FULL`` fsyncs the log on every commit, so a 201 survives ``kill -9`` and a power
cut (``NORMAL`` survives ``kill -9`` but may lose the last commits on power loss; an fsync per
feedback row costs far less than the model call beside it). On PostgreSQL a commit is durable
when the server's ``fsync`` is on (its default): each session sets ``synchronous_commit=on``,
so the 201 waits for the WAL flush even where a server's default says otherwise.

``postgresql://`` URLs use psycopg 3 (the ``postgres`` extra), as ``postgresql+psycopg://``.

With a ``redactor`` (``docsort serve --redact``) personal data never reaches the database: the
logged text of a prediction (and the hash, which is taken of the redacted text: a hash of an
e-mail address can be looked up), and a feedback row's text and comment, are redacted first.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from docsort.errors import DocsortError

LOG_TEXT = ("off", "hash", "full")  # what a logged prediction keeps of its text
BUSY_TIMEOUT_MS = 5000

metadata = sa.MetaData()
predictions = sa.Table(
    "predictions",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("created", sa.DateTime(timezone=True), nullable=False),
    sa.Column("model_name", sa.String(200), nullable=False),
    sa.Column("model_version", sa.String(64), nullable=False),
    sa.Column("text_hash", sa.String(64)),
    sa.Column("text", sa.Text),
    sa.Column("label", sa.String(200)),
    sa.Column("labels", sa.JSON),
    sa.Column("score", sa.Float),
    sa.Column("confidence", sa.Float),
    sa.Column("probabilities", sa.JSON),
    sa.Column("stage", sa.String(200)),
    sa.Column("latency_ms", sa.Float, nullable=False),
    sa.Column("is_record", sa.Boolean, nullable=False, server_default=sa.false()),  # 0002
)
feedback = sa.Table(
    "feedback",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("created", sa.DateTime(timezone=True), nullable=False),
    sa.Column("prediction_id", sa.String(32), sa.ForeignKey("predictions.id")),
    sa.Column("text", sa.Text),
    sa.Column("labels", sa.JSON),
    sa.Column("rating", sa.Integer),
    sa.Column("comment", sa.Text),
    sa.Column("idempotency_key", sa.String(200), unique=True),
)
FEEDBACK_FIELDS = ("prediction_id", "text", "labels", "rating", "comment")


class UnknownPrediction(DocsortError):
    """Feedback names a prediction id the store does not hold (a 404)."""


class KeyReused(DocsortError):
    """An idempotency key stored before with other content (a 409)."""


class StoreUnavailable(DocsortError):
    """The database did not take a write or a read (a 503: try again)."""


@contextlib.contextmanager
def _reachable() -> Iterator[None]:
    try:
        yield
    except sa.exc.OperationalError as exc:
        raise StoreUnavailable(f"the store is unavailable: {_reason(exc)}") from None


@dataclass
class Stored:
    id: int
    replayed: bool  # the idempotency key was stored before: nothing new was written


def text_of(item: str | dict[str, Any], canonical: bool = True) -> str:
    """A text, or a record as JSON: canonical (sorted keys) to hash, as sent (the model's column
    order) to log, so an export gives the columns back in that order."""
    if isinstance(item, str):
        return item
    return json.dumps(item, sort_keys=canonical, ensure_ascii=False)


class Store:
    def __init__(
        self, url: str, log_text: str = "hash", *, create: bool = True, redactor: Any = None
    ) -> None:
        """Open the store at ``url`` and migrate it to the latest schema. ``create=False``
        opens only an existing store (one line naming what is missing otherwise). A
        ``redactor`` (``docsort.redact.Redactor``) redacts every text before it is stored."""
        if log_text not in LOG_TEXT:
            raise DocsortError(f"--log-text must be one of {', '.join(LOG_TEXT)}, not {log_text!r}")
        self.log_text = log_text
        self.redactor = redactor
        self.redacted: Counter = Counter()  # what was redacted before storing, by type
        self._redacting = threading.Lock()  # one text at a time through the NLP pipeline
        shown = _shown(url)
        try:
            parsed = sa.make_url(url)
            if not create:
                _check_sqlite_file(parsed, shown)
            self.engine = _engine(parsed)
            if not create:
                _check_is_store(self.engine, shown)
            self._upgrade()
        except sa.exc.ArgumentError as exc:
            raise DocsortError(f"--store {shown!r} is not a database URL: {exc}") from None
        except ImportError as exc:
            raise DocsortError(
                f"--store {shown!r} needs the database driver {exc.name or exc}: for PostgreSQL "
                "pip install 'docsort[postgres]'"
            ) from None
        except sa.exc.OperationalError as exc:
            raise DocsortError(f"--store {shown!r} cannot be opened: {_reason(exc)}") from None

    def _upgrade(self) -> None:
        from alembic import command

        with self.engine.begin() as connection:
            config = _alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    def revision(self) -> str | None:
        with self.engine.connect() as connection:
            return connection.scalar(sa.text("SELECT version_num FROM alembic_version"))

    def ping(self) -> bool:
        try:
            with self.engine.connect() as connection:
                connection.execute(sa.text("SELECT 1"))
            return True
        except sa.exc.SQLAlchemyError:
            return False

    def add_predictions(
        self,
        inputs: list[Any],
        rows: list[dict[str, Any]],
        model: tuple[str, str],
        latency_ms: float,
    ) -> list[str]:
        """Log one row per prediction in one transaction; returns their ids."""
        now = datetime.now(timezone.utc)
        values = []
        if self.redactor is not None and self.log_text != "off":
            inputs = [self._redacted(item) for item in inputs]
        for item, row in zip(inputs, rows, strict=True):
            text = text_of(item)  # canonical: the same record hashes the same
            values.append(
                {
                    "id": uuid.uuid4().hex,
                    "created": now,
                    "model_name": model[0],
                    "model_version": model[1],
                    "text_hash": None if self.log_text == "off" else _sha256(text),
                    "text": text_of(item, canonical=False) if self.log_text == "full" else None,
                    "label": row.get("label"),
                    "labels": row.get("labels"),
                    "score": row.get("score"),
                    "confidence": row.get("confidence"),
                    "probabilities": row.get("probabilities"),
                    "stage": row.get("stage"),
                    "latency_ms": latency_ms,
                    "is_record": not isinstance(item, str),
                }
            )
        with _reachable(), self.engine.begin() as connection:
            connection.execute(predictions.insert(), values)
        return [v["id"] for v in values]

    def add_feedback(self, key: str | None, **fields: Any) -> Stored:
        """Store one feedback row; the same ``key`` again returns the first row's id."""
        row = {**dict.fromkeys(FEEDBACK_FIELDS), **fields, "idempotency_key": key}
        if self.redactor is not None:
            for name in ("text", "comment"):
                if row[name] is not None:
                    row[name] = self._redacted(row[name])
        with _reachable(), self.engine.begin() as connection:
            if key is not None and (first := _by_key(connection, key)) is not None:
                return _replay(first, row)
            prediction = row["prediction_id"]
            if prediction is not None and not _exists(connection, prediction):
                raise UnknownPrediction(f"prediction {prediction!r} is not in the store")
            try:
                with connection.begin_nested():
                    result = connection.execute(
                        feedback.insert().values(created=datetime.now(timezone.utc), **row)
                    )
            except IntegrityError:  # the same key stored by a concurrent request just now
                first = _by_key(connection, key) if key is not None else None
                if first is None:
                    raise
                return _replay(first, row)
        return Stored(int(result.inserted_primary_key[0]), replayed=False)

    def _redacted(self, item: str | dict[str, Any]) -> str | dict[str, Any]:
        """A text, or each column of a record, redacted; the types found are counted."""
        if isinstance(item, str):
            with self._redacting:
                text, found = self.redactor.redact(item)
                self.redacted.update(found)
            return text
        return {column: self._redacted(value) for column, value in item.items()}

    def count(self, table: str) -> int:
        with self.engine.connect() as connection:
            return connection.scalar(sa.select(sa.func.count()).select_from(metadata.tables[table]))

    def feedback_rows(self) -> Iterator[dict[str, Any]]:
        """Every feedback row, oldest first, with the prediction it names (``prediction_*``
        fields, None for feedback sent with a text): what ``docsort feedback export`` reads."""
        p = predictions.c
        query = (
            sa.select(
                *feedback.c,
                p.text.label("prediction_text"),
                p.text_hash,
                p.is_record,
                p.label.label("predicted_label"),
                p.labels.label("predicted_labels"),
                p.model_name,
                p.model_version,
            )  # fmt: skip
            .select_from(feedback.outerjoin(predictions, feedback.c.prediction_id == p.id))
            .order_by(feedback.c.id)
        )
        with _reachable(), self.engine.connect() as connection:
            for row in connection.execution_options(yield_per=1000).execute(query):
                yield row._asdict()

    def review_queue(
        self, stages: Sequence[str], max_confidence: float | None, limit: int
    ) -> list[dict[str, Any]]:
        """Predictions waiting for a person, newest first: answered by one of ``stages`` (a
        cascade's human stage) or less confident than ``max_confidence``, and with no
        feedback yet (a correction or a rating takes a row off the queue)."""
        p, f = predictions.c, feedback.c
        waiting = []
        if stages:
            waiting.append(p.stage.in_(list(stages)))
        if max_confidence is not None:
            waiting.append(p.confidence < max_confidence)
        if not waiting:
            return []
        answered = sa.exists().where(f.prediction_id == p.id)
        query = (
            sa.select(
                p.id,
                p.created,
                p.text,
                p.is_record,
                p.label,
                p.labels,
                p.confidence,
                p.probabilities,
                p.stage,
                p.model_version,
            )  # fmt: skip
            .where(sa.or_(*waiting), ~answered)
            .order_by(p.created.desc(), p.id)
            .limit(limit)
        )
        with _reachable(), self.engine.connect() as connection:
            return [row._asdict() for row in connection.execute(query)]

    def traffic(self, since: datetime, bucket: str) -> dict[str, Any]:
        """What the store saw since ``since``, per ``bucket`` ("hour" or "day", UTC): the
        predictions by the stage that answered, and the feedback: rows, corrections (rows with
        a label for a logged prediction: correct when it names the predicted label, or the
        same labels), ratings. Predictions are counted in SQL; the feedback rows of the window
        are read, since comparing a JSON list of labels is not portable SQL."""
        p, f = predictions.c, feedback.c
        with _reachable(), self.engine.connect() as connection:
            start = _bucket_start(p.created, bucket, connection.dialect.name)
            counted = connection.execute(
                sa.select(start.label("start"), p.stage, sa.func.count().label("n"))
                .where(p.created >= since)
                .group_by(start, p.stage)
            ).all()
            given = connection.execute(
                sa.select(f.created, f.labels, f.rating, p.label, p.labels.label("predicted"))
                .select_from(feedback.outerjoin(predictions, f.prediction_id == p.id))
                .where(f.created >= since)
                .order_by(f.id)
            ).all()
        series: dict[str, dict[str, Any]] = {}

        def at(start: str) -> dict[str, Any]:
            empty = {"start": start, "predictions": 0, "stages": {}, "feedback": 0,
                     "corrected": 0, "correct": 0}  # fmt: skip
            return series.setdefault(start, empty)

        for row in counted:
            entry = at(str(row.start))
            entry["predictions"] += row.n
            if row.stage is not None:
                entry["stages"][row.stage] = entry["stages"].get(row.stage, 0) + row.n
        ratings = dict.fromkeys(range(1, 6), 0)
        for row in given:
            entry = at(_bucket_of(row.created, bucket))
            entry["feedback"] += 1
            if row.rating is not None:
                ratings[row.rating] += 1
            predicted = [row.label] if row.label is not None else row.predicted
            if row.labels is not None and predicted is not None:
                entry["corrected"] += 1
                entry["correct"] += sorted(row.labels) == sorted(predicted)
        return {"series": [series[k] for k in sorted(series)], "ratings": ratings}


def _bucket_start(column: Any, bucket: str, dialect: str) -> Any:
    """SQL for the start of ``column``'s hour or day as ``YYYY-MM-DDTHH:00`` text (UTC)."""
    if dialect == "postgresql":
        utc = sa.func.timezone("UTC", column)
        pattern = 'YYYY-MM-DD"T"HH24:00' if bucket == "hour" else 'YYYY-MM-DD"T00:00"'
        return sa.func.to_char(sa.func.date_trunc(bucket, utc), pattern)
    # SQLite keeps the UTC time as text (every row is written in UTC)
    return sa.func.strftime("%Y-%m-%dT%H:00" if bucket == "hour" else "%Y-%m-%dT00:00", column)


def _bucket_of(moment: datetime, bucket: str) -> str:
    """The same bucket start computed in Python, for a row read back."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:00" if bucket == "hour" else "%Y-%m-%dT00:00")


def _alembic_config() -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    return config


def head_revision() -> str:
    """The revision the shipped migrations bring a store to."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


def _shown(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return url[:200]


def _reason(exc: sa.exc.DBAPIError) -> str:
    return str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__


def _check_sqlite_file(url: sa.URL, shown: str) -> None:
    if url.get_backend_name() != "sqlite":
        return
    if not url.database or url.database == ":memory:":
        raise DocsortError(f"--store {shown!r} is an empty in-memory database: give a store file")
    if not Path(url.database).is_file():
        raise DocsortError(f"no store at {url.database!r}: check the --store path")


def _check_is_store(engine: sa.Engine, shown: str) -> None:
    if not sa.inspect(engine).has_table("feedback"):
        raise DocsortError(f"--store {shown!r} is not a docsort store (it has no feedback table)")


def _engine(url: sa.URL) -> sa.Engine:
    if url.get_backend_name() == "postgresql":
        if url.drivername == "postgresql":  # the driver we ship, not SQLAlchemy's psycopg2
            url = url.set(drivername="postgresql+psycopg")
        engine = sa.create_engine(url, pool_pre_ping=True)
        sa.event.listen(engine, "connect", _postgres_connect)
        return engine
    if url.get_backend_name() != "sqlite":
        return sa.create_engine(url, pool_pre_ping=True)
    engine = sa.create_engine(url, connect_args={"check_same_thread": False})
    sa.event.listen(engine, "connect", _sqlite_connect)
    sa.event.listen(engine, "begin", _sqlite_begin)
    return engine


def _sqlite_connect(connection: Any, _record: Any) -> None:
    connection.isolation_level = None  # transactions begun by _sqlite_begin, not the driver
    for pragma in ("journal_mode=WAL", "synchronous=FULL", f"busy_timeout={BUSY_TIMEOUT_MS}",
                   "foreign_keys=ON"):  # fmt: skip
        connection.execute(f"PRAGMA {pragma}")


def _postgres_connect(connection: Any, _record: Any) -> None:
    """A commit returns once its WAL is flushed, whatever the server's default says."""
    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit TO on")
    connection.commit()


def _sqlite_begin(connection: sa.Connection) -> None:
    """BEGIN IMMEDIATE: a transaction that reads (the idempotency key) and then writes takes
    the write lock up front, waiting out the busy timeout, instead of failing with
    SQLITE_BUSY when another writer committed since its read."""
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _exists(connection: sa.Connection, prediction_id: str) -> bool:
    query = sa.select(predictions.c.id).where(predictions.c.id == prediction_id)
    return connection.execute(query).first() is not None


def _by_key(connection: sa.Connection, key: str) -> sa.Row | None:
    query = sa.select(feedback).where(feedback.c.idempotency_key == key)
    return connection.execute(query).first()


def _replay(first: sa.Row, row: dict[str, Any]) -> Stored:
    if any(getattr(first, name) != row[name] for name in FEEDBACK_FIELDS):
        raise KeyReused(
            f"idempotency key {row['idempotency_key']!r} was used for other feedback: use a new key"
        )
    return Stored(first.id, replayed=True)
