"""Reference solution for the batchnorm_forward task."""
import numpy as np


def per_channel(values):
    return values.reshape(1, -1, 1, 1)


def batchnorm_forward(x, gamma, beta, running_mean, running_var, training, momentum=0.1,
                      eps=1e-5):
    if training:
        mean, var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))
        count = x.size // x.shape[1]
        running_mean[...] = (1 - momentum) * running_mean + momentum * mean
        running_var[...] = (1 - momentum) * running_var + momentum * var * count / (count - 1)
    else:
        mean, var = running_mean, running_var
    inv_std = 1.0 / np.sqrt(var + eps)
    x_hat = (x - per_channel(mean)) * per_channel(inv_std)
    out = per_channel(gamma) * x_hat + per_channel(beta)
    return out, (x_hat, inv_std, gamma)
