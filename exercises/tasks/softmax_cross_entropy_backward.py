"""Task softmax_cross_entropy_backward: the gradient of the classification loss.

Run the tests:  python -m pytest exercises/tests/test_softmax_cross_entropy_backward.py
The forward pass is given.
"""
import numpy as np


def softmax_cross_entropy_forward(logits, targets):
    """Given: loss = mean over the batch of -log softmax(logits)[n, targets[n]] (a float)."""
    shifted = logits - logits.max(axis=1, keepdims=True)        # same softmax, no overflow
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -log_probs[np.arange(len(targets)), targets].mean()
    return loss, (np.exp(log_probs), targets)


def softmax_cross_entropy_backward(dloss, cache):
    """dlogits = dL/dlogits given dloss = dL/dloss (a number; 1.0 when the loss is the output).

    cache:   (probs, targets): probs = softmax(logits) of shape (N, C), targets (N,) class indices
    returns: dlogits of shape (N, C)

        dlogits[n, c] = dloss * (probs[n, c] - [c == targets[n]]) / N

    (the /N comes from taking the mean over the batch). Each row of dlogits sums to 0.
    """
    raise NotImplementedError("softmax_cross_entropy_backward: implement "
                              "softmax_cross_entropy_backward(dloss, cache)")
