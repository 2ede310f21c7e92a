"""Graded tests for the im2col task (10 points, 1 of them in a hidden test)."""
import numpy as np

from forbidden_names import IM2COL
from minidense.grading import points
from minidense.grading.testing import assert_close
from minidense.ops.conv import im2col as reference_im2col

TASK = "im2col"
FORBIDDEN = IM2COL


@points(2)
def test_output_shape(student, rng):
    x = rng.standard_normal((2, 3, 5, 6))
    assert student.im2col(x, 3, 2).shape == (2, 3 * 3 * 2, 3 * 5)
    assert student.im2col(x, 3, 3, stride=2, padding=1).shape == (2, 27, 3 * 3)


@points(2)
def test_hand_example(student):
    x = np.arange(9.0).reshape(1, 1, 3, 3)
    expected = np.array([[0, 1, 3, 4],      # kernel offset (0, 0) in the 4 windows
                         [1, 2, 4, 5],      # offset (0, 1)
                         [3, 4, 6, 7],      # offset (1, 0)
                         [4, 5, 7, 8]])     # offset (1, 1)
    np.testing.assert_array_equal(student.im2col(x, 2, 2)[0], expected)


def check_against_library(student, x, kh, kw, stride=1, padding=0):
    expected = reference_im2col(x, (kh, kw), stride=stride, padding=padding)
    n, rows, windows = expected.shape
    offsets_first = expected.reshape(n, x.shape[1], kh * kw, windows).transpose(0, 2, 1, 3)
    assert_close(student.im2col(x, kh, kw, stride=stride, padding=padding), expected, "cols",
                 known_mistakes={"the rows go channel first, then the kernel offsets: row "
                                 "c*kh*kw + i*kw + j holds channel c at offset (i, j)":
                                 offsets_first.reshape(n, rows, windows)})


@points(2)
def test_matches_library_with_stride_and_padding(student, rng):
    check_against_library(student, rng.standard_normal((2, 3, 7, 6)), 3, 3, 2, 1)


@points(2)
def test_non_square_kernel_keeps_channel_order(student, rng):
    x = rng.standard_normal((1, 2, 3, 4))
    np.testing.assert_allclose(student.im2col(x, 2, 3), reference_im2col(x, (2, 3)))


@points(1)
def test_padding_is_zeros(student):
    cols = student.im2col(np.ones((1, 1, 2, 2)), 3, 3, padding=1)
    assert cols.shape == (1, 9, 4)
    np.testing.assert_array_equal(cols[0, 0], [0, 0, 0, 1])    # top-left offset: mostly padding
    np.testing.assert_array_equal(cols[0, 8], [1, 0, 0, 0])    # bottom-right offset
