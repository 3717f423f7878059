#!/usr/bin/env python3
"""Compares fresco's calibrated ETA intervals with MAPIE's ConformalizedQuantileRegressor
on the same data and the same train / calibration / test split, overall and per segment.

fresco's numbers come from `report.json` beside the model (written by train.py from
the compiled module's own outputs on the test split). MAPIE fits its three LightGBM
quantile regressors itself (same hyperparameters as train.py) on the training split,
conformalizes on the calibration split and predicts the test split, with its default
(asymmetric) correction and with the symmetric one.

MAPIE's Mondrian variant: MAPIE 1.x has no Mondrian class (0.9's MondrianCP is gone);
Mondrian conformal prediction with it is one conformalization per group. Here the
groups are fresco's segments (train.SEGMENTS: weather x traffic x hour bins), those
with fewer than train.MIN_SEGMENT_ROWS calibration rows pooled into one group, over
prefit LightGBM quantile regressors with train.py's hyperparameters, symmetric
correction. Its per-segment table on the test split and the unseen week is printed
beside fresco's (report.json).

Passes when fresco's test coverage is within 1.5 points of the nominal 80 %, no
further from it than MAPIE's (up to 0.25 points, the sampling noise of one test split
of ~48,000 rows is ~0.18 points), fresco's mean width is within 5 % of MAPIE's, and
fresco's worst segment (>= 500 rows) is no further from 80 % than MAPIE Mondrian's
plus 1 point.

Usage: python3 compare_mapie.py [--model-dir wasm-models/eta/model] [--data orders.csv] [--week week.csv]
Needs: pip install mapie lightgbm numpy pandas
"""
import argparse
import json
import os
import sys

import numpy as np

import train


def quantile_regressor(alpha):
    import lightgbm as lgb
    params = train.PARAMS
    return lgb.LGBMRegressor(
        objective="quantile", alpha=alpha, n_estimators=train.ROUNDS, learning_rate=params["learning_rate"],
        num_leaves=params["num_leaves"], min_child_samples=params["min_data_in_leaf"],
        deterministic=True, force_col_wise=True, n_jobs=params["num_threads"], random_state=params["seed"],
        verbose=-1)


def mondrian_groups(frame, calib_keys):
    """Each row's group: its full segment cell, or -1 for cells too small to calibrate."""
    bins = train.segment_bins(frame, train.SEGMENTS)
    return np.array([calib_keys.get(tuple(int(b) for b in row), -1) for row in bins])


def mapie_mondrian(estimators, calib, sets):
    """One MAPIE conformalization per group; returns (low, high) for each set in `sets`."""
    from mapie.regression import ConformalizedQuantileRegressor
    cal_bins = train.segment_bins(calib, train.SEGMENTS)
    keys, counts = np.unique(cal_bins, axis=0, return_counts=True)
    calib_keys = {tuple(int(b) for b in k): i for i, (k, n) in enumerate(zip(keys, counts))
                  if n >= train.MIN_SEGMENT_ROWS}
    cal_groups = mondrian_groups(calib, calib_keys)
    results = [(np.empty(len(f)), np.empty(len(f)), mondrian_groups(f, calib_keys)) for f in sets]
    for group in np.unique(cal_groups):
        regressor = ConformalizedQuantileRegressor(estimators, confidence_level=train.COVERAGE, prefit=True)
        m = cal_groups == group
        regressor.conformalize(train.features(calib[m]), calib["minutes"].to_numpy()[m])
        for frame, (low, high, groups) in zip(sets, results):
            g = groups == group
            if g.any():
                _, bounds = regressor.predict_interval(train.features(frame[g]), symmetric_correction=True)
                low[g], high[g] = bounds[:, 0, 0], bounds[:, 1, 0]
    return [(low, high) for low, high, _ in results]


def worst_segment(rows):
    return max(abs(r["coverage"] - train.COVERAGE) for r in rows if r["rows"] >= train.SEGMENT_MIN_ROWS)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model-dir", default=os.path.join(train.HERE, "model"))
    ap.add_argument("--data", help="orders CSV (regenerated from the report's seed when omitted)")
    ap.add_argument("--week", help="orders CSV of the unseen week (regenerated when omitted)")
    args = ap.parse_args()
    import lightgbm as lgb
    import mapie
    from mapie.regression import ConformalizedQuantileRegressor

    with open(os.path.join(args.model_dir, "report.json")) as f:
        report = json.load(f)
    frame = train.load_or_generate(args.data, report["seed"], report["days"],
                                   os.path.join(args.model_dir, "orders.mapie.csv"))
    week = train.load_or_generate(args.week, train.WEEK_SEED, train.WEEK_DAYS,
                                  os.path.join(args.model_dir, "week.mapie.csv"))
    tr, calib, test = train.split(frame, report["seed"])
    assert len(test) == report["rows"]["test"], "the split differs from the one the model was trained on"
    assert len(week) == report["rows"]["unseen_week"], "the unseen week differs from the report's"

    regressor = ConformalizedQuantileRegressor(quantile_regressor(0.5), confidence_level=train.COVERAGE)
    weather = train.INPUTS.index("weather")
    regressor.fit(train.features(tr), tr["minutes"].to_numpy(), fit_params={"categorical_feature": [weather]})
    regressor.conformalize(train.features(calib), calib["minutes"].to_numpy())
    y = test["minutes"].to_numpy()
    results = {"fresco": report["test_calibrated"], "fresco_global_offset": report["test"]["global_offset"]}
    for name, symmetric in (("mapie", False), ("mapie_symmetric", True)):
        _, bounds = regressor.predict_interval(train.features(test), symmetric_correction=symmetric)
        results[name] = train.interval_stats(bounds[:, 0, 0], bounds[:, 1, 0], y)

    # Mondrian: prefit quantile regressors (lower, upper, median), one conformalization per group.
    estimators = []
    for alpha in (0.1, 0.9, 0.5):
        estimators.append(quantile_regressor(alpha).fit(train.features(tr), tr["minutes"].to_numpy(),
                                                        categorical_feature=[weather]))
    (test_low, test_high), (week_low, week_high) = mapie_mondrian(estimators, calib, [test, week])
    mondrian = {}
    for name, rows, low, high in (("test", test, test_low, test_high), ("unseen_week", week, week_low, week_high)):
        table = train.segment_table(rows, low, high, rows["minutes"].to_numpy())
        mondrian[name] = [{"segment": label, "rows": n, "coverage": c, "mean_width": w} for label, n, c, w in table[1:]]
        results["mapie_mondrian_" + name] = {"coverage": table[0][2], "mean_width": table[0][3]}
        ours = report[name]
        print("%s: fresco (per-segment offsets) beside MAPIE Mondrian" % name)
        print("  %-24s %7s  %8s %7s   %8s %7s" % ("segment", "rows", "fresco", "width", "MAPIE", "width"))
        print("  %-24s %7d  %7.1f%% %7.2f   %7.1f%% %7.2f" % ("all", len(rows), 100 * ours["segmented"]["coverage"],
              ours["segmented"]["mean_width"], 100 * table[0][2], table[0][3]))
        for a, b in zip(ours["segments"], mondrian[name]):
            assert a["segment"] == b["segment"] and a["rows"] == b["rows"]
            print("  %-24s %7d  %7.1f%% %7.2f   %7.1f%% %7.2f" % (a["segment"], a["rows"], 100 * a["coverage"],
                  a["mean_width"], 100 * b["coverage"], b["mean_width"]))

    print("mapie %s, lightgbm %s, %d test rows, nominal coverage %.2f" % (
        mapie.__version__, lgb.__version__, len(test), train.COVERAGE))
    print("%-24s %9s %11s" % ("test split", "coverage", "mean width"))
    for name, r in results.items():
        print("%-24s %8.2f%% %8.3f min" % (name, 100 * r["coverage"], r["mean_width"]))
    with open(os.path.join(args.model_dir, "mapie.json"), "w") as f:
        json.dump({"mapie": mapie.__version__, **results, "mapie_mondrian_segments": mondrian}, f, indent=2)
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
    for name in ("test", "unseen_week"):
        a, b = worst_segment(report[name]["segments"]), worst_segment(mondrian[name])
        print("%s: worst segment off by %.2f points (fresco), %.2f (MAPIE Mondrian)" % (name, 100 * a, 100 * b))
        if a > b + 0.01:
            failures.append("%s: fresco's worst segment is %.2f points off, MAPIE Mondrian's %.2f"
                            % (name, 100 * a, 100 * b))
    if failures:
        sys.exit("\n".join(failures))
    print("ok: width ratio fresco / MAPIE = %.4f" % (ours["mean_width"] / theirs["mean_width"]))


if __name__ == "__main__":
    main()
