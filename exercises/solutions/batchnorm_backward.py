"""Reference solution for the batchnorm_backward task."""
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
    x_hat, inv_std, gamma = cache
    dbeta = dout.sum(axis=AXES)
    dgamma = (dout * x_hat).sum(axis=AXES)
    dx_hat = dout * gamma.reshape(1, -1, 1, 1)
    centered = dx_hat - dx_hat.mean(axis=AXES, keepdims=True)
    dx = inv_std * (centered - x_hat * (dx_hat * x_hat).mean(axis=AXES, keepdims=True))
    return dx, dgamma, dbeta
