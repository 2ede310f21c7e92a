"""Datasets, batch transforms and the DataLoader.

    from minidense.data import get_dataset, DataLoader, transforms
    train = get_dataset("sample", train=True)          # ships with minidense, no download
    loader = DataLoader(train, batch_size=64, shuffle=True,
                        transform=transforms.standard_transform(train, augment=True))
    for images, labels in loader:                       # float32 (64, 1, 32, 32), int64 (64,)
        ...

Files: base.py (ArrayDataset, the common shape of every dataset), cifar.py (CIFAR-10/100 from the
official archives; pickled batches are read with a restricted unpickler), mnist.py (IDX files:
MNIST, Fashion-MNIST), sample.py (the embedded Fashion-MNIST sample), download.py (download with
progress bar, MD5 check, clear errors), datasets.py (registry), transforms.py, loader.py.

Data attribution: fashion_mnist_sample.npz is a subset of Fashion-MNIST by Zalando Research
(Xiao, Rasul & Vollgraf, 2017), used under the MIT License, Copyright (c) 2017 Zalando SE.
"""
from . import transforms
from .base import ArrayDataset
from .cifar import CIFAR10, CIFAR100, SafeUnpickler, UnsafePickleError
from .datasets import DATASETS, DEFAULT_DATASET, get_dataset
from .download import ChecksumError, DamagedFileError, DatasetNotFoundError, default_root
from .loader import DataLoader
from .mnist import MNIST, FashionMNIST, read_idx
from .sample import SampleFashionMNIST
from .transforms import (Compose, Normalize, RandomCrop, RandomHorizontalFlip, ToFloat,
                         standard_transform)

__all__ = ["ArrayDataset", "CIFAR10", "CIFAR100", "ChecksumError", "Compose", "DATASETS",
           "DEFAULT_DATASET", "DamagedFileError", "DataLoader", "DatasetNotFoundError",
           "FashionMNIST", "MNIST", "Normalize", "RandomCrop", "RandomHorizontalFlip",
           "SafeUnpickler", "SampleFashionMNIST", "ToFloat", "UnsafePickleError", "default_root",
           "get_dataset", "read_idx", "standard_transform", "transforms"]
