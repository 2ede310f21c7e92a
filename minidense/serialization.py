"""``md.save(obj, path)`` and ``md.load(path)``: checkpoints without pickle.

The file is ONE ``.npz`` archive (NumPy's zip of ``.npy`` arrays):

* every array in ``obj`` (NumPy, CuPy or a Tensor's data) is an entry ``arr_0``, ``arr_1``, ...
  (CuPy arrays are copied to NumPy first);
* the structure around them (dicts, lists, tuples) and the plain values (int, float, str, bool,
  None) are a JSON document, stored as the bytes of the ``__meta__`` entry (a uint8 array). In it
  an array appears as ``{"__array__": "arr_0"}``.

Loading uses ``np.load(path, allow_pickle=False)``, so a file from someone else can only contain
numbers and text, never code. Loaded Tensors come back as NumPy arrays
(``model.load_state_dict`` accepts them). Dicts keep their order; dicts with keys that are not
strings (an optimizer's ``{0: {...}}``) and tuples come back as they went in.

Saving is atomic: the archive is written to a temporary file next to ``path``, flushed to disk,
then renamed over ``path``. If anything fails, the temporary file is removed and an older file at
``path`` is left untouched, so a crash mid-save never destroys the last good checkpoint.

The JSON is strict: a float NaN or infinity is stored as ``{"__float__": "nan"}`` (or ``"inf"``,
``"-inf"``). Loading trusts nothing in the file: before any array is read, every member's zip
header and ``.npy`` header must agree with the bytes the file really holds (md.save writes
uncompressed members, so a member that inflates is refused), and each array may be referred to
once, so a small file can never make ``load`` allocate more than its own size.
"""
import json
import math
import os
import zipfile

import numpy as np

from . import backend
from .autograd import Tensor
from .errors import UserError, file_access_error, is_access_error
from .fileio import atomic_write

META_KEY = "__meta__"
FORMAT_NAME = "minidense"
FORMAT_VERSION = 1
_MARKERS = ("__array__", "__tuple__", "__dict_items__", "__float__")   # keys that mean something
_NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}
ZIP_ENCRYPTED = 0x1     # bit 0 of a zip member's general-purpose flags


# ----------------------------------------------------------------------------------------------
# Saving
# ----------------------------------------------------------------------------------------------
def _encode(obj, arrays, where):
    """Turn ``obj`` into JSON-able values, moving arrays into ``arrays`` (name -> ndarray)."""
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, (int, float)) and not isinstance(obj, np.generic):
        if isinstance(obj, float) and not math.isfinite(obj):
            return {"__float__": str(obj)}      # 'nan', 'inf' or '-inf'
        return obj
    if isinstance(obj, Tensor):
        obj = obj.data
    if isinstance(obj, np.generic):
        obj = np.asarray(obj)
        return {"__array__": _add_array(obj, arrays, where), "scalar": True}
    if isinstance(obj, backend.get_array_module(obj).ndarray):
        return {"__array__": _add_array(obj, arrays, where)}
    if isinstance(obj, tuple):
        return {"__tuple__": [_encode(v, arrays, f"{where}[{i}]") for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_encode(v, arrays, f"{where}[{i}]") for i, v in enumerate(obj)]
    if isinstance(obj, dict):
        if all(isinstance(k, str) for k in obj) and not any(k in _MARKERS for k in obj):
            return {k: _encode(v, arrays, f"{where}[{k!r}]") for k, v in obj.items()}
        return {"__dict_items__": [[_encode_key(k, where), _encode(v, arrays, f"{where}[{k!r}]")]
                                   for k, v in obj.items()]}
    raise TypeError(f"md.save: cannot store {type(obj).__name__} at {where}; supported are arrays, "
                    f"Tensors, dicts, lists, tuples, int, float, str, bool and None")


def _encode_key(key, where):
    if key is None or isinstance(key, (bool, int, float, str)):
        return key
    if isinstance(key, tuple):
        return {"__tuple__": [_encode_key(k, where) for k in key]}
    raise TypeError(f"md.save: dict key {key!r} at {where} is a {type(key).__name__}; keys must be "
                    f"str, int, float, bool, None or tuples of those")


def _add_array(array, arrays, where):
    array = backend.to_numpy(array)
    if array.dtype.hasobject:
        raise TypeError(f"md.save: the array at {where} has dtype object, which needs pickle; "
                        f"convert it to a numeric dtype")
    name = f"arr_{len(arrays)}"
    arrays[name] = array
    return name


def save(obj, path):
    """Write ``obj`` (a state dict, or nested dicts/lists of arrays and plain values) to ``path``.

    ``path`` is used as given (a ``.npz`` suffix is recommended). The write is atomic.
    """
    arrays = {}
    meta = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "object": _encode(obj, arrays, "obj")}
    arrays[META_KEY] = np.frombuffer(json.dumps(meta, allow_nan=False).encode("utf-8"),
                                     dtype=np.uint8)
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"md.save: the folder {folder} does not exist; create it first "
                                f"(os.makedirs(folder, exist_ok=True))")
    atomic_write(path, lambda file: np.savez(file, **arrays))


# ----------------------------------------------------------------------------------------------
# Loading
# ----------------------------------------------------------------------------------------------
class CheckpointError(UserError, ValueError):
    """A file that md.load cannot read: not an .npz, truncated, or not written by md.save."""


class CheckpointNotFoundError(UserError, FileNotFoundError):
    """md.load was given a path where there is no file."""


def load(path):
    """Read what ``save`` wrote. Arrays (and saved Tensors) come back as NumPy arrays."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CheckpointNotFoundError(f"md.load: no such file: {path}")
    try:
        check_archive_sizes(path)
        with np.load(path, allow_pickle=False) as archive:
            return _read_archive(archive, path)
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError,
            NotImplementedError) as exc:     # NotImplementedError: a zip feature md.save never uses
        if is_access_error(exc):      # permission denied, an I/O error: the file may be fine
            raise file_access_error(path, exc) from exc
        raise CheckpointError(f"md.load: cannot read {path}: it is not a complete .npz archive "
                              f"written by md.save (truncated or corrupted file?): "
                              f"{type(exc).__name__}: {exc}") from exc
    except RecursionError:
        raise CheckpointError(f"md.load: {path} nests its structure too deeply to be a checkpoint "
                              f"written by md.save") from None


def check_archive_sizes(path):
    """Raise CheckpointError unless every member of the .npz at ``path`` holds exactly the bytes
    its headers promise. Reads headers only; allocates nothing in proportion to what they say."""
    file_size = os.path.getsize(path)
    with open(path, "rb") as stream:
        if stream.read(6) == b"\x93NUMPY":
            raise CheckpointError(f"md.load: {path} holds a single .npy array, not an .npz archive "
                                  f"written by md.save; read it with numpy.load")
    with zipfile.ZipFile(path) as archive:
        stored = 0
        for info in archive.infolist():
            where = f"md.load: {path}: member '{info.filename}'"
            if info.flag_bits & ZIP_ENCRYPTED:
                raise CheckpointError(f"{where} is marked as encrypted, which md.save never "
                                      f"writes (damaged or forged file)")
            if info.compress_type != zipfile.ZIP_STORED or info.file_size != info.compress_size:
                raise CheckpointError(f"{where} is compressed ({info.compress_size:,} bytes that "
                                      f"inflate to {info.file_size:,}); md.save writes "
                                      f"uncompressed archives, so this file was not made by it")
            stored += info.compress_size
            if stored > file_size:
                raise CheckpointError(f"{where}: the members claim {stored:,} bytes but the file "
                                      f"has {file_size:,} (truncated or forged file)")
            if info.filename.endswith(".npy"):
                with archive.open(info) as member:
                    _check_npy_header(member, info.file_size, where)


def _check_npy_header(member, member_size, where):
    """Compare a .npy header's shape and dtype with the bytes that follow it."""
    version = np.lib.format.read_magic(member)
    if version not in ((1, 0), (2, 0)):
        raise CheckpointError(f"{where} uses .npy format version {version}, which md.save does "
                              f"not write")
    read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                   else np.lib.format.read_array_header_2_0)
    shape, _, dtype = read_header(member)
    if dtype.hasobject:
        raise CheckpointError(f"{where} holds Python objects (dtype {dtype}), which need pickle; "
                              f"md.save never writes them")
    declared = math.prod(shape) * dtype.itemsize
    available = member_size - member.tell()
    if declared != available:
        raise CheckpointError(f"{where} declares an array of shape {shape} and dtype {dtype} "
                              f"({declared:,} bytes) but holds {available:,} bytes (truncated or "
                              f"forged file)")


def _read_archive(archive, path):
    names = set(archive.files)
    if META_KEY not in names:
        hint = " (it looks like a PyTorch checkpoint, which needs pickle)" if any(
            n.endswith("data.pkl") for n in names) else ""
        raise CheckpointError(f"md.load: {path} is an .npz archive without the '{META_KEY}' "
                              f"entry that md.save writes{hint}; it was not made by md.save, read "
                              f"its arrays with numpy.load")
    meta = json.loads(bytes(archive[META_KEY]).decode("utf-8"))
    version = meta.get("version") if isinstance(meta, dict) else None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME or "object" not in meta:
        raise CheckpointError(f"md.load: {path} has no minidense header (its '{META_KEY}' entry "
                              f"is not the description md.save writes); it was not made by "
                              f"md.save")
    if type(version) is not int or not 1 <= version <= FORMAT_VERSION:
        raise CheckpointError(f"md.load: {path} has format {FORMAT_NAME!r} version {version!r}, "
                              f"this minidense reads versions 1 to {FORMAT_VERSION}; upgrade "
                              f"minidense to read it")
    try:
        return _decode(meta["object"], _ArraySource(archive, path))
    except (TypeError, ValueError, AttributeError, KeyError) as exc:
        raise CheckpointError(f"md.load: {path} has a malformed '{META_KEY}' entry "
                              f"({type(exc).__name__}: {exc}); it was not made by md.save") from exc


class _ArraySource:
    """Hands out each archive member once: md.save never refers to one array twice, and a file
    that does could make load allocate its largest array over and over."""

    def __init__(self, archive, path):
        self.archive, self.path, self.used = archive, path, set()

    def take(self, name):
        if not isinstance(name, str) or name == META_KEY or name not in self.archive.files:
            raise CheckpointError(f"md.load: {self.path} refers to array {name!r}, which the "
                                  f"archive does not contain (corrupted file?)")
        if name in self.used:
            raise CheckpointError(f"md.load: {self.path} refers to array {name!r} twice, which "
                                  f"md.save never does (forged file?)")
        self.used.add(name)
        return self.archive[name]


def _decode(node, arrays):
    if isinstance(node, list):
        return [_decode(v, arrays) for v in node]
    if not isinstance(node, dict):
        return node
    if "__array__" in node:
        array = arrays.take(node["__array__"])
        return array[()] if node.get("scalar") else array
    if "__float__" in node:
        return _NON_FINITE[node["__float__"]]
    if "__tuple__" in node:
        return tuple(_decode(v, arrays) for v in node["__tuple__"])
    if "__dict_items__" in node:
        return {_decode_key(k): _decode(v, arrays) for k, v in node["__dict_items__"]}
    return {k: _decode(v, arrays) for k, v in node.items()}


def _decode_key(key):
    if isinstance(key, dict) and "__tuple__" in key:
        return tuple(_decode_key(k) for k in key["__tuple__"])
    return key
