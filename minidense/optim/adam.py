"""Adam (Kingma & Ba 2015) and AdamW (Loshchilov & Hutter 2019), as in PyTorch.

For each parameter, with t counting this parameter's steps from 1::

    g = grad + weight_decay * p              (Adam: L2 penalty added to the gradient)
    p = p * (1 - lr * weight_decay)          (AdamW instead: "decoupled" decay of the weights)
    m = beta1 * m + (1 - beta1) * g          (running mean of gradients, m starts at 0)
    v = beta2 * v + (1 - beta2) * g**2       (running mean of squared gradients, v starts at 0)
    p = p - lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)

The divisions by ``1 - beta**t`` undo the bias of m and v towards their zero start.
"""
import math

from .. import backend
from .optimizer import Optimizer


class Adam(Optimizer):
    decoupled_weight_decay = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0):
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay))

    def check_options(self, group):
        super().check_options(group)
        name = type(self).__name__
        if len(group["betas"]) != 2 or not all(0 <= b < 1 for b in group["betas"]):
            raise ValueError(f"{name}: betas must be two numbers in [0, 1), got {group['betas']}")
        if group["eps"] < 0:
            raise ValueError(f"{name}: eps must be >= 0, got {group['eps']}")

    def update(self, param, grad, state, group):
        xp = backend.get_array_module(param.data)
        lr, (beta1, beta2), wd = group["lr"], group["betas"], group["weight_decay"]
        if not state:
            state.update(step=0, exp_avg=xp.zeros_like(param.data),
                         exp_avg_sq=xp.zeros_like(param.data))
        state["step"] += 1
        t = state["step"]
        if wd != 0 and self.decoupled_weight_decay:
            param.data *= 1 - lr * wd
        elif wd != 0:
            grad = grad + wd * param.data
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m *= beta1
        m += (1 - beta1) * grad
        v *= beta2
        v += (1 - beta2) * grad * grad
        denominator = xp.sqrt(v) / math.sqrt(1 - beta2 ** t) + group["eps"]
        param.data -= (lr / (1 - beta1 ** t)) * m / denominator


class AdamW(Adam):
    """Adam with decoupled weight decay: the weights shrink by ``lr * weight_decay`` each step
    instead of the decay entering the gradient (and hence m and v)."""
    decoupled_weight_decay = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
