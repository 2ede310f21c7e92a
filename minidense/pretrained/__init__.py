"""Trained weights shipped with minidense, so a reader can study a trained DenseNet without
training one first.

    from minidense import pretrained
    model = pretrained.densenet40_fashion_sample()    # DenseNet-40 (k = 12), in eval mode
    pretrained.available()                             # ['densenet40_fashion_sample']
    pretrained.training_history("densenet40_fashion_sample")[-1]["test_acc"]

Each folder in this package holds one trained model:

    weights.npz   the state dict only (no optimizer state), written with md.save; md.load reads it
                  with allow_pickle=False, so the file can hold numbers and text but never code
    model.json    the architecture: get_model(**model.json) rebuilds the untrained network
    config.json   the training run's options, as `python -m minidense train` wrote them
    metrics.csv   one row per epoch of that run (loss, accuracy, seconds)
    README.md     the command that reproduces the run, and what the weights reach on what data
"""
import csv
import json
from pathlib import Path

from ..models import get_model
from ..serialization import load as load_file

__all__ = ["available", "folder", "load_model", "load_state_dict", "training_history",
           "densenet40_fashion_sample"]

PRETRAINED_ROOT = Path(__file__).resolve().parent


def available():
    """Names of the shipped models (the folders holding a weights.npz)."""
    return sorted(path.parent.name for path in PRETRAINED_ROOT.glob("*/weights.npz"))


def folder(name):
    """The folder of a shipped model; raises a KeyError that lists the names there are."""
    path = PRETRAINED_ROOT / name
    if not (path / "weights.npz").is_file():
        raise KeyError(f"no pretrained model named {name!r}; shipped models: {available()} "
                       f"(in {PRETRAINED_ROOT})")
    return path


def load_state_dict(name):
    """The shipped state dict {parameter or buffer name: NumPy array}."""
    return load_file(folder(name) / "weights.npz")


def load_model(name, device="cpu"):
    """The shipped model, built from model.json, with its weights loaded, in eval mode."""
    architecture = json.loads((folder(name) / "model.json").read_text())
    model = get_model(**architecture)
    model.load_state_dict(load_state_dict(name))
    return model.to(device).eval()


def training_history(name):
    """The run's metrics.csv as a list of dicts, one per epoch, numbers as int or float."""
    with open(folder(name) / "metrics.csv", newline="") as file:
        return [{key: int(value) if key == "epoch" else float(value) for key, value in row.items()}
                for row in csv.DictReader(file)]


def densenet40_fashion_sample(device="cpu"):
    """DenseNet-40 (k = 12, 1-channel stem, 1,019,434 parameters) trained by minidense for 10
    epochs on the embedded Fashion-MNIST sample; see its README.md for the command and accuracy."""
    return load_model("densenet40_fashion_sample", device)
