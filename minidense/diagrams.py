"""Pictures of structures that the chapters explain: how a network's layers are wired and what
they hold. Each function draws into matplotlib axes (made with pyplot when none are given, so a
notebook shows the figure) and returns the figure.

matplotlib is imported when a picture is drawn, so `import minidense` never needs it.
"""
__all__ = ["draw_densenet", "draw_im2col", "draw_col2im_counts", "draw_graph", "draw_batch_norm_graph",
           "draw_pooling", "draw_concat_gradient", "draw_dense_block"]

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


# ------------------------------------------------------------------------------------------------
# Chapter 3: im2col and col2im
# ------------------------------------------------------------------------------------------------
WINDOW_COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown",
                  "tab:pink", "tab:olive", "tab:cyan")


def _grid(ax, values, title, fmt="{:g}", cmap=None, colours=None):
    """A matrix drawn as labelled cells (optionally tinted per cell)."""
    from matplotlib.patches import Rectangle
    values = _as_array(values)
    rows, cols = values.shape
    for r in range(rows):
        for c in range(cols):
            face = "white" if colours is None or colours[r][c] is None else colours[r][c]
            ax.add_patch(Rectangle((c, r), 1, 1, facecolor=face, edgecolor="0.6",
                                   alpha=0.35 if colours is not None and colours[r][c] else 1))
            ax.text(c + 0.5, r + 0.5, fmt.format(values[r, c]), ha="center", va="center",
                    fontsize=8)
    ax.set_xlim(0, cols)
    ax.set_ylim(rows, 0)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(title, fontsize=9)


def _as_array(values):
    import numpy
    return numpy.asarray(values)


def _outline(ax, row, col, height, width, colour, inset=0.0, lw=2.0):
    from matplotlib.patches import Rectangle
    ax.add_patch(Rectangle((col + inset, row + inset), width - 2 * inset, height - 2 * inset,
                           fill=False, edgecolor=colour, linewidth=lw))


def draw_im2col(image, cols, kernel, stride=1):
    """A 1-channel image with its windows outlined, beside the columns im2col made of them.

    image: (H, W); cols: (kernel*kernel, OH*OW) from im2col of that image. Column j is window j
    (row-major over the window positions), in the same colour as its outline.
    """
    import matplotlib.pyplot as plt
    image, cols = _as_array(image), _as_array(cols)
    height, width = image.shape
    out_w = (width - kernel) // stride + 1
    figure, (left, right) = plt.subplots(1, 2, figsize=(9, 4.2), layout="constrained",
                                         gridspec_kw={"width_ratios": [width, cols.shape[1] + 2]})
    _grid(left, image, f"the image ({height}x{width}) and its {cols.shape[1]} windows ({kernel}x{kernel})")
    for j in range(cols.shape[1]):
        colour = WINDOW_COLOURS[j % len(WINDOW_COLOURS)]
        r, c = (j // out_w) * stride, (j % out_w) * stride
        _outline(left, r, c, kernel, kernel, colour, inset=0.06 + 0.05 * j, lw=2)
    tint = [[WINDOW_COLOURS[c % len(WINDOW_COLOURS)] for c in range(cols.shape[1])]
            for _ in range(cols.shape[0])]
    _grid(right, cols, f"im2col: window j becomes column j  ({cols.shape[0]} x {cols.shape[1]})",
          colours=tint)
    for j in range(cols.shape[1]):
        right.text(j + 0.5, cols.shape[0] + 0.2, f"col {j}", ha="center", va="top", fontsize=8,
                   color=WINDOW_COLOURS[j % len(WINDOW_COLOURS)])
    for i in range(cols.shape[0]):
        right.text(-0.15, i + 0.5, f"({i // kernel},{i % kernel})", ha="right", va="center",
                   fontsize=7, color="0.4")
    return figure


def draw_col2im_counts(counts, kernel, stride=1):
    """How many windows cover each pixel: what col2im of all-ones columns adds up."""
    import matplotlib.pyplot as plt
    counts = _as_array(counts)
    height, width = counts.shape
    figure, ax = plt.subplots(figsize=(4.2, 4.2), layout="constrained")
    image = ax.imshow(counts, cmap="Blues", vmin=0, vmax=counts.max() * 1.3)
    for r in range(height):
        for c in range(width):
            ax.text(c, r, f"{counts[r, c]:g}", ha="center", va="center", fontsize=11)
    out_h, out_w = (height - kernel) // stride + 1, (width - kernel) // stride + 1
    for j in range(out_h * out_w):
        r, c = (j // out_w) * stride, (j % out_w) * stride
        _outline(ax, r - 0.5, c - 0.5, kernel, kernel, WINDOW_COLOURS[j % len(WINDOW_COLOURS)],
                 inset=0.05 + 0.05 * j)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title("col2im(ones): each pixel gets one 1\nper window that covers it", fontsize=9)
    figure.colorbar(image, ax=ax, shrink=0.7, label="windows covering the pixel")
    return figure


# ------------------------------------------------------------------------------------------------
# Graphs of small operations (chapter 4's batch norm)
# ------------------------------------------------------------------------------------------------
def draw_graph(nodes, edges, ax=None, title=None, figsize=(11, 4)):
    """A computation graph from explicit positions.

    nodes: {name: (x, y, label, kind)} with kind 'input', 'op', 'value' or 'output';
    edges: [(from, to)] or [(from, to, edge label)].
    """
    figure, ax = _axes(ax, figsize)
    faces = {"input": "#e8f1fb", "op": "#fff3d6", "value": "#f4f4f4", "output": "#e3f5e1"}
    for edge in edges:
        start, end = nodes[edge[0]], nodes[edge[1]]
        ax.annotate("", xy=end[:2], xytext=start[:2],
                    arrowprops=dict(arrowstyle="->", color="0.45", shrinkA=20, shrinkB=20,
                                    connectionstyle="arc3,rad=0.0"))
        if len(edge) > 2:
            ax.text((start[0] + end[0]) / 2, (start[1] + end[1]) / 2 + 0.12, edge[2], fontsize=8,
                    ha="center", color="crimson")
    for x, y, label, kind in nodes.values():
        ax.text(x, y, label, ha="center", va="center", fontsize=9,
                bbox=dict(boxstyle="circle" if kind == "op" else "round", fc=faces[kind], ec="0.3"))
    xs = [n[0] for n in nodes.values()]
    ys = [n[1] for n in nodes.values()]
    ax.set_xlim(min(xs) - 0.8, max(xs) + 0.8)
    ax.set_ylim(min(ys) - 0.8, max(ys) + 0.8)
    ax.axis("off")
    if title:
        ax.set_title(title)
    return figure


def draw_batch_norm_graph(ax=None):
    """Training-mode batch norm as a graph of small operations, with its three paths back to x."""
    nodes = {
        "x": (0, 0, "x\n(N, C, H, W)", "input"),
        "mean": (1.6, 1.3, "mean\nover N,H,W", "op"),
        "mu": (3.0, 1.3, "μ  (C)", "value"),
        "sub": (3.0, 0, "−", "op"),
        "xc": (4.4, 0, "x − μ", "value"),
        "sq": (5.5, 1.3, "square,\nmean", "op"),
        "var": (6.9, 1.3, "σ²  (C)", "value"),
        "rs": (8.2, 1.3, "1/√(σ²+ε)", "op"),
        "mul": (8.2, 0, "×", "op"),
        "xhat": (9.5, 0, "x̂", "value"),
        "affine": (10.8, 0, "γ x̂ + β", "op"),
        "y": (12.2, 0, "y", "output"),
        "gb": (10.8, -1.3, "γ, β  (C)", "input"),
    }
    edges = [("x", "mean", "path 2"), ("mean", "mu"), ("mu", "sub"), ("x", "sub", "path 1"),
             ("sub", "xc"), ("xc", "sq", "path 3"), ("sq", "var"), ("var", "rs"), ("rs", "mul"),
             ("xc", "mul"), ("mul", "xhat"), ("xhat", "affine"), ("gb", "affine"),
             ("affine", "y")]
    return draw_graph(nodes, edges, ax, "batch norm in training mode: x reaches y along three "
                                        "paths, so dL/dx is a sum of three terms", figsize=(12, 3.8))


# ------------------------------------------------------------------------------------------------
# Chapter 5: pooling windows and the gradient of concatenation
# ------------------------------------------------------------------------------------------------
def _pool_forward_backward(name, image, grad_out, size):
    """The library's pooling op on a (H, W) image: its output and the input's gradient for the
    upstream gradient ``grad_out`` (what the picture shows is what the op computes)."""
    import minidense as md
    import minidense.nn.functional as F
    x = md.tensor(image[None, None], requires_grad=True)
    y = getattr(F, name)(x, size)
    y.backward(md.tensor(grad_out[None, None]))
    return y.numpy()[0, 0], x.grad.numpy()[0, 0]


def draw_pooling(x, grad_out, size=2):
    """2x2 (stride 2) pooling of a 1-channel image, forward and backward, average and max.

    Top row: the input with its windows, the average-pooled and the max-pooled output.
    Bottom row: the upstream gradient, and what each pooling sends back to its input: the average
    spreads g / size² over its window, the max routes all of g to the window's largest input.
    """
    import matplotlib.pyplot as plt
    import numpy
    x, grad_out = numpy.asarray(x, dtype=float), numpy.asarray(grad_out, dtype=float)
    height, width = x.shape
    (average, grad_average), (maximum, grad_max) = (
        _pool_forward_backward(pool, x, grad_out, size) for pool in ("avg_pool2d", "max_pool2d"))
    _, routed = _pool_forward_backward("max_pool2d", x, numpy.ones_like(grad_out), size)
    winner = {(int(r), int(c)): True for r, c in zip(*numpy.nonzero(routed))}
    def tint(shape, per_pixel):
        return [[per_pixel(r, c) for c in range(shape[1])] for r in range(shape[0])]

    window_colour = lambda r, c: WINDOW_COLOURS[(r // size) * (width // size) + c // size]
    out_colour = lambda r, c: WINDOW_COLOURS[r * (width // size) + c]
    figure, axes = plt.subplots(2, 3, figsize=(10, 6.4), layout="constrained")
    _grid(axes[0, 0], x, "input, 2x2 windows", colours=tint(x.shape, window_colour))
    _grid(axes[0, 1], average, "average pool (forward)", fmt="{:.2f}",
          colours=tint(average.shape, out_colour))
    _grid(axes[0, 2], maximum, "max pool (forward)", colours=tint(maximum.shape, out_colour))
    _grid(axes[1, 0], grad_out, "upstream gradient g (one per window)",
          colours=tint(grad_out.shape, out_colour))
    _grid(axes[1, 1], grad_average, "average's backward: g/4 to every pixel", fmt="{:.2f}",
          colours=tint(x.shape, window_colour))
    _grid(axes[1, 2], grad_max, "max's backward: g to the largest, 0 elsewhere",
          colours=tint(x.shape, lambda r, c: window_colour(r, c) if (r, c) in winner else None))
    for (r, c) in winner:
        _outline(axes[0, 0], r, c, 1, 1, "black", inset=0.08, lw=1.5)
    return figure


def draw_concat_gradient(channels, ax=None):
    """cat along the channel axis, and its backward: the output gradient cut into slices."""
    from matplotlib.patches import FancyArrowPatch, Rectangle
    figure, ax = _axes(ax, (10, 3.6))
    total = sum(channels)
    offsets = [sum(channels[:i]) for i in range(len(channels))]
    # the inputs (left), the concatenated output (middle), the gradient slices (right)
    for i, (start, size) in enumerate(zip(offsets, channels)):
        colour = WINDOW_COLOURS[i % len(WINDOW_COLOURS)]
        y = total - start - size - i * 1.5          # the inputs, apart
        ax.add_patch(Rectangle((0, y), 1.2, size, facecolor=colour, alpha=0.45, edgecolor="0.3"))
        ax.text(0.6, y + size / 2, f"input {i}\n{size} ch", ha="center", va="center", fontsize=8)
        ax.add_patch(Rectangle((3.5, total - start - size), 1.2, size, facecolor=colour, alpha=0.45,
                               edgecolor="0.3"))
        ax.text(4.1, total - start - size / 2, f"ch {start}..{start + size - 1}", ha="center",
                va="center", fontsize=8)
        ax.add_artist(FancyArrowPatch((1.25, y + size / 2), (3.45, total - start - size / 2),
                                      arrowstyle="->", mutation_scale=12, color="0.4"))
        ax.add_patch(Rectangle((7.0, total - start - size), 1.2, size, facecolor=colour, alpha=0.2,
                               edgecolor=colour, hatch="//"))
        ax.add_patch(Rectangle((9.6, y), 1.2, size, facecolor=colour, alpha=0.2, edgecolor=colour,
                               hatch="//"))
        ax.text(10.2, y + size / 2, f"grad of\ninput {i}", ha="center", va="center", fontsize=8)
        ax.add_artist(FancyArrowPatch((8.25, total - start - size / 2), (9.55, y + size / 2),
                                      arrowstyle="->", mutation_scale=12, color=colour))
    ax.text(4.1, total + 1.5, f"cat(axis=1): {total} channels", ha="center", fontsize=9)
    ax.text(7.6, total + 1.5, "dL/d(output)", ha="center", fontsize=9)
    bottom = -1.5 * len(channels) - 1
    ax.text(9.0, bottom, "backward: slice g[:, start:start+size]", ha="center", fontsize=9,
            color="0.3")
    ax.text(2.35, bottom, "forward: copy side by side", ha="center", fontsize=9, color="0.3")
    ax.set_xlim(-0.3, 11.1)
    ax.set_ylim(bottom - 1, total + 2.5)
    ax.axis("off")
    return figure


# ------------------------------------------------------------------------------------------------
# Chapter 6: the dense block's wiring (the paper's Figure 1)
# ------------------------------------------------------------------------------------------------
def draw_dense_block(layers=4, in_channels=16, growth_rate=12, ax=None):
    """A dense block as in Huang et al. (2017), Figure 1: every layer reads the concatenation of
    the block's input and all earlier layers' outputs; each adds ``growth_rate`` maps.

    Arcs are the connections (there are L(L+1)/2); under each layer, the channels it reads.
    """
    from matplotlib.patches import FancyArrowPatch, Rectangle
    figure, ax = _axes(ax, (11, 4.4))
    xs = [2.2 * i for i in range(layers + 2)]
    names = ["x0\n(input)"] + [f"H{i}\n(BN-ReLU-\nConv)" for i in range(1, layers + 1)] + ["transition"]
    for i, x in enumerate(xs):
        colour = "#e8f1fb" if i == 0 else ("#fde2e1" if i == layers + 1 else
                                            WINDOW_COLOURS[(i - 1) % len(WINDOW_COLOURS)])
        ax.add_patch(Rectangle((x - 0.55, -0.6), 1.1, 1.2, facecolor=colour, edgecolor="0.3",
                               alpha=0.5 if 0 < i <= layers else 1))
        ax.text(x, 0, names[i], ha="center", va="center", fontsize=7.5)
        if i >= 1:
            reads = in_channels + (i - 1) * growth_rate
            ax.text(x, -0.85, f"reads {reads} maps", ha="center", va="top", fontsize=7.5)
        if 1 <= i <= layers:
            ax.text(x, 0.75, f"+{growth_rate}", ha="center", fontsize=7.5, color="0.3")
    connections = 0
    for source in range(layers + 1):
        colour = "0.4" if source == 0 else WINDOW_COLOURS[(source - 1) % len(WINDOW_COLOURS)]
        for target in range(source + 1, layers + 2):
            connections += 1
            rad = -0.25 - 0.06 * (target - source) if target - source > 1 else 0.0
            ax.add_artist(FancyArrowPatch((xs[source] + 0.3, 0.6 if target - source > 1 else 0.0),
                                          (xs[target] - 0.3, 0.6 if target - source > 1 else 0.0),
                                          connectionstyle=f"arc3,rad={rad}", arrowstyle="->",
                                          mutation_scale=10, color=colour, lw=1.1))
    ax.set_xlim(-1, xs[-1] + 1)
    ax.set_ylim(-1.5, 0.9 + 0.75 * layers)
    ax.axis("off")
    ax.set_title(f"a dense block with {layers} layers (k = {growth_rate}): {connections} "
                 f"connections = (L+1)(L+2)/2 counting the transition; the paper's Figure 1")
    return figure
