"""Reference solution for the dense_layer_forward task."""
import minidense as md
from minidense import nn


class DenseLayer(nn.Module):
    def __init__(self, in_channels, growth_rate):
        super().__init__()
        self.norm1 = nn.BatchNorm2d(in_channels)
        self.relu1 = nn.ReLU()
        self.conv1 = nn.Conv2d(in_channels, growth_rate, kernel_size=3, padding=1, bias=False)

    def forward(self, x):
        return md.cat([x, self.conv1(self.relu1(self.norm1(x)))], axis=1)
