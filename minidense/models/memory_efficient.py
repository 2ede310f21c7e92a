"""Memory-efficient dense blocks (Pleiss, Chen, Huang, Li, van der Maaten, Weinberger,
"Memory-Efficient Implementation of DenseNets", 2017).

Why the naive block is quadratic
--------------------------------
Layer l of a block reads the concatenation [x_0, x_1, ..., x_{l-1}] of c_0 + (l-1)k channels.
``cat`` copies all of them into a new array, and autograd keeps an array of that size alive until
the backward pass: the output of the fused BN-ReLU (the convolution's input; ReLU's backward
reads its sign). BN's normalised values x_hat, which BN's backward reads, are kept once per block
(with the fast kernels a channel's x_hat is kept once for all the layers that read it:
``SharedBatchStatistics`` in kernels/normalization.py). The
concatenation itself is freed once the next layer has read it, since neither BN's backward nor
cat's reads it. Summed over the layers that is about L c_0 + k L(L-1)/2 channels of feature maps:
memory grows with the square of the depth, while the *new* information is only k channels per
layer.

What this module does instead (the paper's "shared memory allocations" and recomputation)
------------------------------------------------------------------------------------------
1. Shared storage for the concatenation. ``SharedStorage`` is one array per block forward,
   shaped (N, c_0 + L*k, H, W). The block input is copied into its first c_0 channels, and each
   layer writes its k new channels right after the previous ones. Layer l's input is then the
   *view* ``buffer[:, :c_0 + (l-1)k]``: nothing is copied. The ``SharedConcat`` Function plays the
   role of ``cat`` in the graph: forward returns that view, backward splits the gradient into the
   slices that belong to each earlier feature map, exactly like ``cat``'s backward.
2. Recomputation of every BN-ReLU. ``NormReluConvRecomputed`` is one Function for
   BN -> ReLU -> Conv, used on the shared view and, in -B layers, again on the 4k-channel
   bottleneck output. Its forward computes the three steps and throws the
   intermediate arrays away, keeping only its inputs (the view and the parameters). Its backward
   recomputes BN and ReLU from the view, then runs the convolution's, ReLU's and BN's backward
   (the same kernels the ordinary ``Conv2d`` and ``BatchNorm`` Functions in ``ops/`` ask for).
   That costs one extra BN-ReLU per layer in the backward pass and saves both big arrays.
3. Running statistics are updated once. Only the forward pass moves BN's running mean and
   variance; the recomputation in backward normalises with the batch statistics without touching
   them (the pitfall the paper warns about).

What remains stored per layer is of constant size (k new channels; for -B layers also the
4k-channel bottleneck output, whose BN-ReLU is recomputed like the first), so a block's memory
grows linearly with its depth. The computed values, gradients and running statistics are the same as
the naive block's (tests/test_memory_efficient.py checks this in float64).
"""
from .. import backend
from ..autograd import ArrayFunction
from ..kernels import kernel
from ..ops.normalization import normalise_with_running_statistics, update_running_stats


class SharedStorage:
    """One (N, total_channels, H, W) array that a block's feature maps are written into in order."""

    def __init__(self, block_input, total_channels):
        data = block_input.data
        n, c, h, w = data.shape
        xp = backend.get_array_module(data)
        self.buffer = xp.empty((n, total_channels, h, w), dtype=data.dtype)
        self.buffer[:, :c] = data      # the block input is copied once (it belongs to the caller)
        self.filled = c

    def append(self, features):
        """Write a layer's new maps after the previous ones, then let the Tensor ``features`` hold
        the view of the buffer instead of its own array, so the maps are not stored twice."""
        k = features.shape[1]
        if self.filled + k > self.buffer.shape[1]:
            raise RuntimeError(f"SharedStorage: no room for {k} more channels "
                               f"({self.filled} of {self.buffer.shape[1]} used)")
        view = self.buffer[:, self.filled:self.filled + k]
        view[...] = features.data
        features.data = view
        self.filled += k

    def view(self, channels):
        return self.buffer[:, :channels]


class SharedConcat(ArrayFunction):
    """cat(features, axis=1) without a copy: the features already lie side by side in the storage.

    forward:  the view buffer[:, :c_0 + ... + c_j]
    backward: dL/dfeature_i = the slice of dL/dy in feature_i's channels (as for ``cat``)
    """

    def __init__(self, storage):
        self.storage = storage

    def forward(self, *features):
        channels = sum(f.shape[1] for f in features)
        if channels != self.storage.filled:
            raise RuntimeError(f"SharedConcat: the features have {channels} channels but the "
                               f"shared storage holds {self.storage.filled}; append each new "
                               f"feature map to the storage before concatenating")
        return self.storage.view(channels)

    def backward(self, gy):
        grads, start = [], 0
        for shape in self.input_shapes:
            stop = start + shape[1]
            grads.append(gy[:, start:stop])
            start = stop
        return tuple(grads)


class NormReluConvRecomputed(ArrayFunction):
    """y = conv(relu(batch_norm(x))), storing neither the BN nor the ReLU output.

    ``NormReluConvRecomputed(norm, conv)(x, gamma, beta, weight)`` with ``norm`` a BatchNorm2d
    and ``conv`` a Conv2d layer (their settings and running statistics are read from them).
    Saved for backward: the inputs only (x is a view of the shared storage). backward recomputes
    z = batch_norm(x) and a = relu(z), then chains
        conv backward  (dL/da, dL/dweight)
        relu backward  dL/dz = dL/da * [z > 0]
        BN backward    (dL/dx, dL/dgamma, dL/dbeta)
    """

    def __init__(self, norm, conv):
        self.training, self.eps, self.momentum = norm.training, norm.eps, norm.momentum
        self.running_mean, self.running_var = norm.running_mean.data, norm.running_var.data
        self.stride, self.padding = tuple(conv.stride), tuple(conv.padding)

    def _norm_relu(self, x, gamma, beta):
        """relu(BN(x)), x_hat, 1/sigma, and the batch mean and variance (None in evaluation);
        never touches the running statistics."""
        if self.training:
            x_hat, inv_std, mean, var = kernel("batch_statistics", x)(x, self.eps)
        else:
            x_hat, inv_std = normalise_with_running_statistics(x, self.running_mean,
                                                               self.running_var, self.eps)
            mean = var = None
        z = kernel("scale_shift", x)(x_hat, gamma, beta)
        xp = backend.get_array_module(z)
        return xp.maximum(z, 0, out=z), x_hat, inv_std, mean, var   # ReLU in place: one array

    def forward(self, x, gamma, beta, weight):
        self.save_for_backward(x, gamma, beta, weight)
        activated, _, _, mean, var = self._norm_relu(x, gamma, beta)
        if self.training:   # the only place the running statistics move
            update_running_stats(self.running_mean, self.running_var, mean, var,
                                 x.size // x.shape[1], self.momentum)
        return kernel("conv2d_forward", x)(activated, weight, self.stride, self.padding)  # a dropped

    def backward(self, gy):
        x, gamma, beta, weight = self.saved_values
        need_x, need_gamma, need_beta, need_weight = self.needs_input_grad
        activated, x_hat, inv_std, _, _ = self._norm_relu(x, gamma, beta)      # recompute
        g_activated, g_weight = kernel("conv2d_backward", gy)(
            gy, activated, weight, self.stride, self.padding, need_x or need_gamma or need_beta,
            need_weight)
        if g_activated is None:
            return None, None, None, g_weight
        g_activated *= activated > 0                                            # ReLU backward
        g_x, g_gamma, g_beta = kernel("batch_norm_backward", gy)(
            g_activated, x_hat, inv_std, gamma, self.training, need_x, need_gamma, need_beta)
        return g_x, g_gamma, g_beta, g_weight


def norm_relu_conv_recomputed(norm, relu, conv, x, statistics=None):
    """conv(relu(norm(x))) through ``NormReluConvRecomputed`` (the layers' parameters as inputs;
    ``relu`` is the layer's ReLU module, whose work the Function does itself). It recomputes batch
    norm from the shared buffer, so a dense block's shared statistics cannot be used here."""
    if statistics is not None:
        raise ValueError("memory-efficient dense layers recompute batch norm in the backward pass "
                         "and take no shared batch statistics; pass statistics=None")
    if conv.bias is not None:
        raise ValueError(f"memory-efficient dense layers expect convolutions without bias "
                         f"(bias=False, as BN follows), got {conv.describe()}")
    return NormReluConvRecomputed(norm, conv)(x, norm.weight, norm.bias, conv.weight)


def shared_storage_block_forward(block, x):
    """A DenseBlock's forward with shared storage and every BN-ReLU recomputed in backward.

    Same result as running the layers one after another; see the module docstring.
    """
    storage = SharedStorage(x, block.out_channels)
    features = [x]
    for layer in block.layers():
        concatenated = SharedConcat(storage)(*features)
        new = layer.new_features(concatenated, norm_relu_conv_recomputed)
        storage.append(new)
        features.append(new)
    return SharedConcat(storage)(*features)
