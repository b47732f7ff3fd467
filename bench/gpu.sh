#!/usr/bin/env bash
# The GPU figures in one command (issue 16), one JSON file; under 8 minutes on a CUDA machine, set-up included.
#
#   bench/gpu.sh                    # make setup, then bench/gpu.py: runs/gpu_bench-<time>.json
#   bench/gpu.sh --out gpu.json     # arguments go to bench/gpu.py (--smoke: every part on the CPU, tiny preset)
#   bench/gpu.sh --no-setup ...     # skip `make setup` (a .venv that is already set up)
#
# Without CUDA it still writes the JSON and names the parts it skipped. The time left after the set-up is the
# parts' budget: a part that would start after it is listed as skipped, so the whole stays under 8 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
TOTAL_S=470
start=$(date +%s)
setup=1
args=()
for arg in "$@"; do
    if [ "$arg" = "--no-setup" ]; then setup=0; else args+=("$arg"); fi
done
if [ "$setup" = 1 ]; then
    make setup >&2
fi
budget=$(( TOTAL_S - ($(date +%s) - start) ))
exec .venv/bin/python bench/gpu.py --budget-s "$budget" ${args[@]+"${args[@]}"}
