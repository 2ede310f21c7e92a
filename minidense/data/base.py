"""ArrayDataset: a whole image dataset held as one uint8 array, the shape every loader here returns."""
import numpy


class ArrayDataset:
    """Images and labels in memory, plus what a training run needs to know about them.

    Attributes
    ----------
    images : uint8 array (N, C, H, W)
    labels : int64 array (N,)
    classes : list of class names, ``classes[label]``
    mean, std : per-channel statistics of the *training* split on the [0, 1] scale (constants,
        the same for the train and test objects), for ``transforms.Normalize(ds.mean, ds.std)``
    name : registry name ('cifar10', 'sample', ...); train : which split this is

    ``ds[i]`` is ``(image (C, H, W) uint8, int label)``; the DataLoader uses the whole arrays.
    """

    def __init__(self, images, labels, classes, mean, std, name, train=True):
        images = numpy.asarray(images)
        labels = numpy.asarray(labels)
        if images.ndim != 4 or images.dtype != numpy.uint8:
            raise ValueError(f"{name}: images must be a uint8 array (N, C, H, W), got dtype "
                             f"{images.dtype} and shape {images.shape}")
        if labels.shape != (len(images),):
            raise ValueError(f"{name}: {len(images)} images but labels have shape {labels.shape}")
        if len(labels) and (labels.min() < 0 or labels.max() >= len(classes)):
            raise ValueError(f"{name}: labels must lie in 0..{len(classes) - 1}, found "
                             f"{labels.min()}..{labels.max()}")
        self.images = images
        self.labels = labels.astype(numpy.int64)
        self.classes = list(classes)
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)
        self.name = name
        self.train = train

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, index):
        return self.images[index], int(self.labels[index])

    @property
    def num_classes(self):
        return len(self.classes)

    @property
    def image_shape(self):
        """(C, H, W) of one image."""
        return tuple(self.images.shape[1:])

    def __repr__(self):
        split = "train" if self.train else "test"
        return (f"{type(self).__name__}(name={self.name!r}, split={split!r}, n={len(self)}, "
                f"image_shape={self.image_shape}, classes={self.num_classes})")


def pad_images(images, size):
    """Zero-pad (N, C, h, w) images evenly on all sides to (N, C, size, size); ``None`` keeps them."""
    height, width = images.shape[-2:]
    if size is None or (height, width) == (size, size):
        return images
    if size < height or size < width:
        raise ValueError(f"pad_to={size} is smaller than the images ({height}x{width})")
    top, left = (size - height) // 2, (size - width) // 2
    padding = ((0, 0), (0, 0), (top, size - height - top), (left, size - width - left))
    return numpy.pad(images, padding)


def padded_statistics(mean, std, image_size, padded_size):
    """Per-channel mean and std after zero-padding images from ``image_size`` to ``padded_size``.

    The padding pixels are zeros, so with f = original area / padded area:
    mean' = f * mean and E[x^2]' = f * (std^2 + mean^2), hence std' = sqrt(E[x^2]' - mean'^2).
    """
    if padded_size is None or padded_size == image_size:
        return tuple(mean), tuple(std)
    fraction = (image_size / padded_size) ** 2
    mean, std = numpy.asarray(mean, dtype=numpy.float64), numpy.asarray(std, dtype=numpy.float64)
    new_mean = fraction * mean
    new_std = numpy.sqrt(fraction * (std ** 2 + mean ** 2) - new_mean ** 2)
    return tuple(new_mean.tolist()), tuple(new_std.tolist())
