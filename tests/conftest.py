"""Shared test fixtures: devices to run on, float64 random tensors, a reseeded run per test.

Tests that take the ``device`` fixture run on 'cpu' and on 'cuda'. With CuPy and a GPU, 'cuda' is
the real thing (test id ``[cuda]``); without one it is the CPU emulation of CuPy in
``minidense/cupy_emulation.py`` (test id ``[cuda-emulated]``), which offers only CuPy's names and
checks that device code never mixes host and device arrays.
Tests marked ``@pytest.mark.cuda`` need the real GPU and are skipped without one.
"""
import numpy as np
import pytest

import minidense as md
from minidense import cupy_emulation

REAL_GPU = md.cuda_available()
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.cuda, id="cuda") if REAL_GPU
           else pytest.param("cuda", id="cuda-emulated")]


def pytest_collection_modifyitems(config, items):
    if REAL_GPU:
        return
    skip = pytest.mark.skip(reason="needs CuPy and a CUDA GPU (pip install cupy-cuda12x)")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


def use_cuda(monkeypatch):
    """'cuda', emulated on the CPU when there is no GPU."""
    if not REAL_GPU:
        cupy_emulation.install(monkeypatch)
    return "cuda"


@pytest.fixture(params=DEVICES)
def device(request, monkeypatch):
    return use_cuda(monkeypatch) if request.param == "cuda" else "cpu"


@pytest.fixture
def cuda(monkeypatch):
    """The 'cuda' device (real, or emulated without a GPU) for NumPy/CuPy parity tests."""
    return use_cuda(monkeypatch)


@pytest.fixture(autouse=True)
def _seeded():
    md.manual_seed(0)
    yield


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture
def randt(rng, device):
    """randt(*shape) -> a float64 leaf tensor on the test's device that requires grad."""
    def make(*shape, requires_grad=True, positive=False):
        data = rng.standard_normal(shape)
        if positive:
            data = np.abs(data) + 0.5
        return md.tensor(data, dtype=md.float64, device=device, requires_grad=requires_grad)
    return make
