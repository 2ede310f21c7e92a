#!/usr/bin/env bash
# Everything BENCHMARKS.md needs from a machine with an NVIDIA GPU, in one command that gives
# its numbers even when a step fails or runs out of time:
#
#     bash benchmarks/gpu.sh              # from anywhere; needs CuPy (PyTorch with CUDA for the
#                                         # baseline, if installed)
#     bash benchmarks/gpu.sh --dry-run    # no GPU needed: every step on the CPU at toy sizes,
#                                         # to see that the script itself runs end to end
#
# Steps, each under its own time limit, in the order that matters most when time is short:
#   1. smoke: versions, the device, one tiny kernel and one matrix product (gpu_smoke.py);
#   2. DenseNet-40 training steps (k=12, batch 64, 32x32, float32) against PyTorch CUDA,
#      interleaved, with a per-op-family profile;
#   3. DenseNet-BC-100, the same; 4. DenseNet-BC-100 with memory-efficient blocks;
#   5. the test suite's device tests on the GPU (float64 gradient checks of every op on CuPy
#      arrays, NumPy/CuPy parity of whole DenseNets, training with --device cuda); in a dry run,
#      the CPU emulation's own tests.
# A failing step is recorded and the next one runs. Without a usable GPU (and without
# --dry-run) steps 2-5 are skipped with the reason.
#
# Results: every JSON file, the test report and the whole log go to $OUT when it is set, else to
# benchmarks/results/gpu-DATE/. The last lines printed are a table of the steps; copy the printed
# tables into BENCHMARKS.md.
set -uo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
DRY_RUN=0
[[ "${1:-}" == "--dry-run" ]] && DRY_RUN=1
RESULTS=${OUT:-benchmarks/results/gpu-$(date +%Y-%m-%d)}
mkdir -p "$RESULTS"
exec > >(tee -a "$RESULTS/gpu.log") 2>&1
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1

declare -a REPORT=()
run_step() {   # run_step NAME SECONDS COMMAND...: run under a time limit, record how it ended
    local name=$1 limit=$2 start rc verdict
    shift 2
    echo
    echo "=== $name (limit ${limit} s): $*"
    start=$(date +%s)
    timeout --kill-after=10 "$limit" "$@"
    rc=$?
    case $rc in
        0) verdict="ok" ;;
        124|137) verdict="TIMED OUT after ${limit} s" ;;
        *) verdict="FAILED (exit $rc)" ;;
    esac
    REPORT+=("$(printf '%-28s %-26s %4d s' "$name" "$verdict" $(( $(date +%s) - start )))")
}
skip_step() {
    REPORT+=("$(printf '%-28s skipped: %s' "$1" "$2")")
    echo "=== $1: skipped: $2"
}

echo "gpu.sh on $(hostname) at $(date -u '+%Y-%m-%d %H:%M UTC'); results in $RESULTS"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total \
    --format=csv,noheader
run_step "smoke" 60 "$PY" benchmarks/gpu_smoke.py
if [[ "${REPORT[-1]}" == *" ok "* ]]; then gpu_ok=1; else gpu_ok=0; fi

if (( DRY_RUN )); then
    device=cpu; sizes=(--batch-size 2 --steps 1 --warmup 0 --repeats 1 --no-torch)
    echo "dry run: every benchmark on the CPU at batch 2, one step, no PyTorch"
else
    device=cuda; sizes=(--batch-size 64 --steps 10 --warmup 3 --repeats 2)
fi
bench() {   # bench NAME SECONDS JSON ARGS...
    local name=$1 limit=$2 json=$3
    shift 3
    if (( gpu_ok || DRY_RUN )); then
        run_step "$name" "$limit" "$PY" -m minidense bench --device "$device" "${sizes[@]}" \
            --json "$RESULTS/$json" "$@"
    else
        skip_step "$name" "no usable GPU (see the smoke step)"
    fi
}
bench "bench densenet40" 140 bench_densenet40_cuda.json --model densenet40 --profile
bench "bench densenet_bc_100" 130 bench_bc100_cuda.json --model densenet_bc_100
bench "bench bc100 memory-efficient" 90 bench_bc100_efficient_cuda.json \
    --model densenet_bc_100 --memory-efficient

if (( gpu_ok )); then
    run_step "device tests" 150 "$PY" -m pytest -k cuda -p no:cacheprovider \
        --continue-on-collection-errors --junitxml "$RESULTS/device_tests.xml" tests
elif (( DRY_RUN )); then   # the whole suite runs these on the emulation anyway: check the plumbing
    run_step "device tests (emulation)" 150 "$PY" -m pytest -p no:cacheprovider \
        --junitxml "$RESULTS/device_tests.xml" tests/test_cupy_emulation.py
else
    skip_step "device tests" "no usable GPU (see the smoke step)"
fi

echo
echo "=== summary ($(date -u '+%H:%M UTC'))"
printf '%s\n' "${REPORT[@]}" | tee "$RESULTS/summary.txt"
