"""Stochastic gradient descent with momentum, Nesterov momentum and weight decay.

The rule, exactly as PyTorch's ``torch.optim.SGD`` (DenseNet trains with lr 0.1, momentum 0.9,
Nesterov, weight decay 1e-4)::

    g = grad + weight_decay * p
    buf = g                                         on the first step
    buf = momentum * buf + (1 - dampening) * g      afterwards
    g = g + momentum * buf    (nesterov)    or    g = buf    (plain momentum)
    p = p - lr * g

With ``momentum=0`` it is plain gradient descent: ``p = p - lr * (grad + weight_decay * p)``.
"""
from ..kernels import kernel, textbook_kernel
from .optimizer import Optimizer


@textbook_kernel("sgd_update")
def sgd_update_arrays(param, grad, state, lr, momentum, dampening, nesterov, weight_decay):
    """The rule above on arrays: ``param`` and the momentum buffer kept in ``state`` change in
    place. (On a GPU, kernels/cuda.py does the same in one fused kernel.)"""
    g = grad + weight_decay * param if weight_decay != 0 else grad
    if momentum != 0:
        buf = state.get("momentum_buffer")
        if buf is None:
            buf = state["momentum_buffer"] = g.copy()
        else:
            buf *= momentum
            buf += (1 - dampening) * g
        g = g + momentum * buf if nesterov else buf
    param -= lr * g


class SGD(Optimizer):
    def __init__(self, params, lr, momentum=0, dampening=0, nesterov=False, weight_decay=0):
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      nesterov=nesterov, weight_decay=weight_decay))

    def check_options(self, group):
        super().check_options(group)
        if group["momentum"] < 0:
            raise ValueError(f"SGD: momentum must be >= 0, got {group['momentum']}")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(f"SGD: Nesterov momentum requires momentum > 0 and dampening = 0, "
                             f"got momentum={group['momentum']}, dampening={group['dampening']}")

    def update(self, param, grad, state, group):
        kernel("sgd_update", param.data)(param.data, grad, state, group["lr"], group["momentum"],
                                         group["dampening"], group["nesterov"],
                                         group["weight_decay"])
