"""Numerical gradient checking: is an op's backward the derivative of its forward?

The check turns ``fn``'s output(s) into one number with a *random* upstream gradient u,

    L(x) = sum_k  sum(fn(x)_k * u_k),

and compares the analytic gradient dL/dx (from backward) with central differences in float64,

    dL/dx_i  ~  (L(x + eps e_i) - L(x - eps e_i)) / (2 eps),          error O(eps^2).

Why random u: with u = all ones, L = sum(fn(x)). For batch norm or softmax that sum does not depend
on x at all (the outputs of softmax sum to 1; batch-normalised outputs sum to N*beta), so the true
gradient is zero, and a *wrong* backward that returns zeros passes. A random u has no such blind spot.

For large inputs checking every element is slow; ``mode='directional'`` compares derivatives along
a few random directions v instead: (L(x + eps v) - L(x - eps v)) / (2 eps)  vs  <dL/dx, v>.

Typical sizes in float64: max relative error around 1e-8 for a correct backward; 1e-2 or more means
a bug.
"""
import numpy

from . import backend
from .autograd import Tensor, enable_grad, grad, no_grad


class GradcheckError(AssertionError):
    """Raised by gradcheck when analytic and numerical gradients disagree."""


class GradcheckReport:
    """What gradcheck found, per input: errors, pass/fail, and whether both gradients were ~0."""

    def __init__(self, rows, mode, atol=1e-5, rtol=1e-3):
        self.rows, self.mode, self.atol, self.rtol = rows, mode, atol, rtol
        self.passed = all(r["passed"] for r in rows)

    def __bool__(self):
        return self.passed

    def __str__(self):
        lines = [f"gradcheck ({self.mode}): {'PASSED' if self.passed else 'FAILED'}",
                 f"  {'input':>5}  {'shape':<18} {'max abs err':>12} {'max rel err':>12}  result"]
        for r in self.rows:
            verdict = "ok" if r["passed"] else ("both ~0 (vacuous)" if r["vacuous"] else "MISMATCH")
            relative = "n/a" if numpy.isnan(r["max_rel_error"]) else f"{r['max_rel_error']:.3e}"
            lines.append(f"  {r['index']:>5}  {str(r['shape']):<18} {r['max_abs_error']:>12.3e} "
                         f"{relative:>12}  {verdict}")
        lines.append("  abs err = |a - n|; rel err = |a - n| / max(|a|, |n|) over the elements with "
                     "max(|a|, |n|) > atol (n/a: none)")
        lines.append(f"  an element passes when |a - n| <= atol + rtol * |n|   "
                     f"(atol {self.atol:g}, rtol {self.rtol:g}; a: analytic, n: numerical)")
        return "\n".join(lines)

    __repr__ = __str__


def _objective(fn, inputs, upstream):
    """L = sum_k sum(out_k * u_k), a plain float."""
    outputs = fn(*inputs)
    outputs = outputs if isinstance(outputs, (tuple, list)) else (outputs,)
    total = 0.0
    for out, u in zip(outputs, upstream):
        if out is not None:
            total += float((out.data.astype(numpy.float64) * u).sum())
    return total


def _upstream_gradients(outputs, kind, seed):
    """One upstream gradient per output: random normal (default) or all ones."""
    rng = numpy.random.default_rng(seed)
    grads = []
    for out in outputs:
        xp = backend.get_array_module(out.data)
        u = rng.standard_normal(out.shape) if kind == "random" else numpy.ones(out.shape)
        grads.append(xp.asarray(u, dtype=out.dtype))
    return grads


def gradcheck(fn, inputs, *, eps=1e-6, atol=1e-5, rtol=1e-3, upstream="random", seed=0,
              mode="auto", n_directions=6, max_elements=2000, allow_zero=False,
              raise_exception=True, _numeric_with_grad=False):
    """Check ``fn``'s backward against central differences for every float input that requires grad.

    fn:            function of the inputs returning a Tensor or a tuple of Tensors.
    inputs:        a Tensor or a tuple of them (and other values passed through unchanged).
    upstream:      'random' (default) or 'ones' (only to demonstrate why ones can lie).
    mode:          'full' (every element), 'directional' (random directions), or 'auto'
                   (full up to ``max_elements`` elements per input, directional above).
    allow_zero:    accept inputs whose analytic and numerical gradients are both ~0. Off by default,
                   because a check where both sides are zero tests nothing.
    Returns a GradcheckReport (truthy when it passed); raises GradcheckError on failure when
    ``raise_exception`` (the assert-style use).
    """
    inputs = (inputs,) if isinstance(inputs, Tensor) else tuple(inputs)
    checked = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input requires grad; create them with requires_grad=True")
    for i in checked:
        if inputs[i].dtype != numpy.float64:
            raise TypeError(f"gradcheck: input {i} (shape {inputs[i].shape}) is {inputs[i].dtype}; "
                            f"finite differences need float64: md.tensor(x, dtype=md.float64)")

    with enable_grad():
        outputs = fn(*inputs)
    outputs = tuple(outputs) if isinstance(outputs, (tuple, list)) else (outputs,)
    upstream_arrays = _upstream_gradients(outputs, upstream, seed)
    differentiable = [(o, Tensor(u)) for o, u in zip(outputs, upstream_arrays)
                      if o is not None and o.requires_grad]
    analytic = grad([o for o, _ in differentiable], [inputs[i] for i in checked],
                    grad_outputs=[u for _, u in differentiable], allow_unused=True) \
        if differentiable else [None] * len(checked)

    def objective():
        context = enable_grad() if _numeric_with_grad else no_grad()
        with context:
            return _objective(fn, inputs, upstream_arrays)

    rng = numpy.random.default_rng(seed + 1)
    rows, used_modes = [], set()
    for i, g in zip(checked, analytic):
        x = inputs[i]
        g = numpy.zeros(x.shape) if g is None else backend.to_numpy(g.data).astype(numpy.float64)
        full = mode == "full" or (mode == "auto" and x.data.size <= max_elements)
        used_modes.add("full" if full else "directional")
        if full:
            numeric = _numeric_gradient(objective, x, eps)
            analytic_values = g.ravel()
            numeric_values = numeric.ravel()
        else:
            analytic_values, numeric_values = [], []
            for _ in range(n_directions):
                v = rng.standard_normal(x.shape)
                v /= numpy.linalg.norm(v)
                numeric_values.append(_directional_derivative(objective, x, v, eps))
                analytic_values.append(float((g * v).sum()))
            analytic_values, numeric_values = numpy.array(analytic_values), numpy.array(numeric_values)
        rows.append(_compare(i, x.shape, analytic_values, numeric_values, atol, rtol, allow_zero))

    report = GradcheckReport(rows, "/".join(sorted(used_modes)), atol, rtol)
    if raise_exception and not report.passed:
        raise GradcheckError(str(report))
    return report


def _compare(index, shape, analytic, numeric, atol, rtol, allow_zero):
    difference = numpy.abs(analytic - numeric)
    scale = numpy.maximum(numpy.abs(analytic), numpy.abs(numeric))
    # Both ~0: analytic exactly (near) zero, numeric no bigger than rounding noise of L / eps.
    vacuous = bool(numpy.abs(analytic).max(initial=0.0) < 1e-9
                   and numpy.abs(numeric).max(initial=0.0) < 1e-6)
    # relative error only where a gradient is bigger than atol: below it, |a - n| is rounding noise
    # divided by a near-zero number, and the absolute error (column "max abs err") is what counts
    measured = scale > atol
    relative = difference[measured] / scale[measured]
    passed = bool(numpy.all(difference <= atol + rtol * numpy.abs(numeric)))
    if vacuous and not allow_zero:
        passed = False
    return {"index": index, "shape": tuple(shape), "max_abs_error": float(difference.max(initial=0)),
            "max_rel_error": float(relative.max()) if relative.size else float("nan"),
            "passed": passed, "vacuous": vacuous}


def _numeric_gradient(objective, x, eps):
    """Central differences, one element at a time, perturbing x.data in place."""
    if not x.data.flags.c_contiguous:
        x.data = backend.get_array_module(x.data).ascontiguousarray(x.data)
    flat = x.data.reshape(-1)   # a view: writing into it perturbs x
    result = numpy.zeros(flat.size)
    for k in range(flat.size):
        original = flat[k].item()
        flat[k] = original + eps
        plus = objective()
        flat[k] = original - eps
        minus = objective()
        flat[k] = original
        result[k] = (plus - minus) / (2 * eps)
    return result.reshape(x.shape)


def _directional_derivative(objective, x, v, eps):
    original = x.data.copy()
    step = backend.get_array_module(x.data).asarray(v * eps)
    x.data[...] = original + step
    plus = objective()
    x.data[...] = original - step
    minus = objective()
    x.data[...] = original
    return (plus - minus) / (2 * eps)


def gradgradcheck(fn, inputs, *, seed=0, **kwargs):
    """Check second derivatives: gradcheck the map  x -> dL/dx  (built with create_graph=True)."""
    inputs = (inputs,) if isinstance(inputs, Tensor) else tuple(inputs)
    checked = [x for x in inputs if isinstance(x, Tensor) and x.requires_grad]
    with enable_grad():
        outputs = fn(*inputs)
    outputs = tuple(outputs) if isinstance(outputs, (tuple, list)) else (outputs,)
    upstream = [Tensor(u) for u in _upstream_gradients(outputs, "random", seed + 7)]

    def first_derivatives(*xs):
        outs = fn(*xs)
        outs = tuple(outs) if isinstance(outs, (tuple, list)) else (outs,)
        grads = grad(list(outs), checked, grad_outputs=upstream, create_graph=True,
                     allow_unused=True)
        return tuple(g if g is not None else Tensor(numpy.zeros(x.shape)) for g, x in
                     zip(grads, checked))

    return gradcheck(first_derivatives, inputs, seed=seed, _numeric_with_grad=True, **kwargs)
