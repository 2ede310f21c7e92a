"""Reference solution for the sgd_nesterov_step task."""


def sgd_nesterov_step(param, grad, buffer, lr, momentum=0.9, weight_decay=0.0):
    g = grad + weight_decay * param
    buffer = g.copy() if buffer is None else momentum * buffer + g
    return param - lr * (g + momentum * buffer), buffer
