#!/usr/bin/env python3
"""XGBoost's own GPU scoring (device="cuda", inplace_predict) on models the size of
gpu_bench's (500 trees at depth 6, 2000 at depth 8; 30 features), for cuda/check.sh.
Prints rows/s at batch 10,000 and 1,000,000 with the rows in host memory (as fresco's
GpuForest takes them: the copy to the device counted) and, where CuPy is installed, with
the rows already on the device; or says why it cannot."""
import time

import numpy as np
import xgboost as xgb

rng = np.random.default_rng(7)
X = rng.random((50_000, 30))
y = X[:, 0] * 0.3 + np.sin(X[:, 1]) * 2 + rng.normal(scale=0.5, size=len(X))
try:
    import cupy
except ImportError:
    cupy = None


def best_of_three(booster, X):
    booster.inplace_predict(X)
    times = []
    for _ in range(3):
        t = time.perf_counter()
        booster.inplace_predict(X)
        if cupy is not None:
            cupy.cuda.runtime.deviceSynchronize()
        times.append(time.perf_counter() - t)
    return min(times)


try:
    for trees, depth in [(500, 6), (2000, 8)]:
        booster = xgb.train(dict(max_depth=depth, eta=0.05, tree_method="hist", device="cuda"),
                            xgb.DMatrix(X, y), num_boost_round=trees)
        leaves = sum(tree.count("leaf=") for tree in booster.get_dump()) / trees
        print(f"XGBoost {trees} trees, depth {depth}: {leaves:.1f} leaves a tree")
        for batch in [10_000, 1_000_000]:
            Xb = rng.random((batch, 30))
            host = batch / best_of_three(booster, Xb)
            device = f"{batch / best_of_three(booster, cupy.asarray(Xb)):.3e}" if cupy is not None else "-"
            print(f"| XGBoost {trees} trees, depth {depth} | {batch} | GPU rows/s, rows in host memory {host:.3e} "
                  f"| rows on the device {device} |")
except xgb.core.XGBoostError as e:
    print(f"XGBoost has no usable CUDA here: {e}")
