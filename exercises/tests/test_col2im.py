"""Graded tests for the col2im task (10 points, 1 of them in a hidden test)."""
import numpy as np

from forbidden_names import IM2COL
from minidense.grading import points
from minidense.ops.conv import col2im as reference_col2im
from minidense.ops.conv import im2col as reference_im2col

TASK = "col2im"
FORBIDDEN = IM2COL


@points(2)
def test_output_shape(student, rng):
    cols = rng.standard_normal((2, 3 * 3 * 3, 3 * 3))
    assert student.col2im(cols, (2, 3, 6, 5), 3, 3, stride=2, padding=1).shape == (2, 3, 6, 5)


@points(2)
def test_overlapping_windows_add_up(student):
    # ones in every column: each pixel collects one 1 per window that covers it
    counts = student.col2im(np.ones((1, 4, 4)), (1, 1, 3, 3), 2, 2)
    np.testing.assert_array_equal(counts[0, 0], [[1, 2, 1], [2, 4, 2], [1, 2, 1]])


@points(2)
def test_adjoint_of_im2col(student, rng):
    x = rng.standard_normal((2, 3, 7, 6))
    cols = rng.standard_normal(reference_im2col(x, (3, 3), 2, 1).shape)
    left = np.sum(reference_im2col(x, (3, 3), 2, 1) * cols)
    right = np.sum(x * student.col2im(cols, x.shape, 3, 3, stride=2, padding=1))
    np.testing.assert_allclose(right, left, rtol=1e-10)


@points(2)
def test_matches_library_non_square(student, rng):
    cols = rng.standard_normal((1, 2 * 2 * 3, 3 * 4))
    np.testing.assert_allclose(student.col2im(cols, (1, 2, 4, 6), 2, 3),
                               reference_col2im(cols, (1, 2, 4, 6), (2, 3)))


@points(1)
def test_padding_is_cut_off(student):
    # a 3x3 kernel with padding 1 on a 2x2 image: all four windows cover all four pixels
    out = student.col2im(np.ones((1, 9, 4)), (1, 1, 2, 2), 3, 3, padding=1)
    np.testing.assert_array_equal(out, np.full((1, 1, 2, 2), 4.0))
