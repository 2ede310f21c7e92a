"""``Module`` and ``Parameter``: the bookkeeping every layer and model shares.

A Module notices what you assign to it::

    self.conv = Conv2d(3, 16, 3)          # a Module   -> registered as a child ("submodule")
    self.weight = Parameter(...)          # a Parameter -> registered as a learnable parameter
    self.register_buffer("running_mean", md.zeros(16))   # state that is saved but not learned

Everything else (``parameters()``, ``state_dict()``, ``train()``, ``to('cuda')``) walks those three
registries recursively, in the order things were assigned. Names are dotted paths from the root:
``features.denseblock1.denselayer1.conv1.weight``; inside a ``Sequential`` the children are named
``0``, ``1``, ... so a parameter is ``0.weight``.
"""
from collections import OrderedDict, namedtuple

import numpy

from .. import backend, creation
from ..autograd import Tensor, zero_grads


class Parameter(Tensor):
    """A Tensor that a Module treats as learnable: ``requires_grad=True`` by default.

    ``Parameter(md.zeros(3))`` or ``Parameter(array)`` share the data (no copy); Python lists
    become float32 arrays, as with ``md.tensor``.
    """

    def __init__(self, data, requires_grad=True):
        if isinstance(data, Tensor):
            data = data.data
        elif not isinstance(data, backend.get_array_module(data).ndarray):
            data = creation.tensor(data).data
        super().__init__(data, requires_grad=requires_grad)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])
IncompatibleKeys.__doc__ = "What load_state_dict(strict=False) could not match, as in PyTorch."

# Keys that torchvision's BatchNorm layers save but minidense does not keep (it counts nothing).
IGNORED_KEY_SUFFIXES = ("num_batches_tracked",)


def _as_buffer(value, name):
    if value is None or isinstance(value, Tensor):
        return value
    if isinstance(value, backend.get_array_module(value).ndarray):
        return Tensor(value)
    raise TypeError(f"buffer '{name}' must be a Tensor, an array or None, "
                    f"got {type(value).__name__}")


class Module:
    """Base class of layers and models. Subclasses call ``super().__init__()`` then assign parts.

    Write ``forward(self, x)``; call the module (``model(x)``), which runs ``forward``.
    """

    def __init__(self):
        # object.__setattr__ bypasses our own __setattr__, which needs these dicts to exist.
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent_buffers", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    # -- registration ----------------------------------------------------------------------------
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__ and isinstance(value, (Parameter, Module)):
            raise AttributeError(
                f"cannot assign '{name}' before Module.__init__() ran: call super().__init__() "
                f"at the start of {type(self).__name__}.__init__")
        if isinstance(value, Parameter):
            self._forget(name)
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._forget(name)
            self._modules[name] = value
        elif "_parameters" in self.__dict__ and name in self._parameters:
            if value is not None:
                raise TypeError(
                    f"cannot assign a {type(value).__name__} to parameter '{name}' of "
                    f"{type(self).__name__}: wrap it as nn.Parameter(...) (or assign None)")
            self._parameters[name] = None
        elif "_buffers" in self.__dict__ and name in self._buffers:
            self._buffers[name] = _as_buffer(value, name)
        elif "_modules" in self.__dict__ and name in self._modules:
            if value is not None:
                raise TypeError(f"cannot assign a {type(value).__name__} to submodule '{name}' of "
                                f"{type(self).__name__}: assign a Module (or None)")
            self._modules[name] = None
        else:
            object.__setattr__(self, name, value)

    def _forget(self, name):
        """Remove ``name`` from every registry and from the plain attributes."""
        for registry in (self._parameters, self._buffers, self._modules):
            registry.pop(name, None)
        self._non_persistent_buffers.discard(name)
        self.__dict__.pop(name, None)

    def __getattr__(self, name):
        # Only called when normal lookup fails, i.e. for registered parts.
        for registry in ("_parameters", "_buffers", "_modules"):
            found = self.__dict__.get(registry)
            if found is not None and name in found:
                return found[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name):
        if any(name in r for r in (self._parameters, self._buffers, self._modules)):
            self._forget(name)
        else:
            object.__delattr__(self, name)

    def register_parameter(self, name, param):
        """Same as ``self.<name> = param`` (param a Parameter or None)."""
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter('{name}'): expected a Parameter or None, "
                            f"got {type(param).__name__}")
        self._forget(name)
        self._parameters[name] = param

    def register_buffer(self, name, tensor, persistent=True):
        """Register non-learned state (e.g. BatchNorm running statistics).

        Buffers move with ``to(device)`` and, when ``persistent``, are part of ``state_dict()``.
        """
        if "." in name or not name:
            raise KeyError(f"buffer name must be a non-empty name without '.', got {name!r}")
        self._forget(name)
        self._buffers[name] = _as_buffer(tensor, name)
        if not persistent:
            self._non_persistent_buffers.add(name)

    def add_module(self, name, module):
        """Same as ``self.<name> = module``; useful when the name is computed."""
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module('{name}'): {type(module).__name__} is not a Module")
        if "." in str(name) or str(name) == "":
            raise KeyError(f"module name must be a non-empty name without '.', got {name!r}")
        self._forget(str(name))
        self._modules[str(name)] = module

    # -- walking the tree ------------------------------------------------------------------------
    def named_modules(self, memo=None, prefix="", remove_duplicate=True):
        """(name, module) for this module and every descendant, depth first; the root is ``''``."""
        memo = set() if memo is None else memo
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, child in self._modules.items():
            if child is not None:
                yield from child.named_modules(memo, f"{prefix}.{name}" if prefix else name,
                                               remove_duplicate)

    def modules(self):
        for _, module in self.named_modules():
            yield module

    def named_children(self):
        """(name, module) for the direct children only."""
        seen = set()
        for name, child in self._modules.items():
            if child is not None and id(child) not in seen:
                seen.add(id(child))
                yield name, child

    def children(self):
        for _, child in self.named_children():
            yield child

    def _named_members(self, registry, prefix, recurse, remove_duplicate=True):
        seen = set()
        modules = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) \
            if recurse else [(prefix, self)]
        for module_name, module in modules:
            for name, value in getattr(module, registry).items():
                if value is None or (remove_duplicate and id(value) in seen):
                    continue
                seen.add(id(value))
                yield (f"{module_name}.{name}" if module_name else name), value

    def named_parameters(self, prefix="", recurse=True):
        """(dotted name, Parameter) pairs in registration order; a shared parameter appears once."""
        return self._named_members("_parameters", prefix, recurse)

    def parameters(self, recurse=True):
        for _, param in self.named_parameters(recurse=recurse):
            yield param

    def named_buffers(self, prefix="", recurse=True):
        return self._named_members("_buffers", prefix, recurse)

    def buffers(self, recurse=True):
        for _, buf in self.named_buffers(recurse=recurse):
            yield buf

    def num_parameters(self, trainable_only=False):
        """Total number of scalar parameters (DenseNet-40 with k=12: 1,019,722)."""
        return sum(p.numel() for p in self.parameters()
                   if p.requires_grad or not trainable_only)

    def apply(self, fn):
        """Call ``fn(module)`` on every child (recursively) and then on self; returns self."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    # -- modes, devices, gradients ---------------------------------------------------------------
    def train(self, mode=True):
        """Training mode (``mode=True``) or evaluation mode for this module and all descendants.

        Affects BatchNorm (batch statistics vs running statistics) and Dropout (on vs off).
        """
        if not isinstance(mode, bool):
            raise ValueError(f"train(mode): mode must be True or False, got {mode!r}")
        for module in self.modules():
            object.__setattr__(module, "training", mode)
        return self

    def eval(self):
        """Same as ``train(False)``."""
        return self.train(False)

    def requires_grad_(self, requires_grad=True):
        for param in self.parameters():
            param.requires_grad = requires_grad
        return self

    def to(self, device=None, dtype=None):
        """Move (and/or cast) every parameter and buffer in place; returns self.

        ``model.to('cuda')``, ``model.to('cpu')``, ``model.to(dtype=md.float64)`` (floating-point
        tensors only, e.g. for gradient checks). The Parameter objects stay the same, only their
        ``.data`` (and ``.grad``) arrays are replaced, so an optimizer built earlier still works.
        """
        if device is not None and not isinstance(device, str):
            device, dtype = None, device          # model.to(md.float64), as in PyTorch
        device = backend.check_device(device) if device is not None else None

        def convert(array):
            if device is not None:
                array = backend.to_device(array, device)
            if dtype is not None and array.dtype.kind == "f":
                array = array.astype(dtype, copy=False)
            return array

        for tensor in list(self.parameters()) + list(self.buffers()):
            tensor.data = convert(tensor.data)
            if tensor.grad is not None:
                tensor.grad.data = convert(tensor.grad.data)
        return self

    def cuda(self):
        return self.to("cuda")

    def cpu(self):
        return self.to("cpu")

    def double(self):
        return self.to(dtype=numpy.float64)

    def float(self):
        return self.to(dtype=numpy.float32)

    def zero_grad(self, set_to_none=True):
        """Forget accumulated gradients: ``grad = None`` (default) or filled with zeros."""
        zero_grads(self.parameters(), set_to_none)

    # -- state dicts ----------------------------------------------------------------------------
    def _state_tensors(self):
        """(dotted name, Tensor) for everything state_dict() saves: parameters and persistent
        buffers, each module's own first, then its children's (the same order as PyTorch)."""
        for module_name, module in self.named_modules(remove_duplicate=False):
            own = list(module._parameters.items()) + [
                (n, b) for n, b in module._buffers.items()
                if n not in module._non_persistent_buffers]
            for name, tensor in own:
                if tensor is not None:
                    yield (f"{module_name}.{name}" if module_name else name), tensor

    def state_dict(self, keep_vars=False):
        """An ordered dict: dotted name -> NumPy array (a copy, also for GPU tensors).

        BatchNorm running statistics are included. ``keep_vars=True`` returns the Tensors
        themselves.
        """
        return OrderedDict(
            (name, tensor if keep_vars else numpy.array(backend.to_numpy(tensor.data)))
            for name, tensor in self._state_tensors())

    def load_state_dict(self, state_dict, strict=True):
        """Copy values from ``state_dict`` into this module's parameters and buffers.

        Values may be NumPy/CuPy arrays or Tensors; they are cast to each parameter's dtype and
        copied to its device. Keys ending in ``num_batches_tracked`` (saved by torchvision's
        BatchNorm) are ignored. Shapes must match. With ``strict=True`` missing and unexpected keys
        are errors; with ``strict=False`` they are returned as ``(missing_keys, unexpected_keys)``.
        Nothing is copied unless every check passes.
        """
        if not hasattr(state_dict, "items"):
            raise TypeError(f"load_state_dict expects a dict of name -> array, "
                            f"got {type(state_dict).__name__}")
        own = OrderedDict(self._state_tensors())
        given = OrderedDict((k, v) for k, v in state_dict.items()
                            if not (k not in own and str(k).endswith(IGNORED_KEY_SUFFIXES)))
        missing = [k for k in own if k not in given]
        unexpected = [k for k in given if k not in own]
        values, mismatched = {}, []
        for key in own:
            if key in given:
                value = given[key]
                value = backend.to_numpy(value.data if isinstance(value, Tensor) else value)
                if tuple(value.shape) != own[key].shape:
                    mismatched.append(f"  {key}: shape {tuple(value.shape)} in the state dict, "
                                      f"{own[key].shape} in the model")
                elif value.dtype.kind not in "biuf":
                    mismatched.append(f"  {key}: dtype {value.dtype} in the state dict, which is "
                                      f"not a number type")
                else:       # converted before anything is copied: all or nothing
                    values[key] = value.astype(own[key].dtype, copy=False)
        problems = []
        if strict and missing:
            problems.append("Missing keys: " + ", ".join(missing))
        if strict and unexpected:
            problems.append("Unexpected keys: " + ", ".join(unexpected))
        if mismatched:
            problems.append("Shape or dtype mismatches:\n" + "\n".join(mismatched))
        if problems:
            raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__}:\n"
                               + "\n".join(problems))
        for key, value in values.items():
            target = own[key]
            target.data[...] = backend.to_device(value, target.device)
        return IncompatibleKeys(missing, unexpected)

    # -- calling and printing -------------------------------------------------------------------
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} has no forward(); define "
                                  f"forward(self, x) in the subclass")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def extra_repr(self):
        """The text inside the parentheses of this module's repr (its settings)."""
        return ""

    def describe(self):
        """One line: class name and settings, e.g. ``Conv2d(3, 16, kernel_size=3)``.

        Layers start their error messages with it.
        """
        return f"{type(self).__name__}({self.extra_repr()})"

    def __repr__(self):
        lines = [f"({name}): " + repr(child).replace("\n", "\n  ")
                 for name, child in self._modules.items()]
        if not lines:
            return self.describe()
        extra = self.extra_repr()
        body = "\n  ".join(([extra] if extra else []) + lines)
        return f"{type(self).__name__}(\n  {body}\n)"

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self._parameters) | set(self._buffers)
                      | set(self._modules))
