"""Task transition_layer: the layer between two dense blocks, as a minidense Module.

Run the tests:  python -m pytest exercises/tests/test_transition_layer.py
Build it from minidense.nn layers (BatchNorm2d, ReLU, Conv2d, AvgPool2d).
"""
from minidense import nn


class Transition(nn.Module):
    """BN-ReLU-Conv1x1-AvgPool2x2: changes the number of maps and halves the spatial size.

    __init__(in_channels, out_channels): create, with exactly these attribute names
        (torchvision's state_dict layout):
          self.norm = BatchNorm2d(in_channels)
          self.relu = ReLU()
          self.conv = Conv2d(in_channels, out_channels, kernel_size=1, bias=False)
          self.pool = AvgPool2d(kernel_size=2, stride=2)
    forward(x): (N, in_channels, H, W) -> (N, out_channels, H // 2, W // 2),
        pool(conv(relu(norm(x)))). With compression theta, DenseNet-C uses
        out_channels = floor(theta * in_channels).
    Remember super().__init__() first.
    """

    def __init__(self, in_channels, out_channels):
        raise NotImplementedError("transition_layer: implement Transition.__init__")

    def forward(self, x):
        raise NotImplementedError("transition_layer: implement Transition.forward")
