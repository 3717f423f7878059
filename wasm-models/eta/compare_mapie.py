#!/usr/bin/env python3
"""Compares fresco's calibrated ETA intervals with MAPIE's ConformalizedQuantileRegressor
on the same data and the same train / calibration / test split.

fresco's numbers come from `report.json` beside the model (written by train.py from
the compiled module's own outputs on the test split). MAPIE fits its three LightGBM
quantile regressors itself (same hyperparameters as train.py) on the training split,
conformalizes on the calibration split and predicts the test split, with its default
(asymmetric) correction and with the symmetric one.

Passes when fresco's test coverage is within 1.5 points of the nominal 80 %, no
further from it than MAPIE's (up to 0.25 points, the sampling noise of one test split
of ~24,000 rows is ~0.26 points), and fresco's mean width is within 5 % of MAPIE's.

Usage: python3 compare_mapie.py [--model-dir wasm-models/eta/model] [--data orders.csv]
Needs: pip install mapie lightgbm numpy pandas
"""
import argparse
import json
import os
import sys

import numpy as np

import train


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model-dir", default=os.path.join(train.HERE, "model"))
    ap.add_argument("--data", help="orders CSV (regenerated from the report's seed when omitted)")
    args = ap.parse_args()
    import lightgbm as lgb
    import mapie
    from mapie.regression import ConformalizedQuantileRegressor

    with open(os.path.join(args.model_dir, "report.json")) as f:
        report = json.load(f)
    data = args.data
    if not data:
        data = os.path.join(args.model_dir, "orders.mapie.csv")
        train.generate(report["seed"], report["days"], data)
    frame = train.load(data)
    if not args.data:
        os.remove(data)
    tr, calib, test = train.split(frame, report["seed"])
    assert len(test) == report["rows"]["test"], "the split differs from the one the model was trained on"

    params = train.PARAMS
    estimator = lgb.LGBMRegressor(
        objective="quantile", alpha=0.5, n_estimators=train.ROUNDS, learning_rate=params["learning_rate"],
        num_leaves=params["num_leaves"], min_child_samples=params["min_data_in_leaf"],
        deterministic=True, force_col_wise=True, n_jobs=params["num_threads"], random_state=params["seed"],
        verbose=-1)
    regressor = ConformalizedQuantileRegressor(estimator, confidence_level=train.COVERAGE)
    weather = train.INPUTS.index("weather")
    regressor.fit(train.features(tr), tr["minutes"].to_numpy(), fit_params={"categorical_feature": [weather]})
    regressor.conformalize(train.features(calib), calib["minutes"].to_numpy())
    y = test["minutes"].to_numpy()
    results = {"fresco": report["test_calibrated"]}
    for name, symmetric in (("mapie", False), ("mapie_symmetric", True)):
        _, bounds = regressor.predict_interval(train.features(test), symmetric_correction=symmetric)
        results[name] = train.interval_stats(bounds[:, 0, 0], bounds[:, 1, 0], y)

    print("mapie %s, lightgbm %s, %d test rows, nominal coverage %.2f" % (
        mapie.__version__, lgb.__version__, len(test), train.COVERAGE))
    print("%-16s %9s %11s" % ("", "coverage", "mean width"))
    for name, r in results.items():
        print("%-16s %8.2f%% %8.3f min" % (name, 100 * r["coverage"], r["mean_width"]))
    with open(os.path.join(args.model_dir, "mapie.json"), "w") as f:
        json.dump({"mapie": mapie.__version__, **results}, f, indent=2)
        f.write("\n")

    ours, theirs = results["fresco"], results["mapie"]
    failures = []
    if abs(ours["coverage"] - train.COVERAGE) > 0.015:
        failures.append("fresco coverage %.4f is not within 1.5 points of %.2f" % (ours["coverage"], train.COVERAGE))
    if abs(ours["coverage"] - train.COVERAGE) > abs(theirs["coverage"] - train.COVERAGE) + 0.0025:
        failures.append("fresco coverage %.4f is further from nominal than MAPIE's %.4f"
                        % (ours["coverage"], theirs["coverage"]))
    if abs(ours["mean_width"] / theirs["mean_width"] - 1) > 0.05:
        failures.append("fresco mean width %.3f is not within 5 %% of MAPIE's %.3f"
                        % (ours["mean_width"], theirs["mean_width"]))
    if failures:
        sys.exit("\n".join(failures))
    print("ok: width ratio fresco / MAPIE = %.4f" % (ours["mean_width"] / theirs["mean_width"]))


if __name__ == "__main__":
    main()
