"""Feature reuse in a DenseNet: the heatmap of Figure 5 in Huang et al., "Densely Connected
Convolutional Networks" (CVPR 2017), computed from a model's weights.

For each dense block with L layers we build an (L+1) x (L+1) matrix:

- rows are *sources* s = 0..L: s = 0 is the block's input, s = j the new maps of layer j;
- columns are *targets* l = 1..L (column index l-1), plus a last column for the layer that reads the
  whole block (the transition's 1x1 conv, or the classifier after the last block);
- cell (s, l) is mean(|W|) of target l's first convolution, taken over the input channels that
  source s produced (and over all output channels and kernel positions). That is the average L1
  norm of the weights, normalised by the number of input feature maps.

Layer l reads the concatenation [block input (c0 maps), layer 1 (k maps), ..., layer l-1], old
channels first, so source s occupies input channels [0, c0) for s = 0 and
[c0 + (s-1)k, c0 + sk) for s >= 1. A layer cannot read a later layer, so cells with s >= l are NaN.

Only the state dict is needed (torchvision's key layout); c0, k and L are read from weight shapes.
"""
import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ..metrics import write_text

__all__ = ["feature_reuse", "rescale_columns", "paper_figure5", "reuse_observations",
           "write_feature_reuse_csv", "PAPER_CSV"]

PAPER_CSV = Path(__file__).with_name("figure5_paper.csv")

_FIRST_CONV_KEY = re.compile(r"^features\.denseblock(\d+)\.denselayer(\d+)\.conv1\.weight$")


# --------------------------------------------------------------------------------------------
# Reading the weights
# --------------------------------------------------------------------------------------------

def _as_numpy(value):
    """A NumPy array from a NumPy/CuPy array or a minidense Tensor/Parameter."""
    if isinstance(value, np.ndarray):
        return value
    if callable(getattr(value, "numpy", None)):      # Tensor or Parameter
        return np.asarray(value.numpy())
    if callable(getattr(value, "get", None)):        # CuPy array
        return value.get()
    return np.asarray(value)


def _flatten(tree, prefix=""):
    """Flatten nested dicts into one dict with dot-joined keys ({'a': {'b': x}} -> {'a.b': x})."""
    flat = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def _state_dict_of(source):
    """The flat {name: ndarray} state dict of a model, a state dict, or a checkpoint {'model': ...}."""
    if hasattr(source, "state_dict") and callable(source.state_dict):
        state = source.state_dict()
    elif isinstance(source, Mapping):
        state = source["model"] if isinstance(source.get("model"), Mapping) else source
    else:
        raise TypeError(
            "feature_reuse expects a DenseNet model (anything with .state_dict()), its state dict, "
            f"or a checkpoint dict with a 'model' entry; got {type(source).__name__}.")
    return {name: _as_numpy(value) for name, value in _flatten(state).items()}


def _weight(state, key, ndim):
    """state[key], checked to be an ndim-dimensional array."""
    if key not in state:
        raise KeyError(f"feature_reuse: the state dict has no '{key}'.")
    weight = state[key]
    if weight.ndim != ndim:
        raise ValueError(f"feature_reuse: '{key}' should be {ndim}-D but has shape {weight.shape}.")
    return weight


def _block_layout(state):
    """{block number: number of layers}, checking that layers are numbered 1..L without gaps."""
    layers = {}
    for key in state:
        match = _FIRST_CONV_KEY.match(key)
        if match:
            block, layer = int(match.group(1)), int(match.group(2))
            layers.setdefault(block, set()).add(layer)
    if not layers:
        raise ValueError(
            "feature_reuse: no 'features.denseblock{b}.denselayer{l}.conv1.weight' keys found; "
            "this does not look like a DenseNet state dict (keys start with "
            f"{sorted(state)[:3]}).")
    for block, numbers in layers.items():
        if numbers != set(range(1, len(numbers) + 1)):
            raise ValueError(f"feature_reuse: dense block {block} has layers {sorted(numbers)}; "
                             "expected them numbered 1..L.")
    return {block: len(numbers) for block, numbers in sorted(layers.items())}


def _growth_rate(state, block, layer):
    """k: the number of maps a dense layer adds (out channels of its last conv)."""
    prefix = f"features.denseblock{block}.denselayer{layer}"
    last_conv = f"{prefix}.conv2.weight" if f"{prefix}.conv2.weight" in state else f"{prefix}.conv1.weight"
    return _weight(state, last_conv, 4).shape[0]


def _next_layer_weight(state, block, last_block):
    """(key, weight) of what reads the whole block: its transition conv, or the classifier."""
    transition = f"features.transition{block}.conv.weight"
    if transition in state:
        return transition, _weight(state, transition, 4)
    if block == last_block:
        return "classifier.weight", _weight(state, "classifier.weight", 2)
    raise KeyError(f"feature_reuse: dense block {block} is not the last block but the state dict "
                   f"has no '{transition}'.")


def _check_in_channels(key, weight, expected):
    if weight.shape[1] != expected:
        raise ValueError(
            f"feature_reuse: '{key}' has shape {weight.shape}, so it reads {weight.shape[1]} input "
            f"channels, but the block's concatenation has {expected} channels at that point.")


def _source_slices(c0, k, count):
    """Input-channel slices of sources 0..count-1: the block input, then k maps per layer."""
    return [slice(0, c0)] + [slice(c0 + (j - 1) * k, c0 + j * k) for j in range(1, count)]


def _mean_abs_per_source(weight, slices):
    """mean |W| over each source's input channels (all outputs and kernel positions included)."""
    magnitude = np.abs(weight.astype(np.float64))
    return np.array([magnitude[:, part].mean() for part in slices])


def _block_matrix(state, block, num_layers, last_block):
    first = _weight(state, f"features.denseblock{block}.denselayer1.conv1.weight", 4)
    c0, k = first.shape[1], _growth_rate(state, block, 1)
    matrix = np.full((num_layers + 1, num_layers + 1), np.nan)
    for target in range(1, num_layers + 1):
        key = f"features.denseblock{block}.denselayer{target}.conv1.weight"
        weight = _weight(state, key, 4)
        _check_in_channels(key, weight, c0 + (target - 1) * k)
        matrix[:target, target - 1] = _mean_abs_per_source(weight, _source_slices(c0, k, target))
    key, weight = _next_layer_weight(state, block, last_block)
    _check_in_channels(key, weight, c0 + num_layers * k)
    matrix[:, num_layers] = _mean_abs_per_source(weight, _source_slices(c0, k, num_layers + 1))
    return matrix


def feature_reuse(model_or_state_dict):
    """Figure 5's matrices: one (L+1, L+1) float64 array per dense block, raw mean |W| values.

    Accepts a DenseNet model, its state dict, or a checkpoint dict whose 'model' entry is the state
    dict. Rows are sources s = 0..L, columns targets l = 1..L then the next layer (transition or
    classifier); cells with s >= l in the first L columns are NaN.
    """
    state = _state_dict_of(model_or_state_dict)
    layout = _block_layout(state)
    last_block = max(layout)
    return [_block_matrix(state, block, num_layers, last_block)
            for block, num_layers in layout.items()]


# --------------------------------------------------------------------------------------------
# Rescaling and the paper's values
# --------------------------------------------------------------------------------------------

def rescale_columns(matrix):
    """Min-max rescale each column to [0, 1] over its unmasked (finite) cells; NaN stays NaN.

    A column whose unmasked cells are all equal becomes all 1. This is always the case for target
    l = 1, whose only source is the block input, and matches the paper's figure, which draws that
    single cell at the top of the colour scale.
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    rescaled = np.full_like(matrix, np.nan)
    for column in range(matrix.shape[1]):
        values = matrix[:, column]
        known = np.isfinite(values)
        if not known.any():
            continue
        low, high = values[known].min(), values[known].max()
        rescaled[known, column] = (values[known] - low) / (high - low) if high > low else 1.0
    return rescaled


def paper_figure5(path=PAPER_CSV):
    """The paper's Figure 5 (DenseNet, L=40, k=12, trained on C10+): three 13x13 arrays.

    Values were read back from the published figure, so they are the per-column rescaled values in
    [0, 1], quantised to 1/63; masked cells (s >= l) are NaN. Source: Huang et al., "Densely
    Connected Convolutional Networks", CVPR 2017, Figure 5.
    """
    lines = [line for line in Path(path).read_text().splitlines() if not line.startswith("#")]
    table = np.genfromtxt(lines, delimiter=",", names=True, dtype=np.float64)
    blocks = table["block"].astype(int)
    value_columns = [name for name in table.dtype.names if name not in ("block", "source")]
    matrices = []
    for block in sorted(set(blocks)):
        rows = table[blocks == block]
        rows = rows[np.argsort(rows["source"])]
        matrices.append(np.column_stack([rows[name] for name in value_columns]))
    return matrices


# --------------------------------------------------------------------------------------------
# The paper's four observations, as measurable criteria
# --------------------------------------------------------------------------------------------

#: A source "gets weight" from a target when its column-rescaled value reaches this level.
SPREAD_LEVEL = 0.3
#: Observation 1 holds when at least this share of target layers (l >= 3) spread their weight.
SPREAD_SHARE = 0.75
#: Observation 2: a transition "uses" a layer of its block when its rescaled weight reaches this.
TRANSITION_LEVEL = 0.2
#: Observation 2 holds when every transition uses at least this share of its block's layers.
TRANSITION_SHARE = 0.75
#: Observation 4 holds when the classifier's mean weight on the last third of the sources is at
#: least this many times its mean weight on the first two thirds.
CLASSIFIER_RATIO = 2.0


def _observe_spread(rescaled):
    """(1) A target is 'spread' when at least half of its sources reach SPREAD_LEVEL.

    Only targets with three sources or more (l >= 3) count: min-max rescaling turns any two values
    into 0 and 1, so a two-source column is half 'spread' whatever the weights are.
    """
    per_block = []
    for matrix in rescaled:
        num_layers = matrix.shape[0] - 1
        spread = [np.mean(matrix[:target, target - 1] >= SPREAD_LEVEL) >= 0.5
                  for target in range(3, num_layers + 1)]
        per_block.append((sum(spread), len(spread)))
    spread_total = sum(count for count, _ in per_block)
    targets_total = sum(total for _, total in per_block)
    share = spread_total / targets_total if targets_total else 0.0
    details = ", ".join(f"block {b}: {count}/{total}" for b, (count, total) in enumerate(per_block, 1))
    return {
        "id": 1,
        "statement": "Layers in a block spread their weight over many earlier inputs.",
        "holds": bool(targets_total) and bool(share >= SPREAD_SHARE),
        "evidence": (f"{spread_total}/{targets_total} target layers (l >= 3) give at least half of "
                     f"their sources a rescaled weight >= {SPREAD_LEVEL} ({details}); share "
                     f"{share:.2f}, needs >= {SPREAD_SHARE}."),
    }


def _observe_transitions(rescaled):
    """(2) Each transition column gives most of its block's layers (s >= 1) a real weight."""
    shares = [np.mean(matrix[1:, -1] >= TRANSITION_LEVEL) for matrix in rescaled[:-1]]
    details = ", ".join(f"transition {b}: {share:.2f}" for b, share in enumerate(shares, 1))
    return {
        "id": 2,
        "statement": "Transition layers spread their weight over all layers of the preceding block.",
        "holds": bool(shares) and bool(min(shares) >= TRANSITION_SHARE),
        "evidence": (f"share of the block's layers (s >= 1) with rescaled weight >= "
                     f"{TRANSITION_LEVEL}: {details or 'no transition layers'}; each needs >= "
                     f"{TRANSITION_SHARE}."),
    }


def _row_means(matrix):
    """Mean rescaled weight each source s = 0..L-1 gets from the block's targets l >= 2.

    Target l = 1 is left out: its only source is s = 0, so it says nothing about preference.
    """
    inside = matrix[:-1, 1:-1]                      # sources 0..L-1, targets 2..L
    return np.array([np.nanmean(row) for row in inside])


def _observe_transition_outputs(rescaled):
    """(3) In every block after the first, row s = 0 has the smallest mean over targets l >= 2."""
    checks = []
    for block, matrix in enumerate(rescaled[1:], start=2):
        if matrix.shape[0] < 3:                     # needs L >= 2 to compare rows
            continue
        means = _row_means(matrix)
        others = means[1:]
        checks.append((block, means[0], others.min(), int(np.argmin(others)) + 1,
                       bool(means[0] < others.min())))
    details = "; ".join(f"block {b}: row 0 mean {first:.3f} vs smallest other row {low:.3f} "
                        f"(s={s})" for b, first, low, s, _ in checks)
    return {
        "id": 3,
        "statement": ("In blocks after the first, the transition layer's outputs (row s = 0) get "
                      "the least weight."),
        "holds": bool(checks) and all(ok for *_, ok in checks),
        "evidence": (details or "needs at least two dense blocks with two layers or more")
                    + " (mean rescaled weight over targets l >= 2).",
    }


def _observe_classifier(rescaled):
    """(4) The classifier's mean weight on the last third of the sources >= CLASSIFIER_RATIO times
    its mean weight on the first two thirds."""
    column = rescaled[-1][:, -1]
    num_last = max(1, int(round(len(column) / 3)))
    late, early = column[-num_last:].mean(), column[:-num_last].mean()
    top = int(np.argmax(column))
    return {
        "id": 4,
        "statement": "The classifier concentrates on the final feature maps.",
        "holds": bool(late >= CLASSIFIER_RATIO * early and late > 0),
        "evidence": (f"mean rescaled weight on the last {num_last} sources (s >= "
                     f"{len(column) - num_last}) {late:.3f} vs {early:.3f} on the others "
                     f"(needs >= {CLASSIFIER_RATIO}x); most weighted source s={top}."),
    }


def reuse_observations(matrices):
    """Check the paper's four observations on feature-reuse matrices (raw or rescaled).

    Each column is min-max rescaled first, so raw and rescaled matrices give the same verdicts.
    Returns a list of dicts with 'id', 'statement', 'holds' (bool) and 'evidence' (the numbers).
    Criteria, on rescaled values (thresholds are the module constants):
      1. at least SPREAD_SHARE of the target layers l >= 3 give at least half of their sources a
         weight >= SPREAD_LEVEL;
      2. every transition gives at least TRANSITION_SHARE of its block's layers (s >= 1) a weight
         >= TRANSITION_LEVEL;
      3. in every block after the first, row s = 0 has a smaller mean over targets l >= 2 than
         every other row s = 1..L-1;
      4. in the classifier column, the last third of the sources has a mean weight at least
         CLASSIFIER_RATIO times that of the first two thirds.
    """
    rescaled = [rescale_columns(matrix) for matrix in matrices]
    if not rescaled:
        raise ValueError("reuse_observations: no matrices given.")
    return [_observe_spread(rescaled), _observe_transitions(rescaled),
            _observe_transition_outputs(rescaled), _observe_classifier(rescaled)]


# --------------------------------------------------------------------------------------------
# CSV output
# --------------------------------------------------------------------------------------------

def _csv_cell(value):
    return "" if not np.isfinite(value) else f"{value:.6g}"


def write_feature_reuse_csv(matrices, path):
    """Write raw and column-rescaled matrices: block, source, t1..tL, t_next, kind=raw|rescaled.

    Blocks with fewer layers than the longest one leave the missing target columns empty.
    """
    longest = max(matrix.shape[0] - 1 for matrix in matrices)
    header = ["block", "source"] + [f"t{l}" for l in range(1, longest + 1)] + ["t_next", "kind"]
    lines = [",".join(header)]
    for kind in ("raw", "rescaled"):
        for block, matrix in enumerate(matrices, start=1):
            shown = matrix if kind == "raw" else rescale_columns(matrix)
            num_layers = matrix.shape[0] - 1
            for source, row in enumerate(shown):
                targets = [_csv_cell(v) for v in row[:-1]] + [""] * (longest - num_layers)
                lines.append(",".join([str(block), str(source), *targets, _csv_cell(row[-1]), kind]))
    write_text(path, "\n".join(lines) + "\n")       # atomic: a crash never leaves half a file
    return Path(path)
