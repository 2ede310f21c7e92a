"""A per-layer table of a model: output shapes, channels, growth, parameters, multiply-adds, memory.

It runs one forward pass on zeros (evaluation mode, no graph, running statistics untouched) and
watches the layers as they run. Counting conventions (the ones behind the DenseNet paper's Figure 3
and Table 2 sizes, e.g. DenseNet-40: 264.8M and DenseNet-BC-100: 287.9M multiply-adds per 32x32
image):

    multiply-adds  convolutions: output elements * in_channels * kh * kw (no bias term);
                   Linear: output elements * in_features. BN, ReLU and pooling are not counted.
    parameters     every learnable scalar, BN gamma and beta included (running statistics are not).
    activations    bytes of the row's output at float32 (4 bytes per element), for the batch given.

A row is one dense layer, one transition, one residual unit, or any other layer that has no
children (a stem convolution, the classifier). ``python -m minidense summary densenet40`` prints
the table from the command line.
"""
import argparse
import contextlib

import numpy

from .. import nn
from ..autograd import no_grad
from ..creation import zeros

FLOAT32_BYTES = 4


class ModelSummary:
    """What ``summary`` measured: ``rows`` (a list of dicts) and ``totals`` (a dict).

    ``rows, totals = summary(model, shape)`` unpacks it; ``str(result)`` is the printed table.
    """

    def __init__(self, model_name, rows, totals):
        self.model_name, self.rows, self.totals = model_name, rows, totals

    def __iter__(self):
        return iter((self.rows, self.totals))

    def __repr__(self):
        t = self.totals
        return (f"<ModelSummary {self.model_name}: {len(self.rows)} rows, {t['params']:,} "
                f"parameters, {t['macs'] / 1e6:.1f}M multiply-adds>")

    def table(self):
        header = ("Layer", "Output shape", "Channels", "Growth", "Params", "MACs", "Activations")
        lines = [[r["name"], _shape_text(r["output_shape"]), f"{r['in_channels']} -> "
                  f"{r['out_channels']}" if r["in_channels"] is not None else "",
                  "" if r["growth"] is None else f"+{r['growth']}", f"{r['params']:,}",
                  _millions(r["macs"]), _bytes_text(r["activation_bytes"])] for r in self.rows]
        t = self.totals
        footer = ["Total", _shape_text(t["output_shape"]), "", "", f"{t['params']:,}",
                  _millions(t["macs"]), _bytes_text(t["activation_bytes"])]
        widths = [max(len(str(row[i])) for row in lines + [header, footer]) for i in range(7)]
        right = {4, 5, 6}

        def render(cells):
            return "  ".join(str(c).rjust(w) if i in right else str(c).ljust(w)
                             for i, (c, w) in enumerate(zip(cells, widths)))
        rule = "-" * len(render(header))
        text = [f"{self.model_name}, input {_shape_text(t['input_shape'])}", rule, render(header),
                rule] + [render(row) for row in lines] + [rule, render(footer), rule,
                f"parameters: {t['params']:,}   multiply-adds: {t['macs']:,} "
                f"({t['macs'] / 1e6:.1f}M)   activations (sum of rows, float32): "
                f"{_bytes_text(t['activation_bytes'])}"]
        return "\n".join(text)

    __str__ = table


def _shape_text(shape):
    return "x".join(str(s) for s in shape)


def _millions(value):
    return f"{value / 1e6:.2f}M"


def _bytes_text(n):
    for unit, size in (("GB", 2 ** 30), ("MB", 2 ** 20), ("KB", 2 ** 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def multiply_adds(module, x_shape, y_shape):
    """Multiply-adds of one Conv2d or Linear call from its input and output shapes (else 0)."""
    elements = int(numpy.prod(y_shape))
    if isinstance(module, nn.Conv2d):
        kh, kw = module.kernel_size
        return elements * x_shape[1] * kh * kw
    if isinstance(module, nn.Linear):
        return elements * x_shape[-1]
    return 0


def _row_modules(model):
    """(name, module) of the modules that get one row each, in definition order."""
    rows, covered = [], []
    for name, module in model.named_modules():
        if module is model or any(name.startswith(prefix + ".") for prefix in covered):
            continue
        if getattr(module, "summary_as_one_row", False) or not list(module.children()):
            rows.append((name, module))
            covered.append(name)
    return rows


@contextlib.contextmanager
def _watching(modules, record):
    """Temporarily wrap each module's forward so ``record(name, module, x, y)`` sees every call."""
    for name, module in modules:
        def watched(*args, __name=name, __module=module, __forward=module.forward, **kwargs):
            out = __forward(*args, **kwargs)
            record(__name, __module, args[0], out)
            return out
        object.__setattr__(module, "forward", watched)
    try:
        yield
    finally:
        for _, module in modules:
            module.__dict__.pop("forward", None)


@contextlib.contextmanager
def _evaluation_pass(model):
    """Evaluation mode and the naive dense-block forward for one pass; everything restored after."""
    modes = [(m, m.training) for m in model.modules()]
    efficient = [(m, m.memory_efficient) for m in model.modules() if hasattr(m, "memory_efficient")
                 and not isinstance(type(m).__dict__.get("memory_efficient"), property)]
    model.eval()
    for m, _ in efficient:
        m.memory_efficient = False
    try:
        with no_grad():
            yield
    finally:
        for m, mode in modes:
            object.__setattr__(m, "training", mode)
        for m, flag in efficient:
            m.memory_efficient = flag


def summary(model, input_shape=None, print_table=True, name=None):
    """Print a per-layer table of ``model`` for inputs of ``input_shape`` and return the numbers.

    input_shape: (C, H, W) for one image or (N, C, H, W); defaults to the model's
    ``default_input_shape`` (3x32x32 for CIFAR models, 3x224x224 for ImageNet ones).
    Returns a ModelSummary: ``rows`` (dicts with name, type, output_shape, in_channels,
    out_channels, growth, params, macs, activation_bytes) and ``totals``.
    """
    if input_shape is None:
        input_shape = getattr(model, "default_input_shape", None)
        if input_shape is None:
            raise ValueError("summary: pass input_shape, e.g. (3, 32, 32)")
    input_shape = tuple(int(s) for s in input_shape)
    if len(input_shape) == 3:
        input_shape = (1,) + input_shape
    if len(input_shape) != 4:
        raise ValueError(f"summary: input_shape must be (C, H, W) or (N, C, H, W), "
                         f"got {input_shape}")
    row_modules = _row_modules(model)
    counted = [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    watched = {id(m): (n, m) for n, m in row_modules + counted}
    calls, macs_by_name = [], {}

    def record(module_name, module, x, y):
        macs = multiply_adds(module, x.shape, y.shape)
        macs_by_name[module_name] = macs_by_name.get(module_name, 0) + macs
        if any(module is m for _, m in row_modules):
            calls.append((module_name, module, tuple(x.shape), tuple(y.shape)))

    first = next(model.parameters(), None)
    device = first.device if first is not None else "cpu"
    dtype = first.dtype if first is not None else numpy.float32
    with _evaluation_pass(model), _watching(list(watched.values()), record):
        output = model(zeros(*input_shape, dtype=dtype, device=device))

    rows = []
    for module_name, module, x_shape, y_shape in calls:
        inside = [v for k, v in macs_by_name.items()
                  if k == module_name or k.startswith(module_name + ".")]
        rows.append({
            "name": module_name, "type": type(module).__name__, "output_shape": y_shape,
            "in_channels": x_shape[1] if len(x_shape) > 1 else None,
            "out_channels": y_shape[1] if len(y_shape) > 1 else None,
            "growth": getattr(module, "growth_rate", None),
            "params": sum(p.numel() for p in module.parameters()),
            "macs": sum(inside), "activation_bytes": int(numpy.prod(y_shape)) * FLOAT32_BYTES})
    totals = {"input_shape": input_shape, "output_shape": tuple(output.shape),
              "params": model.num_parameters(), "macs": sum(macs_by_name.values()),
              "activation_bytes": sum(r["activation_bytes"] for r in rows)}
    config = getattr(model, "config", None)
    title = name or (config["name"] if config else type(model).__name__)
    result = ModelSummary(title, rows, totals)
    if print_table:
        print(result.table())
    return result


def summary_main(argv=None):
    """``python -m minidense summary MODEL [--input-shape C H W] [--num-classes N]``."""
    from . import MODELS, get_model
    parser = argparse.ArgumentParser(
        prog="python -m minidense summary",
        description="Print a model's layers, output shapes, parameters and multiply-adds.")
    parser.add_argument("model", help="registry name: " + ", ".join(sorted(MODELS)))
    parser.add_argument("--input-shape", type=int, nargs="+", metavar="N",
                        help="C H W (or N C H W); default 3 32 32 for CIFAR models, 3 224 224 "
                             "for ImageNet ones")
    parser.add_argument("--num-classes", type=int, default=None)
    parser.add_argument("--depth", type=int, default=None, help="for densenet_cifar/preact_resnet")
    args = parser.parse_args(argv)
    kwargs = {k: v for k, v in (("num_classes", args.num_classes), ("depth", args.depth))
              if v is not None}
    try:
        model = get_model(args.model, **kwargs)
    except (ValueError, TypeError) as exc:
        parser.error(str(exc))
    summary(model, args.input_shape)
    return 0
