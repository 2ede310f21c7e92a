"""SampleFashionMNIST: a real, class-balanced slice of Fashion-MNIST shipped inside the package.

10,000 training images (1,000 per class) from Fashion-MNIST's train split and 2,000 test images
(200 per class) from its test split, picked with a fixed seed by tools/make_sample_dataset.py and
stored as uint8 28x28 in fashion_mnist_sample.npz (read with allow_pickle=False). It needs no
download, so every chapter and test can train on real images.
"""
import os

import numpy

from .base import ArrayDataset, pad_images, padded_statistics
from .mnist import FashionMNIST

SAMPLE_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fashion_mnist_sample.npz")


def load_sample_arrays(path=SAMPLE_PATH):
    """The arrays of the sample file as a dict (images, labels, source indices, statistics)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} is missing; regenerate it with "
                                f"`python tools/make_sample_dataset.py` or reinstall minidense")
    with numpy.load(path, allow_pickle=False) as arrays:
        return {key: arrays[key] for key in arrays.files}


class SampleFashionMNIST(ArrayDataset):
    """The embedded Fashion-MNIST sample (registry name ``'sample'``), images (N, 1, 32, 32) uint8.

    ``source_indices`` gives each image's index in the original Fashion-MNIST split. ``mean``/``std``
    are those of the sample's own training images.
    """

    def __init__(self, train=True, pad_to=32):
        split = "train" if train else "test"
        arrays = load_sample_arrays()
        images = arrays[f"{split}_images"]
        mean, std = padded_statistics(arrays["train_mean"], arrays["train_std"], images.shape[-1],
                                      pad_to)
        super().__init__(pad_images(images[:, None], pad_to), arrays[f"{split}_labels"],
                         FashionMNIST.CLASSES, mean, std, "sample", train)
        self.source_indices = arrays[f"{split}_indices"].astype(numpy.int64)
