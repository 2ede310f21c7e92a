"""Benchmark: time training steps (forward, backward, SGD-Nesterov) and measure peak memory.

    python -m minidense bench --model densenet40 --batch-size 64 --device cpu
    python -m minidense bench --model densenet_bc_100 --memory-efficient --profile

Each measurement runs in a fresh process, so its peak memory is its own. When PyTorch is installed
the same architecture is timed in PyTorch too, alternating minidense and PyTorch runs (interleaved,
so a slow moment of the machine hits both), and the ratio is printed. The PyTorch baseline is
always its plain DenseNet, also with ``--memory-efficient``, which changes only minidense's run
(PyTorch's own memory-efficient DenseNet recomputes with checkpointing, another technique).
``--profile`` splits one minidense step by op family (conv, batch norm, concat, pooling,
optimizer, other). ``--threads N`` runs minidense with N threads (``set_num_threads``; 1 = every
op as written, on one core), for an A/B of the parallel paths against the same PyTorch runs;
``--kernels reference`` runs minidense on its textbook kernels (``MINIDENSE_KERNELS=reference``),
to see what the fast kernels buy;
``MINIDENSE_KEEP_FREED_MEMORY=0`` in front of the command does the same for minidense's reuse of
freed memory (``cpu_memory.py``; PyTorch's worker always runs with malloc as it is).

Numbers reported: median images/s over the timed steps, and the memory training added on top of
the model and the batch: on the CPU the process's peak resident memory (``ru_maxrss``) minus its
resident memory just before the first step; on CUDA the GPU memory held by CuPy's pool (PyTorch:
reserved by its caching allocator) at its peak, minus what was held before the first step.
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections import defaultdict


def _rss_mb():
    """Current resident set size of this process in MB (Linux /proc; falls back to peak)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ----------------------------------------------------------------------------------------------
# minidense
# ----------------------------------------------------------------------------------------------
def _synchronize(device):
    """Wait for the GPU: CuPy launches kernels and returns at once, so a clock read without this
    would time the launches, not the work."""
    if device == "cuda":
        import cupy
        cupy.cuda.Device().synchronize()


def _minidense_step_fn(model_name, batch_size, device, memory_efficient, seed=0, image_size=32,
                       synchronize=True):
    """(step, model, optimizer): one training step of the benchmark (forward, cross-entropy,
    backward, SGD-Nesterov), waiting for the GPU at its end when ``synchronize``."""
    import numpy as np

    import minidense as md
    from minidense import optim
    from minidense.models import get_model
    import minidense.nn.functional as F

    md.manual_seed(seed)
    kwargs = {"memory_efficient": True} if memory_efficient else {}
    model = get_model(model_name, **kwargs).to(device)
    model.train()
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4)
    rng = np.random.default_rng(seed)
    x = md.tensor(rng.standard_normal((batch_size, 3, image_size, image_size)).astype(np.float32),
                  device=device)
    y = md.tensor(rng.integers(0, 10, batch_size), device=device)

    def step():
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        if synchronize:
            _synchronize(device)
        return loss
    return step, model, opt


def _cupy_pool_mb():
    """Bytes CuPy's memory pool holds. The pool keeps freed blocks for reuse instead of giving
    them back, so after a run its size is the run's high-water mark of GPU memory."""
    import cupy
    return cupy.get_default_memory_pool().total_bytes() / 2 ** 20


def run_minidense(model_name, batch_size, device, steps, warmup, memory_efficient):
    step, model, _ = _minidense_step_fn(model_name, batch_size, device, memory_efficient)
    baseline = _cupy_pool_mb() if device == "cuda" else _rss_mb()
    times = []
    for i in range(warmup + steps):
        start = time.perf_counter()
        step()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    peak_added = (_cupy_pool_mb() if device == "cuda" else _peak_rss_mb()) - baseline
    return {"framework": "minidense", "step_seconds": times,
            "images_per_s": batch_size / statistics.median(times),
            "peak_added_mb": peak_added, "peak_rss_mb": _peak_rss_mb(), **_thread_facts()}


def _thread_facts():
    """How many threads minidense split its CPU ops over, whether it could hold OpenBLAS to
    one thread meanwhile (threadpoolctl installed), and whether freed memory is kept for reuse."""
    from minidense import cpu_memory
    import minidense
    from minidense.kernels import threads
    return {"kernels": minidense.active_kernels(), "threads": threads.get_num_threads(),
            "blas_managed": threads.blas_is_managed(),
            "keeps_freed_memory": cpu_memory.keeps_freed_memory()}


def describe_cpu_settings(facts):
    """One line: how minidense ran on the CPU in a benchmark run (threads, OpenBLAS, memory)."""
    threads = facts.get("threads")
    kept = "kept for reuse" if facts.get("keeps_freed_memory") else "handed back (malloc as is)"
    if facts.get("kernels") == "reference":
        return f"reference (textbook) kernels, no splitting, OpenBLAS as configured; freed memory {kept}"
    if threads == 1:
        blas = "no splitting, OpenBLAS with its own threads"
    elif facts.get("blas_managed"):
        blas = "split ops, OpenBLAS held to one thread inside them"
    else:
        blas = "OpenBLAS as configured"
    return f"fast kernels, {threads} thread(s), {blas}; freed memory {kept}"


OP_FAMILIES = {"conv": "conv", "normalization": "batch norm", "pooling": "pooling",
               "memory_efficient": "dense block (shared buffer)"}


def _family(function_class):
    module = function_class.__module__.rsplit(".", 1)[-1]
    if function_class.__name__ in ("Cat", "Split"):
        return "concat"
    if function_class.__name__ == "ReLU":
        return "relu"
    return OP_FAMILIES.get(module, "other")


def profile_minidense(model_name, batch_size, device, steps, memory_efficient):
    """Seconds per step spent in each op family's forward and backward, and in the optimizer."""
    import minidense as md

    step, model, opt = _minidense_step_fn(model_name, batch_size, device, memory_efficient)
    md.kernels.known_kernels()             # the fast kernels' Functions exist before we patch them
    totals = defaultdict(float)
    depth = [0]   # ops running now: only the outermost is timed (BatchNormReLU calls BatchNorm's)

    def all_subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from all_subclasses(sub)

    patched = []
    for cls in set(all_subclasses(md.Function)):
        for method in ("forward", "backward"):
            if method not in cls.__dict__:
                continue
            original = cls.__dict__[method]

            def timed(self, *args, _original=original, _key=(_family(cls), method)):
                if depth[0]:
                    return _original(self, *args)
                _synchronize(device)
                depth[0] += 1
                start = time.perf_counter()
                try:
                    return _original(self, *args)
                finally:
                    _synchronize(device)
                    totals[_key] += time.perf_counter() - start
                    depth[0] -= 1
            setattr(cls, method, timed)
            patched.append((cls, method, original))
    original_step = opt.step

    def timed_step():
        _synchronize(device)
        start = time.perf_counter()
        original_step()
        _synchronize(device)
        totals[("optimizer", "step")] += time.perf_counter() - start
    opt.step = timed_step
    try:
        step()                                 # warm-up
        totals.clear()
        start = time.perf_counter()
        for _ in range(steps):
            step()
        wall = (time.perf_counter() - start) / steps
    finally:
        for cls, method, original in patched:
            setattr(cls, method, original)
    per_step = {f"{fam} {phase}": t / steps for (fam, phase), t in totals.items()}
    per_step["(engine, glue, not in any op)"] = wall - sum(per_step.values())
    return wall, per_step


# ----------------------------------------------------------------------------------------------
# PyTorch (optional baseline): the same DenseNet, mirrored by models/torch_reference.py
# ----------------------------------------------------------------------------------------------
def build_torch_model(model_name):
    """The benchmarked minidense model, mirrored in torch.nn (same architecture and weights)."""
    from minidense.models import get_model
    from minidense.models.torch_reference import torch_mirror
    return torch_mirror(get_model(model_name))


def run_torch(model_name, batch_size, device, steps, warmup):
    """PyTorch's plain DenseNet (no checkpointing): the baseline for both minidense modes."""
    import numpy as np
    import torch
    torch.manual_seed(0)
    dev = "cuda" if device == "cuda" else "cpu"
    model = build_torch_model(model_name).to(dev).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4)
    rng = np.random.default_rng(0)
    x = torch.tensor(rng.standard_normal((batch_size, 3, 32, 32)).astype(np.float32), device=dev)
    y = torch.tensor(rng.integers(0, 10, batch_size), device=dev)
    if dev == "cuda":   # GPU memory the caching allocator reserves, comparable to CuPy's pool
        torch.cuda.reset_peak_memory_stats()
        baseline = torch.cuda.memory_reserved() / 2 ** 20
    else:
        baseline = _rss_mb()
    times = []
    for i in range(warmup + steps):
        start = time.perf_counter()
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        if dev == "cuda":
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_reserved() / 2 ** 20 if dev == "cuda" else _peak_rss_mb()
    return {"framework": "pytorch", "version": torch.__version__, "threads": torch.get_num_threads(),
            "step_seconds": times, "images_per_s": batch_size / statistics.median(times),
            "peak_added_mb": peak - baseline, "peak_rss_mb": _peak_rss_mb()}


# ----------------------------------------------------------------------------------------------
# Driver
# ----------------------------------------------------------------------------------------------
def _in_subprocess(framework, args):
    command = [sys.executable, "-m", "minidense", "bench", "--_worker", framework,
               "--model", args.model, "--batch-size", str(args.batch_size), "--device", args.device,
               "--steps", str(args.steps), "--warmup", str(args.warmup)]
    if args.memory_efficient and framework == "minidense":
        command.append("--memory-efficient")
    env = dict(os.environ)
    if args.threads is not None and framework == "minidense":
        env["MINIDENSE_NUM_THREADS"] = str(args.threads)
    if args.kernels is not None and framework == "minidense":
        env["MINIDENSE_KERNELS"] = args.kernels
    if framework == "pytorch":      # this worker imports minidense too: leave PyTorch's malloc as is
        env["MINIDENSE_KEEP_FREED_MEMORY"] = "0"
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"{framework} benchmark failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def torch_available():
    try:
        import torch  # noqa: F401
        return True
    except ImportError:
        return False


def bench_main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m minidense bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="densenet40")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--steps", type=int, default=5, help="timed steps per repetition")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2, help="interleaved repetitions")
    parser.add_argument("--memory-efficient", action="store_true")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch baseline")
    parser.add_argument("--profile", action="store_true", help="per-op-family time split")
    parser.add_argument("--threads", type=int, help="threads for minidense's CPU ops (default: "
                        "one per core when OpenBLAS can be held to one thread; 1 = no splitting)")
    parser.add_argument("--kernels", choices=["fast", "reference"], help="minidense's kernel set "
                        "(default: fast, or MINIDENSE_KERNELS; reference = the textbook kernels)")
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument("--_worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args._worker:
        common = (args.model, args.batch_size, args.device, args.steps, args.warmup)
        if args._worker == "minidense":
            result = run_minidense(*common, args.memory_efficient)
        else:
            result = run_torch(*common)
        print(json.dumps(result))
        return 0

    use_torch = not args.no_torch and torch_available()
    runs = defaultdict(list)
    for _ in range(args.repeats):
        for framework in (["minidense", "pytorch"] if use_torch else ["minidense"]):
            runs[framework].append(_in_subprocess(framework, args))
    summary = {"date": time.strftime("%Y-%m-%d"), "model": args.model, "batch_size": args.batch_size,
               "device": args.device, "memory_efficient": args.memory_efficient,
               "cpu_count": os.cpu_count()}
    print(f"{args.model}, batch {args.batch_size}, {args.device}"
          f"{' (memory-efficient)' if args.memory_efficient else ''}, {args.repeats}x{args.steps} "
          f"timed steps, {os.cpu_count()} cores")
    memory_column = "peak added GPU MB" if args.device == "cuda" else "peak added MB"
    print(f"  {'framework':<10} {'images/s (median)':>18} {memory_column:>18}")
    if "minidense" in runs:
        facts = runs["minidense"][0]
        if args.device == "cuda":
            print(f"  minidense: {facts.get('kernels', 'fast')} kernels (on CuPy arrays: "
                  f"kernels/cuda.py where it has one)")
        else:
            print(f"  minidense: {describe_cpu_settings(facts)}")
    for framework, results in runs.items():
        ips = statistics.median(r["images_per_s"] for r in results)
        peak = max(r["peak_added_mb"] for r in results)
        summary[framework] = {"images_per_s": ips, "peak_added_mb": peak, "runs": results}
        print(f"  {framework:<10} {ips:>18.1f} {peak:>18.0f}")
    if use_torch:
        speed = summary["minidense"]["images_per_s"] / summary["pytorch"]["images_per_s"]
        memory = summary["minidense"]["peak_added_mb"] / max(summary["pytorch"]["peak_added_mb"], 1)
        summary["speed_ratio"], summary["memory_ratio"] = speed, memory
        print(f"  minidense / PyTorch: speed {speed:.2f}x, peak memory {memory:.2f}x")
    if args.profile:
        if args.threads is not None:
            from minidense.kernels import threads
            threads.set_num_threads(args.threads)
        if args.kernels is not None:
            import minidense
            minidense.use_kernels(args.kernels)
        wall, parts = profile_minidense(args.model, args.batch_size, args.device, args.steps,
                                        args.memory_efficient)
        summary["profile"] = {"seconds_per_step": wall, "parts": parts}
        print(f"\n  profile, {wall:.3f} s per step:")
        for name, seconds in sorted(parts.items(), key=lambda kv: -kv[1]):
            print(f"    {name:<32} {seconds:8.3f} s  {100 * seconds / wall:5.1f}%")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(summary, f, indent=2)
    return 0
