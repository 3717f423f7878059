#!/usr/bin/env python3
"""Rebuilds the shipped ETA interval model (wasm-models/eta/model/eta.wasm).

1. Orders from the seeded delivery world (`cargo run --example eta_data`, the same
   generator the Rust examples use), split at random into train 60 % / calibration
   20 % / test 20 %.
2. Three LightGBM quantile boosters (alpha 0.1, 0.5, 0.9) on the training split.
3. Conformalized quantile regression (Romano, Patterson & Candès 2019) on the
   calibration split: scores E_i = max(q10_i - y_i, y_i - q90_i); the offset is the
   ceil((n + 1)(1 - alpha))-th smallest score, alpha = 0.2, added symmetrically to both
   bounds. Per segment (Mondrian conformal prediction): a segment is a row's bins over
   SEGMENTS (weather x traffic x hour) and gets its own offset when it holds at least
   MIN_SEGMENT_ROWS calibration rows; the rows of smaller segments are pooled and
   calibrated together, and that offset is the spec's own (`lower_offset`), for every
   row without a segment of its own. The offset over all calibration rows (the global
   offset, plain CQR) is what the segmented offsets are compared with.
4. `fresco compile` packs the three boosters into one module with the offsets in its
   metadata `interval` field and the training split's statistics per input and output
   (`--train-data`, for drift monitoring); `fresco score` scores the test split and an unseen
   simulated week (the main job's world) through that module. The report gives
   coverage and mean width overall and per segment (REPORT_SEGMENTS), for the
   segmented offsets and for the global offset alone, from fresco's own outputs
   (checked against LightGBM's predictions, and the table against `fresco intervals`).

Fails unless, on the test split and on the unseen week, overall coverage is within 1
point of 80 %, every segment with at least 500 rows within 3 points, and the mean width
at most 1.05 times the global offset's.

Usage: python3 train.py [--seed 7] [--days 56] [--out wasm-models/eta/model]
                        [--data orders.csv] [--week week.csv] [--fresco path/to/fresco]
Needs: pip install lightgbm numpy pandas pyarrow; cargo on PATH unless --data, --week and --fresco.
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
# Mondrian calibration: the inputs that define segments and their bin edges (a bin
# holds edges[k-1] <= v < edges[k]; NaN has the last bin), coarsest first.
SEGMENTS = [("weather", [0.5, 1.5]), ("traffic", [0.3, 0.6, 0.8]), ("hour", [11.0, 14.0, 17.0, 21.0])]
MIN_SEGMENT_ROWS = 400
# Reported beside overall coverage: the calibrated segments and distance.
REPORT_SEGMENTS = SEGMENTS + [("distance_km", [2.0, 4.0, 6.0])]
# The acceptance bar, on the test split and the unseen week.
OVERALL_TOLERANCE = 0.01
SEGMENT_TOLERANCE = 0.03
SEGMENT_MIN_ROWS = 500
MAX_WIDTH_RATIO = 1.05
# The unseen week: the world the main job (examples/eta.rs) simulates.
WEEK_SEED, WEEK_DAYS = 2026, 7


def cargo(*args):
    subprocess.run(["cargo", *args], cwd=ROOT, check=True)


def generate(seed, days, path):
    """Orders from the Rust generator, as CSV."""
    cargo("run", "--quiet", "-p", "fresco-examples", "--example", "eta_data", "--",
          "--seed", str(seed), "--days", str(days), path)


def load(path):
    # The exact f64 the generator wrote, whatever pandas' default float parser (pandas
    # 2's "high" one is off in the last bit on some values, which changes the boosters).
    return pd.read_csv(path, float_precision="round_trip")


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
    return conformal_quantile(np.maximum(lower - y, y - upper), coverage)


def conformal_quantile(scores, coverage):
    scores = np.sort(scores)
    k = math.ceil((len(scores) + 1) * coverage)
    return float(scores[min(k, len(scores)) - 1])


def segment_bins(frame, segments):
    """Each row's bin per segment feature (the rule of fresco's SegmentOffsets::bin)."""
    columns = []
    for name, edges in segments:
        values = frame[name].to_numpy(dtype=np.float64)
        bins = np.searchsorted(np.asarray(edges, dtype=np.float64), values, side="right")
        columns.append(np.where(np.isnan(values), len(edges) + 1, bins))
    return np.stack(columns, axis=1)


def mondrian_cells(lower, upper, y, bins, coverage, min_rows):
    """Offsets per segment with at least min_rows rows, and the offset of the rest
    (the smaller segments pooled; all rows if even the pool is smaller)."""
    scores = np.maximum(lower - y, y - upper)
    keys, inverse, counts = np.unique(bins, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    cells = []
    for k, (key, count) in enumerate(zip(keys, counts)):
        if count >= min_rows:
            offset = conformal_quantile(scores[inverse == k], coverage)
            cells.append({"bins": [int(b) for b in key], "count": int(count),
                          "lower_offset": offset, "upper_offset": offset})
    rest = counts[inverse] < min_rows
    pooled = scores[rest] if rest.sum() >= min_rows else scores
    return cells, conformal_quantile(pooled, coverage), int(rest.sum())


def segment_offsets(bins, cells, rest_offset):
    """Per row, its segment's offset, or the rest's for a segment without one."""
    table = {tuple(c["bins"]): c["lower_offset"] for c in cells}
    return np.array([table.get(tuple(int(b) for b in row), rest_offset) for row in bins])


def segment_label(name, edges, b):
    if b == len(edges) + 1:
        return "%s missing" % name
    if b == 0:
        return "%s < %s" % (name, fmt_edge(edges[0]))
    if b == len(edges):
        return "%s \u2265 %s" % (name, fmt_edge(edges[-1]))
    return "%s %s\u2013%s" % (name, fmt_edge(edges[b - 1]), fmt_edge(edges[b]))


def fmt_edge(e):
    """As Rust's `{}` prints an f64: 17 for 17.0, 0.3 for 0.3."""
    return str(int(e)) if float(e).is_integer() else repr(float(e))


def segment_table(frame, low, high, y):
    """Coverage and mean width overall and per bin of REPORT_SEGMENTS."""
    inside = (low <= y) & (y <= high)
    width = high - low
    rows = [("all", len(y), float(np.mean(inside)), float(np.mean(width)))]
    bins = segment_bins(frame, REPORT_SEGMENTS)
    for j, (name, edges) in enumerate(REPORT_SEGMENTS):
        for b in range(len(edges) + 2):
            m = bins[:, j] == b
            if m.any():
                rows.append((segment_label(name, edges, b), int(m.sum()), float(np.mean(inside[m])),
                             float(np.mean(width[m]))))
    return rows


def quantile_name(alpha):
    return "q%d" % round(alpha * 100)


def fresco_command(fresco):
    if fresco:
        return [fresco]
    return ["cargo", "run", "--quiet", "-p", "fresco-cli", "--"]


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


def check_bar(name, table, global_table):
    """The acceptance bar for one evaluation set; returns the failures."""
    failures = []
    _, rows, coverage, width = table[0]
    if abs(coverage - COVERAGE) > OVERALL_TOLERANCE:
        failures.append("%s: coverage %.4f is not within %.0f point of %.2f" % (name, coverage, 100 * OVERALL_TOLERANCE, COVERAGE))
    for label, n, c, _ in table[1:]:
        if n >= SEGMENT_MIN_ROWS and abs(c - COVERAGE) > SEGMENT_TOLERANCE:
            failures.append("%s: segment %s (%d rows) covers %.4f" % (name, label, n, c))
    if width > MAX_WIDTH_RATIO * global_table[0][3]:
        failures.append("%s: mean width %.3f is over %.2f x the global offset's %.3f"
                        % (name, width, MAX_WIDTH_RATIO, global_table[0][3]))
    return failures


def print_tables(name, table, global_table):
    print("%s: coverage and mean width, per-segment offsets beside the global offset" % name)
    print("  %-24s %7s  %8s %7s   %8s %7s" % ("segment", "rows", "segment", "width", "global", "width"))
    for (label, n, c, w), (_, _, gc, gw) in zip(table, global_table):
        print("  %-24s %7d  %7.1f%% %7.2f   %7.1f%% %7.2f" % (label, n, 100 * c, w, 100 * gc, gw))


def fresco_intervals_table(fresco, model, frame, workdir):
    """`fresco intervals` on the same rows, parsed: label -> (rows, coverage %)."""
    path = os.path.join(workdir, "intervals_input.csv")
    # pandas writes the shortest exact form of each float; NaN as an empty cell.
    frame[INPUTS + ["minutes"]].to_csv(path, index=False)
    extra = ["--segment", "%s=%s" % (REPORT_SEGMENTS[-1][0], ",".join(repr(e) for e in REPORT_SEGMENTS[-1][1]))]
    out = subprocess.run(fresco_command(fresco) + ["intervals", "--model", model, "--data", path, "--label", "minutes",
                                                   *extra], cwd=ROOT, check=True, capture_output=True, text=True).stdout
    os.remove(path)
    table = {}
    for line in out.splitlines()[2:]:
        parts = line.split()
        # "  traffic 0.3–0.6   7467 rows   79.9 %   20.11"
        rows_at = parts.index("rows")
        table[" ".join(parts[:rows_at - 1])] = (int(parts[rows_at - 1]), float(parts[rows_at + 1]))
    return table


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--seed", type=int, default=7, help="world and split seed")
    ap.add_argument("--days", type=int, default=56, help="simulated days of orders")
    ap.add_argument("--out", default=os.path.join(HERE, "model"))
    ap.add_argument("--version", default="1", help="model version recorded in the metadata")
    ap.add_argument("--data", help="orders CSV (generated when omitted)")
    ap.add_argument("--week", help="orders CSV of the unseen week (generated when omitted)")
    ap.add_argument("--fresco", help="fresco CLI binary (cargo run when omitted)")
    args = ap.parse_args()
    import lightgbm as lgb

    os.makedirs(args.out, exist_ok=True)
    frame = load_or_generate(args.data, args.seed, args.days, os.path.join(args.out, "orders.csv"))
    week = load_or_generate(args.week, WEEK_SEED, WEEK_DAYS, os.path.join(args.out, "week.csv"))
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
    cells, rest_offset, rest_rows = mondrian_cells(calib_pred["q10"], calib_pred["q90"], y_calib,
                                                   segment_bins(calib, SEGMENTS), COVERAGE, MIN_SEGMENT_ROWS)
    interval = {"coverage": COVERAGE, "lower": "q10", "mid": "q50", "upper": "q90",
                "lower_offset": rest_offset, "upper_offset": rest_offset,
                "segments": {"features": [{"input": n, "edges": e} for n, e in SEGMENTS],
                             "min_count": MIN_SEGMENT_ROWS, "cells": cells}}
    interval_path = os.path.join(args.out, "interval.json")
    with open(interval_path, "w") as f:
        json.dump(interval, f, indent=2)
        f.write("\n")

    # The training split's inputs, profiled by `fresco compile` into the metadata's
    # training statistics (what drift monitoring compares live traffic with).
    train_data = os.path.join(args.out, "train_inputs.parquet")
    pd.DataFrame(features(train), columns=INPUTS).to_parquet(train_data, index=False)
    wasm = os.path.join(args.out, "eta.wasm")
    subprocess.run(fresco_command(args.fresco) + ["compile", *files, "-o", wasm, "--name", "eta",
                                                  "--version", args.version, "--interval", interval_path,
                                                  "--train-data", train_data],
                   cwd=ROOT, check=True)
    os.remove(train_data)

    scored = score_with_fresco(args.fresco, wasm, test, args.out)
    worst = 0.0
    for name in ("q10", "q50", "q90"):
        ours, theirs = scored[name].to_numpy(), test_pred[name]
        worst = max(worst, float(np.max(np.abs(ours - theirs) / np.maximum(np.abs(theirs), 1e-300))))
    if worst > 1e-9:
        sys.exit("fresco's module disagrees with LightGBM: max relative error %g" % worst)

    report = {
        "seed": args.seed,
        "days": args.days,
        "rows": {"train": len(train), "calibration": len(calib), "test": len(test), "unseen_week": len(week)},
        "lightgbm": lgb.__version__,
        "rounds": ROUNDS,
        "nominal_coverage": COVERAGE,
        "cqr_offset_min": offset,
        "segments_calibrated": len(cells),
        "pooled_rest": {"calibration_rows": rest_rows, "offset_min": rest_offset},
        "max_relative_error_vs_lightgbm": worst,
    }
    failures = []
    for name, rows, outputs in (("test", test, scored), ("unseen_week", week, None)):
        if outputs is None:
            outputs = score_with_fresco(args.fresco, wasm, rows, args.out)
        q10, q90, y = outputs["q10"].to_numpy(), outputs["q90"].to_numpy(), rows["minutes"].to_numpy()
        per_row = segment_offsets(segment_bins(rows, SEGMENTS), cells, rest_offset)
        a, b = q10 - per_row, q90 + per_row
        table = segment_table(rows, np.minimum(a, b), np.maximum(a, b), y)
        global_table = segment_table(rows, np.minimum(q10 - offset, q90 + offset), np.maximum(q10 - offset, q90 + offset), y)
        print_tables(name, table, global_table)
        # fresco's own rule (Rust) must find the same segments and coverage.
        theirs = fresco_intervals_table(args.fresco, wasm, rows, args.out)
        for label, n, c, _ in table:
            if label not in theirs or theirs[label][0] != n or abs(theirs[label][1] - round(100 * c, 1)) > 0.051:
                failures.append("%s: `fresco intervals` says %s for %s, this script (%d, %.1f)"
                                % (name, theirs.get(label), label, n, 100 * c))
        report[name] = {
            "uncalibrated": interval_stats(q10, q90, y),
            "global_offset": {"coverage": global_table[0][2], "mean_width": global_table[0][3]},
            "segmented": {"coverage": table[0][2], "mean_width": table[0][3]},
            "segments": [{"segment": label, "rows": n, "coverage": c, "mean_width": w,
                          "global_offset_coverage": g[2], "global_offset_mean_width": g[3]}
                         for (label, n, c, w), g in zip(table[1:], global_table[1:])],
        }
        failures += check_bar(name, table, global_table)
    # compare_mapie.py reads these two.
    report["test_uncalibrated"] = report["test"]["uncalibrated"]
    report["test_calibrated"] = report["test"]["segmented"]
    with open(os.path.join(args.out, "report.json"), "w") as f:
        json.dump(report, f, indent=2)
        f.write("\n")
    if failures:
        sys.exit("\n".join(failures))
    print("ok: %d segments with offsets of their own, %d calibration rows pooled; test and unseen week meet the bar"
          % (len(cells), rest_rows))


def load_or_generate(path, seed, days, scratch):
    """Orders from `path`, or generated into a scratch file that is removed after."""
    if path:
        return load(path)
    generate(seed, days, scratch)
    frame = load(scratch)
    os.remove(scratch)
    return frame


if __name__ == "__main__":
    main()
