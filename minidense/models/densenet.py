"""DenseNet (Huang, Liu, van der Maaten, Weinberger, "Densely Connected Convolutional Networks",
CVPR 2017), built from the parts a chapter introduces one at a time.

    DenseLayer   Section 3, "Composite function" and "Bottleneck layers": BN-ReLU-Conv3x3 producing
                 k new feature maps (k = growth rate), or with a bottleneck (DenseNet-B)
                 BN-ReLU-Conv1x1(4k)-BN-ReLU-Conv3x3(k). Its output is the concatenation
                 [input, new maps]: every layer sees the feature maps of all layers before it.
    DenseBlock   Section 3, "Dense connectivity": L dense layers in a row,
                 x_l = H_l([x_0, ..., x_{l-1}]).
    Transition   Section 3, "Pooling layers" and "Compression": BN-ReLU-Conv1x1(floor(theta*m))-
                 AvgPool2x2 between blocks, halving the spatial size (theta < 1 is DenseNet-C).
    DenseNet     Section 3, "Implementation details": a stem convolution, dense blocks joined by
                 transitions, then BN-ReLU-global average pooling-Linear.

Parameter names follow torchvision's DenseNet (``features.denseblock1.denselayer1.norm1.weight``),
so weights move between minidense and PyTorch with ``state_dict``/``load_state_dict``.
Sizes from the paper (Table 2, 10 classes): DenseNet-40 (k=12) has 1,019,722 parameters and
DenseNet-BC-100 (k=12) 769,162; DenseNet-121 (Table 1, 1000 classes) 7,978,856.
"""
import math
from collections import OrderedDict

from .. import nn
from ..kernels import kernel
from ..ops import cat
from . import memory_efficient as _efficient

BOTTLENECK_WIDTH = 4   # a -B layer's 1x1 conv produces 4k maps (Section 3, "Bottleneck layers")


def _dropout_or_none(drop_rate):
    return nn.Dropout(drop_rate) if drop_rate > 0 else None


def _norm_relu_conv(norm, relu, conv, x, statistics=None):
    """conv(relu(norm(x))). With the standard layers, batch norm and ReLU go through
    ``BatchNorm2d.forward_with_relu``, which the fast kernels run as one op: the same numbers, and
    one stored array per BN-ReLU instead of two, which cuts a DenseNet-40 training step's peak
    memory by about a fifth. ``statistics``: the block's shared batch statistics (or None) for
    the layer's first batch norm."""
    if type(norm) is nn.BatchNorm2d and type(relu) is nn.ReLU:
        return conv(norm.forward_with_relu(x, statistics))
    return conv(relu(norm(x)))


class DenseLayer(nn.Module):
    """H_l: BN-ReLU-Conv3x3 (basic) or BN-ReLU-Conv1x1-BN-ReLU-Conv3x3 (bottleneck).

    ``forward(x)`` returns ``cat([x, new], axis=1)``: the input's channels first, then the
    ``growth_rate`` new ones. ``new_features(x)`` returns only the new maps.
    """

    summary_as_one_row = True   # one row in ``summary`` tables

    def __init__(self, in_channels, growth_rate, bottleneck=False, drop_rate=0.0,
                 bn_size=BOTTLENECK_WIDTH):
        super().__init__()
        self.in_channels, self.growth_rate = in_channels, growth_rate
        self.bottleneck, self.drop_rate = bottleneck, drop_rate
        first_out = bn_size * growth_rate if bottleneck else growth_rate
        first_kernel = 1 if bottleneck else 3
        self.norm1 = nn.BatchNorm2d(in_channels)
        self.relu1 = nn.ReLU()
        self.conv1 = nn.Conv2d(in_channels, first_out, kernel_size=first_kernel,
                               padding=first_kernel // 2, bias=False)
        self.drop1 = _dropout_or_none(drop_rate)
        if bottleneck:
            self.norm2 = nn.BatchNorm2d(first_out)
            self.relu2 = nn.ReLU()
            self.conv2 = nn.Conv2d(first_out, growth_rate, kernel_size=3, padding=1, bias=False)
            self.drop2 = _dropout_or_none(drop_rate)

    @property
    def out_channels(self):
        return self.in_channels + self.growth_rate

    def new_features(self, x, norm_relu_conv=None, statistics=None):
        """The k new feature maps H_l(x) (x is the concatenation of all earlier maps).

        Each BN-ReLU-Conv step is ``norm_relu_conv(norm, relu, conv, input, statistics=None)``; by
        default the three layers one after another (BN and ReLU fused into one op). The
        memory-efficient block passes a step that recomputes BN and ReLU in the backward pass
        instead of storing them (see memory_efficient.py). ``statistics``: the block's shared
        batch statistics of x, handed to the first step (see ``DenseBlock``).
        """
        step = norm_relu_conv or _norm_relu_conv
        out = step(self.norm1, self.relu1, self.conv1, x, statistics=statistics)
        if self.drop1 is not None:
            out = self.drop1(out)
        if self.bottleneck:
            out = step(self.norm2, self.relu2, self.conv2, out)
            if self.drop2 is not None:
                out = self.drop2(out)
        return out

    def forward(self, x, statistics=None):
        return cat([x, self.new_features(x, statistics=statistics)], axis=1)

    def extra_repr(self):
        kind = "bottleneck" if self.bottleneck else "basic"
        return f"{self.in_channels} -> {self.out_channels}, growth_rate={self.growth_rate}, {kind}"


class DenseBlock(nn.Module):
    """``num_layers`` dense layers (children ``denselayer1`` ... ``denselayerL``).

    Channels grow from ``in_channels`` to ``in_channels + num_layers * growth_rate``.
    With the fast kernels, in training mode, the layers' first batch norms share their batch
    statistics: a channel of the concatenation has the same values, hence the same mean, variance
    and normalised values x_hat, in every layer that reads it, so each channel is normalised once
    per forward pass (``SharedBatchStatistics`` in kernels/normalization.py) and each layer only
    scales, shifts and ReLUs. The reference kernels let each layer normalise its own input.
    With ``memory_efficient=True`` the concatenations share one preallocated buffer and the
    first BN-ReLU of each layer is recomputed in the backward pass (see ``memory_efficient.py``).
    The numbers computed are the same either way.
    """

    def __init__(self, num_layers, in_channels, growth_rate, bottleneck=False, drop_rate=0.0,
                 memory_efficient=False, bn_size=BOTTLENECK_WIDTH):
        super().__init__()
        self.in_channels, self.growth_rate, self.num_layers = in_channels, growth_rate, num_layers
        self.memory_efficient = memory_efficient
        for i in range(num_layers):
            layer = DenseLayer(in_channels + i * growth_rate, growth_rate, bottleneck, drop_rate,
                               bn_size)
            self.add_module(f"denselayer{i + 1}", layer)

    @property
    def out_channels(self):
        return self.in_channels + self.num_layers * self.growth_rate

    def layers(self):
        return list(self.children())

    def forward(self, x):
        if self.memory_efficient:
            return _efficient.shared_storage_block_forward(self, x)
        layers = self.layers()
        # shared statistics need training mode and layers whose input starts with the previous one's
        shared = kernel("shared_batch_statistics", x.data, default=None)
        shares = shared is not None and self.training and \
            all(type(layer).forward is DenseLayer.forward for layer in layers)
        statistics = shared(self.out_channels) if shares else None
        for layer in layers:
            x = layer(x, statistics=statistics) if shares else layer(x)
        return x

    def extra_repr(self):
        return (f"{self.num_layers} layers, {self.in_channels} -> {self.out_channels}, "
                f"growth_rate={self.growth_rate}, memory_efficient={self.memory_efficient}")


class Transition(nn.Module):
    """BN-ReLU-Conv1x1(out_channels)-[Dropout]-AvgPool2x2 between two dense blocks."""

    summary_as_one_row = True

    def __init__(self, in_channels, out_channels, drop_rate=0.0):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.norm = nn.BatchNorm2d(in_channels)
        self.relu = nn.ReLU()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=False)
        self.drop = _dropout_or_none(drop_rate)
        self.pool = nn.AvgPool2d(kernel_size=2, stride=2)

    def forward(self, x):
        out = _norm_relu_conv(self.norm, self.relu, self.conv, x)
        if self.drop is not None:
            out = self.drop(out)
        return self.pool(out)

    def extra_repr(self):
        return f"{self.in_channels} -> {self.out_channels}"


def compressed_channels(channels, compression):
    """floor(theta * m): the number of maps a transition keeps (Section 3, "Compression")."""
    if not 0.0 < compression <= 1.0:
        raise ValueError(f"compression (theta) must be in (0, 1], got {compression}")
    return int(math.floor(compression * channels))


class DenseNet(nn.Module):
    """The whole network: ``features`` (stem, blocks, transitions, ``norm5``) and ``classifier``.

    growth_rate        k, the new maps per layer.
    block_config       layers per dense block, e.g. (12, 12, 12) for DenseNet-40.
    num_init_features  maps made by the stem convolution ``conv0``.
    bottleneck         use 1x1 bottleneck convolutions (DenseNet-B).
    compression        theta; transitions keep floor(theta * m) maps (theta < 1: DenseNet-C).
    drop_rate          dropout after every convolution except ``conv0`` (0 = none).
    stem               'cifar' (conv 3x3) or 'imagenet' (conv 7x7/2, BN, ReLU, max pool 3x3/2).

    ``forward(x)``: features -> ReLU -> global average pool -> flatten -> classifier (logits).
    """

    def __init__(self, growth_rate=12, block_config=(12, 12, 12), num_init_features=16,
                 bottleneck=False, compression=1.0, drop_rate=0.0, num_classes=10, stem="cifar",
                 in_channels=3, memory_efficient=False, bn_size=BOTTLENECK_WIDTH):
        super().__init__()
        if stem not in ("cifar", "imagenet"):
            raise ValueError(f"DenseNet: stem must be 'cifar' or 'imagenet', got {stem!r}")
        self.growth_rate, self.block_config = growth_rate, tuple(block_config)
        self.bottleneck, self.compression, self.stem = bottleneck, compression, stem
        self.config = None   # set by the named constructors: {'name': ..., **kwargs}
        self.default_input_shape = (in_channels, 32, 32) if stem == "cifar" else \
            (in_channels, 224, 224)

        features = nn.Sequential()
        if stem == "cifar":
            features.add_module("conv0", nn.Conv2d(in_channels, num_init_features, kernel_size=3,
                                                   padding=1, bias=False))
        else:
            features.add_module("conv0", nn.Conv2d(in_channels, num_init_features, kernel_size=7,
                                                   stride=2, padding=3, bias=False))
            features.add_module("norm0", nn.BatchNorm2d(num_init_features))
            features.add_module("relu0", nn.ReLU())
            features.add_module("pool0", nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
        channels = num_init_features
        for b, num_layers in enumerate(self.block_config, start=1):
            block = DenseBlock(num_layers, channels, growth_rate, bottleneck, drop_rate,
                               memory_efficient, bn_size)
            features.add_module(f"denseblock{b}", block)
            channels = block.out_channels
            if b < len(self.block_config):
                out = compressed_channels(channels, compression)
                features.add_module(f"transition{b}", Transition(channels, out, drop_rate))
                channels = out
        features.add_module("norm5", nn.BatchNorm2d(channels))   # torchvision's name
        self.features = features
        self.relu = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.classifier = nn.Linear(channels, num_classes)
        self.num_features = channels
        # Weights start as in the paper's code; those are nn's defaults (see nn/init.py): conv
        # N(0, 2/(kh*kw*out)), BN gamma 1 / beta 0, Linear bias 0.

    def forward(self, x):
        return self.classifier(self.flatten(self.pool(self.relu(self.features(x)))))

    def dense_blocks(self):
        """The DenseBlock modules in order (handy for the Figure 5 feature-reuse analysis)."""
        return [m for m in self.features.children() if isinstance(m, DenseBlock)]

    @property
    def memory_efficient(self):
        return all(block.memory_efficient for block in self.dense_blocks())

    @memory_efficient.setter
    def memory_efficient(self, flag):
        """Switch every block between the naive and the shared-storage forward (same weights)."""
        for block in self.dense_blocks():
            block.memory_efficient = bool(flag)

    def summary(self, input_shape=None, **kwargs):
        """Print and return the per-layer table of ``minidense.models.summary``."""
        from .summary import summary
        return summary(self, input_shape, **kwargs)

    def extra_repr(self):
        return (f"growth_rate={self.growth_rate}, block_config={self.block_config}, "
                f"bottleneck={self.bottleneck}, compression={self.compression}, stem={self.stem!r}")


# ---------------------------------------------------------------------------------------------
# Named constructors
# ---------------------------------------------------------------------------------------------
def _named(name, model, **kwargs):
    model.config = OrderedDict([("name", name)] + sorted(kwargs.items()))
    return model


def cifar_block_config(depth, bottleneck=False):
    """Layers per block of a 3-block CIFAR DenseNet of total ``depth`` (conv layers + classifier).

    depth = 3n + 4 for basic layers (n layers of one conv each, the stem conv, two transitions and
    the classifier); with bottlenecks each layer has two convs, so depth = 6n + 4.
    """
    per_layer = 2 if bottleneck else 1
    step = 3 * per_layer
    if not isinstance(depth, int) or depth < 4 + step or (depth - 4) % step:
        kind = "DenseNet-B/BC (bottleneck layers)" if bottleneck else "a basic DenseNet"
        examples = "100, 190, 250" if bottleneck else "40, 100"
        n = max(1, (depth - 4) // step) if isinstance(depth, int) else 1
        raise ValueError(f"depth={depth!r} does not fit {kind}: depth must be {step}n+4 with n "
                         f"the layers per block (e.g. {examples}; nearest valid: {4 + step * n}, "
                         f"{4 + step * (n + 1)})")
    return ((depth - 4) // step,) * 3


def densenet_cifar(depth, growth_rate=12, bottleneck=False, compression=1.0, drop_rate=0.0,
                   num_classes=10, memory_efficient=False, in_channels=3, **kwargs):
    """A 3-block CIFAR DenseNet of a given depth (Section 3, "Implementation details").

    The stem makes 16 maps, or 2k when bottleneck and compression < 1 (DenseNet-BC).
    """
    is_bc = bottleneck and compression < 1
    init = kwargs.pop("num_init_features", 2 * growth_rate if is_bc else 16)
    model = DenseNet(growth_rate, cifar_block_config(depth, bottleneck), init, bottleneck,
                     compression, drop_rate, num_classes, stem="cifar", in_channels=in_channels,
                     memory_efficient=memory_efficient, **kwargs)
    config = dict(depth=depth, growth_rate=growth_rate, bottleneck=bottleneck,
                  compression=compression, drop_rate=drop_rate, num_classes=num_classes,
                  memory_efficient=memory_efficient, in_channels=in_channels,
                  num_init_features=init, **kwargs)
    return _named("densenet_cifar", model, **config)


def _cifar_preset(name, depth, growth_rate, bc):
    def build(**overrides):
        settings = dict(depth=depth, growth_rate=growth_rate, bottleneck=bc,
                        compression=0.5 if bc else 1.0)
        settings.update(overrides)
        model = densenet_cifar(**settings)
        return _named(name, model, **overrides)
    build.__name__ = name
    kind = "DenseNet-BC" if bc else "DenseNet"
    build.__doc__ = (f"{kind} (L={depth}, k={growth_rate}) for CIFAR, as in the paper's Table 2. "
                     f"Keyword arguments override the settings of ``densenet_cifar``.")
    return build


densenet40 = _cifar_preset("densenet40", 40, 12, bc=False)
densenet100 = _cifar_preset("densenet100", 100, 12, bc=False)
densenet_bc_100 = _cifar_preset("densenet_bc_100", 100, 12, bc=True)
densenet_bc_250 = _cifar_preset("densenet_bc_250", 250, 24, bc=True)
densenet_bc_190 = _cifar_preset("densenet_bc_190", 190, 40, bc=True)

IMAGENET_BLOCKS = {121: (6, 12, 24, 16), 169: (6, 12, 32, 32), 201: (6, 12, 48, 32),
                   264: (6, 12, 64, 48)}   # the paper's Table 1


def _imagenet_preset(depth):
    name = f"densenet{depth}"

    def build(num_classes=1000, **overrides):
        settings = dict(growth_rate=32, block_config=IMAGENET_BLOCKS[depth], num_init_features=64,
                        bottleneck=True, compression=0.5, drop_rate=0.0, num_classes=num_classes,
                        stem="imagenet")
        settings.update(overrides)
        return _named(name, DenseNet(**settings), num_classes=num_classes, **overrides)
    build.__name__ = name
    build.__doc__ = (f"DenseNet-{depth} for ImageNet (Table 1): k=32, bottlenecks, theta=0.5, "
                     f"blocks {IMAGENET_BLOCKS[depth]}, 7x7/2 stem with 64 maps.")
    return build


densenet121 = _imagenet_preset(121)
densenet169 = _imagenet_preset(169)
densenet201 = _imagenet_preset(201)
densenet264 = _imagenet_preset(264)
