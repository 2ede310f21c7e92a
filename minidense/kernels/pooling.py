"""Fast average pooling: the textbook kernels (ops/pooling.py) run on parts of the batch at once.

Every image is pooled on its own, so each part of the batch fills its rows of y in the forward pass
and of dL/dx in the backward pass (threads.py). The numbers are the textbook's.
"""
from .. import backend
from ..ops.pooling import average_windows, average_windows_backward
from ..ops.windows import output_size
from . import fast_kernel, threads


@fast_kernel("avg_pool2d_forward")
def avg_pool2d_forward(x, kernel_size, stride, padding):
    parts = threads.parts_for(x)
    if parts == 1:
        return average_windows(x, kernel_size, stride, padding)
    out_size = tuple(output_size(size, k, s, p)
                     for size, k, s, p in zip(x.shape[2:], kernel_size, stride, padding))
    y = backend.get_array_module(x).empty(x.shape[:2] + out_size, dtype=x.dtype)
    return threads.fill_over_batch(
        y, lambda x_part: average_windows(x_part, kernel_size, stride, padding), x, parts=parts)


@fast_kernel("avg_pool2d_backward")
def avg_pool2d_backward(gy, x_shape, kernel_size, stride, padding):
    parts = threads.parts_for(gy)
    if parts == 1:
        return average_windows_backward(gy, x_shape, kernel_size, stride, padding)
    gx = backend.get_array_module(gy).empty(x_shape, dtype=gy.dtype)
    return threads.fill_over_batch(
        gx, lambda gy_part: average_windows_backward(gy_part, gy_part.shape[:1] + x_shape[1:],
                                                     kernel_size, stride, padding),
        gy, parts=parts)
