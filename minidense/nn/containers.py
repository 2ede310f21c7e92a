"""Containers: ``Sequential`` runs its children in order; ``ModuleList``/``ModuleDict`` hold them.

Holding sub-layers in a plain Python list hides them from ``parameters()``; these containers
register each one as a child, so it is trained, saved and moved with the model.
"""
from collections import OrderedDict

from .module import Module


class _IndexedModules(Module):
    """Children named "0", "1", ...: indexing, slicing, len, iteration, append, extend."""

    def __init__(self, modules=()):
        super().__init__()
        self.extend(modules)

    def _index(self, i):
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"{type(self).__name__} index {i} is out of range for {n} modules")
        return str(i % n)

    def __getitem__(self, index):
        children = list(self._modules.values())
        if isinstance(index, slice):
            return type(self)(*children[index]) if isinstance(self, Sequential) \
                else type(self)(children[index])
        return self._modules[self._index(index)]

    def __setitem__(self, index, module):
        self.add_module(self._index(index), module)

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def append(self, module):
        """Add ``module`` at the end, named by its position; returns self."""
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules):
        for module in modules:
            self.append(module)
        return self


class Sequential(_IndexedModules):
    """Runs its children in order: ``Sequential(a, b, c)(x) == c(b(a(x)))``.

    Children are named "0", "1", ... (so parameters are ``0.weight``, ``1.bias``, ...), or by the
    keys of an ``OrderedDict`` passed as the only argument.
    """

    def __init__(self, *modules):
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            Module.__init__(self)
            for name, module in modules[0].items():
                self.add_module(name, module)
        else:
            super().__init__(modules)

    def forward(self, x):
        for module in self:
            x = module(x)
        return x


class ModuleList(_IndexedModules):
    """A list of modules that registers them; it has no forward, loop over it yourself."""

    def __init__(self, modules=None):
        super().__init__(modules or ())


class ModuleDict(Module):
    """A dict of modules that registers them under their keys."""

    def __init__(self, modules=None):
        super().__init__()
        for name, module in (dict(modules) if modules is not None else {}).items():
            self[name] = module

    def __getitem__(self, name):
        return self._modules[name]

    def __setitem__(self, name, module):
        self.add_module(name, module)

    def __delitem__(self, name):
        del self._modules[name]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules)

    def __contains__(self, name):
        return name in self._modules

    def keys(self):
        return self._modules.keys()

    def values(self):
        return self._modules.values()

    def items(self):
        return self._modules.items()
