"""The same DenseNet in PyTorch, for checking minidense against it (tests, benchmarks, chapters).

``torch_mirror(model)`` walks a minidense DenseNet and builds the equivalent ``torch.nn`` network in
torchvision's module layout, with the same weights and BatchNorm statistics, so the two can be
compared output for output and gradient for gradient. PyTorch is optional: it is imported only when
this function is called, and minidense never needs it to train.
"""
from collections import OrderedDict

from .. import nn
from .densenet import DenseBlock, DenseLayer, DenseNet, Transition


def torch_mirror(model, copy_weights=True):
    """A torch.nn.Module with ``model``'s architecture (and, by default, its weights)."""
    import torch
    from torch import nn as tnn

    if not isinstance(model, DenseNet):
        raise TypeError(f"torch_mirror: expected a minidense DenseNet, got {type(model).__name__}")

    def mirror(module):
        if isinstance(module, nn.Conv2d):
            return tnn.Conv2d(module.in_channels, module.out_channels, module.kernel_size,
                              stride=module.stride, padding=module.padding,
                              bias=module.bias is not None)
        if isinstance(module, nn.BatchNorm2d):
            return tnn.BatchNorm2d(module.num_features, eps=module.eps, momentum=module.momentum)
        if isinstance(module, nn.Linear):
            return tnn.Linear(module.in_features, module.out_features, bias=module.bias is not None)
        if isinstance(module, nn.ReLU):
            return tnn.ReLU()
        if isinstance(module, nn.Dropout):
            return tnn.Dropout(module.p)
        if isinstance(module, nn.MaxPool2d):
            return tnn.MaxPool2d(module.kernel_size, module.stride, module.padding)
        if isinstance(module, nn.AvgPool2d):
            return tnn.AvgPool2d(module.kernel_size, module.stride, module.padding)
        if isinstance(module, DenseLayer):
            return _TorchDenseLayer(torch, OrderedDict(
                (name, mirror(child)) for name, child in module.named_children()))
        if isinstance(module, (DenseBlock, Transition, nn.Sequential)):
            return tnn.Sequential(OrderedDict(
                (name, mirror(child)) for name, child in module.named_children()))
        if isinstance(module, (nn.AdaptiveAvgPool2d, nn.Flatten, nn.Identity)):
            return tnn.Identity()   # the pooling and flattening are done in _TorchDenseNet.forward
        raise TypeError(f"torch_mirror: no PyTorch counterpart for {type(module).__name__}")

    reference = _TorchDenseNet(torch, mirror(model.features), mirror(model.classifier))
    if copy_weights:
        state = {k: torch.from_numpy(v.copy()) for k, v in model.state_dict().items()}
        reference.load_state_dict(state, strict=False)
        reference = reference.to(torch.float64 if next(iter(state.values())).dtype == torch.float64
                                 else torch.float32)
    return reference.train(model.training)


def _TorchDenseLayer(torch, children):
    """norm1-relu-conv1 [norm2-relu-conv2], then cat(input, new maps): torchvision's _DenseLayer."""
    class DenseLayerT(torch.nn.Module):
        def __init__(self):
            super().__init__()
            for name, child in children.items():
                self.add_module(name, child)

        def forward(self, x):
            new = x
            for child in self.children():
                new = child(new)
            return torch.cat([x, new], 1)
    return DenseLayerT()


def _TorchDenseNet(torch, features, classifier):
    class DenseNetT(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.features, self.classifier = features, classifier

        def forward(self, x):
            out = torch.nn.functional.adaptive_avg_pool2d(torch.relu(self.features(x)), 1)
            return self.classifier(torch.flatten(out, 1))
    return DenseNetT()
