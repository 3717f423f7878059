#!/usr/bin/env python3
"""Counts how often the branches of a LightGBM model change direction from one row to
the next, for a given order of the rows within blocks: a model of the branch
mispredictions of the compiled trees that needs no hardware counters.

A split is a branch in fresco's branch layout when its subtree is taller than 3 splits
(smaller subtrees are emitted without branches). For each branch, the rows of a block
that pass it are taken in order, and each change of direction between consecutive
passes counts once: what a predictor that repeats a branch's last outcome would miss.
On the benchmark's medium model this reads 172 a row for the order fresco builds, where
cachegrind's simulated predictor misses 179.

Usage:
    python3 branch_changes.py MODEL.txt X.f64 [--rows N] [--block B] [--order SPEC]

SPEC lists sort keys, most significant first, as FEATURE:BUCKETS separated by commas:
BUCKETS 0 sorts by the value, B > 0 by the value's quantile bucket within the block
(B buckets). `--order none` keeps the rows' own order. The default, 0:256,1:0, is close
to what fresco does on the benchmark's models (the first key's 257 threshold ranks,
then the second key).
"""
import argparse

import numpy as np

BRANCH_FREE_HEIGHT = 3


def height(node):
    if "split_feature" not in node:
        return 0
    return 1 + max(height(node["left_child"]), height(node["right_child"]))


def sort_key(column, buckets):
    filled = np.nan_to_num(column, nan=np.inf)
    if buckets == 0:
        return filled
    rank = np.argsort(np.argsort(filled, kind="stable"), kind="stable")
    return (rank * buckets) // len(column)


def order(X, block, spec):
    if spec == "none":
        return np.arange(len(X))
    keys = [tuple(int(v) for v in part.split(":")) for part in spec.split(",")]
    out = []
    for start in range(0, len(X), block):
        rows = np.arange(start, min(start + block, len(X)))
        columns = [sort_key(X[rows, f], b) for f, b in keys]
        out.append(rows[np.lexsort(columns[::-1])])
    return np.concatenate(out)


def goes_left(node, x):
    if node["decision_type"] == "==":
        # Categorical: the listed categories go left; NaN and the rest go right.
        categories = [float(c) for c in str(node["threshold"]).split("||")]
        return np.isin(x, categories)
    return np.where(np.isnan(x), node["default_left"], x <= node["threshold"])


def changes(trees, X, block, keys):
    """Direction changes a row: total, by feature, and by subtree height for features
    that are not keys."""
    total = 0
    by_feature = np.zeros(X.shape[1])
    by_height = {}
    for root in trees:
        stack = [(root, np.ones(len(X), bool))]
        while stack:
            node, passing = stack.pop()
            if "split_feature" not in node:
                continue
            f = node["split_feature"]
            x = X[:, f]
            left = goes_left(node, x)
            h = height(node)
            if h > BRANCH_FREE_HEIGHT:
                for start in range(0, len(X), block):
                    seen = left[start:start + block][passing[start:start + block]]
                    n = int(np.count_nonzero(seen[1:] != seen[:-1])) if len(seen) > 1 else 0
                    total += n
                    by_feature[f] += n
                    if f not in keys:
                        by_height[h] = by_height.get(h, 0) + n
            stack.append((node["left_child"], passing & left))
            stack.append((node["right_child"], passing & ~left))
    rows = len(X)
    return total / rows, by_feature / rows, {h: n / rows for h, n in sorted(by_height.items())}


def passes(trees, n_features):
    """Branches of each feature a row passes, as fresco weighs them to choose its keys
    (a split at depth d passed by 2^-d of the rows), most first."""
    weight = np.zeros(n_features)
    for root in trees:
        stack = [(root, 0)]
        while stack:
            node, depth = stack.pop()
            if "split_feature" in node and height(node) > BRANCH_FREE_HEIGHT:
                weight[node["split_feature"]] += 0.5**depth
                stack += [(node["left_child"], depth + 1), (node["right_child"], depth + 1)]
    return sorted(enumerate(weight), key=lambda fw: -fw[1])


def main():
    import lightgbm as lgb

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model")
    p.add_argument("data", help="little-endian f64 rows of the model's features")
    p.add_argument("--rows", type=int, default=32768)
    p.add_argument("--block", type=int, default=2048)
    p.add_argument("--order", default="0:256,1:0")
    p.add_argument("--keys", action="store_true", help="print the features a row passes most branches of")
    a = p.parse_args()
    dump = lgb.Booster(model_file=a.model).dump_model()
    n_features = dump["max_feature_idx"] + 1
    X = np.fromfile(a.data, dtype="<f8").reshape(-1, n_features)[: a.rows]
    trees = [t["tree_structure"] for t in dump["tree_info"]]
    if a.keys:
        print("branches passed a row, by feature:", ", ".join(f"{f}: {w:.1f}" for f, w in passes(trees, n_features)))
    X = X[order(X, a.block, a.order)]
    keys = set() if a.order == "none" else {int(part.split(":")[0]) for part in a.order.split(",")}
    total, by_feature, by_height = changes(trees, X, a.block, keys)
    print(f"order {a.order}, blocks of {a.block}: {total:.1f} direction changes a row")
    top = sorted(enumerate(by_feature), key=lambda fv: -fv[1])[:8]
    print("by feature:", ", ".join(f"{f}: {v:.1f}" for f, v in top))
    print("features not keys, by subtree height:", ", ".join(f"{h}: {v:.1f}" for h, v in by_height.items()))


if __name__ == "__main__":
    main()
