"""minidense: a small deep-learning framework on NumPy (CPU) and CuPy (GPU), built for learning.

    import minidense as md
    x = md.tensor([[1.0, 2.0]], requires_grad=True)
    (x * x).sum().backward()
    x.grad      # tensor([[2., 4.]])

Where things live: autograd.py (Tensor, Function, backward) -> ops/ (each op's forward and backward)
-> nn/ (layers) -> models/ (DenseNet) -> data/ and train.py -> analysis/ (Figure 5). The fast
kernels the ops run by default are in kernels/; ``md.use_kernels("reference")`` switches every op to
its textbook kernel.
"""
import numpy as _np

from . import backend, cpu_memory
from .autograd import (ArrayFunction, Function, ShapeError, Tensor, enable_grad, grad,
                       is_grad_enabled, no_grad, set_grad_enabled)
from .backend import cuda_available
from .creation import (arange, full, ones, ones_like, rand, randn, randn_like, tensor, zeros,
                       zeros_like)
from .ops import (abs, argmax, cat, exp, flatten, log, matmul, max, mean, min, permute, relu,
                  reshape, sigmoid, split, sqrt, stack, sum, tanh, transpose)
from .kernels import active_kernels, use_kernels
from .kernels.threads import get_num_threads, set_num_threads
from .random import manual_seed
from . import gradcheck as gradcheck_module
from .gradcheck import GradcheckError, GradcheckReport, gradcheck, gradgradcheck
from .serialization import load, save
from . import nn, optim

__version__ = "0.1.0"

cpu_memory.keep_freed_memory_unless_switched_off()   # reuse freed pages, as CuPy's pool does

float16, float32, float64 = _np.float16, _np.float32, _np.float64
int32, int64, uint8, bool_ = _np.int32, _np.int64, _np.uint8, _np.bool_
concatenate = cat


def summary(model, input_shape=None, **kwargs):
    """Print a per-layer table of ``model`` (shapes, parameters, multiply-adds, activation memory)
    and return the numbers; see ``minidense.models.summary``."""
    from .models.summary import summary as model_summary
    return model_summary(model, input_shape, **kwargs)
