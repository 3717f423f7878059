"""Synthetic inputs for the Spark jobs and the Python tests: rows to score, and an
order stream with late, out-of-order and clock-skewed events to backfill from."""
from __future__ import annotations

import numpy as np
import pyarrow as pa

T0 = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z, µs
MINUTE = 60_000_000


def score_rows(inputs: list[str], n: int, seed: int, missing: float = 0.02) -> pa.Table:
    """``n`` rows over ``inputs`` (normal, some wide, a few NaN) plus an ``id`` column."""
    rng = np.random.default_rng(seed)
    columns = {"id": pa.array(np.arange(n, dtype=np.int64))}
    for i, name in enumerate(inputs):
        values = rng.normal(0.0, 1.0 + 10.0 * (i % 3), n)
        values[rng.random(n) < missing] = np.nan
        columns[name] = pa.array(values, type=pa.float64())
    return pa.table(columns)


def write_csv(table: pa.Table, columns: list[str], path) -> None:
    """CSV the ``fresco score`` command reads: shortest round-trip floats, NaN as empty."""
    data = [table.column(c).to_numpy(zero_copy_only=False) for c in columns]
    with open(path, "w") as f:
        f.write(",".join(columns) + "\n")
        for row in zip(*data):
            f.write(",".join("" if np.isnan(v) else repr(float(v)) for v in row) + "\n")


def order_events(n: int, restaurants: int, seed: int) -> pa.Table:
    """Orders over a day: ``restaurant_id``, ``ts``, ``value`` (basket), ``arrival``.

    Most arrive within a minute; 3 % arrive 3–10 minutes late (beyond a 2-minute
    tolerance when newer events got in first) and 1 % are dated up to a minute after
    their arrival (a client clock ahead)."""
    rng = np.random.default_rng(seed)
    ts = T0 + np.sort(rng.integers(0, 24 * 60 * MINUTE, n))
    delay = rng.exponential(20_000_000, n).astype(np.int64)
    late = rng.random(n) < 0.03
    delay[late] += rng.integers(3 * MINUTE, 10 * MINUTE, late.sum())
    arrival = ts + delay
    ahead = rng.random(n) < 0.01
    ts = ts.copy()
    ts[ahead] = arrival[ahead] + rng.integers(1, MINUTE, ahead.sum())
    order = np.argsort(arrival, kind="stable")
    keys = np.array([f"r-{k}" for k in rng.integers(0, restaurants, n)])
    stamp = pa.timestamp("us", tz="UTC")
    return pa.table({
        "restaurant_id": pa.array(keys[order]),
        "ts": pa.array(ts[order], type=stamp),
        "value": pa.array(np.round(rng.gamma(2.0, 12.0, n), 2)[order]),
        "arrival": pa.array(arrival[order], type=stamp),
    })


def feature_rows(n: int, restaurants: int, seed: int) -> pa.Table:
    """Rows wanting features: ``restaurant_id`` (a few null, a few unknown) at ``ts``."""
    rng = np.random.default_rng(seed)
    keys = [f"r-{k}" for k in rng.integers(0, restaurants + 5, n)]
    for i in rng.choice(n, max(1, n // 100), replace=False):
        keys[i] = None
    ts = T0 + rng.integers(0, 25 * 60 * MINUTE, n)
    return pa.table({
        "request_id": pa.array(np.arange(n, dtype=np.int64)),
        "restaurant_id": pa.array(keys, type=pa.string()),
        "ts": pa.array(ts, type=pa.timestamp("us", tz="UTC")),
    })
