"""First contact with a GPU: versions, the device, one tiny kernel and one matrix product.

    python3 benchmarks/gpu_smoke.py

Prints what the machine has (Python, NumPy, CuPy, CUDA runtime and driver, the GPU), runs an
elementwise kernel and a float32 matrix product on the device and checks both against NumPy,
then asks minidense for 'cuda' the way a user would. Exit 0: the device steps of gpu.sh can run;
exit 3: no usable GPU, with the reason on the last line (gpu.sh then skips the device steps).
"""
import platform
import sys
import time

import numpy as np


def main():
    print(f"Python {platform.python_version()}, NumPy {np.__version__}")
    try:
        import cupy
    except ImportError as exc:
        print(f"no usable GPU: CuPy does not import ({exc})")
        return 3
    print(f"CuPy {cupy.__version__}")
    try:
        runtime = cupy.cuda.runtime
        count = runtime.getDeviceCount()
        properties = runtime.getDeviceProperties(0)
        name = properties["name"].decode() if isinstance(properties["name"], bytes) else properties["name"]
        print(f"CUDA runtime {runtime.runtimeGetVersion()}, driver {runtime.driverGetVersion()}, "
              f"{count} device(s); device 0: {name}, "
              f"{properties['totalGlobalMem'] / 2 ** 30:.1f} GiB, "
              f"{properties['multiProcessorCount']} multiprocessors, "
              f"compute capability {properties['major']}.{properties['minor']}")
        start = time.perf_counter()
        x = cupy.arange(1 << 20, dtype=cupy.float32)
        doubled = float((x * 2 + 1).sum())                      # an elementwise kernel + a reduction
        expected = float((np.arange(1 << 20, dtype=np.float64) * 2 + 1).sum())
        print(f"elementwise kernel: sum {doubled:.6g} (NumPy {expected:.6g}), "
              f"{time.perf_counter() - start:.2f} s including its compilation")
        rng = np.random.default_rng(0)
        a = rng.standard_normal((512, 256)).astype(np.float32)
        b = rng.standard_normal((256, 128)).astype(np.float32)
        product = cupy.asnumpy(cupy.asarray(a) @ cupy.asarray(b))
        error = float(np.abs(product - a @ b).max())
        print(f"matrix product (cuBLAS) 512x256 @ 256x128: largest difference from NumPy {error:.2e}")
        if not (abs(doubled - expected) <= 1e-3 * expected and error < 1e-3):
            print("no usable GPU: the device computed wrong numbers")
            return 3
    except Exception as exc:   # missing NVRTC/cuBLAS, no driver, no device
        print(f"no usable GPU: {type(exc).__name__}: {exc}")
        return 3
    import minidense as md
    if not md.cuda_available():
        print("no usable GPU: minidense.cuda_available() is False although CuPy works")
        return 3
    t = md.tensor([1.0, 2.0], device="cuda", requires_grad=True)
    (t * t).sum().backward()
    print(f"minidense on 'cuda': d(sum x^2)/dx at [1, 2] = {t.grad.numpy().tolist()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
