#!/usr/bin/env bash
# Everything BENCHMARKS.md needs from a machine with an NVIDIA GPU, in one command:
#
#     bash benchmarks/gpu.sh                 # from the repository root; needs CuPy (and PyTorch
#                                            # with CUDA for the baseline, if installed)
#
# 1. the test suite's device tests on the real GPU (float64 gradient checks of every op on CuPy
#    arrays, NumPy/CuPy parity of whole DenseNets, the training command with --device cuda);
# 2. training-step throughput and GPU memory of DenseNet-40 and DenseNet-BC-100 (k=12, batch 64,
#    32x32, float32), minidense against PyTorch CUDA, interleaved, with a per-op-family profile.
# Results go to benchmarks/results/*_cuda.json; copy the printed tables into BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
python -c "import minidense as md, sys; sys.exit(0 if md.cuda_available() else \
'no usable CUDA GPU: install CuPy for your CUDA, e.g. pip install cupy-cuda12x')"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
python -c "import cupy; print('CuPy', cupy.__version__)"

python -m pytest -q -k "cuda"

out=benchmarks/results
python -m minidense bench --device cuda --model densenet40 --batch-size 64 \
    --steps 20 --warmup 3 --repeats 3 --profile --json "$out/bench_densenet40_cuda.json"
python -m minidense bench --device cuda --model densenet_bc_100 --batch-size 64 \
    --steps 20 --warmup 3 --repeats 3 --profile --json "$out/bench_bc100_cuda.json"
python -m minidense bench --device cuda --model densenet_bc_100 --batch-size 64 --memory-efficient \
    --steps 20 --warmup 3 --repeats 3 --json "$out/bench_bc100_efficient_cuda.json"
