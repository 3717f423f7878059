#!/usr/bin/env bash
# `fresco serve` as the README shows it, then under load:
#   1. the README's curl call, exactly as printed, answers a prediction;
#   2. a scrape of /metrics passes `promtool check metrics`;
#   3. wrk, 64 connections for DURATION (default 60 s) with the ETA row: no non-2xx;
#      throughput and p50 / p99 printed beside in-process `predict` measured in the same
#      run (http/examples/in_process.rs, same model, row and log configuration);
#   4. SIGTERM in the middle of a load (.ci/serve_sigterm.py).
# Usage: .ci/serve_load.sh FRESCO_BIN IN_PROCESS_BIN SCRATCH [DURATION]
set -euo pipefail
fresco=$1 in_process=$2 scratch=$3 duration=${4:-60s}
mkdir -p "$scratch"
config=examples/serve/fresco.toml

stop() { kill -TERM "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }
pid=""
trap '[ -z "$pid" ] || stop "$pid"' EXIT

# 1. The README's commands, on the README's port.
FRESCO_LOG_ROOT="$scratch/readme-log" "$fresco" serve --config "$config" >"$scratch/readme.out" 2>&1 &
pid=$!
for _ in $(seq 100); do curl -sf http://127.0.0.1:8080/healthz >/dev/null 2>&1 && break; sleep 0.1; done
kill -0 $pid 2>/dev/null || { cat "$scratch/readme.out"; echo "fresco serve did not start"; exit 1; }
readme_curl=$(sed -n '/^curl -s -X POST http:\/\/127.0.0.1:8080/,/^  -d /p' README.md)
[ -n "$readme_curl" ] || { echo "the README's curl call was not found"; exit 1; }
answer=$(eval "$readme_curl")
echo "README curl: $answer"
echo "$answer" | python3 -c 'import json, sys; a = json.load(sys.stdin); assert a["model"] == "eta" and a["prediction_id"] and a["interval"]["coverage"] == 0.8, a'
head -1 "$scratch/readme.out" | grep -q "fresco serve: models eta on http://127.0.0.1:8080"

# 2. The exporter's output is valid Prometheus text.
curl -sf http://127.0.0.1:8080/metrics >"$scratch/metrics.txt"
promtool check metrics <"$scratch/metrics.txt" || { echo "promtool check metrics failed"; exit 1; }
grep -q '^fresco_predict_seconds_bucket{' "$scratch/metrics.txt"
stop $pid; pid=""

# 3. Load: wrk against the service, then the same calls in process.
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
FRESCO_LISTEN="127.0.0.1:$port" FRESCO_LOG_ROOT="$scratch/load-log" "$fresco" serve --config "$config" >"$scratch/load.out" 2>&1 &
pid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
wrk -t2 -c64 -d"$duration" --latency -s examples/serve/predict.lua "http://127.0.0.1:$port/v1/models/eta/predict" | tee "$scratch/wrk.txt"
stop $pid; pid=""
if grep -q "Non-2xx" "$scratch/wrk.txt"; then echo "non-2xx answers under load"; exit 1; fi
grep -q "Socket errors" "$scratch/wrk.txt" && { echo "socket errors under load"; exit 1; }
rps=$(awk '/^Requests\/sec:/ {print $2}' "$scratch/wrk.txt")
p50=$(awk '$1 == "50%" {print $2}' "$scratch/wrk.txt")
p99=$(awk '$1 == "99%" {print $2}' "$scratch/wrk.txt")
FRESCO_LOG_ROOT="$scratch/in-process-log" "$in_process" "$config" examples/serve/predict.json 100000 | tee "$scratch/in_process.txt"
echo "HTTP (wrk, 64 connections, $duration): $rps requests/s, p50 $p50, p99 $p99; zero non-2xx"

# 4. SIGTERM under load.
python3 .ci/serve_sigterm.py "$fresco" "$config" "$scratch"
