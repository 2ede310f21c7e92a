"""DataLoader: mini-batches of (images, labels) Tensors, shuffled by the run's seeded generator."""
import math
import numbers

import numpy

from .. import random as md_random
from ..autograd import Tensor
from ..backend import check_device, get_array_module, to_device


class DataLoader:
    """Iterate over a dataset in mini-batches ``(images, labels)``.

    images: float32 Tensor (B, C, H, W) on ``device``, pixels scaled to [0, 1] and then passed
    through ``transform``; labels: int64 Tensor (B,) on ``device``.

    Each batch is cut from the dataset's whole uint8 array (``dataset.images``) with one slice of
    the epoch's order, moved to the device while still uint8 (4x fewer bytes than float32) and
    converted there.

    shuffle:   a new random order every epoch (every ``iter(loader)``), drawn from ``generator``,
               from a private generator seeded with ``seed``, or else from the run's generator
               ``minidense.random.generator(numpy)``, so ``md.manual_seed`` (or a restored
               checkpoint state) reproduces the order.
    drop_last: skip a final batch smaller than ``batch_size``.
    limit:     use only the first ``limit`` samples of the dataset (in the dataset's own order), a
               fixed subset for quick runs.
    """

    def __init__(self, dataset, batch_size=64, shuffle=False, drop_last=False, transform=None,
                 device="cpu", limit=None, seed=None, generator=None):
        check_count("batch_size", batch_size)
        if seed is not None and generator is not None:
            raise ValueError("DataLoader: pass either seed or generator, not both")
        self.dataset = dataset
        self.images, self.labels = whole_arrays(dataset)
        if limit is not None:
            check_count("limit", limit)
            self.images, self.labels = self.images[:limit], self.labels[:limit]
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.transform = transform
        self.device = check_device(device)
        self.generator = numpy.random.default_rng(seed) if seed is not None else generator

    @property
    def num_samples(self):
        return len(self.labels)

    def __len__(self):
        """Number of batches per epoch."""
        if self.drop_last:
            return self.num_samples // self.batch_size
        return math.ceil(self.num_samples / self.batch_size)

    def __iter__(self):
        order = None
        if self.shuffle:
            rng = self.generator if self.generator is not None else md_random.generator(numpy)
            order = rng.permutation(self.num_samples)
        for batch in range(len(self)):
            start = batch * self.batch_size
            stop = min(start + self.batch_size, self.num_samples)
            index = slice(start, stop) if order is None else order[start:stop]
            yield self.make_batch(index)

    def make_batch(self, index):
        """The (images, labels) Tensors for an index (a slice or an array of sample positions)."""
        images = to_device(numpy.ascontiguousarray(self.images[index]), self.device)
        labels = to_device(numpy.ascontiguousarray(self.labels[index]), self.device)
        xp = get_array_module(images)
        if images.dtype == numpy.uint8:
            images = images.astype(xp.float32) / xp.float32(255.0)
        else:
            images = images.astype(xp.float32)
        if self.transform is not None:
            images = self.transform(images).astype(xp.float32, copy=False)
        return Tensor(images), Tensor(labels.astype(xp.int64, copy=False))

    def __repr__(self):
        return (f"DataLoader({getattr(self.dataset, 'name', type(self.dataset).__name__)}, "
                f"samples={self.num_samples}, batch_size={self.batch_size}, "
                f"shuffle={self.shuffle}, drop_last={self.drop_last}, device={self.device!r}, "
                f"transform={self.transform!r})")


def check_count(name, value):
    """Raise ValueError unless ``value`` is a whole number of at least 1 (as PyTorch's
    DataLoader does for batch_size): 2.5 images per batch has no meaning."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
        raise ValueError(f"DataLoader: {name} must be a whole number of at least 1, got "
                         f"{value!r}")


def whole_arrays(dataset):
    """(images, labels) NumPy arrays of a dataset: its ``images``/``labels`` attributes when it has
    them, else every ``dataset[i]`` stacked (done once, when the loader is made)."""
    if hasattr(dataset, "images") and hasattr(dataset, "labels"):
        return numpy.asarray(dataset.images), numpy.asarray(dataset.labels, dtype=numpy.int64)
    pairs = [dataset[i] for i in range(len(dataset))]
    images = numpy.stack([numpy.asarray(image) for image, _ in pairs])
    labels = numpy.asarray([int(label) for _, label in pairs], dtype=numpy.int64)
    return images, labels
