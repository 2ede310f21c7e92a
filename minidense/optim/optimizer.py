"""``Optimizer``: parameter groups, per-parameter state, zero_grad and (de)serialisation.

A subclass writes ``update(param, grad, state, group)``: the rule for one parameter, on raw arrays
(NumPy or CuPy, whichever the parameter lives in), changing ``param.data`` in place. No autograd
graph is recorded. Parameters whose ``grad`` is None (unused this step) are skipped.

Parameter groups work as in PyTorch: pass a list of parameters, or a list of dicts such as
``[{"params": backbone.parameters()}, {"params": head.parameters(), "lr": 0.01}]``; options missing
from a group come from the optimizer's defaults.
"""
import numpy

from .. import backend
from ..autograd import Tensor, enable_grad, zero_grads


class Optimizer:
    def __init__(self, params, defaults):
        self.defaults = dict(defaults)
        self.param_groups = []
        self.state = {}          # Parameter -> dict of arrays and numbers (e.g. momentum_buffer)
        if isinstance(params, Tensor):
            raise TypeError(f"{type(self).__name__}: params must be an iterable of tensors "
                            f"(e.g. model.parameters()), got a single Tensor")
        groups = list(params)
        if not groups:
            raise ValueError(f"{type(self).__name__} got an empty parameter list; did the model "
                             f"register its parameters (nn.Parameter, super().__init__())?")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, group):
        """Add ``{"params": [...], option: value, ...}``; unset options take the defaults."""
        params = group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"{type(self).__name__}: can only optimize Tensors, got "
                                f"{type(p).__name__}")
            if not p.is_leaf:
                raise ValueError(f"{type(self).__name__}: can only optimize leaf tensors (made by "
                                 f"you, not computed); a tensor of shape {p.shape} was computed")
        known = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in known for p in params) or len({id(p) for p in params}) != len(params):
            raise ValueError(f"{type(self).__name__}: some parameters appear in more than one "
                             f"parameter group (or twice in one)")
        full = {**self.defaults, **group, "params": params}
        self.check_options(full)
        self.param_groups.append(full)

    def check_options(self, group):
        """Validate one group's options; subclasses extend it. Raises ValueError."""
        if group.get("lr", 0) < 0:
            raise ValueError(f"{type(self).__name__}: lr must be >= 0, got {group['lr']}")
        if group.get("weight_decay", 0) < 0:
            raise ValueError(f"{type(self).__name__}: weight_decay must be >= 0, "
                             f"got {group['weight_decay']}")

    def zero_grad(self, set_to_none=True):
        """Forget the parameters' gradients before the next backward (they accumulate)."""
        zero_grads((p for group in self.param_groups for p in group["params"]), set_to_none)

    def step(self, closure=None):
        """Update every parameter that has a gradient. ``closure`` (optional) recomputes and
        returns the loss, as in PyTorch; its value is returned."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                self.update(p, p.grad.data, self.state.setdefault(p, {}), group)
        return loss

    def update(self, param, grad, state, group):
        raise NotImplementedError

    # -- saving and restoring ------------------------------------------------------------------
    def state_dict(self):
        """``{"state": {i: {name: ndarray or number}}, "param_groups": [{..., "params": [i]}]}``.

        Parameters are numbered in group order, arrays are NumPy copies, so the result can be
        stored with ``md.save`` (no pickle) and loaded into an optimizer built the same way.
        """
        index = {}
        groups = []
        for group in self.param_groups:
            ids = []
            for p in group["params"]:
                index[id(p)] = len(index)
                ids.append(index[id(p)])
            groups.append({**{k: v for k, v in group.items() if k != "params"}, "params": ids})
        state = {}
        for group in self.param_groups:
            for p in group["params"]:
                if self.state.get(p):
                    state[index[id(p)]] = {
                        k: numpy.array(backend.to_numpy(v)) if _is_array(v) else v
                        for k, v in self.state[p].items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Restore options and state saved by ``state_dict()`` (keys may be ints or strings)."""
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"{type(self).__name__}.load_state_dict: the saved state has "
                             f"{len(saved_groups)} parameter groups, this optimizer has "
                             f"{len(self.param_groups)}")
        for i, (saved, group) in enumerate(zip(saved_groups, self.param_groups)):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(f"{type(self).__name__}.load_state_dict: group {i} has "
                                 f"{len(saved['params'])} parameters in the saved state, "
                                 f"{len(group['params'])} here")
        saved_state = {int(k): v for k, v in state_dict["state"].items()}
        self.state = {}
        for saved, group in zip(saved_groups, self.param_groups):
            group.update({k: v for k, v in saved.items() if k != "params"})
            for saved_index, p in zip(saved["params"], group["params"]):
                if int(saved_index) in saved_state:
                    self.state[p] = {k: _like_param(v, p) for k, v in
                                     saved_state[int(saved_index)].items()}

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {v}" for k, v in sorted(group.items()) if k != "params"]
        return "\n".join(lines + [")"])


def _is_array(value):
    return isinstance(value, backend.get_array_module(value).ndarray)


def _like_param(value, param):
    """A saved state entry as an array on the parameter's device with its dtype (numbers kept)."""
    if isinstance(value, Tensor):
        value = value.data
    if not _is_array(value):
        return value
    return backend.to_device(backend.to_numpy(value).astype(param.dtype), param.device)
