"""Graded tests for the conv2d_forward task (10 points, 1 of them in a hidden test)."""
import numpy as np

import minidense as md
from forbidden_names import CONV2D
from minidense.grading import points
from minidense.ops.conv import conv2d as reference_conv2d

TASK = "conv2d_forward"
FORBIDDEN = CONV2D


def library_conv2d(x, w, b, stride, padding):
    return reference_conv2d(md.tensor(x), md.tensor(w), md.tensor(b), stride, padding).numpy()


@points(2)
def test_output_shape(student, rng):
    x, w, b = rng.standard_normal((2, 3, 8, 8)), rng.standard_normal((4, 3, 3, 3)), np.zeros(4)
    out, _ = student.conv2d_forward(x, w, b, stride=2, padding=1)
    assert out.shape == (2, 4, 4, 4)


@points(2)
def test_hand_example(student):
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    w = np.array([[[[1.0, 0.0], [0.0, -1.0]]]])      # x[r, s] - x[r+1, s+1] = -5 everywhere
    out, _ = student.conv2d_forward(x, w, np.array([1.0]))
    np.testing.assert_allclose(out, np.full((1, 1, 3, 3), -4.0))


@points(2)
def test_matches_library_with_stride_and_padding(student, rng):
    x, w, b = (rng.standard_normal(s) for s in ((2, 3, 7, 6), (4, 3, 3, 3), (4,)))
    out, _ = student.conv2d_forward(x, w, b, stride=2, padding=1)
    np.testing.assert_allclose(out, library_conv2d(x, w, b, 2, 1), rtol=1e-10, atol=1e-12)


@points(1)
def test_bias_is_per_output_channel(student):
    out, _ = student.conv2d_forward(np.zeros((2, 3, 4, 4)), np.ones((2, 3, 3, 3)),
                                    np.array([1.0, 2.0]), padding=1)
    np.testing.assert_array_equal(out[:, 0], 1.0)
    np.testing.assert_array_equal(out[:, 1], 2.0)


@points(2)
def test_one_by_one_kernel_mixes_channels(student, rng):
    x, w, b = rng.standard_normal((2, 5, 3, 4)), rng.standard_normal((3, 5, 1, 1)), np.zeros(3)
    out, _ = student.conv2d_forward(x, w, b)
    np.testing.assert_allclose(out, np.einsum("nchw,oc->nohw", x, w[:, :, 0, 0]), atol=1e-12)
