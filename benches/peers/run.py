#!/usr/bin/env python3
"""Side-by-side: fresco (WebAssembly and native, through the compiled `peer-bench`
harness) against LightGBM, lleaves, onnxruntime, treelite/tl2cgen and XGBoost on the same
models and data, one thread each. Prints a Markdown table for benches/README.md.

Usage (from the repository root):
  python3 benches/peers/make_models.py /tmp/peers
  cargo build --release -p fresco-benches --bin peer-bench
  python3 benches/peers/run.py /tmp/peers [--sizes small,medium,large]
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

N_FEATURES = 30
BATCH = 100_000


def best_of(fn, repeats=3):
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def python_peers(out, size, X):
    """rows/s at batch 100,000 for the Python-facing peers."""
    import lightgbm as lgb
    import lleaves
    import onnxruntime as ort
    import xgboost as xgb

    results = {}
    model = os.path.join(out, f"{size}.model.txt")
    booster = lgb.Booster(model_file=model, params={"num_threads": 1})
    ref = booster.predict(X[:2000], num_threads=1)
    results["lightgbm Booster.predict"] = BATCH / best_of(lambda: booster.predict(X, num_threads=1))

    if os.path.exists(os.path.join(out, f"{size}.lleaves.so")):
        ll = lleaves.Model(model_file=model)
        ll.compile(cache=os.path.join(out, f"{size}.lleaves.o"))
        assert np.allclose(ll.predict(X[:2000], n_jobs=1), ref, rtol=1e-9, atol=1e-12)
        results["lleaves (Python call)"] = BATCH / best_of(lambda: ll.predict(X, n_jobs=1))

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(os.path.join(out, f"{size}.onnx"), opts, providers=["CPUExecutionProvider"])
    X32 = X.astype(np.float32)
    name = sess.get_inputs()[0].name
    got = sess.run(None, {name: X32[:2000]})[0].ravel()
    results["onnxruntime (onnxmltools, float32)"] = BATCH / best_of(lambda: sess.run(None, {name: X32}))
    results["_onnx_max_abs_err"] = float(np.max(np.abs(got - ref)))

    tl = os.path.join(out, f"{size}.tl2cgen.so")
    if os.path.exists(tl):
        import tl2cgen
        predictor = tl2cgen.Predictor(tl, nthread=1)
        dm = tl2cgen.DMatrix(X)
        results["tl2cgen (treelite)"] = BATCH / best_of(lambda: predictor.predict(dm))

    xb = xgb.Booster(model_file=os.path.join(out, f"{size}.xgb.json"))
    xb.set_param({"nthread": 1})
    results["xgboost inplace_predict (XGBoost model)"] = BATCH / best_of(lambda: xb.inplace_predict(X))
    return results


def peer_bench(binary, out, size, fmt, features):
    lines = subprocess.run([binary, out, size, fmt, "--features", str(features)], check=True, capture_output=True,
                           text=True).stdout
    return [json.loads(l) for l in lines.splitlines() if l.strip()]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("models")
    parser.add_argument("--sizes", default="small,medium,large")
    parser.add_argument("--bin", default="target/release/peer-bench")
    parser.add_argument("--features", type=int, default=N_FEATURES, help="columns of X.f64")
    args = parser.parse_args()
    X = np.fromfile(os.path.join(args.models, "X.f64"), dtype="<f8").reshape(-1, args.features)[:BATCH]
    print("| model | contender | rows/s at batch 100,000 | batch-1 p50 | batch-1 p99 |")
    print("|---|---|---|---|---|")
    for size in args.sizes.split(","):
        label = {"small": "100 × 31", "medium": "500 × 63", "large": "2000 × 255"}[size]
        rows = []
        build = {}
        for fmt in ("lightgbm", "xgboost"):
            for r in peer_bench(args.bin, args.models, size, fmt, args.features):
                if r["measure"] == "speed":
                    name = r["contender"] + (" (XGBoost model)" if fmt == "xgboost" else "")
                    rows.append((name, r["batch_rows_per_s"], f"{r['p50_ns'] / 1000:.2f} µs", f"{r['p99_ns'] / 1000:.2f} µs"))
                elif r["measure"] == "build":
                    build[fmt] = r
                elif r["measure"] == "agreement" and r["max_rel_err"] > (1e-4 if "onnx" in r["contender"] or "xgboost" in r["contender"] else 1e-9):
                    print(f"warning: {r['contender']} disagrees with fresco: {r['max_rel_err']}", file=sys.stderr)
        py = python_peers(args.models, size, X)
        for name, value in py.items():
            if not name.startswith("_"):
                rows.append((name, value, "–", "–"))
        for name, rps, p50, p99 in rows:
            print(f"| {label} | {name} | {rps:,.0f} | {p50} | {p99} |")
        b = build["lightgbm"]
        print(f"| {label} | fresco build: compile {b['compile_s']:.2f} s, load {b['load_s']:.2f} s, "
              f"{b['wasm_bytes']:,} bytes; onnx max abs err {py['_onnx_max_abs_err']:.1e} | | | |", flush=True)


if __name__ == "__main__":
    main()
