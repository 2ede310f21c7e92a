"""The CPU emulation of CuPy refuses what CuPy refuses and counts what a GPU would be asked to do.

If it were more permissive than CuPy, the ``[cuda-emulated]`` tests could pass where a real GPU
breaks; if its counts were wrong, the launch and sync budgets tested elsewhere would mean nothing.
"""
import sys
import types

import numpy as np
import pytest

from minidense import _cupy_surface, backend, cupy_emulation
from minidense.cupy_emulation import counting, cupy


def test_host_and_device_arrays_never_mix():
    device, host = cupy.arange(3.0), np.arange(3.0)
    for mix in (lambda: device + host, lambda: host * device, lambda: cupy.maximum(device, host),
                lambda: cupy.concatenate([device, host]), lambda: np.asarray(device),
                lambda: device.__setitem__(slice(None), host)):
        with pytest.raises(TypeError):
            mix()
    assert isinstance(device.sum(), cupy.ndarray) and float(device.sum()) == 3.0
    assert isinstance(np.concatenate([device, device]), cupy.ndarray)   # __array_function__
    np.testing.assert_array_equal(cupy.asnumpy(device[host.astype(int)]), host)


def test_only_cupys_names_exist():
    assert _cupy_surface.VERSION.startswith("14.")
    for missing in ("errstate", "ma", "nanpercentile", "seterr"):
        assert missing not in _cupy_surface.MODULE
        with pytest.raises(AttributeError, match=missing):
            getattr(cupy, missing)
    device = cupy.arange(4.0)
    with pytest.raises(TypeError):                    # NumPy finds no CuPy implementation
        np.nanpercentile(device, 50)
    for host_only in ("ctypes", "setflags", "itemset", "__array_interface__"):
        with pytest.raises(AttributeError):
            getattr(device, host_only)
    with pytest.raises(AttributeError):
        device.flags.writeable
    assert device.flags.c_contiguous and device.flags.owndata


def test_ufunc_methods_are_cupys():
    device = cupy.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(cupy.asnumpy(cupy.add.reduce(device, axis=0)), [3, 5, 7])
    np.testing.assert_array_equal(cupy.asnumpy(cupy.multiply.accumulate(cupy.arange(1.0, 4.0))),
                                  [1, 2, 6])
    for unsupported in (lambda: cupy.maximum.reduce(device, axis=0),
                        lambda: cupy.maximum.accumulate(device),
                        lambda: cupy.multiply.at(device, (0, 0), 2.0)):
        with pytest.raises(NotImplementedError, match="not supported by CuPy"):
            unsupported()
    target = cupy.zeros(3)
    cupy.add.at(target, np.array([0, 0, 2]), cupy.ones(3))    # a host index is allowed
    np.testing.assert_array_equal(cupy.asnumpy(target), [2, 0, 1])


def test_the_random_generator_has_cupys_methods_only():
    generator = cupy.random.default_rng(0)
    assert generator.integers(0, 10, 5).shape == (5,)
    assert isinstance(generator.standard_normal((2, 2), dtype=np.float32), cupy.ndarray)
    for missing in ("choice", "permutation", "shuffle", "bytes"):
        with pytest.raises(AttributeError, match=missing):
            getattr(generator, missing)


def test_out_of_bounds_indices_wrap_around_as_in_cupy():
    device = cupy.arange(5) * 10
    np.testing.assert_array_equal(cupy.asnumpy(device[cupy.asarray([5, -6, 7])]), [0, 40, 20])
    grid = cupy.arange(6).reshape(2, 3)
    np.testing.assert_array_equal(cupy.asnumpy(grid[cupy.asarray([0, 1]), cupy.asarray([3, 4])]),
                                  [0, 4])
    np.testing.assert_array_equal(cupy.asnumpy(grid[..., cupy.asarray([4])]), [[1], [4]])


def test_reading_a_value_is_a_sync_and_views_launch_nothing():
    with counting() as counts:
        x = cupy.ones((4, 6), dtype=np.float32)           # 1 launch (fill)
        view = x.reshape(6, 4)[1:].T                      # views: nothing
        total = x.sum()                                   # 1 reduction
        assert counts.launches == 2 and counts.syncs == 0
        assert float(total) == 24.0 and int(view.shape[0]) == 4   # one sync: float()
        total.item()
        cupy.asnumpy(x)
        _ = x[x > 0]                                      # 1 comparison, 1 gather; output size
    assert counts.syncs == 4                              # float, item, asnumpy, boolean mask
    assert counts.sync_causes == {"float": 1, "item": 1, "asnumpy": 1, "boolean-mask indexing": 1}
    assert counts.launches == 4


def test_launch_costs_follow_cupys_kernels():
    a = cupy.asarray(np.ones((8, 4), dtype=np.float32))
    with counting() as counts:
        cupy.einsum("ij,ij->j", a, a)
    assert counts.launches == 3                  # two transposing copies and a batched product
    with counting() as counts:
        a.T @ a                                  # a.T is Fortran-contiguous: no copy
    assert counts.launches == 1
    with counting() as counts:
        a[:, ::2].T @ a[:, ::2]                  # neither C- nor F-contiguous: cuBLAS needs copies
    assert counts.launches == 3
    with counting() as counts:
        cupy.empty((3, 3))
        a.transpose().reshape(-1)                # a copy: the transposed array is not contiguous
        cupy.asarray(np.zeros(3))                # a host-to-device copy
    assert counts.launches == 2


def test_a_fused_function_is_one_launch_and_computes_the_same():
    def scale_shift_relu(x, gamma, beta):
        return cupy.maximum(x * gamma + beta, 0)
    fused = cupy.fuse(scale_shift_relu)
    x = cupy.asarray(np.linspace(-1, 1, 12).reshape(3, 4))
    gamma, beta = cupy.asarray(np.full(4, 2.0)), cupy.asarray(np.full(4, -0.5))
    with counting() as counts:
        result = fused(x, gamma, beta)
    assert counts.launches == 1
    np.testing.assert_array_equal(cupy.asnumpy(result), cupy.asnumpy(scale_shift_relu(x, gamma, beta)))


def test_the_emulation_is_put_in_place_and_taken_away():
    assert backend._cupy is None or backend._cupy is not cupy
    with cupy_emulation.emulated():
        assert backend.array_module("cuda") is cupy and sys.modules["cupy"] is cupy
        assert backend.get_array_module(cupy.zeros(1)) is cupy
    assert backend._cupy is not cupy and sys.modules.get("cupy") is not cupy


def test_a_cupy_array_made_before_minidense_loaded_cupy_is_recognised(monkeypatch):
    cupy_array_type = type("ndarray", (), {"__module__": "cupy._core.core"})
    fake = types.SimpleNamespace(ndarray=cupy_array_type)

    def load():
        monkeypatch.setattr(backend, "_cupy", fake)
        return fake
    monkeypatch.setattr(backend, "_cupy", None)
    monkeypatch.setattr(backend, "_load_cupy", load)
    assert backend.get_array_module(np.zeros(1), cupy_array_type()) is fake
    assert backend.device_of(cupy_array_type()) == "cuda"


def test_cupy_without_its_cuda_libraries_is_one_clear_line_at_check_device(monkeypatch):
    def no_nvrtc(*args, **kwargs):
        raise RuntimeError("CuPy failed to load libnvrtc.so.12")
    broken = types.SimpleNamespace(
        cuda=types.SimpleNamespace(runtime=types.SimpleNamespace(getDeviceCount=lambda: 1)),
        arange=no_nvrtc, float32=np.float32)
    monkeypatch.setitem(sys.modules, "cupy", broken)
    monkeypatch.setattr(backend, "_cupy", None)
    monkeypatch.setattr(backend, "_cupy_error", None)
    assert not backend.cuda_available()
    with pytest.raises(RuntimeError) as error:
        backend.check_device("cuda")
    message = str(error.value)
    assert "\n" not in message and "libnvrtc.so.12" in message
    assert "NVRTC" in message and "cupy-cuda12x[ctk]" in message
