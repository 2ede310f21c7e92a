"""The dataset registry: ``get_dataset(name, train=True, root=None, download=False)``."""
from .cifar import CIFAR10, CIFAR100
from .mnist import MNIST, FashionMNIST
from .sample import SampleFashionMNIST

DEFAULT_DATASET = "sample"

DATASETS = {
    "sample": lambda train, root, download: SampleFashionMNIST(train=train),
    "fashion-mnist": lambda train, root, download: FashionMNIST(root, train, download=download),
    "mnist": lambda train, root, download: MNIST(root, train, download=download),
    "cifar10": lambda train, root, download: CIFAR10(root, train, download=download),
    "cifar100": lambda train, root, download: CIFAR100(root, train, download=download),
}
"""Registry name -> a function (train, root, download) that builds the dataset."""


def get_dataset(name=DEFAULT_DATASET, train=True, root=None, download=False):
    """A dataset by registry name: 'sample' (default), 'fashion-mnist', 'mnist', 'cifar10', 'cifar100'.

    ``root`` defaults to ``$MINIDENSE_DATA`` or ``~/.minidense/data``; ``download=True`` fetches
    missing files when a network is available ('sample' ships with minidense and needs neither).
    """
    key = str(name).lower().replace("_", "-")
    key = {"fashionmnist": "fashion-mnist", "cifar-10": "cifar10", "cifar-100": "cifar100"}.get(key, key)
    if key not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; valid names are: {', '.join(DATASETS)}")
    return DATASETS[key](train, root, download)
