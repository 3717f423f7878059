#!/usr/bin/env bash
# On a machine with an NVIDIA GPU (driver and NVRTC): builds fresco-cuda, runs the GPU
# parity tests (every oracle fixture, bit for bit against the native evaluator), then
# prints the rows/s table (cuda/examples/gpu_bench.rs) and, where the installed XGBoost
# has CUDA, XGBoost's own GPU rows/s on models of the same size.
set -euo pipefail
cd "$(dirname "$0")/.."
export FRESCO_EXPECT_GPU=1
# cudarc opens NVRTC as libnvrtc.so or libnvrtc.so.12 (or older); CUDA 13's runtime
# packages (the pip wheels PyTorch uses, for one) ship only libnvrtc.so.13. Where the
# loader knows no libnvrtc.so, a link of that name to a newer one is put last on the path.
if ! ldconfig -p | grep -qE 'libnvrtc\.so(\.12)? '; then
    found=$(find /usr/local /opt /usr/lib -name 'libnvrtc.so.1[3-9]' 2>/dev/null | sort | head -1)
    if [ -n "$found" ]; then
        links=$(mktemp -d)
        ln -s "$found" "$links/libnvrtc.so"
        export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$links:$(dirname "$found")"
        echo "NVRTC: $found, linked as libnvrtc.so"
    fi
fi
cargo test --release -p fresco-cuda --test device --test forest -- --include-ignored
cargo run --release -p fresco-cuda --example gpu_bench
if python3 -c 'import xgboost' 2>/dev/null; then
    python3 cuda/xgboost_gpu.py
else
    echo "XGBoost is not installed here: its GPU rows/s are not measured"
fi
