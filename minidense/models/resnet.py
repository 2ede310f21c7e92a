"""Pre-activation ResNet for CIFAR (He, Zhang, Ren, Sun, "Identity Mappings in Deep Residual
Networks", ECCV 2016), the baseline DenseNet's Table 2 compares against.

A residual unit adds its input to what its layers make, x_{l+1} = x_l + F(x_l); "pre-activation"
puts BN-ReLU *before* each convolution, so the identity path carries x_l untouched. DenseNet's
difference is in one operation: it concatenates, [x_l, F(x_l)], instead of adding.

    basic units       BN-ReLU-Conv3x3, BN-ReLU-Conv3x3; depth = 6n + 2 (ResNet-110: n = 18)
    bottleneck units  BN-ReLU-Conv1x1(w), BN-ReLU-Conv3x3(w), BN-ReLU-Conv1x1(4w); depth = 9n + 2
                      (ResNet-164: n = 18)

Three stages of n units with widths 16, 32, 64 on 32x32, 16x16, 8x8 maps, then BN-ReLU-global
average pool-Linear. Where a unit changes the shape, a basic unit's shortcut subsamples and pads
the new channels with zeros (no parameters; "option A" of He et al. 2016a), and a bottleneck unit
uses a 1x1 projection convolution on the pre-activated input. With 10 classes this gives
1,727,962 parameters for ResNet-110 and 1,703,258 for ResNet-164 (the paper: 1.7M for both).
"""
from collections import OrderedDict

from .. import nn
from ..creation import zeros
from ..ops import cat

STAGE_WIDTHS = (16, 32, 64)
BASIC_UP_TO_DEPTH = 110   # the paper: basic units up to ResNet-110, bottlenecks beyond (164, 1001)


class ZeroPadShortcut(nn.Module):
    """Shortcut without parameters: keep every ``stride``-th pixel, append zero channels."""

    def __init__(self, in_channels, out_channels, stride):
        super().__init__()
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride

    def forward(self, x):
        x = x[:, :, ::self.stride, ::self.stride]
        n, _, h, w = x.shape
        padding = zeros(n, self.out_channels - self.in_channels, h, w, dtype=x.dtype,
                        device=x.device)
        return cat([x, padding], axis=1)

    def extra_repr(self):
        return f"{self.in_channels} -> {self.out_channels}, stride={self.stride}"


def _norm_relu_conv(in_channels, out_channels, kernel_size, stride=1):
    return (nn.BatchNorm2d(in_channels), nn.ReLU(),
            nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride,
                      padding=kernel_size // 2, bias=False))


class PreActBasicBlock(nn.Module):
    """x + Conv3x3(ReLU(BN(Conv3x3(ReLU(BN(x))))))."""

    expansion = 1
    summary_as_one_row = True

    def __init__(self, in_channels, width, stride=1):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, width * self.expansion
        self.norm1, self.relu1, self.conv1 = _norm_relu_conv(in_channels, width, 3, stride)
        self.norm2, self.relu2, self.conv2 = _norm_relu_conv(width, width, 3)
        changes_shape = stride != 1 or in_channels != self.out_channels
        self.shortcut = ZeroPadShortcut(in_channels, self.out_channels, stride) \
            if changes_shape else None

    def forward(self, x):
        residual = self.conv1(self.relu1(self.norm1(x)))
        residual = self.conv2(self.relu2(self.norm2(residual)))
        return residual + (x if self.shortcut is None else self.shortcut(x))


class PreActBottleneck(nn.Module):
    """x + Conv1x1(4w)(BN-ReLU(Conv3x3(w)(BN-ReLU(Conv1x1(w)(BN-ReLU(x))))))."""

    expansion = 4
    summary_as_one_row = True

    def __init__(self, in_channels, width, stride=1):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, width * self.expansion
        self.norm1, self.relu1, self.conv1 = _norm_relu_conv(in_channels, width, 1)
        self.norm2, self.relu2, self.conv2 = _norm_relu_conv(width, width, 3, stride)
        self.norm3, self.relu3, self.conv3 = _norm_relu_conv(width, self.out_channels, 1)
        changes_shape = stride != 1 or in_channels != self.out_channels
        self.shortcut = nn.Conv2d(in_channels, self.out_channels, 1, stride=stride, bias=False) \
            if changes_shape else None

    def forward(self, x):
        activated = self.relu1(self.norm1(x))
        # Where the shape changes the projection sees the pre-activated input (He et al. 2016).
        shortcut = x if self.shortcut is None else self.shortcut(activated)
        residual = self.conv1(activated)
        residual = self.conv2(self.relu2(self.norm2(residual)))
        residual = self.conv3(self.relu3(self.norm3(residual)))
        return residual + shortcut


def resnet_blocks_per_stage(depth, bottleneck):
    """n, from depth = 6n + 2 (basic) or 9n + 2 (bottleneck)."""
    step = 9 if bottleneck else 6
    if not isinstance(depth, int) or depth < step + 2 or (depth - 2) % step:
        valid = ", ".join(str(step * n + 2) for n in (1, 2, 3, 9, 18))
        raise ValueError(f"depth={depth!r} does not fit a pre-activation ResNet with "
                         f"{'bottleneck' if bottleneck else 'basic'} units: depth must be "
                         f"{step}n+2 (e.g. {valid})")
    return (depth - 2) // step


class PreActResNet(nn.Module):
    """Stem conv 3x3 (16), three stages of residual units, BN-ReLU-global average pool-Linear."""

    def __init__(self, depth, num_classes=10, bottleneck=None, in_channels=3):
        super().__init__()
        if bottleneck is None:
            bottleneck = depth > BASIC_UP_TO_DEPTH
        self.depth, self.bottleneck = depth, bottleneck
        unit = PreActBottleneck if bottleneck else PreActBasicBlock
        n = resnet_blocks_per_stage(depth, bottleneck)
        self.config = None
        self.default_input_shape = (in_channels, 32, 32)
        self.conv1 = nn.Conv2d(in_channels, STAGE_WIDTHS[0], 3, padding=1, bias=False)
        channels = STAGE_WIDTHS[0]
        for s, width in enumerate(STAGE_WIDTHS, start=1):
            units = OrderedDict()
            for i in range(n):
                stride = 2 if (s > 1 and i == 0) else 1
                units[f"unit{i + 1}"] = unit(channels, width, stride)
                channels = units[f"unit{i + 1}"].out_channels
            self.add_module(f"stage{s}", nn.Sequential(units))
        self.norm = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x):
        x = self.stage3(self.stage2(self.stage1(self.conv1(x))))
        return self.fc(self.flatten(self.pool(self.relu(self.norm(x)))))

    def summary(self, input_shape=None, **kwargs):
        from .summary import summary
        return summary(self, input_shape, **kwargs)

    def extra_repr(self):
        return f"depth={self.depth}, {'bottleneck' if self.bottleneck else 'basic'} units"


def preact_resnet(depth, num_classes=10, bottleneck=None, in_channels=3):
    """A CIFAR pre-activation ResNet: basic units (depth 6n+2) up to depth 110, bottleneck units
    (depth 9n+2) beyond, as in the paper; pass ``bottleneck=True/False`` to choose yourself."""
    model = PreActResNet(depth, num_classes, bottleneck, in_channels)
    model.config = OrderedDict(name="preact_resnet", depth=depth, num_classes=num_classes,
                               bottleneck=model.bottleneck, in_channels=in_channels)
    return model


def _preset(depth):
    name = f"preact_resnet{depth}"

    def build(num_classes=10, **overrides):
        model = preact_resnet(depth, num_classes, **overrides)
        model.config = OrderedDict(name=name, num_classes=num_classes, **overrides)
        return model
    build.__name__ = name
    build.__doc__ = f"Pre-activation ResNet-{depth} for CIFAR (He et al. 2016)."
    return build


preact_resnet110 = _preset(110)
preact_resnet164 = _preset(164)
