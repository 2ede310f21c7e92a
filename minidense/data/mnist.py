"""MNIST and Fashion-MNIST from their IDX ``.gz`` files.

An IDX file is a tiny header and then raw bytes: a big-endian 32-bit magic number (2051 for an
image file, 2049 for a label file; its last byte is the number of dimensions), one big-endian 32-bit
size per dimension, then the uint8 values in row-major order.

The 28x28 images are zero-padded to 32x32 by default (``pad_to=32``), so DenseNet's CIFAR
architecture applies unchanged; ``pad_to=None`` keeps them at 28x28.
"""
import gzip
import math
import os
import struct
import zlib

import numpy

from ..errors import file_access_error, is_access_error
from .base import ArrayDataset, pad_images, padded_statistics
from .download import damaged_file_error, default_root, fetch, missing_file_error

IMAGES_MAGIC, LABELS_MAGIC = 2051, 2049
MAX_DEFLATE_RATIO = 1032    # DEFLATE never inflates one byte to more than about 1032


def read_idx(path, expected_magic=None, url=None):
    """The uint8 array stored in a (gzipped) IDX file, shaped by its header.

    The header is checked before the data is read: its promised size must fit what the file can
    hold (for a ``.gz`` file, what DEFLATE can inflate from its size), and no more than the
    promised bytes are ever inflated. Reading one byte past them reaches the end of a gzip
    stream, where its CRC is checked. A file the system will not let us read is a
    FileAccessError, not a damaged file.
    """
    try:
        with (gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb")) as stream:
            shape = _read_idx_header(stream, path, expected_magic, url)
            expected_size = math.prod(shape)
            limit = idx_size_limit(path)
            if expected_size > limit:
                raise damaged_file_error(path, url, f"header promises {shape} = {expected_size:,} "
                                                    f"bytes of data, more than a file of "
                                                    f"{os.path.getsize(path):,} bytes can hold")
            data = stream.read(expected_size + 1)     # one byte more reveals trailing data
    except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        if is_access_error(exc):
            raise file_access_error(path, exc) from exc
        raise damaged_file_error(path, url, f"truncated or corrupted gzip data: {exc}") from exc
    if len(data) != expected_size:
        found = (f"more than {expected_size:,}" if len(data) > expected_size
                 else f"{len(data):,} (truncated?)")
        raise damaged_file_error(path, url, f"header promises {shape} = {expected_size:,} bytes "
                                            f"of data, found {found}")
    return numpy.frombuffer(data, dtype=numpy.uint8).reshape(shape)


def idx_size_limit(path):
    """The most data bytes a file of this size can hold: its size, or for gzip its size times
    DEFLATE's largest inflation ratio."""
    size = os.path.getsize(path)
    return size * MAX_DEFLATE_RATIO if path.endswith(".gz") else size


def _read_idx_header(stream, path, expected_magic, url):
    """Read and check the magic number and the dimension sizes; return the shape."""
    head = stream.read(4)
    if len(head) < 4:
        raise damaged_file_error(path, url, f"only {len(head)} bytes, too short for an IDX header")
    (magic,) = struct.unpack(">I", head)
    if expected_magic is not None and magic != expected_magic:
        raise damaged_file_error(path, url, f"bad IDX magic number {magic}, expected "
                                            f"{expected_magic} ({IMAGES_MAGIC} = images, "
                                            f"{LABELS_MAGIC} = labels)")
    if magic >> 8 != 0x08:
        raise damaged_file_error(path, url, f"IDX magic {magic} does not announce uint8 data")
    ndim = magic & 0xFF
    sizes = stream.read(4 * ndim)
    if len(sizes) < 4 * ndim:
        raise damaged_file_error(path, url, f"truncated IDX header ({4 + len(sizes)} bytes)")
    return struct.unpack(f">{ndim}I", sizes)


class _IDXImages(ArrayDataset):
    """Shared reader; MNIST and FashionMNIST fill in the class attributes."""

    NAME = FOLDER = BASE_URL = None
    MD5 = {}                 # official file name -> MD5, checked after a download
    SYSTEM_FOLDERS = ()      # where an operating-system package may have installed the files
    CLASSES = ()
    MEAN, STD = (), ()       # train-split statistics of the 28x28 images

    def __init__(self, root=None, train=True, pad_to=32, download=False):
        prefix = "train" if train else "t10k"
        images_file, labels_file = f"{prefix}-images-idx3-ubyte.gz", f"{prefix}-labels-idx1-ubyte.gz"
        folder = self._locate(root, (images_file, labels_file), download)
        images = read_idx(os.path.join(folder, images_file), IMAGES_MAGIC,
                          self.BASE_URL + images_file)
        labels = read_idx(os.path.join(folder, labels_file), LABELS_MAGIC,
                          self.BASE_URL + labels_file)
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise damaged_file_error(folder, self.BASE_URL, f"{images_file} holds {images.shape} "
                                     f"but {labels_file} holds {labels.shape}")
        if len(images) == 0 or 0 in images.shape:
            raise damaged_file_error(os.path.join(folder, images_file), self.BASE_URL,
                                     f"it holds no images (shape {images.shape})")
        size = images.shape[-1]
        mean, std = padded_statistics(self.MEAN, self.STD, size, pad_to)
        super().__init__(pad_images(images[:, None], pad_to), labels, self.CLASSES, mean, std,
                         self.NAME, train)
        self.source = folder

    def _locate(self, root, files, download):
        root = os.path.expanduser(root) if root is not None else default_root()
        candidates = [os.path.join(root, self.FOLDER), root, *self.SYSTEM_FOLDERS]
        for folder in candidates:
            if all(os.path.isfile(os.path.join(folder, name)) for name in files):
                return folder
        target = os.path.join(root, self.FOLDER)
        if download:
            for name in files:
                if not os.path.isfile(os.path.join(target, name)):
                    fetch(self.NAME, name, self.BASE_URL, target, self.MD5[name])
            return target
        raise missing_file_error(self.NAME, " and ".join(files),
                                 [self.BASE_URL + name for name in files], target)


class FashionMNIST(_IDXImages):
    """Fashion-MNIST (Xiao, Rasul & Vollgraf 2017, Zalando Research, MIT License).

    60,000 train / 10,000 test grayscale 28x28 images of clothing in 10 classes, shaped
    (N, 1, 32, 32) by default. Found in ``root/fashion-mnist``, ``root``, or where Debian's
    ``dataset-fashion-mnist`` package installs it (/usr/share/datasets/fashion-mnist).
    """

    NAME, FOLDER = "fashion-mnist", "fashion-mnist"
    BASE_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
    MD5 = {"train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
           "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
           "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
           "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310"}
    SYSTEM_FOLDERS = ("/usr/share/datasets/fashion-mnist",)
    CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
               "Bag", "Ankle boot")
    MEAN, STD = (0.28604060,), (0.35302424,)


class MNIST(_IDXImages):
    """MNIST handwritten digits (LeCun et al. 1998): 60,000 train / 10,000 test, 28x28 grayscale."""

    NAME, FOLDER = "mnist", "mnist"
    BASE_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"
    MD5 = {"train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
           "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
           "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
           "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c"}
    SYSTEM_FOLDERS = ("/usr/share/datasets/mnist",)
    CLASSES = tuple(str(digit) for digit in range(10))
    MEAN, STD = (0.13066047,), (0.30810780,)
