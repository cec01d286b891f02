#!/usr/bin/env bash
# Everything minidet has to prove on a GPU, in one command, from the repository root or anywhere:
#
#     bash benchmarks/gpu_check.sh [EPOCHS]        (EPOCHS defaults to 50)
#
# 1. `minidet doctor` (versions, driver, device);
# 2. `pytest -m gpu`: the kernels, the layers, the loss's two paths and one-launch SGD on the
#    device against NumPy;
# 3. benchmarks/bench_gpu.py: every kernel, the loss and a Fast YOLO step at 448², batch 64,
#    measured beside gpu_model.py's predictions, written to benchmarks/results/<device>.json;
# 4. the reduced model's training (`minidet train --device cuda --epochs EPOCHS`), timed;
# then a summary. Logs go to benchmarks/results/gpu_check-<UTC time>/ ($GPU_CHECK_LOGS). Exit 0 only
# when every step succeeded. Python: $PYTHON, else .venv/bin/python, else python3.
set -uo pipefail
cd "$(dirname "$0")/.."
EPOCHS="${1:-50}"
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY=python3
export XDG_CACHE_HOME="${XDG_CACHE_HOME:-$PWD/.cache}"
STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
LOGS="${GPU_CHECK_LOGS:-benchmarks/results/gpu_check-$STAMP}"
mkdir -p "$LOGS"

"$PY" -m minidet doctor | tee "$LOGS/doctor.txt"
if ! "$PY" -c "import sys; from minidet.backend import gpu_available; sys.exit(0 if gpu_available() else 1)"; then
    echo "gpu_check: no usable GPU (see the 'GPU path' line above); nothing measured." >&2
    exit 1
fi

"$PY" -m pytest -m gpu -q -rs -p no:cacheprovider 2>&1 | tee "$LOGS/pytest-gpu.txt"
tests_rc=${PIPESTATUS[0]}

"$PY" benchmarks/bench_gpu.py 2>&1 | tee "$LOGS/bench_gpu.txt"
bench_rc=${PIPESTATUS[0]}

run_dir="runs/gpu_check-$STAMP"
start=$(date +%s)
"$PY" -m minidet train --device cuda --epochs "$EPOCHS" --out "$run_dir" 2>&1 | tee "$LOGS/train.txt"
train_rc=${PIPESTATUS[0]}
train_s=$(( $(date +%s) - start ))

echo
echo "== gpu_check summary ($STAMP, logs in $LOGS) =="
sed -n 's/^\(device\|GPU path\|cupy[^ ]*\|numba-cuda\|driver (libcuda)\) */  \1: /p' "$LOGS/doctor.txt"
echo "  pytest -m gpu (exit $tests_rc): $(grep -E '(passed|failed|error)' "$LOGS/pytest-gpu.txt" | tail -1)"
echo "  bench_gpu.py (exit $bench_rc): $(grep -E '^written to' "$LOGS/bench_gpu.txt" | tail -1)"
grep -E '^fast_yolo (forward|train step)' "$LOGS/bench_gpu.txt" | sed 's/^/    /'
echo "  minidet train --epochs $EPOCHS (exit $train_rc, ${train_s} s wall, command included):"
grep -E '^(test mAP|best val mAP)' "$LOGS/train.txt" | sed 's/^/    /'
[ "$tests_rc" -eq 0 ] && [ "$bench_rc" -eq 0 ] && [ "$train_rc" -eq 0 ]
