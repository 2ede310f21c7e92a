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
"""
import json
import os
import zipfile

import numpy as np

from . import backend
from .autograd import Tensor
from .fileio import atomic_write

META_KEY = "__meta__"
FORMAT_NAME = "minidense"
FORMAT_VERSION = 1
_MARKERS = ("__array__", "__tuple__", "__dict_items__")   # dicts with these keys mean something


# ----------------------------------------------------------------------------------------------
# Saving
# ----------------------------------------------------------------------------------------------
def _encode(obj, arrays, where):
    """Turn ``obj`` into JSON-able values, moving arrays into ``arrays`` (name -> ndarray)."""
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, (int, float)) and not isinstance(obj, np.generic):
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
    arrays[META_KEY] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"md.save: the folder {folder} does not exist; create it first "
                                f"(os.makedirs(folder, exist_ok=True))")
    atomic_write(path, lambda file: np.savez(file, **arrays))


# ----------------------------------------------------------------------------------------------
# Loading
# ----------------------------------------------------------------------------------------------
class CheckpointError(ValueError):
    """A file that md.load cannot read: not an .npz, truncated, or not written by md.save."""


def load(path):
    """Read what ``save`` wrote. Arrays (and saved Tensors) come back as NumPy arrays."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"md.load: no such file: {path}")
    try:
        archive = np.load(path, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise CheckpointError(f"md.load: {path} holds a single .npy array, not an .npz "
                                  f"archive written by md.save; read it with numpy.load")
        with archive:
            return _read_archive(archive, path)
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as exc:
        raise CheckpointError(f"md.load: cannot read {path}: it is not a complete .npz archive "
                              f"written by md.save (truncated or corrupted file?): "
                              f"{type(exc).__name__}: {exc}") from exc


def _read_archive(archive, path):
    names = set(archive.files)
    if META_KEY not in names:
        hint = " (it looks like a PyTorch checkpoint, which needs pickle)" if any(
            n.endswith("data.pkl") for n in names) else ""
        raise CheckpointError(f"md.load: {path} is an .npz archive without the '{META_KEY}' "
                              f"entry that md.save writes{hint}; it was not made by md.save, read "
                              f"its arrays with numpy.load")
    meta = json.loads(bytes(archive[META_KEY]).decode("utf-8"))
    if meta.get("format") != FORMAT_NAME or meta.get("version", 0) > FORMAT_VERSION:
        raise CheckpointError(f"md.load: {path} has format {meta.get('format')!r} version "
                              f"{meta.get('version')!r}, this minidense reads {FORMAT_NAME!r} up "
                              f"to version {FORMAT_VERSION}")
    return _decode(meta["object"], archive, path)


def _decode(node, archive, path):
    if isinstance(node, list):
        return [_decode(v, archive, path) for v in node]
    if not isinstance(node, dict):
        return node
    if "__array__" in node:
        name = node["__array__"]
        if name not in archive.files:
            raise CheckpointError(f"md.load: {path} refers to array '{name}', which the archive "
                                  f"does not contain (corrupted file?)")
        array = archive[name]
        return array[()] if node.get("scalar") else array
    if "__tuple__" in node:
        return tuple(_decode(v, archive, path) for v in node["__tuple__"])
    if "__dict_items__" in node:
        return {_decode_key(k): _decode(v, archive, path) for k, v in node["__dict_items__"]}
    return {k: _decode(v, archive, path) for k, v in node.items()}


def _decode_key(key):
    if isinstance(key, dict) and "__tuple__" in key:
        return tuple(_decode_key(k) for k in key["__tuple__"])
    return key
