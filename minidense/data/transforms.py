"""Batch transforms: each takes a whole (N, C, H, W) array and returns a new one.

They run in the batch's own array module (NumPy on the CPU, CuPy on a GPU), so augmentation happens
where the batch already is. Random choices (a few numbers per image) come from the run's seeded CPU
generator (``minidense.random.generator(numpy)``) unless a transform is given its own
``generator`` (a NumPy/CuPy Generator or an int seed): a GPU run then augments exactly like a CPU
run, and a checkpoint, which saves that generator, resumes it exactly.

The paper's CIFAR recipe, as in its official code (normalise, then augment, so the zero padding of
the crop is the mean colour)::

    Compose([Normalize(ds.mean, ds.std), RandomCrop(32, padding=4), RandomHorizontalFlip()])
"""
import numpy

from .. import random as md_random
from ..backend import get_array_module


class Transform:
    """Base class: ``__call__(batch) -> batch``; random transforms draw through ``_uniform``."""

    def __init__(self, generator=None):
        if isinstance(generator, (int, numpy.integer)):
            generator = numpy.random.default_rng(int(generator))
        self.generator = generator

    def __call__(self, batch):
        raise NotImplementedError

    def _uniform(self, count, xp):
        """``count`` uniform numbers in [0, 1), as an array of the batch's module ``xp``."""
        rng = self.generator if self.generator is not None else md_random.generator(numpy)
        return xp.asarray(rng.random(count))

    def __repr__(self):
        return f"{type(self).__name__}()"


class ToFloat(Transform):
    """uint8 pixels 0..255 -> float32 in [0, 1]; float batches pass through unchanged."""

    def __call__(self, batch):
        if batch.dtype.kind in "ui":
            return batch.astype(numpy.float32) / numpy.float32(255.0)
        return batch


class Normalize(Transform):
    """Per-channel ``(x - mean) / std``: mean and std are sequences with one value per channel."""

    def __init__(self, mean, std):
        super().__init__()
        self.mean = tuple(float(m) for m in numpy.ravel(mean))
        self.std = tuple(float(s) for s in numpy.ravel(std))
        if len(self.mean) != len(self.std) or min(self.std) <= 0:
            raise ValueError(f"Normalize: need one mean and one positive std per channel, got "
                             f"mean={self.mean}, std={self.std}")

    def __call__(self, batch):
        if batch.dtype.kind not in "f":
            raise TypeError(f"Normalize: expected a float batch, got {batch.dtype}; convert uint8 "
                            f"pixels with ToFloat() first (the DataLoader already does)")
        channels = batch.shape[1]
        if len(self.mean) not in (1, channels):
            raise ValueError(f"Normalize: batch of shape {batch.shape} has {channels} channels but "
                             f"mean/std have {len(self.mean)} values")
        xp = get_array_module(batch)
        mean = xp.asarray(self.mean, dtype=batch.dtype).reshape(1, -1, 1, 1)
        std = xp.asarray(self.std, dtype=batch.dtype).reshape(1, -1, 1, 1)
        return (batch - mean) / std

    def __repr__(self):
        return f"Normalize(mean={self.mean}, std={self.std})"


class RandomCrop(Transform):
    """Zero-pad each image by ``padding`` pixels, then cut a ``size`` x ``size`` window at a random
    offset chosen independently per image.

    With 32x32 images and padding 4 each image moves by -4..4 pixels in each direction (9 x 9
    positions). The crop is one gather: row and column indices per image, no loop over images.
    """

    def __init__(self, size, padding=4, generator=None):
        super().__init__(generator)
        self.size = (size, size) if isinstance(size, int) else tuple(size)
        self.padding = int(padding)

    def __call__(self, batch):
        xp = get_array_module(batch)
        count, _, height, width = batch.shape
        p = self.padding
        padded = xp.pad(batch, ((0, 0), (0, 0), (p, p), (p, p))) if p else batch
        out_h, out_w = self.size
        room_h, room_w = padded.shape[2] - out_h, padded.shape[3] - out_w
        if room_h < 0 or room_w < 0:
            raise ValueError(f"RandomCrop: crop {self.size} is larger than the padded image "
                             f"{padded.shape[2:]}")
        top = self.random_offsets(count, room_h, xp)
        left = self.random_offsets(count, room_w, xp)
        rows = top[:, None] + xp.arange(out_h)          # (N, out_h)
        cols = left[:, None] + xp.arange(out_w)         # (N, out_w)
        images = xp.arange(count)[:, None, None]
        # Advanced indices on axes 0, 2, 3 broadcast to (N, out_h, out_w); the channel axis ':'
        # goes last, so the result is (N, out_h, out_w, C) and is moved back to NCHW.
        cropped = padded[images, :, rows[:, :, None], cols[:, None, :]]
        return xp.ascontiguousarray(cropped.transpose(0, 3, 1, 2))

    def random_offsets(self, count, room, xp):
        """``count`` integer offsets, each uniform over 0..room."""
        offsets = (self._uniform(count, xp) * (room + 1)).astype(numpy.int64)
        return xp.minimum(offsets, room)

    def __repr__(self):
        return f"RandomCrop(size={self.size}, padding={self.padding})"


class RandomHorizontalFlip(Transform):
    """Mirror each image left-right with probability ``p``, independently per image."""

    def __init__(self, p=0.5, generator=None):
        super().__init__(generator)
        self.p = float(p)

    def __call__(self, batch):
        xp = get_array_module(batch)
        flip = self._uniform(len(batch), xp) < self.p
        return xp.where(flip[:, None, None, None], batch[..., ::-1], batch)

    def __repr__(self):
        return f"RandomHorizontalFlip(p={self.p})"


class Compose(Transform):
    """Apply transforms one after another."""

    def __init__(self, transforms):
        super().__init__()
        self.transforms = list(transforms)

    def __call__(self, batch):
        for transform in self.transforms:
            batch = transform(batch)
        return batch

    def __repr__(self):
        inner = "".join(f"\n    {t!r}," for t in self.transforms)
        return f"Compose([{inner}\n])"


def standard_transform(dataset, augment=False):
    """Normalisation with the dataset's statistics, plus the paper's crop-and-flip when ``augment``.

    Crops keep the images' own size (32 for CIFAR and the padded Fashion-MNIST/MNIST sets).
    """
    steps = [Normalize(dataset.mean, dataset.std)]
    if augment:
        steps += [RandomCrop(dataset.images.shape[-1], padding=4), RandomHorizontalFlip()]
    return Compose(steps)
