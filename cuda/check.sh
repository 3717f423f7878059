#!/usr/bin/env bash
# On a machine with an NVIDIA GPU (driver and NVRTC): builds fresco-cuda, runs the GPU
# parity tests (every oracle fixture, bit for bit against the native evaluator), then
# prints the rows/s table (cuda/examples/gpu_bench.rs) and, where the installed XGBoost
# has CUDA, XGBoost's own GPU rows/s on models of the same size.
set -euo pipefail
cd "$(dirname "$0")/.."
export FRESCO_EXPECT_GPU=1
cargo test --release -p fresco-cuda --test device --test forest -- --include-ignored
cargo run --release -p fresco-cuda --example gpu_bench
if python3 -c 'import xgboost' 2>/dev/null; then
    python3 cuda/xgboost_gpu.py
else
    echo "XGBoost is not installed here: its GPU rows/s are not measured"
fi
