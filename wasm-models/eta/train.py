#!/usr/bin/env python3
"""Rebuilds the shipped ETA interval model (wasm-models/eta/model/eta.wasm).

1. Orders from the seeded delivery world (`cargo run --example eta_data`, the same
   generator the Rust examples use), split at random into train 60 % / calibration
   20 % / test 20 %.
2. Three LightGBM quantile boosters (alpha 0.1, 0.5, 0.9) on the training split.
3. Conformalized quantile regression (Romano, Patterson & Candès 2019) on the
   calibration split: scores E_i = max(q10_i - y_i, y_i - q90_i); the offset is the
   ceil((n + 1)(1 - alpha))-th smallest score, alpha = 0.2, added symmetrically to both
   bounds.
4. `fresco compile` packs the three boosters into one module with the offsets in its
   metadata `interval` field; `fresco score` scores the test split through that
   module, and the report gives empirical coverage and mean width from fresco's own
   outputs (and checks them against LightGBM's predictions).

Usage: python3 train.py [--seed 7] [--days 28] [--out wasm-models/eta/model]
                        [--data orders.csv] [--fresco path/to/fresco]
Needs: pip install lightgbm numpy pandas; cargo on PATH unless --data and --fresco.
"""
import argparse
import json
import math
import os
import subprocess
import sys

import numpy as np
import pandas as pd

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

INPUTS = ["distance_km", "hour", "day_of_week", "traffic", "weather", "prep_time_min", "orders_last_30min"]
CATEGORICAL = ["weather"]
QUANTILES = [0.1, 0.5, 0.9]
COVERAGE = 0.8
PARAMS = {
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_data_in_leaf": 100,
    "feature_fraction": 1.0,
    "bagging_fraction": 1.0,
    "deterministic": True,
    "force_col_wise": True,
    "num_threads": 2,
    "verbose": -1,
    "seed": 1,
}
ROUNDS = 300


def cargo(*args):
    subprocess.run(["cargo", *args], cwd=ROOT, check=True)


def generate(seed, days, path):
    """Orders from the Rust generator, as CSV."""
    cargo("run", "--quiet", "--release", "-p", "fresco-examples", "--example", "eta_data", "--",
          "--seed", str(seed), "--days", str(days), path)


def load(path):
    # float_precision="round_trip": the exact f64 the generator wrote.
    return pd.read_csv(path)


def split(frame, seed):
    """Random 60 / 20 / 20 split into train, calibration and test (exchangeable, as
    the conformal guarantee needs)."""
    order = np.random.RandomState(seed).permutation(len(frame))
    a, b = int(0.6 * len(frame)), int(0.8 * len(frame))
    return frame.iloc[order[:a]], frame.iloc[order[a:b]], frame.iloc[order[b:]]


def features(frame):
    return frame[INPUTS].to_numpy(dtype=np.float64)


def train_quantile(train, alpha):
    import lightgbm as lgb
    data = lgb.Dataset(features(train), label=train["minutes"].to_numpy(),
                       feature_name=INPUTS, categorical_feature=CATEGORICAL, free_raw_data=False)
    return lgb.train({**PARAMS, "objective": "quantile", "alpha": alpha}, data, num_boost_round=ROUNDS)


def cqr_offset(lower, upper, y, coverage):
    """The conformal correction: the ceil((n+1)·coverage)-th smallest conformity score."""
    scores = np.sort(np.maximum(lower - y, y - upper))
    k = math.ceil((len(y) + 1) * coverage)
    return float(scores[min(k, len(y)) - 1])


def quantile_name(alpha):
    return "q%d" % round(alpha * 100)


def fresco_command(fresco):
    if fresco:
        return [fresco]
    return ["cargo", "run", "--quiet", "--release", "-p", "fresco-cli", "--"]


def score_with_fresco(fresco, model, frame, workdir):
    """Scores `frame` through the compiled module with `fresco score`."""
    inputs = os.path.join(workdir, "test_inputs.csv")
    scored = os.path.join(workdir, "test_scored.csv")
    # repr(float) is the shortest exact form; an empty cell is a missing value.
    with open(inputs, "w") as f:
        f.write(",".join(INPUTS) + "\n")
        for row in features(frame):
            f.write(",".join("" if math.isnan(v) else repr(float(v)) for v in row) + "\n")
    subprocess.run(fresco_command(fresco) + ["score", model, "-i", inputs, "-o", scored], cwd=ROOT, check=True)
    out = pd.read_csv(scored)
    os.remove(inputs)
    os.remove(scored)
    return out


def interval_stats(lower, upper, y):
    low = np.minimum(lower, upper)
    high = np.maximum(lower, upper)
    return {"coverage": float(np.mean((low <= y) & (y <= high))), "mean_width": float(np.mean(high - low))}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--seed", type=int, default=7, help="world and split seed")
    ap.add_argument("--days", type=int, default=28, help="simulated days of orders")
    ap.add_argument("--out", default=os.path.join(HERE, "model"))
    ap.add_argument("--version", default="1", help="model version recorded in the metadata")
    ap.add_argument("--data", help="orders CSV (generated when omitted)")
    ap.add_argument("--fresco", help="fresco CLI binary (cargo run when omitted)")
    args = ap.parse_args()
    import lightgbm as lgb

    os.makedirs(args.out, exist_ok=True)
    data = args.data or os.path.join(args.out, "orders.csv")
    if not args.data:
        generate(args.seed, args.days, data)
    frame = load(data)
    if not args.data:
        os.remove(data)
    train, calib, test = split(frame, args.seed)

    files, calib_pred, test_pred = [], {}, {}
    for alpha in QUANTILES:
        booster = train_quantile(train, alpha)
        name = quantile_name(alpha)
        path = os.path.join(args.out, "eta_%s.txt" % name)
        booster.save_model(path)
        files.append(path)
        calib_pred[name] = booster.predict(features(calib))
        test_pred[name] = booster.predict(features(test))

    y_calib = calib["minutes"].to_numpy()
    offset = cqr_offset(calib_pred["q10"], calib_pred["q90"], y_calib, COVERAGE)
    interval = {"coverage": COVERAGE, "lower": "q10", "mid": "q50", "upper": "q90",
                "lower_offset": offset, "upper_offset": offset}
    interval_path = os.path.join(args.out, "interval.json")
    with open(interval_path, "w") as f:
        json.dump(interval, f, indent=2)
        f.write("\n")

    wasm = os.path.join(args.out, "eta.wasm")
    subprocess.run(fresco_command(args.fresco) + ["compile", *files, "-o", wasm, "--name", "eta",
                                                  "--version", args.version, "--interval", interval_path],
                   cwd=ROOT, check=True)

    scored = score_with_fresco(args.fresco, wasm, test, args.out)
    y = test["minutes"].to_numpy()
    worst = 0.0
    for name in ("q10", "q50", "q90"):
        ours, theirs = scored[name].to_numpy(), test_pred[name]
        worst = max(worst, float(np.max(np.abs(ours - theirs) / np.maximum(np.abs(theirs), 1e-300))))
    if worst > 1e-9:
        sys.exit("fresco's module disagrees with LightGBM: max relative error %g" % worst)
    raw = interval_stats(scored["q10"].to_numpy(), scored["q90"].to_numpy(), y)
    calibrated = interval_stats(scored["q10"].to_numpy() - offset, scored["q90"].to_numpy() + offset, y)
    report = {
        "seed": args.seed,
        "days": args.days,
        "rows": {"train": len(train), "calibration": len(calib), "test": len(test)},
        "lightgbm": lgb.__version__,
        "rounds": ROUNDS,
        "nominal_coverage": COVERAGE,
        "cqr_offset_min": offset,
        "test_uncalibrated": raw,
        "test_calibrated": calibrated,
        "max_relative_error_vs_lightgbm": worst,
    }
    with open(os.path.join(args.out, "report.json"), "w") as f:
        json.dump(report, f, indent=2)
        f.write("\n")
    print(json.dumps(report, indent=2))
    if abs(calibrated["coverage"] - COVERAGE) > 0.015:
        sys.exit("test coverage %.4f is not within 1.5 points of %.2f" % (calibrated["coverage"], COVERAGE))


if __name__ == "__main__":
    main()
