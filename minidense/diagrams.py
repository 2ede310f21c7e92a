"""Pictures of structures that the chapters explain: how a network's layers are wired and what
they hold. Each function draws into matplotlib axes (made with pyplot when none are given, so a
notebook shows the figure) and returns the figure.

matplotlib is imported when a picture is drawn, so `import minidense` never needs it.
"""
__all__ = ["draw_densenet"]

BLOCK_COLOURS = ("tab:blue", "tab:green", "tab:purple", "tab:olive")


def _axes(ax, figsize):
    if ax is not None:
        return ax.figure, ax
    import matplotlib.pyplot as plt
    figure, ax = plt.subplots(figsize=figsize, layout="constrained")
    return figure, ax


def _block_of(name):
    """1 for 'features.denseblock1.denselayer3', None for anything outside a dense block."""
    part = name.split(".")[1] if name.startswith("features.denseblock") else ""
    return int(part[len("denseblock"):]) if part else None


def draw_densenet(rows, ax=None, title=None):
    """The whole network from ``summary(model, ..., print_table=False)[0]``, one bar per layer.

    A dense layer's bar is as tall as the number of maps it reads (light) plus the k maps it adds
    (dark), so a block is a staircase; a transition is a red bar of the maps it passes on, the
    stem conv and the classifier are grey. Each block is labelled with its spatial size.
    """
    figure, ax = _axes(ax, (11, 3.6))
    position, spans = 0, {}
    for row in rows:
        block = _block_of(row["name"])
        if row["type"] == "DenseLayer":
            colour = BLOCK_COLOURS[(block - 1) % len(BLOCK_COLOURS)]
            added = row["out_channels"] - row["in_channels"]
            ax.bar(position, row["in_channels"], color=colour, alpha=0.35, width=0.85)
            ax.bar(position, added, bottom=row["in_channels"], color=colour, width=0.85)
            spans.setdefault(block, [position, position, row["output_shape"][2:]])[1] = position
        elif row["type"] == "Transition":
            ax.bar(position, row["out_channels"], color="tab:red", width=0.85)
            ax.text(position, row["out_channels"], f"{row['out_channels']}", ha="center",
                    va="bottom", fontsize=7, color="tab:red")
        elif row["type"] in ("Conv2d", "Linear") and row["params"]:
            ax.bar(position, row["out_channels"], color="0.55", width=0.85)
            ax.text(position, row["out_channels"], "stem" if row["type"] == "Conv2d" else "fc",
                    ha="center", va="bottom", fontsize=7)
        else:
            continue                    # the closing BN, ReLU, pooling, flatten: no bar of their own
        position += 1
    top = max(row["out_channels"] for row in rows)
    for block, (first, last, size) in spans.items():
        ax.annotate("", xy=(first - 0.4, -0.1 * top), xytext=(last + 0.4, -0.1 * top),
                    arrowprops=dict(arrowstyle="|-|", color="0.4"), annotation_clip=False)
        ax.text((first + last) / 2, -0.19 * top, f"dense block {block}: {size[0]}x{size[1]} maps",
                ha="center", va="top", fontsize=8)
    ax.set_xlim(-1, position)
    ax.set_ylim(0, top * 1.12)
    ax.set_xticks([])
    ax.set_ylabel("feature maps (channels)")
    ax.set_title(title or "the network, layer by layer")
    ax.spines[["top", "right"]].set_visible(False)
    return figure
