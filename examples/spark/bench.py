#!/usr/bin/env python3
"""Spark scoring throughput: fresco (``mapInArrow``, the compiled model in wasmtime)
beside LightGBM's own ``Booster.predict`` in a pandas UDF (``mapInPandas``), on the same
local Spark, model and rows. Prints rows/s of each and their ratio.

Usage: bench.py [--rows 1000000] [--features 30] [--trees 300] [--repeats 3]
"""
from __future__ import annotations

import argparse
import pathlib
import shutil
import sys
import tempfile
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import jobs  # noqa: E402


def train(features: int, trees: int, path: pathlib.Path) -> list[str]:
    import lightgbm as lgb

    rng = np.random.default_rng(1)
    x = rng.normal(size=(20_000, features))
    y = x[:, 0] * 3 + np.sin(x[:, 1]) + x[:, 2] * x[:, 3] + rng.normal(0, 0.1, 20_000)
    names = [f"f{i}" for i in range(features)]
    booster = lgb.train({"objective": "regression", "num_leaves": 31, "verbose": -1, "num_threads": 1},
                        lgb.Dataset(x, y, feature_name=names), num_boost_round=trees)
    booster.save_model(str(path))
    return names


def timed(run, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=30)
    parser.add_argument("--trees", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    work = pathlib.Path(tempfile.mkdtemp(prefix="fresco-spark-bench-"))
    try:
        run(args, work)
    finally:
        # A million rows of Parquet and Spark's cache: never left behind.
        shutil.rmtree(work, ignore_errors=True)


def run(args, work):
    import fresco

    names = train(args.features, args.trees, work / "model.txt")
    fresco.compile(work / "model.txt", name="bench", out=work / "model.wasm")
    rng = np.random.default_rng(2)
    pq.write_table(pa.table({n: rng.normal(size=args.rows) for n in names}), work / "rows.parquet",
                   row_group_size=args.rows // 8)

    spark = jobs.session(app="fresco-spark-bench")
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", "10000")
    df = spark.read.parquet(str(work / "rows.parquet")).repartition(8).cache()
    df.count()
    model_text = (work / "model.txt").read_text()

    def lightgbm_partitions(frames):
        import lightgbm as lgb

        booster = lgb.Booster(model_str=model_text)
        for frame in frames:
            import pandas as pd

            yield pd.DataFrame({"prediction": booster.predict(frame[names].to_numpy(), num_threads=1)})

    fresco_s = timed(lambda: jobs.score(spark, df, str(work / "model.wasm")).write.format("noop").mode("overwrite").save(),
                     args.repeats)
    lightgbm_s = timed(lambda: df.mapInPandas(lightgbm_partitions, "prediction double")
                       .write.format("noop").mode("overwrite").save(), args.repeats)
    spark.stop()
    fresco_rate, lightgbm_rate = args.rows / fresco_s, args.rows / lightgbm_s
    print(f"spark local[2], {args.rows:,} rows, {args.features} features, {args.trees} trees (best of {args.repeats}):")
    print(f"  fresco mapInArrow           {fresco_rate:>12,.0f} rows/s")
    print(f"  LightGBM Booster.predict UDF {lightgbm_rate:>11,.0f} rows/s")
    print(f"  ratio fresco / LightGBM     {fresco_rate / lightgbm_rate:>12.2f}x")


if __name__ == "__main__":
    main()
