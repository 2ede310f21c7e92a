"""Shape ops: reshape, transpose, indexing, broadcasting, concatenation, split, stack, device moves.

None of these change values, so every backward only routes gradients back to where they came from:
reshape un-reshapes, transpose un-permutes, an index scatters, a broadcast sums, a concatenation
splits, a split concatenates.
"""
from .. import backend
from ..autograd import Function, ShapeError, Tensor
from . import parallel


def normalize_axis(axis=None, dim=None):
    """NumPy's ``axis`` with PyTorch's ``dim`` accepted as an alias."""
    if dim is not None:
        if axis is not None and axis != dim:
            raise TypeError(f"got both axis={axis} and dim={dim}; pass one of them")
        return dim
    return axis


def keepdims_shape(shape, axis):
    """The shape a reduction over ``axis`` has with keepdims=True."""
    if axis is None:
        return (1,) * len(shape)
    axes = [a % len(shape) for a in (axis if isinstance(axis, (tuple, list)) else (axis,))]
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


class Reshape(Function):
    """y = x viewed with a new shape.   dL/dx = reshape(dL/dy, x.shape)"""

    saves_inputs = False        # backward reads only the input's shape

    def __init__(self, shape):
        self.shape = shape

    def forward(self, x):
        try:
            return x.reshape(self.shape)
        except ValueError:
            raise ShapeError(f"reshape: cannot view {x.shape} ({x.size} elements) as {self.shape}")

    def backward(self, gy):
        return reshape(gy, self.input_shapes[0])


def reshape(x, *shape):
    shape = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
    if isinstance(x, Tensor) and x.shape == shape:
        return x
    return Reshape(shape)(x)


def flatten(x, start_dim=0, end_dim=-1):
    """Merge dimensions start_dim..end_dim into one (torch.flatten)."""
    n = x.ndim
    start, end = start_dim % n, end_dim % n
    size = 1
    for d in x.shape[start:end + 1]:
        size *= d
    return reshape(x, x.shape[:start] + (size,) + x.shape[end + 1:])


class Permute(Function):
    """y = x with its axes reordered.   dL/dx = dL/dy with the inverse order"""

    def __init__(self, axes):
        self.axes = axes

    def forward(self, x):
        if sorted(a % x.ndim for a in self.axes) != list(range(x.ndim)):
            raise ShapeError(f"permute: axes {self.axes} are not a permutation of a "
                             f"{x.ndim}-d tensor's dimensions (shape {x.shape})")
        return x.transpose(self.axes)

    def backward(self, gy):
        inverse = [0] * len(self.axes)
        for i, a in enumerate(self.axes):
            inverse[a % len(self.axes)] = i
        return permute(gy, *inverse)


def permute(x, *axes):
    axes = tuple(axes[0]) if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else axes
    return Permute(axes)(x)


def transpose(x, *axes):
    """``transpose()`` reverses the axes (x.T); ``transpose(d0, d1)`` swaps two (as in PyTorch);
    ``transpose((a0, a1, ...))`` with one tuple is NumPy's full permutation."""
    if len(axes) == 0:
        return permute(x, *reversed(range(x.ndim)))
    if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
        return permute(x, *axes[0])
    if len(axes) == 2:
        order = list(range(x.ndim))
        d0, d1 = axes[0] % x.ndim, axes[1] % x.ndim
        order[d0], order[d1] = order[d1], order[d0]
        return permute(x, *order)
    return permute(x, *axes)


def _plain_index(index):
    """Tensors inside an index become arrays."""
    if isinstance(index, tuple):
        return tuple(i.data if isinstance(i, Tensor) else i for i in index)
    return index.data if isinstance(index, Tensor) else index


def _is_advanced(index):
    parts = index if isinstance(index, tuple) else (index,)
    return any(not isinstance(p, (int, slice, type(None), type(Ellipsis))) for p in parts)


class GetItem(Function):
    """y = x[index].   dL/dx = zeros with dL/dy scattered (added) back at index"""

    saves_inputs = False

    def __init__(self, index):
        self.index = index

    def forward(self, x):
        try:
            return x[self.index]
        except IndexError as exc:
            raise IndexError(f"indexing a tensor of shape {x.shape} with {self.index!r}: {exc}")

    def backward(self, gy):
        return ScatterAdd(self.index, self.input_shapes[0])(gy)


class ScatterAdd(Function):
    """y = zeros(shape); y[index] += x.   Its backward is indexing again: dL/dx = (dL/dy)[index]"""

    def __init__(self, index, shape):
        self.index, self.shape = index, shape

    def forward(self, gy):
        xp = backend.get_array_module(gy)
        out = xp.zeros(self.shape, dtype=gy.dtype)
        if _is_advanced(self.index):   # repeated indices must add up
            backend.scatter_add(out, self.index, gy)
        else:
            out[self.index] = gy
        return out

    def backward(self, ggx):
        return GetItem(self.index)(ggx)


def getitem(x, index):
    return GetItem(_plain_index(index))(x)


class BroadcastTo(Function):
    """y = x repeated along new or size-1 axes.   dL/dx = dL/dy summed over those axes"""

    saves_inputs = False

    def __init__(self, shape):
        self.shape = tuple(shape)

    def forward(self, x):
        return backend.get_array_module(x).broadcast_to(x, self.shape)

    def backward(self, gy):
        return sum_to(gy, self.input_shapes[0])


def broadcast_to(x, shape):
    if x.shape == tuple(shape):
        return x
    return BroadcastTo(shape)(x)


class SumTo(Function):
    """y = x summed down to ``shape`` (undoes broadcasting).   dL/dx = broadcast dL/dy back"""

    saves_inputs = False

    def __init__(self, shape):
        self.shape = tuple(shape)

    def forward(self, x):
        return sum_to_array(x, self.shape)

    def backward(self, gy):
        return broadcast_to(gy, self.input_shapes[0])


def sum_to_array(x, shape):
    """Sum an array over the axes that broadcasting added or stretched to reach x.shape."""
    lead = x.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape) if n == 1
                                      and x.shape[lead + i] != 1)
    y = x.sum(axis=axes, keepdims=True) if axes else x
    return y.reshape(shape) if lead else y


def sum_to(x, shape):
    if x.shape == tuple(shape):
        return x
    return SumTo(shape)(x)


class Cat(Function):
    """y = [x1, x2, ...] joined along ``axis``.   dL/dxi = the slice of dL/dy that xi filled

    Its backward reads only the sizes along ``axis``, so the inputs are not kept: in a dense
    layer, the previous concatenation can be freed as soon as the new one is made.
    """

    saves_inputs = False

    def __init__(self, axis):
        self.axis = axis

    def forward(self, *xs):
        axis = self.axis % xs[0].ndim
        for i, x in enumerate(xs):
            if x.ndim != xs[0].ndim or x.shape[:axis] + x.shape[axis + 1:] != \
                    xs[0].shape[:axis] + xs[0].shape[axis + 1:]:
                raise ShapeError(f"cat: along axis {self.axis} all shapes must match except that "
                                 f"axis, got {[t.shape for t in xs]}")
        xp = backend.get_array_module(*xs)
        parts = parallel.parts_for(*xs) if axis > 0 else 1
        if parts == 1:
            return xp.concatenate(xs, axis=axis)
        # the parallel path: each part of the batch (axis 0) is joined on its own, at once
        shape = list(xs[0].shape)
        shape[axis] = sum(x.shape[axis] for x in xs)
        y = xp.empty(shape, dtype=xp.result_type(*xs))
        parallel.over_batch(lambda y_part, *x_parts: xp.concatenate(x_parts, axis=axis,
                                                                    out=y_part), y, *xs,
                            parts=parts)
        return y

    def backward(self, gy):
        sizes = [shape[self.axis] for shape in self.input_shapes]
        return split(gy, sizes, axis=self.axis)


def cat(tensors, axis=1, dim=None):
    """Concatenate along ``axis`` (default 1, the channel axis of NCHW, which is what DenseNet
    joins; note torch.cat's default is 0)."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("cat: needs at least one tensor")
    return Cat(normalize_axis(axis, dim))(*tensors)


class Split(Function):
    """(y1, y2, ...) = consecutive slices of x along ``axis``.   dL/dx = cat(dL/dy1, dL/dy2, ...)"""

    def __init__(self, sizes, axis):
        self.sizes, self.axis = sizes, axis

    def forward(self, x):
        if sum(self.sizes) != x.shape[self.axis]:
            raise ShapeError(f"split: sizes {self.sizes} add up to {sum(self.sizes)}, but axis "
                             f"{self.axis} of shape {x.shape} has {x.shape[self.axis]}")
        bounds, start = [], 0
        for size in self.sizes:
            bounds.append(slice(start, start + size))
            start += size
        head = (slice(None),) * (self.axis % x.ndim)
        return tuple(x[head + (b,)] for b in bounds)

    def backward(self, *grads):
        return cat(grads, axis=self.axis)


def split(x, split_size_or_sections, axis=0, dim=None):
    """Split into chunks of ``split_size`` or into pieces of the listed sizes (torch.split)."""
    axis = normalize_axis(axis, dim)
    length = x.shape[axis]
    if isinstance(split_size_or_sections, int):
        step = split_size_or_sections
        if step <= 0:
            raise ValueError(f"split: chunk size must be positive, got {step}")
        sizes = [min(step, length - s) for s in range(0, length, step)]
    else:
        sizes = list(split_size_or_sections)
    return Split(sizes, axis)(x)


class Stack(Function):
    """y = [x1, x2, ...] stacked on a new ``axis``.   dL/dxi = dL/dy taken at index i of that axis"""

    saves_inputs = False

    def __init__(self, axis):
        self.axis = axis

    def forward(self, *xs):
        if len({x.shape for x in xs}) != 1:
            raise ShapeError(f"stack: all shapes must be equal, got {[x.shape for x in xs]}")
        return backend.get_array_module(*xs).stack(xs, axis=self.axis)

    def backward(self, gy):
        head = (slice(None),) * (self.axis % gy.ndim)
        return tuple(getitem(gy, head + (i,)) for i in range(len(self.input_shapes)))


def stack(tensors, axis=0, dim=None):
    return Stack(normalize_axis(axis, dim))(*list(tensors))


class To(Function):
    """y = x on another device and/or with another float dtype.   dL/dx = dL/dy moved/cast back"""

    saves_inputs = False        # backward needs the input's device and dtype, not its values

    def __init__(self, device, dtype):
        self.device, self.dtype = device, dtype

    def forward(self, x):
        self.input_device, self.input_dtype = backend.device_of(x), x.dtype
        y = backend.to_device(x, self.device) if self.device else x
        return y.astype(self.dtype) if self.dtype is not None and y.dtype != self.dtype else y

    def backward(self, gy):
        return to(gy, self.input_device, self.input_dtype)


def to(x, device=None, dtype=None):
    """Move to 'cpu'/'cuda' and/or cast; returns x itself when nothing changes."""
    import numpy
    device = backend.check_device(device) if device is not None else None
    dtype = numpy.dtype(dtype) if dtype is not None else None
    if (device is None or device == x.device) and (dtype is None or dtype == x.dtype):
        return x
    return To(device, dtype)(x)
