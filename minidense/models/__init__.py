"""Models: DenseNet (Huang et al. 2017) and, for comparison, pre-activation ResNet (He et al. 2016).

    from minidense.models import densenet40, get_model
    model = densenet40()                       # DenseNet (L=40, k=12) for CIFAR-10
    model = get_model("densenet_bc_100", num_classes=100)
    model.summary((3, 32, 32))                 # per-layer shapes, parameters, multiply-adds

``model.config`` holds the constructor's name and arguments, so ``get_model(**model.config)``
rebuilds the same architecture (checkpoints store it next to the weights).
"""
from .densenet import (DenseBlock, DenseLayer, DenseNet, Transition, cifar_block_config,
                       compressed_channels, densenet40, densenet100, densenet121, densenet169,
                       densenet201, densenet264, densenet_bc_100, densenet_bc_190, densenet_bc_250,
                       densenet_cifar)
from .resnet import (PreActBasicBlock, PreActBottleneck, PreActResNet, preact_resnet,
                     preact_resnet110, preact_resnet164)
from .summary import ModelSummary, summary, summary_main

MODELS = {
    "densenet_cifar": densenet_cifar,
    "densenet40": densenet40,
    "densenet100": densenet100,
    "densenet_bc_100": densenet_bc_100,
    "densenet_bc_190": densenet_bc_190,
    "densenet_bc_250": densenet_bc_250,
    "densenet121": densenet121,
    "densenet169": densenet169,
    "densenet201": densenet201,
    "densenet264": densenet264,
    "preact_resnet": preact_resnet,
    "preact_resnet110": preact_resnet110,
    "preact_resnet164": preact_resnet164,
}


def get_model(name, **kwargs):
    """Build a model by its registry name; keyword arguments go to its constructor.

    ``get_model('densenet_cifar', depth=40)``, ``get_model('densenet_bc_100', num_classes=100)``.
    """
    key = str(name).lower().replace("-", "_")
    if key not in MODELS:
        raise ValueError(f"unknown model {name!r}; valid names: {', '.join(sorted(MODELS))}")
    return MODELS[key](**kwargs)


__all__ = ["DenseNet", "DenseBlock", "DenseLayer", "Transition", "PreActResNet", "PreActBasicBlock",
           "PreActBottleneck", "MODELS", "get_model", "summary", "summary_main", "ModelSummary",
           "cifar_block_config", "compressed_channels"] + sorted(MODELS)
