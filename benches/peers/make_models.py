#!/usr/bin/env python3
"""Trains the benchmark models (LightGBM regression on 30 features: 100 trees x 31
leaves, 500 x 63, 2000 x 255), converts them for the peers (lleaves shared object,
ONNX via onnxmltools, treelite/tl2cgen shared object) and writes the scoring data.

Usage: python3 make_models.py OUT_DIR [--skip-compiled SIZE,...]
Writes: <size>.model.txt, <size>.xgb.json (XGBoost, depth 5 / 6 / 8), <size>.onnx, <size>.lleaves.so, <size>.tl2cgen.so, X.f64 (100,000 x 30
little-endian float64, row-major, ~2% NaN), lib_lightgbm path in lightgbm_lib.txt, libxgboost's in
xgboost_lib.txt, the wheel's libonnxruntime path in onnxruntime_lib.txt.
"""
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


def main():
    import lightgbm as lgb

    out = sys.argv[1]
    # lleaves and tl2cgen take tens of minutes on the 2000-tree model on two cores.
    skip_compiled = sys.argv[3].split(",") if len(sys.argv) > 3 and sys.argv[2] == "--skip-compiled" else []
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(7)
    X, y = data(rng, 60_000)
    Xs, _ = data(rng, 100_000)
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
            booster = lgb.train(params, lgb.Dataset(X, y), num_boost_round=trees)
            booster.save_model(path)
        compile_peers(out, name, path, compiled_peers=name not in skip_compiled)
        xgb_path = os.path.join(out, f"{name}.xgb.json")
        if not os.path.exists(xgb_path):
            import xgboost as xgb
            depth = {31: 5, 63: 6, 255: 8}[leaves]
            booster = xgb.train(dict(max_depth=depth, eta=0.05, nthread=2, tree_method="hist"),
                                xgb.DMatrix(X, y), num_boost_round=trees)
            booster.save_model(xgb_path)
        print(f"{name}: {trees} trees x {leaves} leaves", flush=True)


def compile_peers(out, name, path, compiled_peers=True):
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
        onx = onnxmltools.convert_lightgbm(booster, initial_types=[("input", FloatTensorType([None, N_FEATURES]))],
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
