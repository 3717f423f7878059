"""fresco on Spark: batch scoring, windowed-feature backfill and training sets, each
running the same Rust code as the ``fresco`` command on every executor.

    python3 examples/spark/jobs.py score --model M.wasm --data rows.parquet --out scores.parquet
    python3 examples/spark/jobs.py backfill --definitions defs.toml --events orders=events.parquet \\
        --table table.parquet --out features.parquet
    python3 examples/spark/jobs.py training-set --logs LOGS --model churn --policy holdout-only --out train.parquet

Each writes Parquet that equals the CLI's output on the same data (``check.py`` shows it).
Runs on ``local[2]`` unless ``--master`` says otherwise; the executors need the ``fresco``
package (``pip install ./python``).
"""
from __future__ import annotations

import argparse
import pathlib
import re

import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

REPO = pathlib.Path(__file__).resolve().parents[2]
ROW = "_fresco_row"
SEQ = "_fresco_seq"
PART = "_fresco_part"


def session(master: str = "local[2]", app: str = "fresco") -> SparkSession:
    spark = (SparkSession.builder.master(master).appName(app)
             .config("spark.sql.session.timeZone", "UTC")
             .config("spark.ui.enabled", "false")
             .config("spark.sql.shuffle.partitions", "8")
             .config("spark.ui.showConsoleProgress", "false")
             .getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    # The functions below run on the executors: ship this module to them.
    spark.sparkContext.addPyFile(__file__)
    return spark


# --- scoring ---------------------------------------------------------------------------

_MODELS: dict[str, object] = {}


def _model(wasm: bytes):
    """One loaded model per Python worker (Spark reuses workers across tasks)."""
    import hashlib

    import fresco

    key = hashlib.sha256(wasm).hexdigest()
    if key not in _MODELS:
        _MODELS[key] = fresco.Model.from_bytes(wasm)
    return _MODELS[key]


def score(spark: SparkSession, df: DataFrame, model_path: str, keep: list[str] | None = None) -> DataFrame:
    """Scores every row of ``df`` (columns named after the model's inputs) with
    ``mapInArrow``: whole Arrow batches cross into Rust, no per-row Python. The result
    has the ``keep`` columns and one double column per model output."""
    import fresco

    wasm = pathlib.Path(model_path).read_bytes()
    outputs = fresco.Model.from_bytes(wasm).outputs
    keep = keep or []
    shipped = spark.sparkContext.broadcast(wasm)
    schema = T.StructType([df.schema[k] for k in keep] + [T.StructField(o, T.DoubleType(), False) for o in outputs])

    def score_batches(batches):
        model = _model(shipped.value)
        for batch in batches:
            scores = model.predict(batch)
            columns = [batch.column(k) for k in keep] + scores.columns
            yield pa.RecordBatch.from_arrays(columns, names=keep + outputs)

    return df.mapInArrow(score_batches, schema)


# --- backfill --------------------------------------------------------------------------

def _micros(df: DataFrame, column: str):
    """The column as µs since the epoch (timestamps are; integers already are)."""
    if isinstance(df.schema[column].dataType, (T.TimestampType, T.TimestampNTZType)):
        return F.unix_micros(F.col(column).cast(T.TimestampType()))
    return F.col(column).cast(T.LongType())


def mark_late(spark: SparkSession, definitions_toml: str, stream: str, events: DataFrame, partitions: int = 4) -> DataFrame:
    """The first, distributed pass of a backfill: marks each event of ``stream``
    ``accepted``, ``late`` or ``future`` by the stream-wide late rule.

    The rule looks at the latest accepted event time over *all* keys in arrival order,
    so it cannot run per key. The log is range-partitioned by arrival; each partition's
    latest non-future event time (which is its latest accepted one: a late event is
    behind the latest by definition) is collected, and partition *i* resumes from the
    largest of those before it. Ties in arrival keep the log's order (``SEQ``).
    """
    import fresco

    arrival = "arrival" if "arrival" in events.columns else "ts"
    ordered = (events.repartitionByRange(partitions, F.col(arrival), F.col(SEQ))
               .sortWithinPartitions(arrival, SEQ)
               .withColumn(PART, F.spark_partition_id())
               .localCheckpoint())
    ts, arrived = _micros(ordered, "ts"), _micros(ordered, arrival)
    latest_by_part = {
        r[PART]: r["latest"]
        for r in ordered.groupBy(PART).agg(F.max(F.when(ts <= arrived, ts)).alias("latest")).collect()
    }
    start, running = {}, None
    for part in range(partitions):
        start[part] = running
        mine = latest_by_part.get(part)
        if mine is not None and (running is None or mine > running):
            running = mine

    def mark(batches):
        marker = None
        for batch in batches:
            if batch.num_rows == 0:
                continue
            if marker is None:
                part = batch.column(PART)[0].as_py()
                marker = fresco.LateMarker(fresco.Definitions.from_toml(definitions_toml), stream, start[part])
            yield batch.append_column("recorded", marker.mark(batch))

    schema = T.StructType(ordered.schema.fields + [T.StructField("recorded", T.StringType(), False)])
    return ordered.mapInArrow(mark, schema).drop(PART)


def _replayer(definitions_toml: str, stream: str, features: list[str], arrival: str):
    """The per-key replay of one stream: ``(marked events, table rows) -> (row id,
    features)`` for ``cogroup().applyInArrow`` (a function per stream, so that each
    keeps its own stream and features)."""

    def replay(left: pa.Table, right: pa.Table) -> pa.Table:
        import fresco

        if right.num_rows == 0:
            return pa.table({ROW: pa.array([], pa.int64()), **{f: pa.array([], pa.float64()) for f in features}})
        defs = fresco.Definitions.from_toml(definitions_toml).restricted_to([stream])
        events = left.sort_by([(arrival, "ascending"), (SEQ, "ascending")])
        out, _ = fresco.backfill(defs, {stream: events}, right)
        return out.select([ROW] + features)

    return replay


def backfill(spark: SparkSession, definitions_toml: str, events: dict[str, DataFrame], table: DataFrame,
             partitions: int = 4) -> tuple[DataFrame, dict[str, dict[str, int]]]:
    """Windowed features point-in-time for every row of ``table``, as ``fresco backfill``
    computes them: after :func:`mark_late`, each stream's events and the table's rows are
    grouped by the stream's entity key and every group is replayed by the same Rust code
    (``cogroup().applyInArrow``). Returns the table with one double column per feature
    (rows in the table's order) and, per stream, the accepted / late / future counts."""
    import fresco

    defs = fresco.Definitions.from_toml(definitions_toml)
    # Checkpointed: the row ids must stay the same in every place the table is read.
    table = table.withColumn(ROW, F.monotonically_increasing_id()).localCheckpoint()
    result = table
    counts = {}
    for stream, entity, _ in defs.streams:
        mine = defs.restricted_to([stream])
        if not mine.features:
            continue
        log = events[stream].withColumn(SEQ, F.monotonically_increasing_id())
        marked = mark_late(spark, definitions_toml, stream, log, partitions)
        counts[stream] = {r["recorded"]: r["count"] for r in marked.groupBy("recorded").count().collect()}
        features = mine.features
        out_schema = T.StructType([T.StructField(ROW, T.LongType(), False)] +
                                  [T.StructField(f, T.DoubleType(), True) for f in features])
        arrival = "arrival" if "arrival" in marked.columns else "ts"
        replay = _replayer(definitions_toml, stream, features, arrival)
        grouped = marked.groupBy(entity).cogroup(table.select(entity, "ts", ROW).groupBy(entity))
        values = grouped.applyInArrow(replay, out_schema)
        result = result.join(values, on=ROW, how="left")
    return result.orderBy(ROW).drop(ROW), counts


# --- training sets ---------------------------------------------------------------------

POLICY_FILTERS = {"holdout-only": "in_holdout", "untreated": "NOT treated", "all-with-treatment": "TRUE"}


def training_set(spark: SparkSession, logs: str, model: str, policy: str, window_days: int = 30) -> DataFrame:
    """The training-set join of ``fresco dataset`` in Spark SQL (docs/training-sets.md):
    each prediction's latest outcome within the label window, its first treatment
    logged at or before that outcome, rows kept by ``policy``."""
    text = (REPO / "docs" / "training-sets.md").read_text()
    sql = dict(re.findall(r"```sql (\w+)\n(.*?)```", text, re.S))["spark"]
    spark.read.option("mergeSchema", "true").parquet(f"{logs}/predictions").createOrReplaceTempView("predictions")
    spark.read.parquet(f"{logs}/outcomes").createOrReplaceTempView("outcomes")
    spark.read.parquet(f"{logs}/treatments").createOrReplaceTempView("treatments")
    sql = (sql.replace("{logs}", logs).replace("{model}", model).replace("{window_days}", str(window_days))
           .replace("{policy_filter}", POLICY_FILTERS[policy]))
    return spark.sql(sql)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--master", default="local[2]")
    jobs = parser.add_subparsers(dest="job", required=True)
    s = jobs.add_parser("score")
    s.add_argument("--model", required=True)
    s.add_argument("--data", required=True)
    s.add_argument("--keep", action="append", default=[])
    s.add_argument("--out", required=True)
    b = jobs.add_parser("backfill")
    b.add_argument("--definitions", required=True)
    b.add_argument("--events", action="append", required=True, help="STREAM=PATH")
    b.add_argument("--table", required=True)
    b.add_argument("--out", required=True)
    t = jobs.add_parser("training-set")
    t.add_argument("--logs", required=True)
    t.add_argument("--model", required=True)
    t.add_argument("--policy", required=True, choices=sorted(POLICY_FILTERS))
    t.add_argument("--label-window-days", type=int, default=30)
    t.add_argument("--out", required=True)
    args = parser.parse_args()
    spark = session(args.master)
    if args.job == "score":
        score(spark, spark.read.parquet(args.data), args.model, args.keep).write.mode("overwrite").parquet(args.out)
    elif args.job == "backfill":
        events = {s.split("=", 1)[0]: spark.read.parquet(s.split("=", 1)[1]) for s in args.events}
        out, counts = backfill(spark, pathlib.Path(args.definitions).read_text(), events, spark.read.parquet(args.table))
        out.write.mode("overwrite").parquet(args.out)
        print(counts)
    else:
        training_set(spark, args.logs, args.model, args.policy, args.label_window_days) \
            .write.mode("overwrite").parquet(args.out)
    spark.stop()


if __name__ == "__main__":
    main()
