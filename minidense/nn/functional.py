"""The functional API (``import minidense.nn.functional as F``), with PyTorch's names and argument
order. Layers in minidense.nn hold parameters and call these; each op's forward and backward live in
minidense/ops/ (the fast kernels they run by default in minidense/kernels/):

    conv2d                                      ops/conv.py
    batch_norm                                  ops/normalization.py
    batch_norm_relu                             ops/normalization.py; fused: kernels/normalization.py
    avg_pool2d, max_pool2d, adaptive_avg_pool2d ops/pooling.py
    dropout, softmax, log_softmax               ops/activation.py
    cross_entropy, nll_loss                     ops/loss.py
    relu, sigmoid, tanh                         ops/elementwise.py
    linear, flatten                             composed from matmul, add, reshape
"""
from ..autograd import ShapeError, Tensor
from ..kernels import kernel
from ..ops.activation import dropout, log_softmax, softmax
from ..ops.conv import conv2d
from ..ops.elementwise import relu, sigmoid, tanh
from ..ops.loss import cross_entropy, nll_loss
from ..ops.normalization import batch_norm
from ..ops.pooling import adaptive_avg_pool2d, avg_pool2d, max_pool2d
from ..ops.shape import flatten, reshape, transpose

__all__ = ["conv2d", "batch_norm", "batch_norm_relu", "avg_pool2d", "max_pool2d", "adaptive_avg_pool2d", "relu",
           "sigmoid", "tanh", "dropout", "linear", "softmax", "log_softmax", "cross_entropy",
           "nll_loss", "flatten"]


def batch_norm_relu(x, running_mean, running_var, weight=None, bias=None, training=False,
                    momentum=0.1, eps=1e-5, statistics=None):
    """relu(batch_norm(x, ...)), arguments as for ``batch_norm``. The fast kernels run it as one
    fused op, one stored array fewer (DenseNet's BN-ReLU-Conv layers use it); ``statistics``, a
    dense block's shared batch statistics (training mode), is read by that fused op only."""
    data = x.data if isinstance(x, Tensor) else x
    return kernel("batch_norm_relu", data)(x, running_mean, running_var, weight, bias, training,
                                           momentum, eps, statistics)


def linear(x, weight, bias=None):
    """y = x @ weight^T + bias, weight of shape (out_features, in_features) as in PyTorch.

    The backward comes from matmul and add: dL/dx = dL/dy @ W, dL/dW = dL/dy^T @ x (summed over
    leading batch axes), dL/db = dL/dy summed over the batch. A 1-D input (one sample of
    in_features values) gives a 1-D output, as in PyTorch.
    """
    if weight.ndim != 2:
        raise ShapeError(f"linear: weight must be 2-D (out_features, in_features), got {weight.shape}")
    if x.ndim < 1 or x.shape[-1] != weight.shape[1]:
        raise ShapeError(f"linear: input of shape {x.shape} has {x.shape[-1] if x.ndim else 0} "
                         f"features but the weight {weight.shape} expects {weight.shape[1]}")
    if x.ndim == 1:     # one sample: as a batch of one, then back to 1-D
        return reshape(linear(reshape(x, 1, x.shape[0]), weight, bias), weight.shape[0])
    y = x @ transpose(weight)
    return y if bias is None else y + bias
