"""Task batchnorm_forward: batch normalization over the channels of an NCHW batch, train and eval.

Run the tests:  python -m pytest exercises/tests/test_batchnorm_forward.py
"""
import numpy as np


def batchnorm_forward(x, gamma, beta, running_mean, running_var, training, momentum=0.1,
                      eps=1e-5):
    """Normalize each channel, then scale and shift it (PyTorch's F.batch_norm).

    x: (N, C, H, W)     gamma, beta, running_mean, running_var: (C,)
    returns (out, cache): out has x's shape; cache holds what a backward pass would need.

    Training (training=True), per channel c over the M = N*H*W values x[:, c]:
        mean = average of x[:, c],   var = average of (x[:, c] - mean)**2     (biased: divide by M)
        out[:, c] = gamma[c] * (x[:, c] - mean) / sqrt(var + eps) + beta[c]
      and update the running statistics IN PLACE (running_mean[...] = ..., not a new array):
        running_mean = (1 - momentum) * running_mean + momentum * mean
        running_var  = (1 - momentum) * running_var  + momentum * var * M / (M - 1)   (unbiased)

    Evaluation (training=False): use running_mean and running_var instead of the batch
    statistics, and leave them unchanged.

    Hint: x.mean(axis=(0, 2, 3)) gives the C means; reshape (C,) arrays to (1, C, 1, 1) to broadcast.
    """
    raise NotImplementedError("batchnorm_forward: implement batchnorm_forward(x, gamma, beta, ...)")
