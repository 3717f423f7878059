#!/usr/bin/env python3
"""Runs the Spark jobs of jobs.py on local Spark and checks each output equals the
``fresco`` command's on the same data, exactly: scores bit for bit, backfilled
features value for value (nulls included) with the same late / future counts, and
training sets row for row.

Usage: check.py --fresco PATH/TO/fresco --work DIR [--logs CHURN_LOGS_DIR]
  CHURN_LOGS_DIR as written by `cargo run -p fresco-examples --example churn_logs -- DIR`.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import re
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))

import datagen  # noqa: E402
import jobs  # noqa: E402


def fail(message: str):
    print(f"FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def run(cmd: list[str]) -> str:
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        fail(f"{' '.join(cmd)} exited {done.returncode}: {done.stderr}")
    return done.stdout


def bits(values) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(values, dtype=np.float64)).view(np.uint64)


def check_scoring(spark, fresco: str, work: pathlib.Path, rows: int):
    import fresco as fr

    model_path = REPO / "wasm-models" / "eta" / "model" / "eta.wasm"
    model = fr.Model(model_path)
    table = datagen.score_rows(model.inputs, rows, seed=7)
    pq.write_table(table, work / "rows.parquet")
    datagen.write_csv(table, model.inputs, work / "rows.csv")
    run([fresco, "score", str(model_path), "--input", str(work / "rows.csv"), "--output", str(work / "cli_scores.csv")])
    want = pcsv.read_csv(work / "cli_scores.csv")
    got = jobs.score(spark, spark.read.parquet(str(work / "rows.parquet")), str(model_path), keep=["id"])
    got = got.toArrow().sort_by("id")
    if got.num_rows != want.num_rows:
        fail(f"spark scored {got.num_rows} rows, the CLI {want.num_rows}")
    for out in model.outputs:
        if not np.array_equal(bits(got.column(out)), bits(want.column(out))):
            diff = int((bits(got.column(out)) != bits(want.column(out))).sum())
            fail(f"scoring: output {out} differs from the CLI's in {diff} rows")
    print(f"spark scoring (mapInArrow): {got.num_rows} rows × {len(model.outputs)} outputs, bit-identical to `fresco score`")


def check_backfill(spark, fresco: str, work: pathlib.Path, events_n: int, rows: int):
    definitions = REPO / "examples" / "aggregates" / "orders.toml"
    events = datagen.order_events(events_n, restaurants=300, seed=11)
    table = datagen.feature_rows(rows, restaurants=300, seed=12)
    pq.write_table(events, work / "orders.parquet", row_group_size=10_000)
    pq.write_table(table, work / "table.parquet")
    stdout = run([fresco, "backfill", "--definitions", str(definitions), "--events", f"orders={work / 'orders.parquet'}",
                  "--table", str(work / "table.parquet"), "-o", str(work / "cli_features.parquet")])
    m = re.search(r"from (\d+) events \((\d+) late, (\d+) dated after arrival", stdout)
    if not m:
        fail(f"unexpected backfill output: {stdout}")
    cli_events, cli_late, cli_future = map(int, m.groups())
    want = pq.read_table(work / "cli_features.parquet")
    out, counts = jobs.backfill(spark, definitions.read_text(),
                                {"orders": spark.read.parquet(str(work / "orders.parquet"))},
                                spark.read.parquet(str(work / "table.parquet")))
    got = out.toArrow()
    got_counts = counts["orders"]
    if (sum(got_counts.values()), got_counts.get("late", 0), got_counts.get("future", 0)) != (cli_events, cli_late, cli_future):
        fail(f"backfill counts {got_counts} vs the CLI's {cli_events} events, {cli_late} late, {cli_future} future")
    if got.num_rows != want.num_rows or got.column("request_id").to_pylist() != want.column("request_id").to_pylist():
        fail("backfill: rows or their order differ from the CLI's")
    features = [n for n in want.column_names if n not in table.column_names]
    for f in features:
        g, w = got.column(f).to_pylist(), want.column(f).to_pylist()
        if len(g) != len(w) or any((a is None) != (b is None) or (a is not None and bits([a]) != bits([b])) for a, b in zip(g, w)):
            bad = sum(1 for a, b in zip(g, w) if a != b)
            fail(f"backfill: feature {f} differs from the CLI's in {bad} rows")
    print(f"spark backfill (marked in {4} range partitions, replayed per key with cogroup.applyInArrow): "
          f"{got.num_rows} rows × {len(features)} features from {cli_events} events "
          f"({cli_late} late, {cli_future} future), identical to `fresco backfill`")


def rows_of(table: pa.Table):
    ts = table.column("label_ts").cast(pa.timestamp("us", tz="UTC")).cast(pa.int64()).to_pylist()
    return sorted(zip(table.column("prediction_id").to_pylist(), table.column("label").to_pylist(), ts,
                      table.column("treated").to_pylist(), table.column("treatment").to_pylist()))


def check_training_sets(spark, fresco: str, work: pathlib.Path, out: pathlib.Path):
    manifest = json.loads((out / "manifest.json").read_text())
    logs = out / "logs"
    for policy in jobs.POLICY_FILTERS:
        cli_out = work / f"cli_train_{policy}.parquet"
        run([fresco, "dataset", "--logs", str(logs), "--model", manifest["model"], "--policy", policy,
             "--label-window-days", str(manifest["label_window_days"]), "--out", str(cli_out)])
        want = rows_of(pq.read_table(cli_out))
        got_df = jobs.training_set(spark, str(logs), manifest["model"], policy, manifest["label_window_days"])
        got = rows_of(got_df.select("prediction_id", "label", "label_ts", "treated", "treatment").toArrow())
        if got != want:
            fail(f"training set {policy}: spark {len(got)} rows, the CLI {len(want)}, or their values differ")
        print(f"spark training set, {policy}: {len(got)} rows, identical to `fresco dataset`")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fresco", required=True, help="the fresco command")
    parser.add_argument("--work", required=True, type=pathlib.Path)
    parser.add_argument("--logs", type=pathlib.Path, help="a churn_logs output directory, for the training sets")
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--events", type=int, default=60_000)
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    spark = jobs.session(app="fresco-spark-check")
    check_scoring(spark, args.fresco, args.work, args.rows)
    check_backfill(spark, args.fresco, args.work, args.events, args.rows)
    if args.logs is not None:
        check_training_sets(spark, args.fresco, args.work, args.logs)
    spark.stop()
    print("every Spark job agrees with the fresco command")


if __name__ == "__main__":
    main()
