#!/usr/bin/env python3
"""Reads logs written by fresco with real readers and checks them against what the Rust
side says it wrote; runs the DuckDB and Spark SQL of docs/training-sets.md and checks
they return exactly the rows of fresco's training sets.

Usage: check_readers.py OUT_DIR [--no-spark]
  OUT_DIR as written by `cargo run -p fresco-examples --example churn_logs -- OUT_DIR`.
"""
import argparse
import json
import pathlib
import re
import sys

import duckdb
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

REPO = pathlib.Path(__file__).resolve().parents[3]
POLICIES = {"holdout-only": "in_holdout", "untreated": "NOT treated", "all-with-treatment": "TRUE"}


def fail(message):
    print(f"FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def check(condition, message):
    if not condition:
        fail(message)


def sql_blocks():
    text = (REPO / "docs" / "training-sets.md").read_text()
    blocks = dict(re.findall(r"```sql (\w+)\n(.*?)```", text, re.S))
    check({"duckdb", "spark"} <= blocks.keys(), "docs/training-sets.md lacks a duckdb or spark SQL block")
    return blocks


def fill(sql, logs, model, window_days, policy):
    return (
        sql.replace("{logs}", str(logs))
        .replace("{model}", model)
        .replace("{window_days}", str(window_days))
        .replace("{policy_filter}", POLICIES[policy])
    )


def check_readers(out, manifest):
    predictions = out / "logs" / "predictions"
    files = sorted(p for p in predictions.rglob("*.parquet") if not p.name.startswith("."))
    check(files, "no prediction files")
    total = manifest["predictions"]
    date = manifest["date"]

    # The f64 columns are stored as the manifest says (`--split-floats`: BYTE_STREAM_SPLIT).
    wanted = manifest.get("float_encoding", "PLAIN")
    for f in files:
        meta = pq.ParquetFile(f).metadata
        for rg in range(meta.num_row_groups):
            for c in range(meta.num_columns):
                column = meta.row_group(rg).column(c)
                if column.physical_type == "DOUBLE":
                    check(wanted in column.encodings, f"{f.name}: {column.path_in_schema} is {column.encodings}, not {wanted}")

    # pyarrow: a hive dataset over files of two model versions.
    unified = pa.unify_schemas([pq.read_schema(f) for f in files])
    partitioning = ds.partitioning(pa.schema([("model", pa.string()), ("date", pa.string())]), flavor="hive")
    schema = pa.schema(list(unified) + [pa.field("model", pa.string()), pa.field("date", pa.string())])
    table = ds.dataset(predictions, format="parquet", partitioning=partitioning, schema=schema).to_table()
    check(table.num_rows == total, f"pyarrow read {table.num_rows} rows, fresco wrote {total}")
    types = {f.name: f.type for f in table.schema}
    check(types["prediction_id"] == pa.string(), f"prediction_id is {types['prediction_id']}")
    check(types["ts"] == pa.timestamp("us", tz="UTC"), f"ts is {types['ts']}")
    check(types["in_holdout"] == pa.bool_() and types["eligible"] == pa.bool_(), "in_holdout / eligible are not bool")
    check(types["orders_30d"] == pa.int64(), f"orders_30d is {types['orders_30d']}")
    check(types["support_tickets"] == pa.float64(), f"support_tickets is {types['support_tickets']}")
    check(types["latency_us"] == pa.int64(), f"latency_us is {types['latency_us']}")
    check(set(table.column("model").to_pylist()) == {"churn"}, "pyarrow: model partition values")
    check(set(table.column("date").to_pylist()) == {date}, f"pyarrow: date partition values, expected {date}")
    by_version = table.group_by("model_version").aggregate([("prediction_id", "count")]).to_pylist()
    got = {f"churn|{r['model_version']}": r["prediction_id_count"] for r in by_version}
    check(got == manifest["predictions_by_version"], f"pyarrow rows per version {got} != {manifest['predictions_by_version']}")
    v1 = table.filter(pa.compute.equal(table.column("model_version"), "1"))
    check(v1.column("support_tickets").null_count == v1.num_rows, "v1 rows should have a null support_tickets")
    print(f"pyarrow: {table.num_rows} rows, {len(files)} files, schema evolution across versions ok")

    # pandas, as is.
    frame = pd.read_parquet(predictions)
    check(len(frame) == total, f"pandas read {len(frame)} rows")
    print(f"pandas: {len(frame)} rows")

    # polars, hive partitions, missing columns filled.
    # Files of different versions differ in columns: polars unifies them diagonally.
    frame = pl.concat([pl.read_parquet(f) for f in files], how="diagonal_relaxed")
    hive = pl.scan_parquet(str(predictions / "**" / "*.parquet"), hive_partitioning=True,
                           missing_columns="insert", extra_columns="ignore").collect()
    check(hive.height == total, f"polars (hive) read {hive.height} rows")
    check(frame.height == total, f"polars read {frame.height} rows")
    check(hive["model"].unique().to_list() == ["churn"], "polars: model partition")
    check([str(d) for d in hive["date"].unique().to_list()] == [date], "polars: date partition")
    check(frame.schema["ts"] == pl.Datetime("us", "UTC"), f"polars ts is {frame.schema['ts']}")
    check(frame.schema["orders_30d"] == pl.Int64, f"polars orders_30d is {frame.schema['orders_30d']}")
    print(f"polars: {frame.height} rows")

    # DuckDB.
    con = duckdb.connect()
    rows = con.sql(
        f"SELECT model, CAST(date AS VARCHAR) AS date, model_version, count(*) AS n "
        f"FROM read_parquet('{predictions}/*/*/*.parquet', hive_partitioning = true, union_by_name = true) "
        f"GROUP BY ALL ORDER BY ALL"
    ).fetchall()
    got = {f"{m}|{v}": n for m, d, v, n in rows}
    check(all(d == date for _, d, _, _ in rows), f"duckdb dates {rows}")
    check(got == manifest["predictions_by_version"], f"duckdb rows per version {got}")
    outcomes = con.sql(
        f"SELECT count(*) FROM read_parquet('{out}/logs/outcomes/*/*/*.parquet', hive_partitioning = true)"
    ).fetchall()[0][0]
    check(outcomes == manifest["outcomes"], f"duckdb read {outcomes} outcomes, fresco wrote {manifest['outcomes']}")
    described = dict(con.sql(
        f"SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM read_parquet('{files[0]}'))"
    ).fetchall())
    check(described["ts"] == "TIMESTAMP WITH TIME ZONE", f"duckdb ts is {described['ts']}")
    print(f"duckdb: {sum(got.values())} predictions, {outcomes} outcomes")

    # The treatments table, by every reader.
    treatments = out / "logs" / "treatments"
    want = manifest["treatments"]
    check(want > 0, "the example logged no treatments")
    table = ds.dataset(treatments, format="parquet", partitioning="hive").to_table()
    check(table.num_rows == want, f"pyarrow read {table.num_rows} treatments, fresco wrote {want}")
    types = {f.name: f.type for f in table.schema}
    check(types["ts"] == pa.timestamp("us", tz="UTC") and types["treatment"] == pa.string(), f"treatment types {types}")
    check(len(pd.read_parquet(treatments)) == want, "pandas treatments")
    hive = pl.scan_parquet(str(treatments / "**" / "*.parquet"), hive_partitioning=True).collect()
    check(hive.height == want and hive["model"].unique().to_list() == ["churn"], "polars treatments")
    n = con.sql(f"SELECT count(*) FROM read_parquet('{treatments}/*/*/*.parquet', hive_partitioning = true)").fetchall()[0][0]
    check(n == want, f"duckdb read {n} treatments")
    print(f"treatments: {want} rows read by pyarrow, pandas, polars and duckdb")


def rows_of(table):
    """(prediction_id, label, label_ts seconds, treated, treatment), sorted."""
    return sorted(zip(table.column("prediction_id").to_pylist(), table.column("label").to_pylist(),
                      [x.timestamp() for x in table.column("label_ts").to_pylist()],
                      table.column("treated").to_pylist(), table.column("treatment").to_pylist()))


def fresco_rows(path):
    return rows_of(pq.read_table(path))


def check_sql(out, manifest, spark):
    blocks = sql_blocks()
    logs = out / "logs"
    con = duckdb.connect()
    session = None
    if spark:
        from pyspark.sql import SparkSession
        builder = (SparkSession.builder.master("local[2]").appName("fresco-training-sets")
                   .config("spark.sql.session.timeZone", "UTC").config("spark.ui.enabled", "false"))
        if manifest.get("float_encoding") == "BYTE_STREAM_SPLIT":
            # Spark's vectorized Parquet reader refuses BYTE_STREAM_SPLIT ("Unsupported
            # encoding"); parquet-mr's row reader reads it.
            builder = builder.config("spark.sql.parquet.enableVectorizedReader", "false")
        session = builder.getOrCreate()
        session.read.option("mergeSchema", "true").parquet(str(logs / "predictions")).createOrReplaceTempView("predictions")
        session.read.parquet(str(logs / "outcomes")).createOrReplaceTempView("outcomes")
        session.read.parquet(str(logs / "treatments")).createOrReplaceTempView("treatments")
    for policy in POLICIES:
        want = fresco_rows(out / f"train-{policy}.parquet")
        check(len(want) == manifest["training_rows"][policy], f"{policy}: file rows vs manifest")
        sql = fill(blocks["duckdb"], logs, manifest["model"], manifest["label_window_days"], policy)
        got = rows_of(con.sql(sql).arrow().read_all())
        check(got == want, f"duckdb {policy}: {len(got)} rows, fresco {len(want)}")
        print(f"duckdb SQL, {policy}: {len(got)} rows, identical to fresco's")
        if session is not None:
            sql = fill(blocks["spark"], logs, manifest["model"], manifest["label_window_days"], policy)
            rows = session.sql(sql).select("prediction_id", "label", "label_ts", "treated", "treatment").collect()
            got = sorted((r["prediction_id"], r["label"], r["label_ts"].timestamp(), r["treated"], r["treatment"])
                         for r in rows)
            check(len(got) == len(want) and all(g[0] == w[0] and g[1] == w[1] and abs(g[2] - w[2]) < 1e-6
                                                and g[3:] == w[3:] for g, w in zip(got, want)),
                  f"spark {policy}: {len(got)} rows, fresco {len(want)}")
            print(f"spark SQL, {policy}: {len(got)} rows, identical to fresco's")
    if session is not None:
        session.stop()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=pathlib.Path)
    parser.add_argument("--no-spark", action="store_true")
    args = parser.parse_args()
    manifest = json.loads((args.out / "manifest.json").read_text())
    check_readers(args.out, manifest)
    check_sql(args.out, manifest, spark=not args.no_spark)
    print("all readers agree with fresco")


if __name__ == "__main__":
    main()
