"""Peak memory of one training step vs. depth: naive vs. memory-efficient DenseNet-BC.

Pleiss et al. 2017 ("Memory-Efficient Implementation of DenseNets") show that concatenating
feature maps naively makes a dense block's memory grow quadratically with its depth, and that a
shared concatenation buffer plus recomputing BN-ReLU in the backward pass makes it linear. This
script measures that on the CPU: for DenseNet-BC nets of increasing depth it runs one
forward + backward step in training mode and records, with ``tracemalloc`` (NumPy reports its
array allocations to it),

    graph_mb  memory held after the forward pass (what autograd keeps for backward)
    peak_mb   the highest memory use during forward + backward

(both without the weights, which exist before the step). Results go to
benchmarks/results/memory_vs_depth.csv and .png, and a table is printed.

    python benchmarks/memory_vs_depth.py                       # the default sweep (a few minutes)
    python benchmarks/memory_vs_depth.py --depths 40 100 --batch-size 4
    python benchmarks/memory_vs_depth.py --batch-size 64 --depths 100   # the paper's BC-100 setting
"""
import argparse
import csv
import gc
import os
import sys
import time
import tracemalloc

import numpy

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import minidense as md  # noqa: E402
from minidense.models import densenet_cifar  # noqa: E402

MB = 2 ** 20
RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def measure(depth, memory_efficient, batch_size, growth_rate, image_size, seed=0):
    """(graph_mb, peak_mb, seconds) of one forward + backward training step."""
    md.manual_seed(seed)
    model = densenet_cifar(depth, growth_rate=growth_rate, bottleneck=True, compression=0.5,
                           memory_efficient=memory_efficient)
    model.train()
    rng = numpy.random.default_rng(seed)
    x = md.tensor(rng.standard_normal((batch_size, 3, image_size, image_size)).astype("float32"))
    targets = md.tensor(rng.integers(0, 10, batch_size))
    gc.collect()
    tracemalloc.start()
    baseline = tracemalloc.get_traced_memory()[0]
    start = time.perf_counter()
    loss = md.nn.functional.cross_entropy(model(x), targets)
    graph = tracemalloc.get_traced_memory()[0] - baseline
    loss.backward()
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1] - baseline
    tracemalloc.stop()
    del loss, model
    gc.collect()
    return graph / MB, peak / MB, seconds


def plot(rows, path, batch_size, growth_rate):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for mode, marker in (("naive", "o"), ("efficient", "s")):
        for column, line, alpha, what in (("peak_mb", "-", 1.0, "peak"),
                                          ("graph_mb", "--", 0.4, "kept by graph")):
            points = [(r["depth"], r[column]) for r in rows if r["mode"] == mode]
            if points:
                ax.plot(*zip(*points), marker=marker, linestyle=line, alpha=alpha,
                        label=f"{mode} ({what})")
    ax.set_xlabel("depth L (DenseNet-BC)")
    ax.set_ylabel("memory of one training step (MB)")
    ax.set_title(f"DenseNet-BC, k={growth_rate}, batch {batch_size}, 32x32: memory vs depth")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--depths", type=int, nargs="+", default=[40, 64, 100, 148, 190, 250])
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--growth-rate", type=int, default=12)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--modes", nargs="+", default=["naive", "efficient"],
                        choices=["naive", "efficient"])
    parser.add_argument("--out", default=RESULTS, help="folder for the CSV and PNG")
    parser.add_argument("--name", default="memory_vs_depth", help="file name stem")
    args = parser.parse_args(argv)

    rows = []
    print(f"DenseNet-BC k={args.growth_rate}, batch {args.batch_size}, "
          f"{args.image_size}x{args.image_size}, one forward+backward step (tracemalloc)")
    print(f"{'depth':>5} {'mode':>9} {'params':>10} {'graph MB':>9} {'peak MB':>9} {'seconds':>8}")
    for depth in args.depths:
        params = densenet_cifar(depth, args.growth_rate, bottleneck=True,
                                compression=0.5).num_parameters()
        for mode in args.modes:
            graph, peak, seconds = measure(depth, mode == "efficient", args.batch_size,
                                           args.growth_rate, args.image_size)
            rows.append({"depth": depth, "mode": mode, "params": params,
                         "batch_size": args.batch_size, "growth_rate": args.growth_rate,
                         "graph_mb": round(graph, 2), "peak_mb": round(peak, 2),
                         "seconds": round(seconds, 2)})
            print(f"{depth:>5} {mode:>9} {params:>10,} {graph:>9.1f} {peak:>9.1f} "
                  f"{seconds:>8.1f}", flush=True)

    for mode in args.modes:   # memory added per extra layer: constant means linear growth
        points = [(r["depth"], r["peak_mb"]) for r in rows if r["mode"] == mode]
        steps = [f"{(m2 - m1) / ((d2 - d1) / 2):.2f}" for (d1, m1), (d2, m2) in
                 zip(points, points[1:])]
        if steps:
            print(f"{mode}: extra peak MB per dense layer between successive depths: "
                  f"{', '.join(steps)}")

    os.makedirs(args.out, exist_ok=True)
    csv_path = os.path.join(args.out, f"{args.name}.csv")
    with open(csv_path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    png_path = os.path.join(args.out, f"{args.name}.png")
    plot(rows, png_path, args.batch_size, args.growth_rate)
    print(f"wrote {csv_path} and {png_path}")
    return rows


if __name__ == "__main__":
    main()
