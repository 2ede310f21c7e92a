"""One seeded random generator per array module, so runs and resumes are reproducible.

``md.manual_seed(n)`` reseeds it; ``get_state()``/``set_state()`` save and restore it in checkpoints.
Initialisation, dropout masks, shuffling and augmentation all draw from here.
"""
import numpy

from . import backend

_seed = 0
_generators = {}


def manual_seed(seed):
    """Reseed every generator (CPU and GPU) from one integer."""
    global _seed
    _seed = int(seed)
    _generators.clear()


def generator(xp=numpy):
    """The run's generator for an array module (numpy.random.Generator or CuPy's)."""
    name = xp.__name__
    if name not in _generators:
        _generators[name] = xp.random.default_rng(_seed)
    return _generators[name]


def reseed_device_generator(xp, epoch):
    """Restart ``xp``'s generator (CuPy's) from the run's seed and the epoch number.

    A GPU generator's state cannot be saved in a checkpoint. ``fit`` calls this at the start of
    every epoch of a GPU run instead, so a run resumed from a checkpoint draws the same dropout
    masks as one that never stopped; the CPU generator is not touched, so shuffling and
    augmentation stay those of a CPU run."""
    seed = int(numpy.random.SeedSequence([_seed, int(epoch)]).generate_state(1, numpy.uint64)[0])
    _generators[xp.__name__] = xp.random.default_rng(seed)


def get_state():
    """The CPU generator's state as plain JSON-able values (for checkpoints)."""
    return {"seed": _seed, "numpy": generator(numpy).bit_generator.state}


def set_state(state):
    global _seed
    _seed = int(state["seed"])
    generator(numpy).bit_generator.state = state["numpy"]


def rng_for(array_or_device):
    """The generator that makes arrays where ``array_or_device`` lives."""
    if isinstance(array_or_device, str):
        return generator(backend.array_module(array_or_device))
    return generator(backend.get_array_module(array_or_device))
