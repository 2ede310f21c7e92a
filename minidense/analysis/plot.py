"""Drawing Figure 5 of Huang et al., "Densely Connected Convolutional Networks" (CVPR 2017): one
heatmap per dense block, sources down the side (s = 0 at the top), targets along the bottom, the
column of the layer after the block outlined in black.

matplotlib is imported when a plot is made, so `minidense.analysis` itself loads without it.
"""
import math
import sys
from pathlib import Path

import numpy as np

from ..fileio import atomic_write

from .feature_reuse import paper_figure5, rescale_columns

__all__ = ["plot_feature_reuse", "plot_compare_paper", "close_figure"]

COLOUR_LEVELS = 64
PANEL_INCHES = 3.6


def _new_figure(show=True, **kwargs):
    """A figure that needs no display.

    In a pyplot session (a notebook, an interactive script) the figure is made by pyplot, so it shows
    up as usual. Otherwise, or with show=False (a figure only written to a file), it is a plain
    Figure on the Agg canvas: no GUI backend is touched and nothing is kept in pyplot's global list
    of open figures.
    """
    if show and "matplotlib.pyplot" in sys.modules:
        return sys.modules["matplotlib.pyplot"].figure(**kwargs)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    figure = Figure(**kwargs)
    FigureCanvasAgg(figure)
    return figure


def close_figure(figure):
    """Release a figure from pyplot's list of open figures (a no-op for plain Figures)."""
    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close(figure)


def _colormap():
    import matplotlib
    jet = matplotlib.colormaps["jet"].resampled(COLOUR_LEVELS)
    return jet.with_extremes(bad="white")            # masked cells (s >= l) are white


def _next_layer_label(block, num_blocks):
    return "Classification layer" if block == num_blocks else f"Transition layer {block}"


def _tick_step(count):
    """Label every tick up to ~13 rows or columns (the paper's size), fewer for deeper blocks."""
    return max(1, math.ceil(count / 13))


def _draw_block(axes, matrix, block, num_blocks, cmap, vmax, title):
    """One block's heatmap on `axes`; returns the image (for the colour bar)."""
    from matplotlib.patches import Rectangle
    num_layers = matrix.shape[0] - 1
    image = axes.imshow(np.ma.masked_invalid(matrix), cmap=cmap, vmin=0.0, vmax=vmax,
                        origin="upper", interpolation="nearest", aspect="equal")
    axes.add_patch(Rectangle((num_layers - 0.5, -0.5), 1, num_layers + 1, fill=False,
                             edgecolor="black", linewidth=1.5, clip_on=False))
    step = _tick_step(num_layers)
    target_ticks = list(range(0, num_layers, step))
    axes.set_xticks(target_ticks + [num_layers])
    axes.set_xticklabels([str(t + 1) for t in target_ticks] + [_next_layer_label(block, num_blocks)])
    axes.get_xticklabels()[-1].set_rotation(90)
    axes.tick_params(labelsize="small")
    axes.set_yticks(range(0, num_layers + 1, step))
    axes.set_xlabel("Target layer (\u2113)")
    axes.set_ylabel("Source layer (s)")
    axes.set_title(title)
    return image


def _draw_row(panel, columns, matrices, rescale, titles):
    """Draw one model's blocks side by side on `panel` (a figure or subfigure), with a colour bar."""
    row_axes = list(panel.subplots(1, columns, squeeze=False)[0])
    shown = [rescale_columns(m) if rescale else np.asarray(m, dtype=np.float64) for m in matrices]
    vmax = 1.0 if rescale else max(float(np.nanmax(m)) for m in shown)
    titles = titles or [f"Dense Block {b}" for b in range(1, len(shown) + 1)]
    cmap = _colormap()
    image = None
    for block, (axes, matrix, title) in enumerate(zip(row_axes, shown, titles), start=1):
        image = _draw_block(axes, matrix, block, len(shown), cmap, vmax, title)
    for spare in row_axes[len(shown):]:
        spare.set_axis_off()
    colorbar = panel.colorbar(image, ax=row_axes, fraction=0.025, pad=0.02)
    if rescale:
        colorbar.set_ticks(np.linspace(0.0, 1.0, 6))
    colorbar.set_label("weight, rescaled per column" if rescale else "mean |W|")
    panel.align_xlabels(row_axes)


def plot_feature_reuse(matrices, path=None, rescale=True, titles=None, compare_with=None,
                       row_labels=None, suptitle=None, show=True):
    """Draw the blocks' feature-reuse heatmaps side by side, as in the paper's Figure 5.

    matrices: the list from `feature_reuse` (one (L+1, L+1) array per block). rescale=True min-max
    rescales each column to [0, 1] as the paper does; rescale=False shows raw mean |W|.
    compare_with: another list of matrices (e.g. `paper_figure5()`) drawn in a row above; it is
    always shown rescaled. row_labels names the rows when there are two. Returns the Figure and
    saves it as a PNG when `path` is given; show=False keeps it out of pyplot (for a figure that is
    only written to `path`, e.g. at the end of a training run inside a notebook).
    """
    rows = [(compare_with, True)] if compare_with is not None else []
    rows.append((matrices, rescale))
    columns = max(len(m) for m, _ in rows)
    figure = _new_figure(show, layout="constrained",
                         figsize=(PANEL_INCHES * columns + 1.2, PANEL_INCHES * len(rows) + 0.8))
    panels = list(figure.subfigures(len(rows), 1, squeeze=False)[:, 0]) if len(rows) > 1 else [figure]
    labels = row_labels or [None] * len(rows)
    for panel, (row_matrices, row_rescale), label in zip(panels, rows, labels):
        _draw_row(panel, columns, row_matrices, row_rescale, titles)
        if label:
            panel.suptitle(label, fontweight="bold")
    if suptitle:
        figure.suptitle(suptitle)
    if path is not None:        # atomic: a crash never leaves half a picture
        image_format = Path(path).suffix.lstrip(".") or "png"
        atomic_write(path, lambda file: figure.savefig(file, format=image_format, dpi=120))
    return figure


def plot_compare_paper(matrices, path=None, rescale=True, show=True):
    """The paper's Figure 5 on top, the given model's matrices below.

    The comparison needs a 3-block model (the paper's DenseNet has three); for any other number of
    blocks only the model is drawn and the title says why.
    """
    paper = paper_figure5()
    if len(matrices) != len(paper):
        return plot_feature_reuse(
            matrices, path, rescale=rescale, show=show,
            suptitle=(f"This model has {len(matrices)} dense blocks; the paper's Figure 5 has "
                      f"{len(paper)}, so only the model is shown"))
    return plot_feature_reuse(
        matrices, path, rescale=rescale, compare_with=paper, show=show,
        row_labels=["Paper: Huang et al. (CVPR 2017), Figure 5 (DenseNet L=40, k=12, C10+)",
                    "This model"])
