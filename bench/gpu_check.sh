#!/usr/bin/env bash
# The engine on a GPU, with nothing but torch installed: prefill at 512 and 2,048 tokens, decode eager and
# from CUDA graphs at batch 1, 16 and 64, for llama-3.1-8b-shaped random weights (within 4 minutes).
# Raw JSON goes to $OUT (or ./gpu-results)/gpu_check.json; compare it with the cost model here:
#   .venv/bin/python bench/gpu_compare.py gpu-results/gpu_check.json
# Usage: bench/gpu_check.sh [--cpu-smoke] [--budget-s S]   (PYTHON=... picks the interpreter)
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${PYTHON:-python3}" bench/gpu_check.py "$@"
