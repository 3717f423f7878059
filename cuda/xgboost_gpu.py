#!/usr/bin/env python3
"""XGBoost's own GPU scoring (device="cuda", inplace_predict) on models the size of
gpu_bench's (500 trees at depth 6, 2000 at depth 8; 30 features), for cuda/check.sh.
Prints rows/s at batch 10,000 and 1,000,000, or says why it cannot."""
import time

import numpy as np
import xgboost as xgb

rng = np.random.default_rng(7)
X = rng.random((50_000, 30))
y = X[:, 0] * 0.3 + np.sin(X[:, 1]) * 2 + rng.normal(scale=0.5, size=len(X))
try:
    for trees, depth in [(500, 6), (2000, 8)]:
        booster = xgb.train(dict(max_depth=depth, eta=0.05, tree_method="hist", device="cuda"),
                            xgb.DMatrix(X, y), num_boost_round=trees)
        for batch in [10_000, 1_000_000]:
            Xb = rng.random((batch, 30))
            booster.inplace_predict(Xb)
            times = []
            for _ in range(3):
                t = time.perf_counter()
                booster.inplace_predict(Xb)
                times.append(time.perf_counter() - t)
            print(f"| XGBoost {trees} trees, depth {depth} | {batch} | GPU rows/s {batch / min(times):.3e} |")
except xgb.core.XGBoostError as e:
    print(f"XGBoost has no usable CUDA here: {e}")
