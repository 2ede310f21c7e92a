"""Concatenation and its relatives: cat, split and stack.

    cat     y = [x1, x2, ...] joined along an axis      dL/dxi = the slice of dL/dy that xi filled
    split   the reverse: consecutive slices             dL/dx  = cat of the slices' gradients
    stack   y = [x1, x2, ...] on a new axis             dL/dxi = dL/dy at index i of that axis

A dense layer's output is ``cat([x, new_features], axis=1)``. Cat asks for the kernel
``concatenate``: the textbook one is NumPy's, the fast one (kernels/concat.py) joins parts of the
batch at once.
"""
from .. import backend
from ..autograd import Function, ShapeError
from ..kernels import kernel, textbook_kernel
from .shape import getitem, normalize_axis


@textbook_kernel("concatenate")
def concatenate(xs, axis):
    """The arrays ``xs`` joined along ``axis`` into a new array."""
    return backend.get_array_module(*xs).concatenate(xs, axis=axis)


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
        for x in xs:
            if x.ndim != xs[0].ndim or x.shape[:axis] + x.shape[axis + 1:] != \
                    xs[0].shape[:axis] + xs[0].shape[axis + 1:]:
                raise ShapeError(f"cat: along axis {self.axis} all shapes must match except that "
                                 f"axis, got {[t.shape for t in xs]}")
        return kernel("concatenate", *xs)(xs, axis)

    def backward(self, gy):
        sizes = [shape[self.axis] for shape in self.input_shapes]
        return split(gy, sizes, axis=self.axis)


def cat(tensors, axis=None, dim=None):
    """Concatenate along ``axis`` (default 0, as numpy.concatenate and torch.cat; DenseNet joins
    the channels of NCHW tensors, so its code passes ``axis=1``)."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("cat: needs at least one tensor")
    return Cat(_axis_or_zero(axis, dim))(*tensors)


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


def split(x, split_size_or_sections, axis=None, dim=None):
    """Split into chunks of ``split_size`` or into pieces of the listed sizes (torch.split)."""
    axis = _axis_or_zero(axis, dim)
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


def stack(tensors, axis=None, dim=None):
    return Stack(_axis_or_zero(axis, dim))(*list(tensors))


def _axis_or_zero(axis, dim):
    """``axis`` or its PyTorch alias ``dim``; 0 when neither is given (NumPy's and PyTorch's default)."""
    axis = normalize_axis(axis, dim)
    return 0 if axis is None else axis
