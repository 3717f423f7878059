#!/usr/bin/env python3
"""Single-entity fetch latency against one local Feast feature server: fresco's
FeastStore (the `feast_latency` example of fresco-examples) beside Feast's own Python SDK
(`FeatureStore.get_online_features` with the `remote` online store, which calls the
same server over HTTP), on the same data, in the same run.

It writes a feature repository (2,000 restaurants, Parquet source, SQLite online
store), runs `feast apply`, `feast materialize` and `feast serve` on loopback, then
times CALLS fetches of two features for one entity each way, and prints p50 / p99 and
the ratios. Needs: pip install feast==0.67.0; cargo on PATH.

Usage: python3 feast/bench/compare.py [--calls 2000] [--out results.json]
"""
import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
RESTAURANTS = 2000


def feast():
    return os.environ.get("FRESCO_FEAST") or shutil.which("feast") or sys.exit("the feast command is needed")


def write_repo(repo):
    import numpy as np
    import pandas as pd
    os.makedirs(os.path.join(repo, "data"))
    with open(os.path.join(repo, "feature_store.yaml"), "w") as f:
        f.write("project: fresco_bench\nregistry: data/registry.db\nprovider: local\n"
                "online_store:\n  type: sqlite\n  path: data/online.db\nentity_key_serialization_version: 3\n")
    with open(os.path.join(repo, "repo.py"), "w") as f:
        f.write('''from datetime import timedelta
from feast import Entity, FeatureView, Field, FileSource
from feast.types import Float64, Int64
from feast.value_type import ValueType
restaurant = Entity(name="restaurant", join_keys=["restaurant_id"], value_type=ValueType.STRING)
restaurants = FeatureView(name="restaurants", entities=[restaurant], ttl=timedelta(days=7), online=True,
    schema=[Field(name="prep_time_min", dtype=Float64), Field(name="rating", dtype=Int64)],
    source=FileSource(path="data/restaurants.parquet", timestamp_field="event_timestamp"))
''')
    rng = np.random.default_rng(7)
    now = pd.Timestamp.now(tz="UTC").floor("s")
    pd.DataFrame({
        "restaurant_id": ["r-%d" % i for i in range(RESTAURANTS)],
        "prep_time_min": rng.uniform(5, 25, RESTAURANTS),
        "rating": rng.integers(1, 6, RESTAURANTS),
        "event_timestamp": [now - pd.Timedelta(hours=1)] * RESTAURANTS,
    }).to_parquet(os.path.join(repo, "data", "restaurants.parquet"))
    return now


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values, q):
    values = sorted(values)
    return values[round((len(values) - 1) * q)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--out")
    args = ap.parse_args()
    import pandas as pd
    repo = tempfile.mkdtemp(prefix="fresco-feast-bench-")
    server = None
    try:
        now = write_repo(repo)
        subprocess.run([feast(), "apply"], cwd=repo, check=True, capture_output=True)
        start = (now - pd.Timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%S")
        end = (now + pd.Timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S")
        subprocess.run([feast(), "materialize", start, end], cwd=repo, check=True, capture_output=True)
        port = free_port()
        server = subprocess.Popen([feast(), "serve", "-h", "127.0.0.1", "-p", str(port)], cwd=repo,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        url = "http://127.0.0.1:%d" % port
        deadline = time.time() + 120
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.time() > deadline or server.poll() is not None:
                    sys.exit("feast serve did not start")
                time.sleep(0.2)
        keys = ["r-%d" % i for i in range(0, RESTAURANTS, 7)]

        # The main job's package and build: nothing extra is compiled.
        out = subprocess.run(["cargo", "run", "--quiet", "-p", "fresco-examples", "--example",
                              "feast_latency", "--", url, str(args.calls), *keys],
                             cwd=ROOT, check=True, capture_output=True, text=True).stdout
        ours = json.loads(out.strip().splitlines()[-1])

        # Feast's SDK against the same server: the remote online store.
        client_repo = os.path.join(repo, "client")
        os.makedirs(client_repo)
        with open(os.path.join(client_repo, "feature_store.yaml"), "w") as f:
            f.write("project: fresco_bench\nregistry: %s\nprovider: local\nonline_store:\n  type: remote\n"
                    "  path: %s\nentity_key_serialization_version: 3\n" % (os.path.join(repo, "data", "registry.db"), url))
        from feast import FeatureStore
        store = FeatureStore(repo_path=client_repo)
        features = ["restaurants:prep_time_min", "restaurants:rating"]
        for key in keys[:20]:
            store.get_online_features(features=features, entity_rows=[{"restaurant_id": key}]).to_dict()
        times = []
        for i in range(args.calls):
            key = keys[i % len(keys)]
            t = time.perf_counter()
            answer = store.get_online_features(features=features, entity_rows=[{"restaurant_id": key}]).to_dict()
            times.append((time.perf_counter() - t) * 1e6)
            assert answer["rating"][0] is not None
        theirs = {"calls": args.calls, "p50_us": percentile(times, 0.5), "p99_us": percentile(times, 0.99)}

        import feast as feast_module
        result = {"feast": feast_module.__version__, "fresco": ours, "feast_python_sdk": theirs,
                  "p50_ratio_feast_over_fresco": theirs["p50_us"] / ours["p50_us"],
                  "p99_ratio_feast_over_fresco": theirs["p99_us"] / ours["p99_us"]}
        print("single-entity fetch, 2 features, %d calls, local feast %s server" % (args.calls, feast_module.__version__))
        print("  %-28s p50 %8.1f us   p99 %8.1f us" % ("fresco FeastStore", ours["p50_us"], ours["p99_us"]))
        print("  %-28s p50 %8.1f us   p99 %8.1f us" % ("Feast Python SDK (remote)", theirs["p50_us"], theirs["p99_us"]))
        print("  Feast SDK / fresco: p50 %.2fx, p99 %.2fx" % (result["p50_ratio_feast_over_fresco"],
                                                           result["p99_ratio_feast_over_fresco"]))
        if args.out:
            with open(args.out, "w") as f:
                json.dump(result, f, indent=2)
                f.write("\n")
    finally:
        if server is not None:
            os.killpg(server.pid, signal.SIGKILL)
        shutil.rmtree(repo, ignore_errors=True)


if __name__ == "__main__":
    main()
