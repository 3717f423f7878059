#!/usr/bin/env python3
"""Trains the benchmark models (LightGBM regression: 100 trees x 31 leaves, 500 x 63,
2000 x 255), converts them for the peers (lleaves shared object, ONNX via onnxmltools,
treelite/tl2cgen shared object) and writes the scoring data.

Two kinds of data (`--data`):
- `random` (default): 30 features, i.i.d. normal (every fourth scaled by 20), the label
  a function of the first four plus noise, ~2 % NaN;
- `eta`: the ETA job's orders from the seeded delivery world (`cargo run -p
  fresco-examples --example eta_data`), its model's 7 inputs (weather categorical) and
  the delivery minutes as label: features that are few, correlated and coarse, as a
  service's are.

Usage: python3 make_models.py OUT_DIR [--data random|eta] [--skip-compiled SIZE,...]
Writes: <size>.model.txt, <size>.xgb.json (XGBoost, depth 5 / 6 / 8), <size>.onnx,
<size>.lleaves.so, <size>.tl2cgen.so, X.f64 (100,000 scoring rows, little-endian
float64, row-major; 30 columns for random, 7 for eta: give peer-bench `--features 7`),
lib_lightgbm path in lightgbm_lib.txt, libxgboost's in xgboost_lib.txt, the wheel's
libonnxruntime path in onnxruntime_lib.txt.
"""
import argparse
import os
import subprocess
import sys

import numpy as np

SIZES = [("small", 100, 31), ("medium", 500, 63), ("large", 2000, 255)]
N_FEATURES = 30


def data(rng, n):
    X = rng.normal(size=(n, N_FEATURES))
    X[:, ::4] *= 20
    y = X[:, 0] * 0.3 + np.sin(X[:, 1]) * 2 + X[:, 2] * X[:, 3] * 0.1 + rng.normal(scale=0.5, size=n)
    X[rng.random(X.shape) < 0.02] = np.nan
    return X, y


# The ETA model's inputs (wasm-models/eta/train.py), in its column order.
ETA_INPUTS = ["distance_km", "hour", "day_of_week", "traffic", "weather", "prep_time_min", "orders_last_30min"]
ETA_CATEGORICAL = [ETA_INPUTS.index("weather")]


def eta_data(out, rng):
    """Training and scoring rows from the ETA job's orders (56 days, seed 7: 242,426
    orders), shuffled: the first 60,000 train, the next 100,000 are scored."""
    import pandas as pd

    path = os.path.join(out, "eta_orders.csv")
    if not os.path.exists(path):
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        subprocess.run(["cargo", "run", "--quiet", "-p", "fresco-examples", "--example", "eta_data", "--",
                        "--seed", "7", "--days", "56", path], cwd=root, check=True)
    frame = pd.read_csv(path)
    order = rng.permutation(len(frame))
    X = frame[ETA_INPUTS].to_numpy(dtype="<f8")[order]
    y = frame["minutes"].to_numpy(dtype="<f8")[order]
    if len(X) < 160_000:
        sys.exit(f"{path}: {len(X)} orders, 160,000 needed")
    return (X[:60_000], y[:60_000]), X[60_000:160_000]


def main():
    import lightgbm as lgb

    p = argparse.ArgumentParser(description="Trains the peer benchmark's models and writes its data.")
    p.add_argument("out")
    p.add_argument("--data", choices=["random", "eta"], default="random")
    # lleaves and tl2cgen take tens of minutes on the 2000-tree model on two cores.
    p.add_argument("--skip-compiled", default="", help="sizes not to build lleaves and tl2cgen for")
    args = p.parse_args()
    out = args.out
    skip_compiled = [s for s in args.skip_compiled.split(",") if s]
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(7)
    if args.data == "eta":
        (X, y), Xs = eta_data(out, rng)
        categorical = ETA_CATEGORICAL
    else:
        X, y = data(rng, 60_000)
        Xs, _ = data(rng, 100_000)
        categorical = []
    n_features = X.shape[1]
    np.ascontiguousarray(Xs, dtype="<f8").tofile(os.path.join(out, "X.f64"))
    lib = os.path.join(os.path.dirname(lgb.__file__), "lib", "lib_lightgbm.so")
    with open(os.path.join(out, "lightgbm_lib.txt"), "w") as f:
        f.write(lib)
    import glob
    import onnxruntime
    import xgboost
    with open(os.path.join(out, "xgboost_lib.txt"), "w") as f:
        f.write(os.path.join(os.path.dirname(xgboost.__file__), "lib", "libxgboost.so"))
    ort_lib = sorted(glob.glob(os.path.join(os.path.dirname(onnxruntime.__file__), "capi", "libonnxruntime.so*")))
    if ort_lib:
        with open(os.path.join(out, "onnxruntime_lib.txt"), "w") as f:
            f.write(ort_lib[0])
    for name, trees, leaves in SIZES:
        path = os.path.join(out, f"{name}.model.txt")
        if not os.path.exists(path):
            params = dict(objective="regression", num_leaves=leaves, learning_rate=0.05, min_data_in_leaf=5,
                          verbose=-1, num_threads=2, max_bin=255)
            train = lgb.Dataset(X, y, categorical_feature=categorical or "auto")
            booster = lgb.train(params, train, num_boost_round=trees)
            booster.save_model(path)
        compile_peers(out, name, path, n_features, compiled_peers=name not in skip_compiled)
        xgb_path = os.path.join(out, f"{name}.xgb.json")
        if not os.path.exists(xgb_path):
            import xgboost as xgb
            depth = {31: 5, 63: 6, 255: 8}[leaves]
            booster = xgb.train(dict(max_depth=depth, eta=0.05, nthread=2, tree_method="hist"),
                                xgb.DMatrix(X, y), num_boost_round=trees)
            booster.save_model(xgb_path)
        print(f"{name}: {trees} trees x {leaves} leaves", flush=True)


def compile_peers(out, name, path, n_features, compiled_peers=True):
    import lightgbm as lgb

    so = os.path.join(out, f"{name}.lleaves.so")
    if compiled_peers and not os.path.exists(so):
        import lleaves
        obj = os.path.join(out, f"{name}.lleaves.o")
        lleaves.Model(model_file=path).compile(cache=obj)
        subprocess.run(["gcc", "-shared", "-o", so, obj], check=True)
    onnx_path = os.path.join(out, f"{name}.onnx")
    if not os.path.exists(onnx_path):
        import onnxmltools
        from onnxmltools.convert.common.data_types import FloatTensorType
        booster = lgb.Booster(model_file=path)
        onx = onnxmltools.convert_lightgbm(booster, initial_types=[("input", FloatTensorType([None, n_features]))],
                                            target_opset=15)
        with open(onnx_path, "wb") as f:
            f.write(onx.SerializeToString())
    tl = os.path.join(out, f"{name}.tl2cgen.so")
    if compiled_peers and not os.path.exists(tl):
        try:
            import tl2cgen
            import treelite
            model = treelite.frontend.load_lightgbm_model(path)
            tl2cgen.export_lib(model, toolchain="gcc", libpath=tl, params={"parallel_comp": 8}, nthread=2)
        except Exception as e:  # treelite is optional: report and go on
            print(f"tl2cgen unavailable for {name}: {e}", file=sys.stderr)


if __name__ == "__main__":
    main()
