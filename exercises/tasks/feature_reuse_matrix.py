"""Task feature_reuse_matrix: one dense block's heatmap of Figure 5 (Huang et al., CVPR 2017).

Run the tests:  python -m pytest exercises/tests/test_feature_reuse_matrix.py
"""
import numpy as np


def feature_reuse_matrix(layer_weights, next_weight, c0, k):
    """How strongly each layer of a dense block reads each earlier source: an (L+1, L+1) array.

    layer_weights: list of L arrays; layer l's first convolution weight (l = 1..L), shape
                   (out, c0 + (l-1)*k, kh, kw). Layer l reads the concatenation
                   [block input (c0 maps), new maps of layer 1 (k), ..., of layer l-1 (k)].
    next_weight:   the weight of what reads the whole block: a transition's 1x1 conv
                   (out, c0 + L*k, 1, 1) or the classifier's Linear (classes, c0 + L*k).
    c0, k:         maps entering the block, growth rate.

    Rows are sources s = 0..L (s = 0: the block input, channels [0, c0); s >= 1: layer s's maps,
    channels [c0 + (s-1)*k, c0 + s*k)). Columns l-1 for targets l = 1..L, and a last column L for
    next_weight. Cell (s, l-1) = mean of |W| of target l's weight over the input channels of
    source s (and over all output channels and kernel positions): the average L1 norm of the
    weights, normalised by the number of input maps. A layer cannot read later layers: cells with
    s >= l in the first L columns are np.nan. The last column has a value in every row.

    Hint: np.abs(w[:, start:stop]).mean() works for 4-D and 2-D weights alike.
    """
    raise NotImplementedError("feature_reuse_matrix: implement feature_reuse_matrix(...)")
