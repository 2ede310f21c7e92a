"""Fast convolution kernels: stride 1 as shifted products, and the batch split over the cores.

The textbook convolution (ops/conv.py) copies every window into a column (im2col) and multiplies.
im2col copies the input kh*kw times (9x for 3x3), and with only O = k = 12 output channels the
matmul that follows is thin and memory-bound. For stride 1 take the product the other way round:
multiply first, on the input as it is, then shift and add the kh*kw partial outputs, which have
only O channels each:

    partial[n, i, j] = weight[:, :, i, j] @ x[n]        per image one matmul: (kh*kw*O, C) @ (C, H*W)
    y[n, :, r, s] = sum_{i,j} partial[n, i, j][:, r + i - ph, s + j - pw]     (shift and add)

A 1x1 kernel without padding has one offset and no shift: the convolution is that one matmul
(DenseNet-BC's bottleneck layers and the transitions). The backward pass mirrors it: shift dL/dy
into the kh*kw positions (a small im2col of dL/dy, which has O channels, not C), then one matmul
each for dL/dx and dL/dweight. Same arithmetic, far less memory traffic. Every product is taken
image by image (x[n] is a C x (H*W) matrix as it lies in memory; ``matmul`` runs the N products in
one call), so no transposed copy of x, of dL/dx or of y is made.

Other strides run the textbook im2col kernels. On the CPU either path is split over the batch
(threads.py): every image is convolved on its own, so each part fills its rows of y and of dL/dx,
and dL/dweight is the sum of the parts' (a sum over images, like the product it replaces).
"""
from .. import backend
from ..ops.conv import conv2d_backward_im2col, conv2d_forward_im2col
from ..ops.windows import output_size
from . import fast_kernel, threads


@fast_kernel("conv2d_forward")
def conv2d_forward(x, weight, stride, padding):
    """y = conv2d(x, weight) (no bias): shifted products for stride 1, im2col otherwise; split
    over the batch on the CPU."""
    def path(x_part, out=None):
        if stride == (1, 1):
            return _stride1_forward(x_part, weight, padding, out)
        return _into(out, conv2d_forward_im2col(x_part, weight, stride, padding))

    parts = threads.parts_for(x)
    if parts == 1:
        return path(x)
    (h, w), (kh, kw) = x.shape[2:], weight.shape[2:]
    out_size = output_size(h, kh, stride[0], padding[0]), output_size(w, kw, stride[1], padding[1])
    y = backend.get_array_module(x).empty(x.shape[:1] + weight.shape[:1] + out_size, x.dtype)
    threads.over_batch(path, x, y, parts=parts, matmul=True)
    return y


@fast_kernel("conv2d_backward")
def conv2d_backward(gy, x, weight, stride, padding, need_x=True, need_weight=True):
    """(dL/dx, dL/dweight) by the path the forward pass took, split over the batch on the CPU."""
    def path(gy_part, x_part, out=None):
        if stride == (1, 1):
            return _stride1_backward(gy_part, x_part, weight, padding, need_x, need_weight, out)
        gx, gw = conv2d_backward_im2col(gy_part, x_part, weight, stride, padding, need_x,
                                        need_weight)
        return (None if gx is None else _into(out, gx)), gw

    parts = threads.parts_for(x)
    if parts == 1:
        return path(gy, x)
    gx = backend.get_array_module(x).empty(x.shape, gy.dtype) if need_x else None
    results = threads.over_batch(path, gy, x, *([gx] if need_x else []), parts=parts,
                                 matmul=True)
    gw = sum(r[1] for r in results) if need_weight else None
    return gx, gw


def _into(out, a):
    """``a``, copied into ``out`` when an output buffer is given."""
    if out is None:
        return a
    out[...] = a
    return out


def _per_image(a):
    """(N, C, H, W) -> (N, C, H*W): each image a C x (H*W) matrix (a view when ``a`` is contiguous)."""
    return a.reshape(a.shape[0], a.shape[1], -1)


def _matmul_into(a, b, out, shape):
    """(a @ b).reshape(shape), written straight into ``out`` when given (the parts of the parallel
    path are C-contiguous, so the product needs no copy)."""
    xp = backend.get_array_module(b)
    if out is None or not out.flags.c_contiguous:
        return _into(out, xp.matmul(a, b).reshape(shape))
    xp.matmul(a, b, out=out.reshape(b.shape[:-2] + (a.shape[-2], b.shape[-1])))
    return out


def _valid_range(out_size, in_size, offset, pad):
    """Output positions r whose input position r + offset - pad lies inside the input."""
    return max(0, pad - offset), min(out_size, in_size + pad - offset)


def _shifts(kernel, padding, out_hw, in_hw):
    """For each kernel offset (i, j): the output slice and the input slice it connects."""
    (kh, kw), (ph, pw) = kernel, padding
    for i in range(kh):
        r0, r1 = _valid_range(out_hw[0], in_hw[0], i, ph)
        for j in range(kw):
            s0, s1 = _valid_range(out_hw[1], in_hw[1], j, pw)
            yield i, j, (slice(r0, r1), slice(s0, s1)), \
                (slice(r0 + i - ph, r1 + i - ph), slice(s0 + j - pw, s1 + j - pw))


def _stride1_forward(x, weight, padding, out=None):
    """y = conv2d(x, weight, stride=1): per image one matmul on x itself, then shift-and-add
    (O channels). Written into ``out`` when given."""
    xp = backend.get_array_module(x)
    n, c, h, w = x.shape
    o, _, kh, kw = weight.shape
    oh, ow = h + 2 * padding[0] - kh + 1, w + 2 * padding[1] - kw + 1
    w_offsets = weight.transpose(2, 3, 0, 1).reshape(kh * kw * o, c)    # rows ordered (i, j, o)
    if (kh, kw) == (1, 1) and tuple(padding) == (0, 0):
        return _matmul_into(w_offsets, _per_image(x), out, (n, o, h, w))  # y[n] = W @ x[n]
    partial = xp.matmul(w_offsets, _per_image(x)).reshape(n, kh, kw, o, h, w)
    if out is None:
        y = xp.zeros((n, o, oh, ow), dtype=partial.dtype)
    else:
        y = out
        y[...] = 0
    for i, j, (rows, cols), (in_rows, in_cols) in _shifts((kh, kw), padding, (oh, ow), (h, w)):
        y[:, :, rows, cols] += partial[:, i, j, :, in_rows, in_cols]
    return y


def _stride1_backward(gy, x, weight, padding, need_x, need_weight, out=None):
    """dL/dx and dL/dweight of the stride-1 convolution, per image n:

    shifted[n, i, j][:, r + i - ph, s + j - pw] = dL/dy[n, :, r, s]    (dL/dy moved to each offset)
    dL/dx[n]   = sum_{i,j,o} weight[o, :, i, j] * shifted[n, i, j, o]  one matmul
    dL/dweight = sum_n x[n] @ shifted[n]^T                            one matmul per image, summed
    """
    xp = backend.get_array_module(gy)
    n, c, h, w = x.shape
    o, _, kh, kw = weight.shape
    oh, ow = gy.shape[2:]
    if (kh, kw) == (1, 1) and tuple(padding) == (0, 0):
        shifted = _per_image(gy)                                         # (N, O, H*W)
    else:
        shifted = xp.zeros((n, kh, kw, o, h, w), dtype=gy.dtype)
        for i, j, (rows, cols), (in_rows, in_cols) in _shifts((kh, kw), padding, (oh, ow), (h, w)):
            shifted[:, i, j, :, in_rows, in_cols] = gy[:, :, rows, cols]
        shifted = shifted.reshape(n, kh * kw * o, h * w)
    gx = gw = None
    if need_x:
        w_by_input = weight.transpose(1, 2, 3, 0).reshape(c, kh * kw * o)   # columns (i, j, o)
        gx = _matmul_into(w_by_input, shifted, out, x.shape)
    if need_weight:
        # per image (C, H*W) @ (H*W, kh*kw*O), BLAS reading shifted[n] transposed in place
        gw_by_input = xp.matmul(_per_image(x), shifted.transpose(0, 2, 1)).sum(axis=0)
        gw = xp.ascontiguousarray(gw_by_input.reshape(c, kh, kw, o).transpose(3, 0, 1, 2))
    return gx, gw
