#!/usr/bin/env python3
"""Trains the churn example's LightGBM models: one per `--job DATA OUT`.

DATA is a Parquet training set written by fresco (`fresco::dataset`) or a CSV; the
features are the columns named by `--features`, the label is `--label`. OUT is the
LightGBM text model (`Booster.save_model`), which fresco compiles to WebAssembly.
Deterministic: one thread, fixed seeds. Needs `pip install lightgbm pyarrow pandas`.
"""
import argparse
import sys

try:
    import lightgbm as lgb
    import pandas as pd
except ImportError as e:  # say what to install rather than print a traceback
    sys.exit(f"churn training needs Python packages: pip install lightgbm pyarrow pandas ({e})")

PARAMS = dict(
    objective="binary",
    learning_rate=0.08,
    num_leaves=15,
    min_data_in_leaf=40,
    feature_fraction=1.0,
    bagging_fraction=1.0,
    lambda_l2=1.0,
    num_threads=1,
    deterministic=True,
    force_row_wise=True,
    seed=7,
    verbose=-1,
)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--features", required=True, help="comma-separated feature columns")
    parser.add_argument("--label", default="label")
    parser.add_argument("--rounds", type=int, default=120)
    parser.add_argument("--job", nargs=2, action="append", metavar=("DATA", "OUT"), required=True)
    args = parser.parse_args()
    features = args.features.split(",")
    for data, out in args.job:
        frame = pd.read_csv(data) if data.endswith(".csv") else pd.read_parquet(data)
        if len(frame) == 0:
            sys.exit(f"{data}: no rows to train on")
        booster = lgb.train(PARAMS, lgb.Dataset(frame[features], label=frame[args.label]), args.rounds)
        booster.save_model(out)


if __name__ == "__main__":
    main()
