"""Finding dataset files on disk, downloading them, and checking their MD5.

A download goes to a temporary file next to its destination, is checked against the official
MD5, and only then renamed into place, so an interrupted or corrupted download never looks like
a finished one.
"""
import hashlib
import os
import urllib.error
from urllib.request import urlopen  # module-level name, so tests can swap in a fake

from tqdm.auto import tqdm

from ..errors import UserError
from ..fileio import atomic_write


class DatasetNotFoundError(UserError, FileNotFoundError):
    """The dataset's files are not on disk (and were not downloaded)."""


class DamagedFileError(UserError, ValueError):
    """A dataset file exists but cannot be read: truncated, corrupted or not the expected format."""


class ChecksumError(DamagedFileError):
    """A downloaded file's MD5 differs from the official one."""


def default_root():
    """Where datasets live unless told otherwise: ``$MINIDENSE_DATA`` or ``~/.minidense/data``."""
    return os.environ.get("MINIDENSE_DATA") or os.path.join(os.path.expanduser("~"), ".minidense",
                                                             "data")


def file_md5(path, chunk_size=1 << 20):
    """The MD5 hex digest of a file, read in chunks."""
    digest = hashlib.md5()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_md5(path, expected_md5):
    """Raise ChecksumError unless the file's MD5 equals ``expected_md5``."""
    actual = file_md5(path)
    if actual != expected_md5:
        raise ChecksumError(f"{path}: MD5 is {actual}, expected {expected_md5}; the file is damaged "
                            f"or not the official one")


def damaged_file_error(path, url, problem):
    """A DamagedFileError that names the file, what is wrong, and how to get a good copy."""
    where = f" from {url}" if url else ""
    return DamagedFileError(f"{path} is damaged ({problem}). Delete it and download it again{where}.")


def missing_file_error(dataset, looked_for, urls, root):
    """A DatasetNotFoundError that says what is missing, which URL(s) to fetch, and where to put them."""
    return DatasetNotFoundError(
        f"{dataset}: {looked_for} not found under {root}. Download {' and '.join(urls)} and put "
        f"{'it' if len(urls) == 1 else 'them'} in {root}, or pass download=True when a network "
        f"is available.")


def download_file(url, destination, expected_md5=None, chunk_size=1 << 16):
    """Download ``url`` to ``destination`` with a progress bar; verify the MD5; write atomically.

    The bytes go to a temporary file in the destination's folder, which is renamed into place only
    after the checksum matches. On a mismatch the temporary file is deleted and ChecksumError raised.
    """
    def write(out):
        with urlopen(url) as response:
            total = response.headers.get("Content-Length") if hasattr(response, "headers") else None
            with tqdm(total=int(total) if total else None, unit="B", unit_scale=True,
                      desc=os.path.basename(destination)) as bar:
                for chunk in iter(lambda: response.read(chunk_size), b""):
                    out.write(chunk)
                    bar.update(len(chunk))

    def check(temporary):
        if expected_md5 is None:
            return
        try:
            verify_md5(temporary, expected_md5)
        except ChecksumError:
            raise ChecksumError(
                f"the download of {url} has MD5 {file_md5(temporary)}, expected "
                f"{expected_md5}; the file was deleted. Try again, or download it by hand "
                f"and put it at {destination}.") from None

    atomic_write(destination, write, check)
    return destination


def fetch(dataset, filename, base_url, root, expected_md5):
    """Download ``base_url + filename`` into ``root``; a missing network becomes a clear error."""
    url = base_url + filename
    try:
        return download_file(url, os.path.join(root, filename), expected_md5)
    except (urllib.error.URLError, OSError) as exc:  # no network, server down, disk full
        raise DatasetNotFoundError(
            f"{dataset}: downloading {url} failed ({exc}). Download it by hand and put it in "
            f"{root}.") from exc
