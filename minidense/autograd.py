"""The autograd engine: Tensor, the Function contract, and reverse-mode backward.

Reading guide
-------------
* A ``Tensor`` wraps an array (``.data``, NumPy or CuPy) and remembers the ``Function`` that
  made it (``.creator``). Leaves (made by the user) have no creator.
* A ``Function`` is one differentiable operation. A subclass writes

      forward(*arrays)   -> array or tuple of arrays       (plain array math)
      backward(*grads)   -> Tensor or tuple of Tensors     (one gradient per input)

  ``backward`` receives the gradients of the outputs as Tensors and returns the gradients of the
  inputs: the chain rule, local to one op. The engine tells it which inputs need a gradient
  (``self.needs_input_grad``); what backward reads beyond the inputs is kept with
  ``self.save_for_backward(...)`` and read back as ``self.saved_values``.
* A backward written with Tensor operations can be differentiated again (``create_graph=True``).
  The fast ops (convolution, batch norm, pooling) derive from ``ArrayFunction`` instead, whose
  backward takes and returns plain arrays, like its forward.
* The graph holds what backward needs and no more: a Function keeps its input Tensors only when
  its backward reads them, and reaches the inputs' creators through light edges (``_Edge``).
* ``backward()`` visits Functions from the output towards the leaves in order of decreasing
  *generation* (a Function's generation is one more than the newest input it saw), so a Function
  runs only after every consumer of its outputs has delivered its gradient. That is what makes
  reused nodes (``b = a + a; c = b + b``) and DenseNet's every-layer-feeds-every-later-layer
  pattern come out right.
"""
import functools
import heapq
import itertools
import weakref

import numpy

from . import backend

# ----------------------------------------------------------------------------------------------
# Gradient mode
# ----------------------------------------------------------------------------------------------
_grad_enabled = True


def is_grad_enabled():
    return _grad_enabled


class set_grad_enabled:
    """Context manager (and decorator) that turns graph recording on or off."""

    def __init__(self, mode):
        self.mode = bool(mode)

    def __enter__(self):
        global _grad_enabled
        self.previous, _grad_enabled = _grad_enabled, self.mode

    def __exit__(self, *exc):
        global _grad_enabled
        _grad_enabled = self.previous

    def __call__(self, fn):
        mode = self.mode

        @functools.wraps(fn)
        def wrapped(*args, **kwargs):
            with set_grad_enabled(mode):
                return fn(*args, **kwargs)
        return wrapped


class no_grad(set_grad_enabled):
    """``with md.no_grad():`` runs ops without recording a graph (evaluation, optimizer steps)."""

    def __init__(self):
        super().__init__(False)


class enable_grad(set_grad_enabled):
    def __init__(self):
        super().__init__(True)


class ShapeError(ValueError):
    """A shape problem, reported with the op's name and the shapes involved."""


# ----------------------------------------------------------------------------------------------
# Tensor
# ----------------------------------------------------------------------------------------------
NUMERIC_KINDS = "biufc"     # NumPy dtype kinds of booleans, integers, floats, complex numbers
DTYPE_KIND_NAMES = {"U": "text", "S": "bytes", "O": "Python objects", "M": "dates",
                    "m": "time spans", "V": "raw records"}


class Tensor:
    """An array plus what autograd needs: ``grad``, ``requires_grad`` and the ``creator`` op."""

    __array_priority__ = 1000  # numpy_scalar * tensor calls Tensor.__rmul__, not NumPy's

    def __init__(self, data, requires_grad=False):
        xp = backend.get_array_module(data)
        self.data = data if isinstance(data, xp.ndarray) else numpy.asarray(data)
        if self.data.dtype.kind not in NUMERIC_KINDS:
            raise TypeError(
                f"a tensor holds numbers or booleans, as in PyTorch; got an array of dtype "
                f"{self.data.dtype} ({DTYPE_KIND_NAMES.get(self.data.dtype.kind, 'not numbers')}); "
                f"convert the values first, e.g. md.tensor([float(v) for v in values])")
        self.grad = None
        self.creator = None        # the Function that produced this tensor (None for a leaf)
        self.output_index = 0      # which output of the creator this is
        self.generation = 0
        self._retain_grad = False
        self._requires_grad = False
        self.requires_grad = requires_grad

    # -- autograd flags ------------------------------------------------------------------------
    @property
    def requires_grad(self):
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, flag):
        if flag and self.data.dtype.kind not in "fc":
            raise TypeError(
                f"only floating-point tensors can require gradients, got dtype {self.data.dtype} "
                f"with shape {self.shape}; create it with dtype=md.float32 (or md.float64)")
        self._requires_grad = bool(flag)

    @property
    def is_leaf(self):
        return self.creator is None

    @property
    def grad_fn(self):
        return self.creator

    def retain_grad(self):
        """Keep ``.grad`` on this non-leaf tensor after backward (leaves always keep theirs)."""
        self._retain_grad = True
        return self

    def backward(self, grad=None, retain_graph=None, create_graph=False):
        """Compute d(self)/d(leaf) for every leaf that requires grad, accumulating into ``.grad``."""
        if not self.requires_grad:
            raise RuntimeError("backward(): this tensor does not require grad and has no graph; "
                               "did you create the inputs with requires_grad=True?")
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError(
                    f"backward() on a tensor of shape {self.shape} needs a gradient argument of "
                    f"that shape (or reduce it first, e.g. y.sum().backward())")
            grad = Tensor(backend.get_array_module(self.data).ones_like(self.data))
        grad = grad if isinstance(grad, Tensor) else Tensor(grad)
        if grad.shape != self.shape:
            raise ShapeError(f"backward(): gradient of shape {grad.shape} given for a tensor of "
                             f"shape {self.shape}")
        if grad.device != self.device:
            raise RuntimeError(f"backward(): gradient on {grad.device} given for a tensor on "
                               f"{self.device}; move it with .to('{self.device}')")
        run_backward([self], [grad], retain_graph=retain_graph, create_graph=create_graph)

    # -- array facts ---------------------------------------------------------------------------
    shape = property(lambda self: tuple(self.data.shape))
    dtype = property(lambda self: self.data.dtype)
    ndim = property(lambda self: self.data.ndim)
    device = property(lambda self: backend.device_of(self.data))

    def size(self, dim=None):
        return self.shape if dim is None else self.shape[dim]

    def numel(self):
        return int(self.data.size)

    def __len__(self):
        return len(self.data)

    def numpy(self):
        """The data as a NumPy array (copied from the GPU when needed)."""
        return backend.to_numpy(self.data)

    def item(self):
        if self.data.size != 1:
            raise ValueError(f"item(): only a one-element tensor has an item, shape is {self.shape}")
        return self.data.item()

    def tolist(self):
        return self.numpy().tolist()

    def detach(self):
        """The same data, cut from the graph."""
        return Tensor(self.data)

    def __repr__(self):
        body = numpy.array2string(self.numpy(), separator=", ", prefix="tensor(")
        extras = [f"dtype={self.dtype}"] if self.dtype not in (numpy.float32, numpy.int64) else []
        if self.device != "cpu":
            extras.append(f"device='{self.device}'")
        if self.creator is not None:
            extras.append(f"grad_fn=<{self.creator.name}>")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        return f"tensor({body}{''.join(', ' + e for e in extras)})"

    def __bool__(self):
        return bool(self.data)

    # Operators and methods are attached at the bottom of minidense/ops/__init__.py, so that each
    # op lives in one place (its own file) and Tensor stays short.


# ----------------------------------------------------------------------------------------------
# Function: the contract every differentiable op follows
# ----------------------------------------------------------------------------------------------
class Function:
    """One op: ``forward`` on arrays, ``backward`` on gradient Tensors. Call an instance to apply it.

    What the engine gives an op, set when it is called:

    * ``self.needs_input_grad``: one bool per input, True where that input needs a gradient
      (PyTorch's ``ctx.needs_input_grad``). ``backward`` may return None for the others; it is
      never asked for a gradient nobody reads.
    * ``self.inputs``: the input Tensors, kept for ``backward`` while the graph lives, unless the
      class sets ``saves_inputs = False`` because its backward needs no input values.
    * ``self.input_shapes``: the inputs' shapes (always kept; they are small).

    Anything else ``backward`` reads goes through ``self.save_for_backward(...)`` in ``forward``
    and comes back as ``self.saved_values``. Small settings (stride, axis, ...) are attributes.
    """

    differentiable_backward = True   # False: backward works on raw arrays (no double backward)
    saves_inputs = True              # False: the engine does not keep the input Tensors
    inputs = None
    saved_values = ()
    released = False

    @property
    def name(self):
        return type(self).__name__.lower()

    def __call__(self, *inputs):
        inputs = _as_tensors(self.name, inputs)
        record = _grad_enabled and any(x.requires_grad for x in inputs)
        self.needs_input_grad = tuple(record and x.requires_grad for x in inputs)
        self.input_shapes = tuple(x.shape for x in inputs)
        outputs = self.forward(*[x.data for x in inputs])
        single = not isinstance(outputs, tuple)
        outputs = [Tensor(a) for a in ((outputs,) if single else outputs)]
        if record:
            if self.saves_inputs:
                self.inputs = inputs
            self.input_edges = [_Edge(x) if x.requires_grad else None for x in inputs]
            self.generation = max(x.generation for x in inputs)
            self.output_meta = [(o.data.shape, o.data.dtype) for o in outputs]
            for i, out in enumerate(outputs):
                out.creator, out.output_index, out.generation = self, i, self.generation + 1
                out._requires_grad = out.data.dtype.kind in "fc"
        return outputs[0] if single else tuple(outputs)

    def forward(self, *arrays):
        raise NotImplementedError

    def backward(self, *grads):
        raise NotImplementedError(f"{self.name} has no backward")

    def save_for_backward(self, *values):
        """Called in ``forward``: keep ``values`` (arrays) for ``backward``, as ``saved_values``."""
        self.saved_values = values

    def input_grads(self, output_grads):
        """What the engine calls: the gradients of the inputs (Tensors or None) from those of
        the outputs (Tensors)."""
        grads = self.backward(*output_grads)
        return grads if isinstance(grads, tuple) else (grads,)

    def release(self):
        """Drop the inputs and anything forward saved, keeping only what ordering needs."""
        keep = {k: v for k, v in self.__dict__.items() if k in ("generation", "output_meta")}
        self.__dict__.clear()
        self.__dict__.update(keep, released=True)


class ArrayFunction(Function):
    """A Function whose backward works on arrays, like its forward: the fast ops (convolution,
    batch norm, pooling) are written this way.

        forward(*arrays)       -> array or tuple of arrays
        backward(*grad_arrays) -> one array (or None) per input

    The engine unwraps the output gradients and wraps the input gradients into Tensors. It keeps
    no input Tensors: ``forward`` saves what ``backward`` reads with ``save_for_backward``. Such a
    backward cannot be differentiated again (no ``create_graph=True`` through it).
    """

    differentiable_backward = False
    saves_inputs = False

    def input_grads(self, output_grads):
        grads = self.backward(*(g.data for g in output_grads))
        grads = grads if isinstance(grads, tuple) else (grads,)
        return tuple(None if g is None else Tensor(g) for g in grads)


class _Edge:
    """Where the gradient of one input goes: the Function that made it (and which of its outputs
    it is), or, for a leaf, the tensor's ``.grad``. The tensor itself is held by a weak reference,
    so the graph does not keep its data alive: if nobody else holds it, nobody can read its
    ``.grad`` either."""

    __slots__ = ("function", "output_index", "tensor", "shape")

    def __init__(self, tensor):
        self.function, self.output_index = tensor.creator, tensor.output_index
        self.tensor = weakref.ref(tensor)
        self.shape = tensor.shape


def _as_tensors(op_name, values):
    """Turn the inputs of an op into Tensors; Python scalars take the dtype of a Tensor input."""
    reference = next((v for v in values if isinstance(v, Tensor)), None)
    tensors = []
    for v in values:
        if isinstance(v, Tensor):
            tensors.append(v)
        elif reference is not None and numpy.isscalar(v) and not isinstance(v, (str, bytes)):
            xp = backend.get_array_module(reference.data)
            kind = reference.data.dtype.kind
            dtype = reference.dtype if (kind in "fc" or isinstance(v, (int, bool))) else None
            tensors.append(Tensor(xp.asarray(v, dtype=dtype)))
        else:
            tensors.append(Tensor(v))
    # A 0-d CPU constant (e.g. a NumPy scalar) may join tensors on the GPU, as in PyTorch;
    # it is copied there, because CuPy refuses to mix host and device arrays.
    devices = {x.device for x in tensors if x.data.ndim > 0 or x.requires_grad}
    if len(devices) > 1:
        where = ", ".join(f"{x.shape} on {x.device}" for x in tensors)
        raise RuntimeError(f"{op_name}: inputs live on different devices ({where}); "
                           f"move them with .to('cuda') or .to('cpu') first")
    if devices == {"cuda"}:
        tensors = [x if x.device == "cuda" else Tensor(backend.to_device(x.data, "cuda"))
                   for x in tensors]
    return tensors


# ----------------------------------------------------------------------------------------------
# The backward pass
# ----------------------------------------------------------------------------------------------
def run_backward(roots, root_grads, retain_graph=None, create_graph=False, inputs=None):
    """Propagate ``root_grads`` from ``roots`` back through the graph.

    With ``inputs=None`` gradients accumulate into ``.grad`` of leaves (and of tensors that called
    ``retain_grad``). With a list of ``inputs`` nothing is accumulated; their gradients are returned.
    """
    if retain_graph is None:
        retain_graph = create_graph
    wanted = {id(t): None for t in inputs} if inputs is not None else None
    pending = {}           # Function -> [gradient of each output, summed over its consumers]
    queue, tiebreak = [], itertools.count()

    def deliver(edge, grad):
        tensor = edge.tensor()     # None once nobody holds the tensor: then nobody reads its grad
        if tensor is not None and wanted is not None and id(tensor) in wanted:
            wanted[id(tensor)] = grad if wanted[id(tensor)] is None else wanted[id(tensor)] + grad
        if tensor is not None and wanted is None and (edge.function is None or tensor._retain_grad):
            _accumulate_grad(tensor, grad, create_graph)
        function = edge.function
        if function is None:
            return
        if function not in pending:
            pending[function] = [None] * len(function.output_meta)
            heapq.heappush(queue, (-function.generation, next(tiebreak), function))
        slots = pending[function]
        slots[edge.output_index] = grad if slots[edge.output_index] is None \
            else slots[edge.output_index] + grad

    with set_grad_enabled(create_graph):
        for root, grad in zip(roots, root_grads):
            deliver(_Edge(root), grad)
        while queue:
            function = heapq.heappop(queue)[2]
            output_grads = pending.pop(function)
            if function.released:
                raise RuntimeError(
                    f"{function.name}: trying to backward through the graph a second time, but its "
                    f"saved buffers were freed by the first backward(). Pass retain_graph=True to "
                    f"the first backward() if you really need two passes.")
            if create_graph and not function.differentiable_backward:
                raise RuntimeError(f"{function.name}: create_graph=True is not supported, its "
                                   f"backward is written with raw arrays for speed")
            like = next(g for g in output_grads if g is not None).data
            output_grads = [g if g is not None else _zeros(shape, dtype, like)
                            for g, (shape, dtype) in zip(output_grads, function.output_meta)]
            input_grads = function.input_grads(output_grads)
            for edge, gx in zip(function.input_edges, input_grads):
                if gx is None or edge is None:
                    continue
                if gx.shape != edge.shape:
                    raise ShapeError(f"{function.name}.backward returned a gradient of shape "
                                     f"{gx.shape} for an input of shape {edge.shape}")
                deliver(edge, gx)
            if not retain_graph:
                function.release()
    if inputs is not None:
        return tuple(wanted[id(t)] for t in inputs)


def zero_grads(tensors, set_to_none=True):
    """Forget the accumulated gradients of ``tensors`` (they add up over backward calls):
    ``grad = None`` (the default, as in PyTorch) or filled with zeros in place. What
    ``Module.zero_grad`` and ``Optimizer.zero_grad`` do."""
    for tensor in tensors:
        if tensor.grad is None:
            continue
        if set_to_none:
            tensor.grad = None
        else:
            tensor.grad.data[...] = 0


def _zeros(shape, dtype, like):
    return Tensor(backend.get_array_module(like).zeros(shape, dtype=dtype))


def _accumulate_grad(tensor, grad, create_graph):
    """tensor.grad += grad. Without create_graph the stored gradient is a private, graph-free copy."""
    if create_graph:
        tensor.grad = grad if tensor.grad is None else tensor.grad + grad
    elif tensor.grad is None:
        tensor.grad = Tensor(grad.data.copy())
    else:
        tensor.grad.data += grad.data


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         allow_unused=False):
    """Gradients of ``outputs`` with respect to ``inputs``, returned rather than accumulated.

    Like ``torch.autograd.grad``. With ``create_graph=True`` the returned gradients are themselves
    part of a graph, so they can be differentiated again.
    """
    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    single_input = isinstance(inputs, Tensor)
    inputs = [inputs] if single_input else list(inputs)
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    elif isinstance(grad_outputs, Tensor):
        grad_outputs = [grad_outputs]
    seeds = []
    for out, g in zip(outputs, grad_outputs):
        if g is None:
            if out.data.size != 1:
                raise RuntimeError(f"grad(): output of shape {out.shape} needs a grad_outputs entry")
            g = Tensor(backend.get_array_module(out.data).ones_like(out.data))
        seeds.append(g if isinstance(g, Tensor) else Tensor(g))
    found = run_backward(outputs, seeds, retain_graph=retain_graph, create_graph=create_graph,
                         inputs=inputs)
    if not allow_unused and any(g is None for g in found):
        missing = [i for i, g in enumerate(found) if g is None]
        raise RuntimeError(f"grad(): inputs {missing} were not used to compute the outputs "
                           f"(pass allow_unused=True to get None for them)")
    return found[0] if single_input else found
