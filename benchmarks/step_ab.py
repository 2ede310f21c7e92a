"""A/B of one change inside whole training steps: one process, the two versions alternating step
by step (ABBA order), so a slow phase of the machine hits both. Prints the median step time of
each. Run it on a quiet machine.

    python benchmarks/step_ab.py kernels --model densenet40
        the textbook kernels (md.use_kernels("reference")) against the fast ones

    python benchmarks/step_ab.py shared-statistics --model densenet40
        dense blocks sharing their batch statistics (DenseBlock.forward) against each layer
        computing its own (the layers called one after another)

    git show bcb94db:minidense/ops/conv.py > /tmp/conv_before.py
    python benchmarks/step_ab.py conv --before /tmp/conv_before.py --model densenet_bc_100
        the stride-1 convolution as it is (minidense/kernels/conv.py) against the
        ``_stride1_forward``/``_stride1_backward`` of another version of that file, or of
        ops/conv.py from before the kernels moved out of it
"""
import argparse
import importlib.util
import statistics
import time

import minidense as md
from minidense import kernels
from minidense.bench import _minidense_step_fn
from minidense.kernels import conv
from minidense.models import densenet


def layers_one_by_one(block, x):
    for layer in block.layers():
        x = layer(x)
    return x


def variants(change, before_file):
    """{name: function that switches the library to that version}, 'before' first."""
    if change == "kernels":
        return {"reference kernels": lambda: md.use_kernels("reference"),
                "fast kernels": lambda: md.use_kernels("fast")}
    if change == "shared-statistics":
        shared = densenet.DenseBlock.forward
        return {"own statistics per layer": lambda: setattr(densenet.DenseBlock, "forward",
                                                            layers_one_by_one),
                "shared statistics": lambda: setattr(densenet.DenseBlock, "forward", shared)}
    if before_file is None:
        raise SystemExit("conv: give --before FILE, a conv.py to compare with")
    source = open(before_file).read().replace("from . import parallel", "from . import threads "
                                                                      "as parallel")
    spec = importlib.util.spec_from_loader("minidense.kernels.conv_before", loader=None)
    before = importlib.util.module_from_spec(spec)
    before.__package__ = "minidense.kernels"          # its relative imports, read from kernels/
    registered = dict(kernels._fast)
    exec(compile(source, before_file, "exec"), before.__dict__)
    kernels._fast.clear()
    kernels._fast.update(registered)                  # the copy's registrations are undone
    now = (conv._stride1_forward, conv._stride1_backward)

    def use(pair):
        conv._stride1_forward, conv._stride1_backward = pair
    return {"before": lambda: use((before._stride1_forward, before._stride1_backward)),
            "now": lambda: use(now)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("change", choices=["kernels", "shared-statistics", "conv"])
    parser.add_argument("--before", help="conv: the conv.py to compare with")
    parser.add_argument("--model", default="densenet40")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    versions = variants(args.change, args.before)
    step, _, _ = _minidense_step_fn(args.model, args.batch_size, "cpu", False)
    step(), step()                                       # warm-up
    times = {name: [] for name in versions}
    for round_ in range(args.rounds):
        order = list(versions.items())
        for name, switch in (order if round_ % 2 == 0 else order[::-1]):
            switch()
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)
    for name, seconds in times.items():
        print(f"{args.model} {name}: median {statistics.median(seconds):.3f} s per step "
              f"({' '.join(f'{s:.2f}' for s in seconds)})")


if __name__ == "__main__":
    main()
