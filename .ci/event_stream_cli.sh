#!/usr/bin/env bash
# `fresco events` and `fresco backfill` against a real redis-server: events written by
# another client (redis-cli), the backfill read straight from the stream equals the one
# read from its Parquet archive, and trimming after archiving keeps them equal.
# Usage: .ci/event_stream_cli.sh FRESCO_BIN SCRATCH_DIR
set -euo pipefail
fresco=$1
work=$2
mkdir -p "$work"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --save "" --dir "$work" --daemonize yes --pidfile "$work/redis.pid" >/dev/null
trap 'redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true' EXIT
for _ in $(seq 1 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
url="redis://127.0.0.1:$port"
now=$(date +%s%6N)
# 3,000 orders over 40 restaurants in the last hour, up to a minute out of order, one in
# ten 10 minutes late.
python3 - "$now" <<'PY' | redis-cli -p "$port" >/dev/null
import random, sys
now = int(sys.argv[1]); rng = random.Random(7)
for i in range(3000):
    ts = now - (3000 - i) * 1_200_000 - rng.randrange(60_000_000) - (0 if i % 10 else 600_000_000)
    print(f"XADD fresco:events * stream orders key r-{rng.randrange(40)} ts {ts} value {rng.randrange(5, 60)}.5")
PY
python3 - "$now" "$work/table.parquet" <<'PY'
import sys, pyarrow as pa, pyarrow.parquet as pq
now = int(sys.argv[1])
pq.write_table(pa.table({"restaurant_id": [f"r-{k}" for k in range(40)] * 3,
                         "ts": pa.array([now + 60_000_000 * m for m in (1, 2, 3) for _ in range(40)], pa.timestamp("us", "UTC"))}),
               sys.argv[2])
PY
"$fresco" events status --redis "$url"
"$fresco" backfill --definitions examples/aggregates/orders.toml --redis "$url" --table "$work/table.parquet" --out "$work/from_stream.parquet"
"$fresco" events archive --redis "$url" --definitions examples/aggregates/orders.toml --to "$work/archive" --trim --retention 2d
"$fresco" backfill --definitions examples/aggregates/orders.toml --archive "$work/archive" --table "$work/table.parquet" --out "$work/from_archive.parquet"
"$fresco" backfill --definitions examples/aggregates/orders.toml --archive "$work/archive" --redis "$url" --table "$work/table.parquet" --out "$work/both.parquet"
python3 - "$work" <<'PY'
import sys, pyarrow.parquet as pq, polars as pl, duckdb
work = sys.argv[1]
a, b, c = (pq.read_table(f"{work}/{n}.parquet") for n in ("from_stream", "from_archive", "both"))
assert a.equals(b) and a.equals(c), "the backfills from the stream and from its archive differ"
assert a.column("orders_30m").to_pylist() != [0.0] * a.num_rows
# The archive is a hive-style folder per stream that polars and DuckDB read as is.
n = pl.scan_parquet(f"{work}/archive/stream=orders/*.parquet").select(pl.len()).collect().item()
m = duckdb.sql(f"select count(*) from read_parquet('{work}/archive/stream=orders/*.parquet')").fetchall()[0][0]
assert n == m == 3000, (n, m)
print(f"backfill from the stream = from its archive ({a.num_rows} rows); archive: {n} events (polars, DuckDB)")
# The Python backfill reads a stream's archive folder as its event log.
import fresco
defs = fresco.Definitions.from_toml(open("examples/aggregates/orders.toml").read())
table = pq.read_table(f"{work}/table.parquet")
py, report = fresco.backfill(defs, {"orders": pq.read_table(f"{work}/archive/stream=orders")}, table)
assert py.equals(a), "the Python backfill of the archive differs from fresco backfill"
print(f"Python backfill of the archive = fresco backfill: {report}")
PY
