"""Task dense_layer_forward: DenseNet's basic layer as a minidense Module.

Run the tests:  python -m pytest exercises/tests/test_dense_layer_forward.py
Build it from minidense.nn layers (Conv2d, BatchNorm2d, ReLU) and md.cat.
"""
import minidense as md
from minidense import nn


class DenseLayer(nn.Module):
    """BN-ReLU-Conv3x3 producing ``growth_rate`` new feature maps, concatenated after the input.

    __init__(in_channels, growth_rate): create, with exactly these attribute names (they give the
        state_dict keys torchvision uses, so weights load into the library's DenseNet):
          self.norm1 = BatchNorm2d(in_channels)
          self.relu1 = ReLU()
          self.conv1 = Conv2d(in_channels, growth_rate, kernel_size=3, padding=1, bias=False)
    forward(x): x is (N, in_channels, H, W); return md.cat([x, new], axis=1) of shape
        (N, in_channels + growth_rate, H, W), where new = conv1(relu1(norm1(x))).
        The input's channels come first: every later layer sees all earlier feature maps.
    Remember super().__init__() first.
    """

    def __init__(self, in_channels, growth_rate):
        raise NotImplementedError("dense_layer_forward: implement DenseLayer.__init__")

    def forward(self, x):
        raise NotImplementedError("dense_layer_forward: implement DenseLayer.forward")
