"""Shared test fixtures: devices to run on, float64 random tensors, a reseeded run per test."""
import numpy as np
import pytest

import minidense as md

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)]


def pytest_collection_modifyitems(config, items):
    if md.cuda_available():
        return
    skip = pytest.mark.skip(reason="needs CuPy and a CUDA GPU (pip install cupy-cuda12x)")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(params=DEVICES)
def device(request):
    return request.param


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
