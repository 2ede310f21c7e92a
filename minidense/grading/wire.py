"""The only thing that crosses between the grader and a student's worker process: plain data.

A message is a small JSON document plus the raw bytes of the arrays it mentions::

    b"MDW1" | JSON length (8 bytes, little-endian) | array bytes total (8 bytes) | JSON | array bytes

In the JSON, plain values stay themselves (None, bool, int, float, str, list) and the rest is a
tagged object:

    {"__array__": i, "dtype": "float64", "shape": [2, 3]}   the i-th array's bytes, in order
    {"__scalar__": i, "dtype": ..., "shape": []}             a NumPy scalar (a 0-d array's item)
    {"__tuple__": [...]}, {"__dict__": [[key, value], ...]}, {"__dtype__": "float32"}
    {"__tensor__": <array>, "requires_grad": bool, "node": id or None}
    {"__handle__": id, "type": "DenseLayer"}                 an object that stays in the worker

Nothing is unpickled and nothing is executed while reading. ``read_message`` checks every size
against the limits *before* allocating, accepts only numeric dtypes, and rebuilds arrays as plain,
writable ``numpy.ndarray`` objects (never a subclass); anything else is a ``WireError``. The worker
is untrusted, so everything it says is read this way, and a wrong value is only a failed test.
"""
import json
import os
import select
import struct
import time

import numpy

MAGIC = b"MDW1"
HEADER = struct.Struct("<4sQQ")
NUMERIC_DTYPES = frozenset({"bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
                            "uint64", "float16", "float32", "float64", "complex64", "complex128"})
MAX_JSON_BYTES = 4 << 20          # 4 MiB of structure
MAX_ARRAY_BYTES = 256 << 20       # 256 MiB of array data per message
MAX_ARRAYS = 4096
MAX_DEPTH = 32
MAX_STRING = 100_000
MAX_INT = 2 ** 63


class WireError(Exception):
    """A message that breaks the format or its limits (what the worker said is not trusted)."""


class Handle:
    """An object that lives in the worker; the grader only ever holds its number."""

    def __init__(self, number, type_name):
        self.number, self.type_name = number, type_name


class TensorValue:
    """A Tensor on the wire: its array, whether it needs a gradient, and (from the worker) the id
    of the recorded graph that produced it."""

    def __init__(self, array, requires_grad=False, node=None):
        self.array, self.requires_grad, self.node = array, requires_grad, node


# ----------------------------------------------------------------------------------------------
# Writing
# ----------------------------------------------------------------------------------------------
def encode(value):
    """(header bytes, [array buffers]) for ``value``; raises WireError for what cannot travel."""
    arrays = []

    def array_node(array, tag="__array__"):
        array = numpy.asarray(array)
        array = array if array.flags.c_contiguous else array.copy(order="C")
        if array.dtype.name not in NUMERIC_DTYPES:
            raise WireError(f"an array of dtype {array.dtype} cannot be sent; use a numeric dtype")
        arrays.append(array)
        return {tag: len(arrays) - 1, "dtype": array.dtype.name, "shape": list(array.shape)}

    def walk(item, depth):
        if depth > MAX_DEPTH:
            raise WireError(f"a value nested more than {MAX_DEPTH} levels deep cannot be sent")
        if item is None or isinstance(item, (bool, str)):
            return item
        if isinstance(item, numpy.generic):
            return array_node(numpy.asarray(item), "__scalar__")
        if isinstance(item, (int, float)):
            return item
        if isinstance(item, numpy.ndarray):
            return array_node(item)
        if isinstance(item, TensorValue):
            return {"__tensor__": array_node(item.array), "requires_grad": item.requires_grad,
                    "node": item.node}
        if isinstance(item, Handle):
            return {"__handle__": item.number, "type": item.type_name}
        if isinstance(item, numpy.dtype) or (isinstance(item, type)
                                             and issubclass(item, numpy.generic)):
            return {"__dtype__": numpy.dtype(item).name}
        if isinstance(item, list):
            return [walk(x, depth + 1) for x in item]
        if isinstance(item, tuple):
            return {"__tuple__": [walk(x, depth + 1) for x in item]}
        if isinstance(item, dict):
            return {"__dict__": [[walk(k, depth + 1), walk(v, depth + 1)] for k, v in item.items()]}
        raise WireError(f"a {type(item).__name__} cannot be sent between grader and worker")

    document = json.dumps(walk(value, 0), allow_nan=True).encode("utf-8")
    return document, arrays


def write_message(fd, value):
    send(fd, encode(value))


def send(fd, encoded):
    """Write a message made by ``encode``."""
    document, arrays = encoded
    total = sum(a.nbytes for a in arrays)
    write_all(fd, HEADER.pack(MAGIC, len(document), total) + document)
    for array in arrays:
        write_all(fd, memoryview(array).cast("B") if array.nbytes else b"")


def write_all(fd, data):
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


# ----------------------------------------------------------------------------------------------
# Reading, with every limit checked before anything is allocated
# ----------------------------------------------------------------------------------------------
def read_message(fd, deadline=None, max_array_bytes=MAX_ARRAY_BYTES):
    """Read one message from ``fd``; ``deadline`` is a time.monotonic() value or None.

    Raises EOFError when the other side is gone, TimeoutError past the deadline, WireError for a
    message that breaks the format.
    """
    magic, json_length, array_bytes = HEADER.unpack(_read_exact(fd, HEADER.size, deadline))
    if magic != MAGIC:
        raise WireError("the worker's reply does not start with the message marker")
    if json_length > MAX_JSON_BYTES or array_bytes > max_array_bytes:
        raise WireError(f"the worker's reply declares {json_length} + {array_bytes} bytes, over "
                        f"the limits ({MAX_JSON_BYTES} + {max_array_bytes})")
    try:
        document = json.loads(_read_exact(fd, json_length, deadline).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise WireError(f"the worker's reply is not valid JSON ({type(error).__name__})") from None
    layouts = []
    _collect_arrays(document, layouts, 0)
    if sum(nbytes for _, _, nbytes in layouts) != array_bytes:
        raise WireError("the worker's reply declares array sizes that do not add up")
    arrays = []
    for dtype, shape, nbytes in layouts:
        data = _read_exact(fd, nbytes, deadline)
        arrays.append(numpy.frombuffer(data, dtype=dtype).reshape(shape).copy())
    return _rebuild(document, arrays)


def _collect_arrays(node, layouts, depth):
    """Check the document's structure and list (dtype, shape, nbytes) of its arrays in order."""
    if depth > MAX_DEPTH:
        raise WireError(f"the worker's reply is nested more than {MAX_DEPTH} levels deep")
    if isinstance(node, list):
        for item in node:
            _collect_arrays(item, layouts, depth + 1)
    elif isinstance(node, dict):
        tag = next(iter(node), None)
        if tag in ("__array__", "__scalar__"):
            dtype, shape = node.get("dtype"), node.get("shape")
            if node[tag] != len(layouts) or dtype not in NUMERIC_DTYPES \
                    or not isinstance(shape, list) or len(shape) > 32 \
                    or not all(type(n) is int and 0 <= n < MAX_INT for n in shape):
                raise WireError(f"the worker's reply holds a malformed array entry {_short(node)}")
            if len(layouts) >= MAX_ARRAYS:
                raise WireError(f"the worker's reply holds more than {MAX_ARRAYS} arrays")
            count = 1
            for n in shape:
                count *= n
            layouts.append((numpy.dtype(dtype), tuple(shape), count * numpy.dtype(dtype).itemsize))
        elif tag == "__tensor__":
            _collect_arrays(node["__tensor__"], layouts, depth + 1)
        elif tag in ("__tuple__", "__dict__"):
            _collect_arrays(node[tag], layouts, depth + 1)
        elif tag not in ("__handle__", "__dtype__"):
            raise WireError(f"the worker's reply holds an unknown entry {_short(node)}")
    elif isinstance(node, str) and len(node) > MAX_STRING:
        raise WireError(f"the worker's reply holds a string longer than {MAX_STRING} characters")
    elif isinstance(node, int) and not isinstance(node, bool) and abs(node) >= MAX_INT:
        raise WireError("the worker's reply holds an integer too large for int64")


def _rebuild(node, arrays):
    if isinstance(node, list):
        return [_rebuild(item, arrays) for item in node]
    if not isinstance(node, dict):
        return node
    if "__array__" in node:
        return arrays[node["__array__"]]
    if "__scalar__" in node:
        return arrays[node["__scalar__"]][()]
    if "__tuple__" in node:
        return tuple(_rebuild(item, arrays) for item in _as_list(node["__tuple__"]))
    if "__dict__" in node:
        pairs = [_rebuild(pair, arrays) for pair in _as_list(node["__dict__"])]
        if not all(isinstance(p, list) and len(p) == 2 and isinstance(p[0], (str, int))
                   for p in pairs):
            raise WireError("the worker's reply holds a dict with malformed entries")
        return {key: value for key, value in pairs}
    if "__dtype__" in node:
        if node["__dtype__"] not in NUMERIC_DTYPES:
            raise WireError(f"the worker's reply names an unknown dtype {_short(node)}")
        return numpy.dtype(node["__dtype__"]).type
    if "__tensor__" in node:
        array = _rebuild(node["__tensor__"], arrays)
        node_id = node.get("node")
        if not isinstance(array, numpy.ndarray) or not (node_id is None or type(node_id) is int):
            raise WireError("the worker's reply holds a malformed tensor entry")
        return TensorValue(array, bool(node.get("requires_grad")), node_id)
    if "__handle__" in node:
        if type(node["__handle__"]) is not int:
            raise WireError("the worker's reply holds a malformed object handle")
        return Handle(node["__handle__"], str(node.get("type", "object"))[:100])
    raise WireError(f"the worker's reply holds an unknown entry {_short(node)}")


def _as_list(value):
    if not isinstance(value, list):
        raise WireError("the worker's reply holds a malformed container")
    return value


def _short(node):
    text = json.dumps(node)
    return text if len(text) < 80 else text[:77] + "..."


def _read_exact(fd, count, deadline):
    chunks, remaining = [], count
    while remaining:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise TimeoutError("no answer from the worker in time")
        chunk = os.read(fd, min(remaining, 1 << 20))
        if not chunk:
            raise EOFError("the worker's process ended")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)
