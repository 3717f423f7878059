#!/usr/bin/env python3
"""Reference values for fresco-drift's statistics, computed by scipy and Evidently.

Writes one JSON document of cases: samples, and what scipy.stats (ks_2samp, chisquare,
wasserstein_distance), scipy.spatial.distance.jensenshannon, numpy (quantiles, moments)
and Evidently 0.7's own drift tests (its default choice of test per column, its scores
and verdicts) make of them. `drift/tests/oracle.rs` requires fresco-drift to agree to
1e-6. Run it in an environment with evidently==0.7.x (which brings scipy and pandas):

    DO_NOT_TRACK=1 python3 drift/oracle/make_fixtures.py drift/tests/fixtures/oracle.json --seed 7
"""

import argparse
import json
import os

os.environ.setdefault("DO_NOT_TRACK", "1")

import numpy as np
import pandas as pd
import evidently
from evidently.legacy.calculations.stattests.registry import get_stattest
from evidently.legacy.core import ColumnType
from scipy import stats
from scipy.spatial import distance


def floats(a):
    return [float(x) for x in a]


def numeric(rng, n, shift=0.0, scale=1.0, decimals=None):
    x = rng.normal(10.0 + shift, 3.0 * scale, n)
    return np.round(x, decimals) if decimals is not None else x


def categorical(rng, n, k, skew=0.0):
    p = np.arange(1, k + 1, dtype=float) ** (-1.0 - skew)
    return rng.choice(np.arange(k), n, p=p / p.sum()).astype(float)


def ks_cases(rng):
    shapes = [(5, 7, 0.0, None), (50, 50, 0.3, None), (200, 137, 0.0, None), (1000, 800, 0.1, 1),
              (2500, 3000, 0.05, None), (400, 400, 0.0, 0), (64, 1000, 2.0, None), (6000, 700, 0.02, None)]
    out = []
    for n1, n2, shift, decimals in shapes:
        a, b = numeric(rng, n1, decimals=decimals), numeric(rng, n2, shift, decimals=decimals)
        r = stats.ks_2samp(a, b)
        out.append({"a": floats(a), "b": floats(b), "statistic": float(r.statistic), "p_value": float(r.pvalue)})
    return out


def wasserstein_cases(rng):
    out = []
    for n1, n2, weighted in [(10, 13, False), (500, 300, False), (40, 40, True), (2000, 50, True)]:
        u, v = numeric(rng, n1), numeric(rng, n2, 1.0, 2.0)
        uw = rng.uniform(0.0, 3.0, n1) if weighted else None
        vw = rng.uniform(0.0, 3.0, n2) if weighted else None
        d = stats.wasserstein_distance(u, v, uw, vw)
        out.append({"u": floats(u), "v": floats(v), "u_weights": None if uw is None else floats(uw),
                    "v_weights": None if vw is None else floats(vw), "distance": float(d)})
    return out


def chisquare_cases(rng):
    out = []
    for k, n in [(3, 100), (6, 1000), (12, 5000), (2, 40)]:
        expected = rng.dirichlet(np.ones(k)) * n
        observed = rng.multinomial(n, expected / expected.sum()).astype(float)
        expected = expected * observed.sum() / expected.sum()
        r = stats.chisquare(observed, expected)
        out.append({"observed": floats(observed), "expected": floats(expected),
                    "statistic": float(r.statistic), "p_value": float(r.pvalue)})
    return out


def jensenshannon_cases(rng):
    out = []
    for k in [2, 5, 30]:
        p, q = rng.uniform(0.0, 1.0, k), rng.uniform(0.0, 1.0, k)
        p[0] = 0.0
        out.append({"p": floats(p), "q": floats(q), "distance": float(distance.jensenshannon(p, q))})
    return out


def evidently_result(ref, cur, kind, method=None):
    column_type = ColumnType.Numerical if kind == "numeric" else ColumnType.Categorical
    r, c = pd.Series(ref), pd.Series(cur)
    test = get_stattest(r, c, column_type, method)
    result = test(r, c, column_type, None)
    return {"method": test.name, "score": float(result.drift_score), "drifted": bool(result.drifted),
            "threshold": float(result.actual_threshold)}


def evidently_cases(rng):
    cols = [
        ("numeric", numeric(rng, 500), numeric(rng, 400)),
        ("numeric", numeric(rng, 500), numeric(rng, 300, 1.5)),
        ("numeric", numeric(rng, 3000), numeric(rng, 900, 0.1)),
        ("numeric", numeric(rng, 3000), numeric(rng, 900, 0.0, 1000.0)),
        ("numeric", categorical(rng, 800, 4), categorical(rng, 500, 4, 1.0)),
        ("numeric", categorical(rng, 5000, 3), categorical(rng, 700, 3)),
        ("categorical", categorical(rng, 600, 6), categorical(rng, 600, 6, 0.5)),
        ("categorical", categorical(rng, 600, 2), categorical(rng, 300, 2, 1.0)),
        ("categorical", categorical(rng, 4000, 8), categorical(rng, 2000, 9, 0.2)),
        ("categorical", categorical(rng, 700, 1), categorical(rng, 100, 1)),
    ]
    out = []
    for kind, ref, cur in cols:
        ref = ref.copy()
        ref[rng.random(ref.size) < 0.02] = np.nan
        case = {"kind": kind, "reference": [None if np.isnan(x) else float(x) for x in ref], "current": floats(cur)}
        case["default"] = evidently_result(ref[~np.isnan(ref)], cur, kind)
        case["psi"] = evidently_result(ref[~np.isnan(ref)], cur, kind, "psi")
        case["jensenshannon"] = evidently_result(ref[~np.isnan(ref)], cur, kind, "jensenshannon")
        out.append(case)
    return out


def profile_cases(rng):
    out = []
    for n, kind, bins in [(1000, "numeric", 20), (2500, "numeric", 10), (300, "categorical", 0), (50, "numeric", 4)]:
        x = numeric(rng, n, decimals=1) if kind == "numeric" else categorical(rng, n, 5)
        x[rng.random(n) < 0.05] = np.nan
        present = np.sort(x[~np.isnan(x)])
        case = {"kind": kind, "bins": bins, "values": [None if np.isnan(v) else float(v) for v in x],
                "missing_rate": float(np.isnan(x).mean()), "min": float(present.min()), "max": float(present.max()),
                "mean": float(present.mean()), "std": float(present.std())}
        if kind == "numeric":
            edges = np.unique(np.quantile(present, np.arange(1, bins) / bins))
            case["bin_edges"] = floats(edges)
            case["counts"] = [int(c) for c in np.bincount(np.searchsorted(edges, present, side="right"),
                                                           minlength=edges.size + 1)]
        out.append(case)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    doc = {
        "generator": f"scipy {__import__('scipy').__version__}, numpy {np.__version__}, evidently {evidently.__version__}",
        "seed": args.seed,
        "ks": ks_cases(rng),
        "wasserstein": wasserstein_cases(rng),
        "chisquare": chisquare_cases(rng),
        "jensenshannon": jensenshannon_cases(rng),
        "evidently": evidently_cases(rng),
        "profile": profile_cases(rng),
    }
    with open(args.out, "w") as f:
        json.dump(doc, f)
    print(f"wrote {args.out}: {sum(len(v) for v in doc.values() if isinstance(v, list))} cases ({doc['generator']})")


if __name__ == "__main__":
    main()
