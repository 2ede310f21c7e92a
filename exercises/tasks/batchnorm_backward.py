"""Task batchnorm_backward: the gradients of batch normalization in training mode.

Run the tests:  python -m pytest exercises/tests/test_batchnorm_backward.py
The forward pass (training mode, without the running statistics) is given.
"""
import numpy as np

AXES = (0, 2, 3)   # the axes a channel's statistics are taken over (N, H, W)


def batchnorm_forward(x, gamma, beta, eps=1e-5):
    """Given: out = gamma * x_hat + beta with x_hat = (x - mean) / sqrt(var + eps) per channel."""
    mean, var = x.mean(axis=AXES, keepdims=True), x.var(axis=AXES, keepdims=True)
    inv_std = 1.0 / np.sqrt(var + eps)
    x_hat = (x - mean) * inv_std
    out = gamma.reshape(1, -1, 1, 1) * x_hat + beta.reshape(1, -1, 1, 1)
    return out, (x_hat, inv_std, gamma)


def batchnorm_backward(dout, cache):
    """Gradients of the loss with respect to x, gamma and beta, given dout = dL/dout.

    dout: (N, C, H, W)      cache: (x_hat, inv_std, gamma) from batchnorm_forward,
                            inv_std = 1/sqrt(var + eps) with shape (1, C, 1, 1)
    returns (dx, dgamma, dbeta) with shapes (N, C, H, W), (C,), (C,).

        dbeta  = sum of dout over N, H, W
        dgamma = sum of dout * x_hat over N, H, W
        dx     = ?   Work it out on paper. Start from dx_hat = dL/dx_hat = gamma * dout and
                 x_hat = (x - mean) * inv_std, where both mean and var (inside inv_std) are
                 functions of every x of the channel (M = N*H*W values):
                     dmean/dx = 1/M,    dvar/dx = 2 * (x - mean) / M.
                 So dx collects three paths: directly through x, through the mean and through
                 the variance. dx is NOT simply gamma * inv_std * dout. Check: dx sums to zero
                 over each channel, and so does dx * x_hat (nearly: eps).

    A gradient check with an all-ones upstream gradient cannot catch a wrong dx here (the sum of
    batch-normalized outputs does not depend on x); md.gradcheck uses a random one.
    """
    raise NotImplementedError("batchnorm_backward: implement batchnorm_backward(dout, cache)")
