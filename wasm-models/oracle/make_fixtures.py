#!/usr/bin/env python3
"""Trains LightGBM and XGBoost models with the real libraries and saves, per case, the
model file, scoring inputs (with missing values, unseen and invalid categories) and the
library's own predictions. The Rust oracle tests compile each model and compare.

Usage: python3 make_fixtures.py OUT_DIR [--seed N] [--small]
  --small   fewer rows and trees: the committed fixture set.
Needs: pip install lightgbm xgboost numpy pandas
"""
import argparse
import json
import math
import os
import sys

import numpy as np


def nan_to_none(values):
    return [[None if (isinstance(v, float) and math.isnan(v)) else float(v) for v in row] for row in values]


def write_case(out, name, library, model_file, inputs, expected, **extra):
    expected = np.asarray(expected, dtype=np.float64)
    if expected.ndim == 1:
        expected = expected.reshape(-1, 1)
    case = {
        "name": name,
        "library": library,
        "model": model_file,
        "inputs": nan_to_none(np.asarray(inputs, dtype=np.float64).tolist()),
        "expected": nan_to_none(expected.tolist()),
    }
    case.update(extra)
    with open(os.path.join(out, name + ".case.json"), "w") as f:
        json.dump(case, f)


def make_data(rng, n, n_features, n_categorical=0, n_categories=8, nan_rate=0.05):
    X = rng.normal(size=(n, n_features))
    X[:, ::3] *= 10.0  # mixed scales
    for j in range(n_categorical):
        X[:, j] = rng.integers(0, n_categories, size=n)
    mask = rng.random(size=X.shape) < nan_rate
    X[mask] = np.nan
    signal = np.nan_to_num(X[:, 0]) * 0.5 + np.sin(np.nan_to_num(X[:, 1])) + 0.1 * np.nan_to_num(X[:, 2]) ** 2
    if n_categorical:
        signal += np.where(np.nan_to_num(X[:, 0], nan=-1) % 3 == 0, 1.5, -0.5)
    return X, signal


def scoring_inputs(rng, X, n_categorical=0, n_categories=8):
    """Test rows: fresh draws plus edge cases the library must route like in training."""
    T = X[: len(X) // 4].copy()
    T += rng.normal(scale=0.01, size=T.shape)
    T[rng.random(size=T.shape) < 0.08] = np.nan
    for j in range(n_categorical):
        codes = rng.integers(0, n_categories, size=len(T)).astype(float)
        unseen = rng.random(len(T)) < 0.1
        codes[unseen] = n_categories + rng.integers(0, 50, size=unseen.sum())  # unseen categories
        codes[rng.random(len(T)) < 0.03] = -1.0  # invalid (negative)
        codes[rng.random(len(T)) < 0.05] = np.nan
        T[:, j] = codes
    # Exact zeros and tiny values exercise LightGBM's zero-as-missing rule.
    T[::17, -1] = 0.0
    T[::19, -1] = 1e-40
    return T


def lightgbm_cases(out, rng, small):
    import lightgbm as lgb

    n = 600 if small else 3000
    cases = []
    base = dict(verbose=-1, num_threads=1, min_data_in_leaf=5)
    objectives = ["regression", "regression_l1", "huber", "fair", "mape", "poisson", "gamma", "tweedie",
                  "binary", "cross_entropy", "multiclass", "multiclassova"]
    for obj in objectives:
        cases.append((f"lgb_{obj}", dict(objective=obj), 20, 15, 0))
    for alpha in (0.1, 0.5, 0.9):
        cases.append((f"lgb_quantile_{int(alpha * 100)}", dict(objective="quantile", alpha=alpha), 20, 15, 0))
    cases += [
        ("lgb_stump", dict(objective="regression", num_leaves=2, max_depth=1), 1, 2, 0),
        ("lgb_deep", dict(objective="regression", num_leaves=255, max_depth=12, min_data_in_leaf=2), 10 if small else 40, 255, 0),
        ("lgb_many_trees", dict(objective="regression", num_leaves=4, learning_rate=0.01), 300 if small else 2000, 4, 0),
        ("lgb_categorical", dict(objective="regression", max_cat_to_onehot=2, cat_smooth=1, min_data_per_group=5), 20, 15, 2),
        ("lgb_categorical_binary", dict(objective="binary", max_cat_to_onehot=2, cat_smooth=1, min_data_per_group=5), 20, 15, 2),
        ("lgb_zero_as_missing", dict(objective="regression", zero_as_missing=True), 20, 15, 0),
        ("lgb_no_missing", dict(objective="regression", use_missing=False), 20, 15, 0),
        ("lgb_rf", dict(objective="regression", boosting="rf", bagging_fraction=0.7, bagging_freq=1, feature_fraction=0.8), 15, 15, 0),
        ("lgb_reg_sqrt", dict(objective="regression", reg_sqrt=True), 20, 15, 0),
        ("lgb_sigmoid_2", dict(objective="binary", sigmoid=2.0), 20, 15, 0),
    ]
    for name, params, rounds, leaves, n_cat in cases:
        X, signal = make_data(rng, n, 12, n_categorical=n_cat)
        obj = params["objective"]
        if obj in ("binary", "cross_entropy"):
            y = (signal + rng.normal(scale=0.5, size=n) > np.median(signal)).astype(float)
        elif obj in ("multiclass", "multiclassova"):
            y = np.digitize(signal + rng.normal(scale=0.3, size=n), np.quantile(signal, [0.33, 0.66])).astype(float)
            params = dict(params, num_class=3)
        elif obj in ("poisson", "tweedie"):
            y = rng.poisson(np.exp(np.clip(signal, -3, 3) * 0.5)).astype(float)
        elif obj in ("gamma", "mape"):
            y = np.exp(np.clip(signal, -3, 3) * 0.3) * rng.gamma(2.0, 0.5, size=n) + 0.01
        else:
            y = signal + rng.normal(scale=0.3, size=n)
        p = dict(base, num_leaves=leaves, seed=int(rng.integers(1 << 30)))
        p.update(params)
        cat = list(range(n_cat)) if n_cat else "auto"
        booster = lgb.train(p, lgb.Dataset(X, y, categorical_feature=cat), num_boost_round=rounds)
        model_file = name + ".model.txt"
        booster.save_model(os.path.join(out, model_file))
        T = scoring_inputs(rng, X, n_categorical=n_cat)
        write_case(out, name, "lightgbm", model_file, T, booster.predict(T), library_version=lgb.__version__)

    # linear_tree models are refused with a typed error, not mis-scored.
    X, signal = make_data(rng, n, 6, nan_rate=0.0)
    booster = lgb.train(dict(base, objective="regression", linear_tree=True), lgb.Dataset(X, signal), num_boost_round=3)
    booster.save_model(os.path.join(out, "lgb_linear_tree.model.txt"))
    write_case(out, "lgb_linear_tree", "lightgbm", "lgb_linear_tree.model.txt", X[:2], booster.predict(X[:2]),
               expect_error="unsupported")


def xgboost_cases(out, rng, small):
    import xgboost as xgb

    n = 600 if small else 3000
    cases = []
    for obj in ["reg:squarederror", "reg:logistic", "binary:logistic", "multi:softprob", "multi:softmax",
                "count:poisson", "reg:tweedie", "reg:gamma", "reg:absoluteerror", "reg:pseudohubererror"]:
        cases.append(("xgb_" + obj.replace(":", "_"), dict(objective=obj), 20, 4, 0))
    cases += [
        ("xgb_stump", dict(objective="reg:squarederror", max_depth=1), 1, 1, 0),
        ("xgb_deep", dict(objective="reg:squarederror", max_depth=12, min_child_weight=0), 10 if small else 40, 12, 0),
        ("xgb_many_trees", dict(objective="reg:squarederror", max_depth=2, eta=0.01), 300 if small else 2000, 2, 0),
        ("xgb_categorical", dict(objective="reg:squarederror", max_cat_to_onehot=1), 20, 4, 2),
        ("xgb_categorical_onehot", dict(objective="binary:logistic", max_cat_to_onehot=16), 20, 4, 2),
        ("xgb_multi_target", dict(objective="reg:squarederror", multi_strategy="one_output_per_tree"), 10, 4, 0),
        ("xgb_best_iteration", dict(objective="reg:squarederror"), 200, 4, 0),
        ("xgb_base_score", dict(objective="binary:logistic", base_score=0.3), 10, 3, 0),
    ]
    for name, params, rounds, depth, n_cat in cases:
        X, signal = make_data(rng, n, 12, n_categorical=n_cat)
        obj = params["objective"]
        extra = {}
        if obj in ("binary:logistic", "reg:logistic"):
            y = (signal + rng.normal(scale=0.5, size=n) > np.median(signal)).astype(float)
        elif obj.startswith("multi:"):
            y = np.digitize(signal + rng.normal(scale=0.3, size=n), np.quantile(signal, [0.33, 0.66])).astype(float)
            params = dict(params, num_class=3)
        elif obj in ("count:poisson", "reg:tweedie"):
            y = rng.poisson(np.exp(np.clip(signal, -3, 3) * 0.5)).astype(float)
        elif obj == "reg:gamma":
            y = np.exp(np.clip(signal, -3, 3) * 0.3) * rng.gamma(2.0, 0.5, size=n) + 0.01
        else:
            y = signal + rng.normal(scale=0.3, size=n)
        if name == "xgb_multi_target":
            y = np.stack([y, np.nan_to_num(X[:, 3]) - y], axis=1)
        feature_types = ["c"] * n_cat + ["q"] * (X.shape[1] - n_cat)
        p = dict(params, max_depth=depth, nthread=1, seed=int(rng.integers(1 << 30)), tree_method="hist")
        dtrain = xgb.DMatrix(X, y, feature_types=feature_types, enable_categorical=n_cat > 0)
        kwargs = {}
        if name == "xgb_best_iteration":
            Xv, sv = make_data(rng, n // 2, 12)
            dvalid = xgb.DMatrix(Xv, sv + rng.normal(scale=2.0, size=len(sv)))
            p["eta"] = 0.5
            kwargs = dict(evals=[(dvalid, "valid")], early_stopping_rounds=3, verbose_eval=False)
        booster = xgb.train(p, dtrain, num_boost_round=rounds, **kwargs)
        model_file = name + ".model.json"
        booster.save_model(os.path.join(out, model_file))
        T = scoring_inputs(rng, X, n_categorical=n_cat)
        dtest = xgb.DMatrix(T, feature_types=feature_types, enable_categorical=n_cat > 0)
        if name == "xgb_best_iteration":
            extra["best_iteration"] = int(booster.best_iteration)
            preds = booster.predict(dtest, iteration_range=(0, booster.best_iteration + 1))
        else:
            preds = booster.predict(dtest)
        write_case(out, name, "xgboost", model_file, T, preds, library_version=xgb.__version__, **extra)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--seed", type=int, default=20261127)
    parser.add_argument("--small", action="store_true")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    lightgbm_cases(args.out, rng, args.small)
    xgboost_cases(args.out, rng, args.small)
    cases = [f for f in os.listdir(args.out) if f.endswith(".case.json")]
    print(f"wrote {len(cases)} cases to {args.out} (seed {args.seed})")


if __name__ == "__main__":
    sys.exit(main())
