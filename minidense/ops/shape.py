"""Shape ops: reshape, transpose, indexing, broadcasting, device moves (concatenation: concat.py).

None of these change values, so every backward only routes gradients back to where they came from:
reshape un-reshapes, transpose un-permutes, an index scatters, a broadcast sums.
"""
from .. import backend
from ..autograd import Function, ShapeError, Tensor


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
