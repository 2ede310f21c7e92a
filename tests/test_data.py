"""Datasets: CIFAR archives in both official formats, IDX files, the embedded sample, downloads.

The CIFAR and IDX files here are small ones the tests write in the official layouts (pickle is used
only to *make* test files); the real Fashion-MNIST files are used where the system has them.
"""
import gzip
import hashlib
import io
import os
import pickle
import struct
import tarfile
import urllib.error

import numpy
import pytest

from minidense.data import (CIFAR10, CIFAR100, DATASETS, MNIST, ChecksumError, DamagedFileError,
                            DatasetNotFoundError, FashionMNIST, SafeUnpickler, SampleFashionMNIST,
                            UnsafePickleError, get_dataset, read_idx)
from minidense.data import cifar as cifar_module
from minidense.data import download as download_module
from minidense.errors import UserError

CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                 "truck"]
SYSTEM_FASHION_MNIST = "/usr/share/datasets/fashion-mnist"


# ----------------------------------------------------------------------------------------------
# Writing small files in the official formats
# ----------------------------------------------------------------------------------------------
def fake_pixels(count, seed):
    return numpy.random.default_rng(seed).integers(0, 256, size=(count, 3072), dtype=numpy.uint8)


# The archives written here carry official names but not the official MD5s; a test archive counts
# as official for as long as it holds exactly the bytes written (MD5s in TEST_ARCHIVES).
TEST_ARCHIVES = set()


@pytest.fixture(autouse=True)
def test_archives_pass_the_md5_check(monkeypatch):
    official_check = cifar_module.check_official_archive

    def check(path, md5, url):
        try:
            written_here = download_module.file_md5(path) in TEST_ARCHIVES
        except OSError:         # let the real check say why it cannot read the file
            written_here = False
        if not written_here:
            official_check(path, md5, url)

    monkeypatch.setattr(cifar_module, "check_official_archive", check)


def count_as_official(path):
    TEST_ARCHIVES.add(download_module.file_md5(path))
    return path


def write_tree(base, folder, files, as_archive, archive_name):
    """Put {name: bytes} in base/folder/ or in base/archive_name (a tar.gz holding folder/)."""
    if not as_archive:
        os.makedirs(os.path.join(base, folder))
        for name, data in files.items():
            with open(os.path.join(base, folder, name), "wb") as stream:
                stream.write(data)
        return os.path.join(base, folder)
    os.makedirs(base, exist_ok=True)
    path = os.path.join(base, archive_name)
    with tarfile.open(path, "w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(f"{folder}/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return count_as_official(path)


def cifar10_python_files(per_batch=4, str_keys=False):
    """The python-format CIFAR-10 files; returns (files, train pixels, train labels)."""
    key = (lambda k: k) if str_keys else (lambda k: k.encode())
    files, pixels, labels = {}, [], []
    names = ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5",
             "test_batch"]
    for seed, name in enumerate(names):
        data = fake_pixels(per_batch, seed)
        batch_labels = [(seed + i) % 10 for i in range(per_batch)]
        files[name] = pickle.dumps({key("data"): data, key("labels"): batch_labels,
                                    key("batch_label"): b"batch"}, protocol=2)
        if name != "test_batch":
            pixels.append(data)
            labels += batch_labels
    files["batches.meta"] = pickle.dumps(
        {key("label_names"): [n.encode() for n in CIFAR10_NAMES], key("num_vis"): 3072},
        protocol=2)
    return files, numpy.concatenate(pixels), numpy.array(labels)


def cifar_binary_records(label_columns, pixels):
    return numpy.concatenate([label_columns, pixels], axis=1).astype(numpy.uint8).tobytes()


def write_idx(path, array):
    magic = 0x0800 | array.ndim
    header = struct.pack(f">I{array.ndim}I", magic, *array.shape)
    with gzip.open(path, "wb") as stream:
        stream.write(header + array.astype(numpy.uint8).tobytes())


# ----------------------------------------------------------------------------------------------
# CIFAR-10 / CIFAR-100
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("as_archive", [True, False], ids=["archive", "folder"])
def test_cifar10_python_format(tmp_path, as_archive):
    files, pixels, labels = cifar10_python_files()
    write_tree(tmp_path, "cifar-10-batches-py", files, as_archive, "cifar-10-python.tar.gz")
    train = CIFAR10(tmp_path, train=True)
    assert train.images.shape == (20, 3, 32, 32) and train.images.dtype == numpy.uint8
    assert numpy.array_equal(train.images.reshape(20, -1), pixels)
    assert numpy.array_equal(train.labels, labels) and train.labels.dtype == numpy.int64
    assert train.classes == CIFAR10_NAMES and train.name == "cifar10"
    image, label = train[5]
    assert image.shape == (3, 32, 32) and label == int(labels[5]) and isinstance(label, int)
    # channel layout: the first 1024 values are the red plane, row-major
    assert train.images[0, 0, 0, 1] == pixels[0, 1] and train.images[0, 1, 0, 0] == pixels[0, 1024]
    assert train.mean == pytest.approx((0.4914, 0.4822, 0.4465), abs=1e-4)
    test = CIFAR10(tmp_path, train=False)
    assert len(test) == 4 and numpy.array_equal(test.images.reshape(4, -1), fake_pixels(4, 5))


def test_cifar10_python_with_text_keys_as_written_by_python3(tmp_path):
    files, pixels, _ = cifar10_python_files(str_keys=True)
    write_tree(tmp_path, "cifar-10-batches-py", files, True, "cifar-10-python.tar.gz")
    assert numpy.array_equal(CIFAR10(tmp_path).images.reshape(20, -1), pixels)


@pytest.mark.parametrize("as_archive", [True, False], ids=["archive", "folder"])
def test_cifar10_binary_format(tmp_path, as_archive):
    files, labels_per_file = {}, {}
    for seed in range(6):
        name = f"data_batch_{seed + 1}.bin" if seed < 5 else "test_batch.bin"
        labels_per_file[name] = numpy.arange(3)[:, None] + seed
        files[name] = cifar_binary_records(labels_per_file[name], fake_pixels(3, seed))
    files["batches.meta.txt"] = ("\n".join(CIFAR10_NAMES) + "\n\n").encode()
    write_tree(tmp_path, "cifar-10-batches-bin", files, as_archive, "cifar-10-binary.tar.gz")
    train = CIFAR10(tmp_path)
    assert train.images.shape == (15, 3, 32, 32)
    assert train.labels.tolist() == [0, 1, 2, 1, 2, 3, 2, 3, 4, 3, 4, 5, 4, 5, 6]
    assert numpy.array_equal(train.images[3].reshape(-1), fake_pixels(3, 1)[0])
    assert train.classes == CIFAR10_NAMES
    test = CIFAR10(tmp_path, train=False)
    assert test.labels.tolist() == [5, 6, 7]


def test_cifar10_extracted_folder_given_as_root(tmp_path):
    files, pixels, _ = cifar10_python_files()
    folder = write_tree(tmp_path, "cifar-10-batches-py", files, False, None)
    assert numpy.array_equal(CIFAR10(folder).images.reshape(20, -1), pixels)


def cifar100_python_files(count=6):
    files = {}
    for seed, name in enumerate(["train", "test"]):
        files[name] = pickle.dumps({"data": fake_pixels(count, 10 + seed),
                                    "fine_labels": [i * 17 % 100 for i in range(count)],
                                    "coarse_labels": [i * 3 % 20 for i in range(count)]},
                                   protocol=2)
    files["meta"] = pickle.dumps({"fine_label_names": [f"fine{i}" for i in range(100)],
                                  "coarse_label_names": [f"coarse{i}" for i in range(20)]},
                                 protocol=2)
    return files


@pytest.mark.parametrize("as_archive", [True, False], ids=["archive", "folder"])
def test_cifar100_python_format_fine_and_coarse(tmp_path, as_archive):
    write_tree(tmp_path, "cifar-100-python", cifar100_python_files(), as_archive,
               "cifar-100-python.tar.gz")
    fine = CIFAR100(tmp_path)
    assert fine.labels.tolist() == [0, 17, 34, 51, 68, 85] and len(fine.classes) == 100
    assert fine.classes[17] == "fine17" and fine.name == "cifar100"
    coarse = CIFAR100(tmp_path, label="coarse")
    assert coarse.labels.tolist() == [0, 3, 6, 9, 12, 15] and len(coarse.classes) == 20
    assert numpy.array_equal(fine.images, coarse.images)
    assert numpy.array_equal(CIFAR100(tmp_path, train=False).images.reshape(6, -1),
                             fake_pixels(6, 11))


@pytest.mark.parametrize("as_archive", [True, False], ids=["archive", "folder"])
def test_cifar100_binary_format(tmp_path, as_archive):
    coarse_fine = numpy.array([[1, 42], [19, 99], [0, 7]])
    files = {"train.bin": cifar_binary_records(coarse_fine, fake_pixels(3, 0)),
             "test.bin": cifar_binary_records(coarse_fine[:1], fake_pixels(1, 1)),
             "fine_label_names.txt": "\n".join(f"f{i}" for i in range(100)).encode(),
             "coarse_label_names.txt": "\n".join(f"c{i}" for i in range(20)).encode()}
    write_tree(tmp_path, "cifar-100-binary", files, as_archive, "cifar-100-binary.tar.gz")
    assert CIFAR100(tmp_path).labels.tolist() == [42, 99, 7]
    assert CIFAR100(tmp_path, label="coarse").labels.tolist() == [1, 19, 0]
    assert CIFAR100(tmp_path, label="coarse").classes[19] == "c19"
    assert len(CIFAR100(tmp_path, train=False)) == 1
    with pytest.raises(ValueError, match="label must be one of"):
        CIFAR100(tmp_path, label="medium")


class RunsAShellCommand:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("as_archive", [True, False], ids=["archive", "folder"])
def test_hostile_pickle_is_refused_without_running(tmp_path, as_archive):
    marker = tmp_path / "pwned"
    files, _, _ = cifar10_python_files()
    files["data_batch_2"] = pickle.dumps({b"data": RunsAShellCommand(marker), b"labels": []},
                                         protocol=2)
    write_tree(tmp_path, "cifar-10-batches-py", files, as_archive, "cifar-10-python.tar.gz")
    with pytest.raises(UnsafePickleError, match=r"refused to load the global '(posix|os)\.system'"
                                                r" from .*data_batch_2") as info:
        CIFAR10(tmp_path)
    assert "not an official CIFAR file" in str(info.value)
    assert not marker.exists()


def test_safe_unpickler_allows_arrays_and_refuses_other_globals():
    array = numpy.arange(12, dtype=numpy.uint8).reshape(3, 4)
    loaded = SafeUnpickler(io.BytesIO(pickle.dumps({"a": array, "b": b"xy"}, protocol=2))).load()
    assert numpy.array_equal(loaded["a"], array) and loaded["b"] == b"xy"
    payload = pickle.dumps(eval, protocol=4)  # a reference to builtins.eval
    with pytest.raises(UnsafePickleError, match="builtins.eval"):
        SafeUnpickler(io.BytesIO(payload)).load()


def test_truncated_archive_gives_a_clear_error(tmp_path):
    files, _, _ = cifar10_python_files(per_batch=50)
    path = write_tree(tmp_path, "cifar-10-batches-py", files, True, "cifar-10-python.tar.gz")
    with open(path, "rb") as stream:
        data = stream.read()
    with open(path, "wb") as stream:
        stream.write(data[: len(data) // 2])
    with pytest.raises(DamagedFileError) as info:
        CIFAR10(tmp_path)
    message = str(info.value)
    assert "cifar-10-python.tar.gz" in message and "damaged" in message
    assert "Delete it and download it again" in message and "cs.toronto.edu" in message


def test_corrupted_batch_and_wrong_shapes_are_reported(tmp_path):
    files, _, _ = cifar10_python_files()
    files["data_batch_3"] = files["data_batch_3"][:100]
    write_tree(tmp_path / "a", "cifar-10-batches-py", files, False, None)
    with pytest.raises(DamagedFileError, match="data_batch_3.*damaged"):
        CIFAR10(tmp_path / "a")

    files, _, _ = cifar10_python_files()
    files["data_batch_1"] = pickle.dumps({"data": numpy.zeros((4, 100), numpy.uint8),
                                          "labels": [0] * 4}, protocol=2)
    write_tree(tmp_path / "b", "cifar-10-batches-py", files, False, None)
    with pytest.raises(DamagedFileError, match=r"uint8 array \(N, 3072\)"):
        CIFAR10(tmp_path / "b")

    records = {"train.bin": b"\x00" * 3075, "test.bin": b"", "fine_label_names.txt": b"a",
               "coarse_label_names.txt": b"b"}
    write_tree(tmp_path / "c", "cifar-100-binary", records, False, None)
    with pytest.raises(DamagedFileError, match="3074-byte records"):
        CIFAR100(tmp_path / "c")


def test_missing_cifar_says_what_to_download_and_where(tmp_path):
    with pytest.raises(DatasetNotFoundError) as info:
        CIFAR10(tmp_path / "empty")
    message = str(info.value)
    assert "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz" in message
    assert "cifar-10-python.tar.gz" in message and str(tmp_path / "empty") in message


# ----------------------------------------------------------------------------------------------
# Downloads (no network: a fake urlopen serves local bytes)
# ----------------------------------------------------------------------------------------------
class FakeResponse(io.BytesIO):
    def __init__(self, data):
        super().__init__(data)
        self.headers = {"Content-Length": str(len(data))}


def serve(monkeypatch, data, seen_urls=None):
    def fake_urlopen(url):
        if seen_urls is not None:
            seen_urls.append(url)
        return FakeResponse(data)
    monkeypatch.setattr(download_module, "urlopen", fake_urlopen)


def test_download_verifies_md5_and_writes_atomically(tmp_path, monkeypatch):
    data = b"minidense" * 1000
    serve(monkeypatch, data)
    good_md5 = hashlib.md5(data).hexdigest()
    target = tmp_path / "sub" / "file.bin"
    download_module.download_file("https://example.org/file.bin", str(target), good_md5)
    assert target.read_bytes() == data and os.listdir(tmp_path / "sub") == ["file.bin"]
    assert download_module.file_md5(target) == good_md5

    wrong = tmp_path / "wrong.bin"
    with pytest.raises(ChecksumError, match="expected 0{32}.*deleted"):
        download_module.download_file("https://example.org/x", str(wrong), "0" * 32)
    assert not wrong.exists() and sorted(os.listdir(tmp_path)) == ["sub"]


def test_cifar_download_rejects_a_file_with_the_wrong_md5(tmp_path, monkeypatch):
    files, _, _ = cifar10_python_files()
    archive = write_tree(tmp_path / "source", "cifar-10-batches-py", files, True, "a.tar.gz")
    with open(archive, "rb") as stream:
        data = stream.read()
    urls = []
    serve(monkeypatch, data, urls)
    root = tmp_path / "root"
    with pytest.raises(ChecksumError, match="c32a1d4ab5d03f1284b67883e8d87530"):
        CIFAR10(root, download=True)  # a small test archive is not the official one
    assert urls == ["https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"]
    assert os.listdir(root) == []


def test_cifar_download_then_load(tmp_path, monkeypatch):
    files, pixels, _ = cifar10_python_files()
    archive = write_tree(tmp_path / "source", "cifar-10-batches-py", files, True, "a.tar.gz")
    with open(archive, "rb") as stream:
        data = stream.read()
    serve(monkeypatch, data)
    python_format = CIFAR10.FORMATS[1]._replace(md5=download_module.file_md5(archive))
    monkeypatch.setattr(CIFAR10, "FORMATS", (python_format,))
    dataset = CIFAR10(tmp_path / "root", download=True)
    assert numpy.array_equal(dataset.images.reshape(20, -1), pixels)
    assert os.listdir(tmp_path / "root") == ["cifar-10-python.tar.gz"]


def test_download_without_network_says_what_to_do(tmp_path, monkeypatch):
    def no_network(url):
        raise urllib.error.URLError("Name or service not known")
    monkeypatch.setattr(download_module, "urlopen", no_network)
    with pytest.raises(DatasetNotFoundError, match="cifar-100-binary.tar.gz.*by hand"):
        CIFAR100(tmp_path, download=True)


# ----------------------------------------------------------------------------------------------
# IDX files: MNIST / Fashion-MNIST
# ----------------------------------------------------------------------------------------------
def write_mnist_like(folder, count=5, seed=0):
    os.makedirs(folder, exist_ok=True)
    rng = numpy.random.default_rng(seed)
    images = rng.integers(0, 256, size=(count, 28, 28), dtype=numpy.uint8)
    labels = numpy.arange(count, dtype=numpy.uint8) % 10
    for prefix in ("train", "t10k"):
        write_idx(os.path.join(folder, f"{prefix}-images-idx3-ubyte.gz"), images)
        write_idx(os.path.join(folder, f"{prefix}-labels-idx1-ubyte.gz"), labels)
    return images, labels


def test_idx_reader_and_padding(tmp_path):
    images, labels = write_mnist_like(tmp_path / "fashion-mnist")
    padded = FashionMNIST(tmp_path)
    assert padded.images.shape == (5, 1, 32, 32) and padded.images.dtype == numpy.uint8
    assert numpy.array_equal(padded.images[:, 0, 2:30, 2:30], images)
    assert padded.images[:, :, :2].sum() == 0 and padded.images[:, :, :, 30:].sum() == 0
    assert padded.labels.tolist() == [0, 1, 2, 3, 4] and padded.classes[9] == "Ankle boot"
    plain = FashionMNIST(tmp_path, train=False, pad_to=None)
    assert plain.images.shape == (5, 1, 28, 28) and plain.mean == pytest.approx((0.2860406,))
    # padding with zeros lowers the mean by the area ratio 784/1024
    assert padded.mean[0] == pytest.approx(0.2860406 * 784 / 1024)


def test_mnist_reads_root_directly(tmp_path):
    images, _ = write_mnist_like(tmp_path, count=3, seed=1)
    dataset = MNIST(tmp_path, pad_to=None)
    assert numpy.array_equal(dataset.images[:, 0], images) and dataset.classes[3] == "3"


def test_idx_bad_magic_and_truncation(tmp_path):
    path = str(tmp_path / "labels.gz")
    write_idx(path, numpy.arange(10, dtype=numpy.uint8))
    assert read_idx(path, 2049).tolist() == list(range(10))
    with pytest.raises(DamagedFileError, match="bad IDX magic number 2049, expected 2051"):
        read_idx(path, 2051)
    with gzip.open(path, "wb") as stream:  # the header promises 10 labels, 6 follow
        stream.write(struct.pack(">II", 2049, 10) + bytes(6))
    with pytest.raises(DamagedFileError, match="found 6.*truncated"):
        read_idx(path, 2049)
    with open(path, "rb") as stream:
        data = stream.read()
    with open(path, "wb") as stream:  # the gzip stream itself cut short
        stream.write(data[:-10])
    with pytest.raises(DamagedFileError, match="labels.gz is damaged"):
        read_idx(path, 2049)


def test_missing_mnist_lists_files_and_urls(tmp_path):
    with pytest.raises(DatasetNotFoundError) as info:
        MNIST(tmp_path)
    message = str(info.value)
    assert "train-labels-idx1-ubyte.gz" in message and "https://" in message
    assert str(tmp_path / "mnist") in message


@pytest.mark.skipif(not os.path.isdir(SYSTEM_FASHION_MNIST),
                    reason="Fashion-MNIST is not installed in /usr/share/datasets/fashion-mnist "
                           "(Debian package dataset-fashion-mnist)")
def test_real_fashion_mnist_from_the_system_folder(tmp_path):
    train = FashionMNIST(tmp_path)  # nothing under tmp_path: falls back to the system folder
    assert train.source == SYSTEM_FASHION_MNIST
    assert train.images.shape == (60000, 1, 32, 32)
    assert numpy.bincount(train.labels).tolist() == [6000] * 10
    assert train.labels[:10].tolist() == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]
    assert int(train.images.sum(dtype=numpy.int64)) == 3431114169
    pixels = train.images.astype(numpy.float64) / 255
    assert (pixels.mean(), pixels.std()) == pytest.approx((train.mean[0], train.std[0]), abs=1e-6)
    test = FashionMNIST(tmp_path, train=False)
    assert test.images.shape == (10000, 1, 32, 32)
    assert numpy.bincount(test.labels).tolist() == [1000] * 10


# ----------------------------------------------------------------------------------------------
# The embedded sample and the registry
# ----------------------------------------------------------------------------------------------
def test_embedded_sample_shapes_balance_and_checksums():
    train, test = SampleFashionMNIST(train=True), SampleFashionMNIST(train=False)
    assert train.images.shape == (10000, 1, 32, 32) and test.images.shape == (2000, 1, 32, 32)
    assert train.images.dtype == numpy.uint8 and train.labels.dtype == numpy.int64
    assert numpy.bincount(train.labels).tolist() == [1000] * 10
    assert numpy.bincount(test.labels).tolist() == [200] * 10
    assert int(train.images.sum(dtype=numpy.int64)) == 573109086
    assert int(test.images.sum(dtype=numpy.int64)) == 114255019
    assert train.images[0, 0, 16, 10:20].tolist() == [171, 230, 30, 0, 0, 0, 0, 47, 200, 206]
    assert train.labels[:10].tolist() == [5, 7, 4, 0, 2, 7, 7, 3, 3, 8]
    assert test.source_indices[:5].tolist() == [5, 9, 11, 12, 13]
    assert train.images[:, :, :2].max() == 0  # the 2-pixel zero border of the 28 -> 32 padding
    pixels = train.images.astype(numpy.float64) / 255
    assert (pixels.mean(), pixels.std()) == pytest.approx((train.mean[0], train.std[0]), abs=1e-6)
    assert test.mean == train.mean and train.name == "sample"
    assert SampleFashionMNIST(pad_to=None).images.shape == (10000, 1, 28, 28)


@pytest.mark.skipif(not os.path.isdir(SYSTEM_FASHION_MNIST), reason="Fashion-MNIST not installed")
def test_embedded_sample_is_a_subset_of_the_real_test_split(tmp_path):
    sample, full = SampleFashionMNIST(train=False), FashionMNIST(tmp_path, train=False)
    assert numpy.array_equal(sample.images, full.images[sample.source_indices])
    assert numpy.array_equal(sample.labels, full.labels[sample.source_indices])


def test_registry_names_default_and_unknown_name():
    assert list(DATASETS) == ["sample", "fashion-mnist", "mnist", "cifar10", "cifar100"]
    dataset = get_dataset()
    assert isinstance(dataset, SampleFashionMNIST) and dataset.train
    assert len(get_dataset("sample", train=False)) == 2000
    with pytest.raises(ValueError) as info:
        get_dataset("imagenet")
    for name in DATASETS:
        assert name in str(info.value)


def test_registry_passes_root_and_reads_environment_default(tmp_path, monkeypatch):
    write_mnist_like(tmp_path / "mnist", count=4)
    assert len(get_dataset("mnist", root=str(tmp_path))) == 4
    monkeypatch.setenv("MINIDENSE_DATA", str(tmp_path))
    assert len(get_dataset("MNIST", train=False)) == 4
    assert download_module.default_root() == str(tmp_path)


# ----------------------------------------------------------------------------------------------
# Files that lie about their size: refused before anything large is allocated
# ----------------------------------------------------------------------------------------------
def peak_allocation(action):
    """Run ``action`` (which must raise DamagedFileError); return the error and the peak bytes
    Python and NumPy allocated meanwhile."""
    import tracemalloc
    tracemalloc.start()
    try:
        with pytest.raises(DamagedFileError) as info:
            action()
        return info.value, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


class HugeArray:
    """Pickles as the allowed call numpy.ndarray((100000, 3072), 'u1'): 307 MB from a few bytes."""

    def __reduce__(self):
        return numpy.ndarray, ((100_000, PIXELS), "u1")


PIXELS = 3072


def test_tiny_pickle_asking_for_a_huge_array_is_refused(tmp_path):
    files, _, _ = cifar10_python_files()
    files["data_batch_1"] = pickle.dumps({b"data": HugeArray(), b"labels": [0]}, protocol=2)
    assert len(files["data_batch_1"]) < 300
    write_tree(tmp_path, "cifar-10-batches-py", files, False, "cifar-10-python.tar.gz")
    error, peak = peak_allocation(lambda: CIFAR10(tmp_path))
    assert "data_batch_1" in str(error) and "shape (100000, 3072)" in str(error)
    assert peak < 5_000_000


def test_tar_member_declaring_gigabytes_is_refused_before_reading(tmp_path):
    path = tmp_path / "cifar-10-binary.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        info = tarfile.TarInfo("cifar-10-batches-bin/data_batch_1.bin")
        info.size = 3 * 1024 ** 3
        archive.addfile(info)               # the header alone: no data follows
    count_as_official(path)
    error, peak = peak_allocation(lambda: CIFAR10(tmp_path))
    assert "data_batch_1.bin" in str(error) and "3,221,225,472 bytes" in str(error)
    assert peak < 5_000_000


def test_gzip_that_inflates_beyond_its_idx_header_is_cut_off(tmp_path):
    path = str(tmp_path / "train-images-idx3-ubyte.gz")
    with gzip.open(path, "wb", compresslevel=1) as stream:   # promises 10 images, holds 2,000
        stream.write(struct.pack(">IIII", 2051, 10, 28, 28))
        stream.write(bytes(2000 * 28 * 28))
    error, peak = peak_allocation(lambda: read_idx(path, 2051))
    assert "promises (10, 28, 28) = 7,840 bytes of data, found more than 7,840" in str(error)
    assert peak < 200_000


def test_idx_header_promising_more_than_the_file_can_hold_names_the_file(tmp_path):
    path = str(tmp_path / "t10k-images-idx3-ubyte.gz")
    with gzip.open(path, "wb") as stream:   # 2^32-1 cubed overflows 64-bit integers
        stream.write(struct.pack(">IIII", 2051, 2 ** 32 - 1, 2 ** 32 - 1, 2 ** 32 - 1))
    error, peak = peak_allocation(lambda: read_idx(path, 2051))
    message = str(error)
    assert message.startswith(path) and f"{(2 ** 32 - 1) ** 3:,} bytes" in message
    assert peak < 200_000


def test_idx_with_no_images_is_damaged(tmp_path):
    folder = tmp_path / "mnist"
    folder.mkdir()
    write_idx(str(folder / "train-images-idx3-ubyte.gz"), numpy.zeros((0, 28, 28)))
    write_idx(str(folder / "train-labels-idx1-ubyte.gz"), numpy.zeros((0,)))
    with pytest.raises(DamagedFileError, match="train-images-idx3-ubyte.gz.*holds no images"):
        MNIST(tmp_path)


@pytest.mark.parametrize("labels, shown", [([0, 1.7, 2, 3], "float64"), ([0, "3", 2, 1], "<U")])
def test_cifar_labels_that_are_not_integers_are_damaged(tmp_path, labels, shown):
    files, _, _ = cifar10_python_files()
    files["data_batch_3"] = pickle.dumps({b"data": fake_pixels(4, 3), b"labels": labels},
                                         protocol=2)
    write_tree(tmp_path, "cifar-10-batches-py", files, False, "cifar-10-python.tar.gz")
    with pytest.raises(DamagedFileError, match=f"data_batch_3.*should hold integers.*{shown}"):
        CIFAR10(tmp_path)


# ----------------------------------------------------------------------------------------------
# Permission denied is not damage; a flipped byte is; archives are the official ones
# ----------------------------------------------------------------------------------------------
def cifar10_binary_files():
    files = {f"data_batch_{i}.bin": cifar_binary_records(numpy.zeros((2, 1)), fake_pixels(2, i))
             for i in range(1, 6)}
    files["test_batch.bin"] = cifar_binary_records(numpy.ones((2, 1)), fake_pixels(2, 6))
    files["batches.meta.txt"] = "\n".join(CIFAR10_NAMES).encode()
    return files


def assert_permission_denied(error, path):
    message = str(error)
    assert f"cannot read {path}: Permission denied; check its permissions" in message
    assert "damaged" not in message and "corrupted" not in message and "\n" not in message


@pytest.mark.parametrize("as_archive, denied", [
    (True, "cifar-10-binary.tar.gz"),
    (False, os.path.join("cifar-10-batches-bin", "data_batch_2.bin")),
], ids=["archive", "file-in-folder"])
def test_permission_denied_on_cifar_files_says_so(tmp_path, monkeypatch, as_archive, denied):
    from file_faults import deny_opening
    write_tree(tmp_path, "cifar-10-batches-bin", cifar10_binary_files(), as_archive,
               "cifar-10-binary.tar.gz")
    deny_opening(monkeypatch, tmp_path / denied)
    with pytest.raises(UserError) as info:
        CIFAR10(tmp_path)
    assert isinstance(info.value, OSError)
    assert_permission_denied(info.value, tmp_path / denied)


def test_permission_denied_on_an_mnist_file_says_so(tmp_path, monkeypatch):
    from file_faults import deny_opening
    write_mnist_like(tmp_path / "mnist", count=3)
    denied = tmp_path / "mnist" / "train-labels-idx1-ubyte.gz"
    deny_opening(monkeypatch, denied)
    with pytest.raises(UserError) as info:
        MNIST(tmp_path)
    assert_permission_denied(info.value, denied)


def flip_byte(path, offset):
    data = bytearray(open(path, "rb").read())
    data[offset] ^= 0x01
    open(path, "wb").write(bytes(data))


def test_a_flipped_byte_in_a_cifar_archive_fails_the_gzip_crc(tmp_path):
    from minidense.data.cifar import read_members
    path = write_tree(tmp_path, "cifar-10-batches-bin", cifar10_binary_files(), True,
                      "cifar-10-binary.tar.gz")
    flip_byte(path, -8)     # the stored CRC-32, checked only once the stream is read to its end
    with pytest.raises(DamagedFileError, match="cifar-10-binary.tar.gz is damaged .*CRC check "
                                               "failed"):
        read_members(path, "cifar-10-batches-bin", ["data_batch_1.bin"], "the-url")


def test_a_flipped_byte_in_an_idx_file_fails_the_gzip_crc(tmp_path):
    path = str(tmp_path / "labels.gz")
    write_idx(path, numpy.arange(10, dtype=numpy.uint8))
    flip_byte(path, -8)
    with pytest.raises(DamagedFileError, match="labels.gz is damaged .*CRC check failed"):
        read_idx(path, 2049)


def test_a_local_cifar_archive_needs_the_official_md5(tmp_path):
    path = write_tree(tmp_path, "cifar-10-batches-bin", cifar10_binary_files(), True,
                      "cifar-10-binary.tar.gz")
    with open(path, "ab") as stream:
        stream.write(b"\0")                  # one byte more: no longer the archive written
    with pytest.raises(ChecksumError) as info:
        CIFAR10(tmp_path)
    message = str(info.value)
    assert "cifar-10-binary.tar.gz: MD5 is " in message
    assert "expected c32a1d4ab5d03f1284b67883e8d87530" in message
    assert "download it again from https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz" \
        in message
