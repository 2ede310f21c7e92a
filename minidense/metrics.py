"""Measuring and recording a training run: accuracy, confusion matrices, CSV/JSON files and plots.

Every file is written atomically: first to a temporary file in the same folder, then moved over the
old one with ``os.replace``. A crash or Ctrl-C therefore leaves either the old file or the new one,
never half of one.
"""
import csv
import io
import json
import math
import sys

import numpy

from .fileio import atomic_write


def write_text(path, text):
    """Write a string (UTF-8) to ``path`` atomically."""
    return atomic_write(path, lambda file: file.write(text.encode("utf-8")))


def to_json(value, indent=None):
    """Strict JSON text for ``value``: NaN and infinities become ``null`` (JSON has no word for
    them), NumPy scalars and arrays become numbers and lists."""
    return json.dumps(finite_or_none(value), indent=indent, allow_nan=False, default=_json_default)


def finite_or_none(value):
    """``value`` with every non-finite float (also inside dicts, lists, arrays) replaced by None."""
    if isinstance(value, numpy.ndarray):
        value = value.tolist()
    elif isinstance(value, numpy.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite_or_none(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_none(item) for item in value]
    return value


def write_json(path, value):
    """Write ``value`` as indented strict JSON atomically."""
    return write_text(path, to_json(value, indent=2) + "\n")


def write_csv(path, rows, columns):
    """Write a list of dicts as CSV with the given column order, atomically."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return write_text(path, buffer.getvalue())


def write_jsonl(path, rows):
    """Write one strict JSON object per line, atomically."""
    return write_text(path, "".join(to_json(row) + "\n" for row in rows))


def save_figure(figure, path, dpi=120):
    """Save a matplotlib figure as PNG atomically and close it (if pyplot holds it)."""
    try:
        return atomic_write(path, lambda file: figure.savefig(file, format="png", dpi=dpi,
                                                               bbox_inches="tight"))
    finally:
        if "matplotlib.pyplot" in sys.modules:
            sys.modules["matplotlib.pyplot"].close(figure)


def _json_default(value):
    """JSON for NumPy scalars and arrays (everything else is an error)."""
    if isinstance(value, numpy.generic):
        return value.item()
    if isinstance(value, numpy.ndarray):
        return value.tolist()
    raise TypeError(f"cannot write a {type(value).__name__} as JSON")


def _file_figure(**kwargs):
    """A figure drawn only into a file: a plain Figure on its own Agg canvas.

    pyplot is not involved, so matplotlib's global backend stays whatever the user chose (a
    notebook keeps showing its figures inline) and nothing joins pyplot's list of open figures.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    figure = Figure(**kwargs)
    FigureCanvasAgg(figure)
    return figure


# ----------------------------------------------------------------------------------------------
# Accuracy and confusion
# ----------------------------------------------------------------------------------------------
def confusion_matrix(targets, predictions, num_classes):
    """``matrix[true, predicted]``: how many examples of class ``true`` got ``predicted``."""
    matrix = numpy.zeros((num_classes, num_classes), dtype=numpy.int64)
    numpy.add.at(matrix, (numpy.asarray(targets), numpy.asarray(predictions)), 1)
    return matrix


def per_class_accuracy(matrix):
    """Fraction of each class's examples classified correctly (NaN for an absent class)."""
    totals = matrix.sum(axis=1)
    with numpy.errstate(invalid="ignore", divide="ignore"):
        return numpy.where(totals > 0, numpy.diag(matrix) / numpy.maximum(totals, 1), numpy.nan)


def format_class_table(classes, matrix):
    """A text table: class, correct / total, accuracy in %."""
    accuracies = per_class_accuracy(matrix)
    width = max(len("class"), *(len(name) for name in classes))
    lines = [f"{'class':<{width}}  {'correct':>13}  {'accuracy':>8}"]
    for index, (name, accuracy) in enumerate(zip(classes, accuracies)):
        count = f"{matrix[index, index]} / {matrix[index].sum()}"
        lines.append(f"{name:<{width}}  {count:>13}  {100 * accuracy:7.2f}%")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# Plots
# ----------------------------------------------------------------------------------------------
def plot_curves(history, path):
    """Learning curves: loss (left) and error in % (right) per epoch, train and test."""
    epochs = [row["epoch"] for row in history]
    figure = _file_figure(figsize=(10, 4))
    loss_axes, error_axes = figure.subplots(1, 2)
    for split, style in (("train", "-o"), ("test", "-s")):
        loss_axes.plot(epochs, [row[f"{split}_loss"] for row in history], style, label=split)
        error_axes.plot(epochs, [100 * (1 - row[f"{split}_acc"]) for row in history], style,
                        label=split)
    loss_axes.set(xlabel="epoch", ylabel="cross-entropy loss", title="loss")
    error_axes.set(xlabel="epoch", ylabel="error (%)", title="classification error")
    for axes in (loss_axes, error_axes):
        axes.grid(alpha=0.3)
        axes.legend()
        axes.xaxis.get_major_locator().set_params(integer=True)
    return save_figure(figure, path)


def plot_confusion(matrix, classes, path, title="confusion matrix"):
    """The confusion matrix as a heatmap: rows normalised to fractions, counts in the cells."""
    totals = numpy.maximum(matrix.sum(axis=1, keepdims=True), 1)
    fractions = matrix / totals
    size = max(5.0, 0.55 * len(classes) + 2)
    figure = _file_figure(figsize=(size + 1, size))
    axes = figure.subplots()
    image = axes.imshow(fractions, cmap="Blues", vmin=0, vmax=1)
    figure.colorbar(image, ax=axes, label="fraction of the true class")
    ticks = numpy.arange(len(classes))
    axes.set_xticks(ticks, labels=classes, rotation=45, ha="right")
    axes.set_yticks(ticks, labels=classes)
    axes.set(xlabel="predicted class", ylabel="true class", title=title)
    if len(classes) <= 20:
        for true in range(len(classes)):
            for predicted in range(len(classes)):
                colour = "white" if fractions[true, predicted] > 0.5 else "black"
                axes.text(predicted, true, str(matrix[true, predicted]), ha="center",
                          va="center", fontsize=8, color=colour)
    return save_figure(figure, path)


def write_confusion_csv(matrix, classes, path):
    """Rows = true class, columns = predicted class, counts."""
    rows = [{"true \\ predicted": name, **dict(zip(classes, map(int, row)))}
            for name, row in zip(classes, matrix)]
    return write_csv(path, rows, ["true \\ predicted", *classes])
