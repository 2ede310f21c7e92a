"""Neural-network building blocks: ``Module``, ``Parameter``, containers and layers.

    import minidense.nn as nn
    import minidense.nn.functional as F

    model = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))

module.py (Module, Parameter) -> containers.py (Sequential, ModuleList, ModuleDict)
-> layers.py (Conv2d, BatchNorm2d, Linear, ...) -> init.py (how weights start)
-> functional.py (the math).
"""
from . import functional, init
from .containers import ModuleDict, ModuleList, Sequential
from .layers import (AdaptiveAvgPool2d, AvgPool2d, BatchNorm2d, Conv2d, Dropout, Flatten, Identity,
                     Linear, MaxPool2d, ReLU)
from .module import IncompatibleKeys, Module, Parameter

__all__ = ["functional", "init", "Module", "Parameter", "IncompatibleKeys", "Sequential",
           "ModuleList", "ModuleDict", "Conv2d", "BatchNorm2d", "Linear", "ReLU", "Dropout",
           "AvgPool2d", "MaxPool2d", "AdaptiveAvgPool2d", "Flatten", "Identity"]
