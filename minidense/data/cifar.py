"""CIFAR-10 and CIFAR-100 (Krizhevsky 2009) from the official archives.

Both official formats are read, as the ``.tar.gz`` archive or its extracted folder under ``root``:

* binary (``cifar-10-binary.tar.gz``): fixed-size records, one label byte (CIFAR-100: a coarse and
  a fine label byte) followed by 3072 pixel bytes (1024 red, 1024 green, 1024 blue, row-major);
* python (``cifar-10-python.tar.gz``): pickled dicts holding a uint8 array ``data`` (N, 3072) and
  label lists. Pickles can run code when loaded, so they are read with ``SafeUnpickler``, which
  rebuilds NumPy arrays and refuses every other global, and refuses any array larger than the
  pickle itself (its bytes must be in the file).

No member is read when its size exceeds ``MAX_MEMBER_BYTES``, a little more than the largest
official one, so a forged archive cannot make the reader allocate gigabytes. An archive with an
official name must have the official MD5, and it is read to the end of its gzip stream so that
gzip's CRC is checked too; a file the system will not let us read is a FileAccessError, not a
damaged file.

The binary format needs no pickle at all, so it is preferred when both are present and it is what
``download=True`` fetches.
"""
import codecs
import io
import math
import os
import pickle
import tarfile
import zlib
from collections import namedtuple

import numpy

from ..errors import UserError, file_access_error, file_access_errors, is_access_error
from .base import ArrayDataset
from .download import (ChecksumError, DamagedFileError, damaged_file_error, default_root, fetch,
                       missing_file_error, verify_md5)

try:  # NumPy >= 2 moved the module; pickles name whichever NumPy wrote them
    from numpy._core.multiarray import _reconstruct
except ImportError:  # pragma: no cover - NumPy 1.x
    from numpy.core.multiarray import _reconstruct

CIFAR_URL = "https://www.cs.toronto.edu/~kriz/"
PIXELS_PER_IMAGE = 3 * 32 * 32
# The largest official member is CIFAR-100's python 'train' pickle (about 155 MB); binary
# 'train.bin' is 50,000 records of 3,074 bytes = 153.7 MB.
MAX_MEMBER_BYTES = 160 * 1024 * 1024
# The official archives end with zero blocks after the tar end marker (10 KiB records); more than
# this after it is not an official archive.
MAX_ARCHIVE_TAIL_BYTES = 1024 * 1024


class UnsafePickleError(UserError, pickle.UnpicklingError):
    """A pickle asked for a global that SafeUnpickler does not allow."""


class SafeUnpickler(pickle.Unpickler):
    """An Unpickler that can rebuild NumPy arrays, lists, dicts, numbers and strings, nothing else.

    A pickle names the functions it needs to call as ``module.name`` globals; ``find_class`` is
    where the standard Unpickler imports them. Here it returns only the few that an array needs and
    raises UnsafePickleError for anything else (``os.system``, ``builtins.eval``, ...), before any
    of it runs.
    """

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"): "_bounded_reconstruct",
        ("numpy._core.multiarray", "_reconstruct"): "_bounded_reconstruct",
        ("numpy", "ndarray"): "_bounded_ndarray",
        ("numpy", "dtype"): numpy.dtype,
        ("_codecs", "encode"): codecs.encode,  # how Python 3 pickles bytes at protocol 2
    }

    def __init__(self, stream, source="<pickle>", max_array_bytes=None):
        super().__init__(stream, encoding="latin1")  # latin1 turns Python 2 str into bytes-safe text
        self.source = source
        self.max_array_bytes = max_array_bytes

    def find_class(self, module, name):
        try:
            found = self.ALLOWED[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"refused to load the global '{module}.{name}' from {self.source}: only NumPy "
                f"arrays are allowed in a CIFAR batch, so this is not an official CIFAR file. "
                f"Do not use it; download the dataset from {CIFAR_URL}") from None
        return getattr(self, found) if isinstance(found, str) else found

    # An array's constructor takes a shape; its bytes come later, from the pickle. Checking the
    # shape against the pickle's size first keeps a tiny file from allocating gigabytes.
    def _check_array_size(self, shape, dtype):
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        size = math.prod(shape) * numpy.dtype(dtype).itemsize
        if self.max_array_bytes is not None and size > self.max_array_bytes:
            raise damaged_file_error(self.source, None, f"it asks for an array of shape {shape} "
                                     f"({size:,} bytes), more than the whole pickle "
                                     f"({self.max_array_bytes:,} bytes) can hold")

    def _bounded_reconstruct(self, subtype, shape, dtype):
        if subtype != self._bounded_ndarray:     # the pickle's 'numpy.ndarray', as found above
            raise damaged_file_error(self.source, None, f"it rebuilds a {subtype!r}, not an array")
        self._check_array_size(shape, numpy.uint8)
        return _reconstruct(numpy.ndarray, shape, dtype)

    def _bounded_ndarray(self, shape, dtype=float, *args, **kwargs):
        self._check_array_size(shape, dtype)
        return numpy.ndarray(shape, dtype, *args, **kwargs)


def safe_unpickle(data, source):
    """Unpickle bytes with SafeUnpickler; a broken pickle becomes a DamagedFileError."""
    try:
        return SafeUnpickler(io.BytesIO(data), source, max_array_bytes=len(data)).load()
    except UserError:
        raise
    except Exception as exc:  # truncated or garbled pickles raise many different errors
        raise damaged_file_error(source, None, f"not a readable CIFAR batch: {exc!r}") from exc


# ----------------------------------------------------------------------------------------------
# Where the files are: an extracted folder or a tar.gz archive
# ----------------------------------------------------------------------------------------------
CifarFormat = namedtuple("CifarFormat", "kind archive md5 folder train_files test_files")


def read_members(path, folder, names, url):
    """{name: bytes} for ``folder/name`` in a tar.gz archive or in an extracted folder ``path``."""
    if os.path.isdir(path):
        found = {}
        for name in names:
            member = os.path.join(path, name)
            if not os.path.isfile(member):
                raise damaged_file_error(path, url, f"{name} is missing from the folder")
            check_member_size(member, os.path.getsize(member), url)
            with file_access_errors(member), open(member, "rb") as stream:
                found[name] = stream.read()
        return found
    wanted = {f"{folder}/{name}": name for name in names}
    found = {}
    try:
        with tarfile.open(path, "r:gz") as archive:
            for member in archive:
                name = wanted.get(member.name.removeprefix("./"))
                if name is not None and member.isfile():
                    check_member_size(f"{path}:{member.name}", member.size, url)
                    found[name] = archive.extractfile(member).read()
            read_to_the_end(archive.fileobj, path, url)
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        if is_access_error(exc):
            raise file_access_error(path, exc) from exc
        raise damaged_file_error(path, url, f"truncated or corrupted archive: {exc}") from exc
    missing = [f"{folder}/{name}" for name in names if name not in found]
    if missing:
        raise damaged_file_error(path, url, f"the archive lacks {', '.join(missing)}")
    return found


def read_to_the_end(gzip_stream, path, url, chunk_size=1 << 16):
    """Read what follows the tar end marker up to the end of the gzip stream, where gzip checks
    its CRC (a flipped byte anywhere raises BadGzipFile); refuse a long tail without reading it
    all."""
    tail = 0
    for chunk in iter(lambda: gzip_stream.read(chunk_size), b""):
        tail += len(chunk)
        if tail > MAX_ARCHIVE_TAIL_BYTES:
            raise damaged_file_error(path, url, f"more than {MAX_ARCHIVE_TAIL_BYTES:,} bytes "
                                                f"follow the end of the tar archive")


def check_member_size(where, size, url):
    """Refuse a member larger than any official CIFAR file, before reading it."""
    if size > MAX_MEMBER_BYTES:
        raise damaged_file_error(where, url, f"it declares {size:,} bytes, more than any official "
                                 f"CIFAR file ({MAX_MEMBER_BYTES:,} bytes at most)")


def check_official_archive(path, md5, url):
    """Raise DamagedFileError (a ChecksumError) unless the archive has the official MD5."""
    try:
        verify_md5(path, md5)
    except ChecksumError as error:
        raise ChecksumError(f"{error}. Delete it and download it again from {url}.") from None
    except OSError as exc:
        raise file_access_error(path, exc) from exc


class _CIFAR(ArrayDataset):
    """Shared reader; CIFAR10 and CIFAR100 fill in the class attributes."""

    NAME = None
    FORMATS = ()       # CifarFormat tuples, preferred first
    LABELS = {}        # label kind -> key of its list in a python batch (dict order = binary byte order)
    LABEL_NAMES = {}   # label kind -> (key in the python meta file, name of the binary .txt file)
    PYTHON_META = None
    MEAN = STD = None

    def __init__(self, root=None, train=True, download=False, label=None):
        label = label or next(iter(self.LABELS))
        if label not in self.LABELS:
            raise ValueError(f"{self.NAME}: label must be one of {list(self.LABELS)}, got {label!r}")
        root = os.path.expanduser(root) if root is not None else default_root()
        fmt, path = self._locate(root, download)
        files = fmt.train_files if train else fmt.test_files
        url = CIFAR_URL + fmt.archive
        if fmt.kind == "binary":
            meta_files = [txt for _, txt in self.LABEL_NAMES.values()]
            members = read_members(path, fmt.folder, files + tuple(meta_files), url)
            images, labels = self._parse_binary(members, files, label, path)
            classes = self._text_lines(members[self.LABEL_NAMES[label][1]])
        else:
            members = read_members(path, fmt.folder, files + (self.PYTHON_META,), url)
            images, labels = self._parse_python(members, files, label, path)
            meta = _str_keys(safe_unpickle(members[self.PYTHON_META], f"{path}:{self.PYTHON_META}"))
            classes = [_as_text(n) for n in meta.get(self.LABEL_NAMES[label][0], [])]
        if not len(labels):
            raise damaged_file_error(path, url, "it holds no images")
        if not classes or labels.min() < 0 or labels.max() >= len(classes):
            raise damaged_file_error(path, url, f"labels span {labels.min()}..{labels.max()} but "
                                                f"there are {len(classes)} class names")
        super().__init__(images.reshape(-1, 3, 32, 32), labels, classes, self.MEAN, self.STD,
                         self.NAME, train)
        self.label_kind = label
        self.source = path

    # -- finding the files -------------------------------------------------------------------
    def _locate(self, root, download):
        for fmt in self.FORMATS:
            candidates = [os.path.join(root, fmt.folder), os.path.join(root, fmt.archive)]
            if os.path.basename(os.path.normpath(root)) == fmt.folder:
                candidates.append(root)  # root is the extracted folder itself
            for path in candidates:
                if os.path.exists(path):
                    if path.endswith(fmt.archive):
                        check_official_archive(path, fmt.md5, CIFAR_URL + fmt.archive)
                    return fmt, path
        preferred = self.FORMATS[0]
        if download:
            path = fetch(self.NAME, preferred.archive, CIFAR_URL, root, preferred.md5)
            return preferred, path
        looked_for = " or ".join(f"{f.archive} (or its folder {f.folder})" for f in self.FORMATS)
        raise missing_file_error(self.NAME, looked_for, [CIFAR_URL + preferred.archive], root)

    # -- parsing -----------------------------------------------------------------------------
    def _parse_binary(self, members, files, label, path):
        kinds = list(self.LABELS)
        record = len(kinds) + PIXELS_PER_IMAGE
        images, labels = [], []
        for name in files:
            raw = numpy.frombuffer(members[name], dtype=numpy.uint8)
            if raw.size == 0 or raw.size % record:
                raise damaged_file_error(f"{path}:{name}", CIFAR_URL + self.FORMATS[0].archive,
                                         f"{raw.size} bytes is not a whole number of "
                                         f"{record}-byte records")
            rows = raw.reshape(-1, record)
            labels.append(rows[:, kinds.index(label)].astype(numpy.int64))
            images.append(rows[:, len(kinds):])
        return numpy.concatenate(images), numpy.concatenate(labels)

    def _parse_python(self, members, files, label, path):
        images, labels = [], []
        for name in files:
            source = f"{path}:{name}"
            batch = _str_keys(safe_unpickle(members[name], source))
            data, batch_labels = batch.get("data"), batch.get(self.LABELS[label])
            problem = None
            if not isinstance(data, numpy.ndarray) or data.dtype != numpy.uint8 or data.ndim != 2 \
                    or data.shape[1] != PIXELS_PER_IMAGE:
                problem = (f"'data' should be a uint8 array (N, {PIXELS_PER_IMAGE}), got "
                           f"{getattr(data, 'dtype', type(data).__name__)} "
                           f"{getattr(data, 'shape', '')}")
            elif batch_labels is None or len(batch_labels) != len(data):
                problem = (f"'{self.LABELS[label]}' should list {len(data)} labels, got "
                           f"{None if batch_labels is None else len(batch_labels)}")
            else:
                batch_labels = numpy.asarray(batch_labels)
                if batch_labels.size and batch_labels.dtype.kind not in "iu":
                    problem = (f"'{self.LABELS[label]}' should hold integers, got "
                               f"{batch_labels.dtype} values such as {batch_labels.flat[0]!r}")
            if problem:
                raise damaged_file_error(source, None, problem)
            images.append(data)
            labels.append(batch_labels.astype(numpy.int64))
        return numpy.concatenate(images), numpy.concatenate(labels)

    @staticmethod
    def _text_lines(raw):
        return [line.strip() for line in raw.decode("utf-8").splitlines() if line.strip()]


def _as_text(value):
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _str_keys(obj):
    if not isinstance(obj, dict):
        raise DamagedFileError(f"expected a dict in a CIFAR batch, got {type(obj).__name__}")
    return {_as_text(key): value for key, value in obj.items()}


class CIFAR10(_CIFAR):
    """CIFAR-10: 50,000 train / 10,000 test colour images 32x32, 10 classes.

    ``CIFAR10(root, train=True, download=False)``: looks in ``root`` (default ``$MINIDENSE_DATA`` or
    ``~/.minidense/data``) for the archive or its extracted folder, in either official format.
    """

    NAME = "cifar10"
    FORMATS = (
        CifarFormat("binary", "cifar-10-binary.tar.gz", "c32a1d4ab5d03f1284b67883e8d87530",
                    "cifar-10-batches-bin",
                    tuple(f"data_batch_{i}.bin" for i in range(1, 6)), ("test_batch.bin",)),
        CifarFormat("python", "cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a",
                    "cifar-10-batches-py",
                    tuple(f"data_batch_{i}" for i in range(1, 6)), ("test_batch",)),
    )
    LABELS = {"label": "labels"}
    LABEL_NAMES = {"label": ("label_names", "batches.meta.txt")}
    PYTHON_META = "batches.meta"
    MEAN = (0.49139968, 0.48215841, 0.44653091)
    STD = (0.24703223, 0.24348513, 0.26158784)

    def __init__(self, root=None, train=True, download=False):
        super().__init__(root, train, download)


class CIFAR100(_CIFAR):
    """CIFAR-100: like CIFAR-10 with 100 fine classes grouped into 20 coarse superclasses.

    ``label='fine'`` (default, 100 classes, the paper's C100) or ``label='coarse'`` (20 classes).
    """

    NAME = "cifar100"
    FORMATS = (
        CifarFormat("binary", "cifar-100-binary.tar.gz", "03b5dce01913d631647c71ecec9e9cb8",
                    "cifar-100-binary", ("train.bin",), ("test.bin",)),
        CifarFormat("python", "cifar-100-python.tar.gz", "eb9058c3a382ffc7106e4002c42a8d85",
                    "cifar-100-python", ("train",), ("test",)),
    )
    LABELS = {"coarse": "coarse_labels", "fine": "fine_labels"}
    LABEL_NAMES = {"coarse": ("coarse_label_names", "coarse_label_names.txt"),
                   "fine": ("fine_label_names", "fine_label_names.txt")}
    PYTHON_META = "meta"
    MEAN = (0.50707516, 0.48654887, 0.44091784)
    STD = (0.26733429, 0.25643846, 0.27615047)

    def __init__(self, root=None, train=True, download=False, label="fine"):
        super().__init__(root, train, download, label)
