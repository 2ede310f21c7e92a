"""A training run's settings: defaults, presets, checking them, and building what they describe.

``resolve_settings`` fills unset options (explicit flag, then the resumed run's saved options,
then the preset, then ``DEFAULTS``); ``check_settings`` refuses values that cannot train, naming the
flag; ``build_from_args`` turns settings into datasets, loaders, model, optimizer and schedule.
"""
import argparse
import math
from dataclasses import dataclass

from . import backend, optim
from . import random as md_random
from .data import DATASETS, DEFAULT_DATASET, DataLoader, get_dataset, standard_transform
from .errors import UsageError
from .models import MODELS, get_model

# The default run (``python -m minidense train`` with no arguments): a small DenseNet-BC on the
# embedded Fashion-MNIST sample that reaches about 85% test accuracy in a few CPU minutes.
# ``--preset paper`` replaces the optimisation recipe with the paper's; explicit flags win over
# both.
DEFAULTS = dict(
    model="densenet_cifar", depth=16, growth_rate=8, bottleneck=True, compression=0.5,
    drop_rate=0.0, memory_efficient=False,
    dataset=DEFAULT_DATASET, epochs=3, batch_size=16, limit_train=0, limit_test=0,
    optimizer="sgd", lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-4,
    schedule="cosine", augment=False, seed=0,
)
PRESETS = {
    "quick": {},
    # Section 4.2 of the paper: SGD with Nesterov momentum 0.9, weight decay 1e-4, batch 64,
    # 300 epochs, lr 0.1 divided by 10 at 50% and 75% of the epochs, crop-and-flip augmentation.
    "paper": dict(optimizer="sgd", lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4,
                  batch_size=64, epochs=300, schedule="multistep", augment=True),
}
OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("multistep", "cosine", "none")
CHOICES = {"model": MODELS, "dataset": DATASETS, "optimizer": OPTIMIZERS, "schedule": SCHEDULES}
ARCHITECTURE_OPTIONS = ("depth", "growth_rate", "bottleneck", "compression", "drop_rate")
RUN_CONTROL_OPTIONS = ("out", "resume", "preset", "device", "data_root", "download", "heatmap",
                       "quiet")
# What a resumed run cannot change: its weights would not fit, or would mean something else.
FIXED_ON_RESUME = ("model", "dataset") + ARCHITECTURE_OPTIONS

# option -> (test the value must pass, what the message says it must be)
RANGES = {
    "epochs": (lambda v: v >= 1, "at least 1"),
    "batch_size": (lambda v: v >= 1, "at least 1"),
    "limit_train": (lambda v: v >= 0, "0 (all images) or more"),
    "limit_test": (lambda v: v >= 0, "0 (all images) or more"),
    "lr": (lambda v: math.isfinite(v) and v > 0, "a finite number above 0"),
    "momentum": (lambda v: math.isfinite(v) and v >= 0, "a finite number, 0 or more"),
    "weight_decay": (lambda v: math.isfinite(v) and v >= 0, "a finite number, 0 or more"),
    "seed": (lambda v: v >= 0, "0 or more"),
    "depth": (lambda v: v >= 1, "at least 1"),
    "growth_rate": (lambda v: v >= 1, "at least 1"),
    "compression": (lambda v: 0 < v <= 1, "in (0, 1]"),
    "drop_rate": (lambda v: 0 <= v < 1, "in [0, 1)"),
}


def flag(name):
    """The command-line spelling of a setting: 'growth_rate' -> '--growth-rate'."""
    return "--" + name.replace("_", "-")


def resolve_settings(args, saved=None):
    """Fill unset options: explicit flags, then the resumed run's saved options (``saved``), then
    the preset, then ``DEFAULTS``. Architecture options apply only where the model takes them."""
    given = {k: v for k, v in vars(args).items() if v is not None}
    settings = dict(DEFAULTS)
    if saved:
        settings.update({k: v for k, v in saved.items() if k not in RUN_CONTROL_OPTIONS})
    else:
        settings.update(PRESETS[args.preset])
    settings.update(given)
    if settings["model"] != "densenet_cifar":
        for name in ARCHITECTURE_OPTIONS:
            settings[name] = given.get(name)
    settings["device"] = check_device_option(settings.get("device"))
    return settings


def check_device_option(device):
    """``backend.check_device`` whose refusal (no CuPy, say) is a UsageError naming --device."""
    try:
        return backend.check_device(device)
    except (RuntimeError, ValueError) as error:
        raise UsageError(f"--device {device}: {error}") from None


def check_settings(settings, source=None):
    """Raise UsageError naming the first option whose value cannot make a run: of the wrong type
    (an option saved in a checkpoint may have been edited) or out of range.

    ``source``: the checkpoint the settings were saved in, for the message; None for options
    given on the command line."""
    for name, default in DEFAULTS.items():
        value = settings.get(name)
        if value is None and (name in ARCHITECTURE_OPTIONS or name not in settings):
            continue
        kind = expected_kind(name, default)
        if not kind[0](value):
            refuse_setting(name, value, kind[1], source)
        valid, meaning = RANGES.get(name, (lambda v: True, ""))
        if not valid(value):
            refuse_setting(name, value, meaning, source)


def expected_kind(name, default):
    """(test, description) of the type a setting must have, judged by its default."""
    if name in CHOICES:
        names = sorted(CHOICES[name])
        return (lambda v: isinstance(v, str) and v in names), f"one of {', '.join(names)}"
    if isinstance(default, bool):
        return (lambda v: isinstance(v, bool)), "true or false"
    if isinstance(default, int):
        return (lambda v: isinstance(v, int) and not isinstance(v, bool)), "a whole number"
    return (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)), "a number"


def refuse_setting(name, value, meaning, source):
    if source is None:
        raise UsageError(f"{flag(name)} must be {meaning}, got {value}")
    shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
    raise UsageError(f"{source} holds the option {name}={shown}, which must be {meaning}; the "
                     f"file was edited or damaged: restore it, or start a new run with another "
                     f"--out")


def check_resume_options(given, saved):
    """Raise UsageError if an explicit option changes what the checkpoint's weights are."""
    for name in FIXED_ON_RESUME:
        if given.get(name) is not None and name in saved and given[name] != saved[name]:
            raise UsageError(f"the checkpoint is {name.replace('_', ' ')} {saved[name]}, you asked "
                             f"for {given[name]}: drop {flag(name)} or use a new --out")


@dataclass
class TrainingSetup:
    """Everything ``build_from_args`` makes for a run."""
    model: object
    train_loader: DataLoader
    test_loader: DataLoader
    optimizer: object
    scheduler: object
    classes: list


def build_model(settings, in_channels, num_classes):
    """The model named by ``settings['model']``, with the dataset's channels and classes."""
    kwargs = {name: settings[name] for name in ARCHITECTURE_OPTIONS
              if settings.get(name) is not None}
    if settings["model"].startswith("densenet") and settings.get("memory_efficient"):
        kwargs["memory_efficient"] = True
    try:
        return get_model(settings["model"], num_classes=num_classes, in_channels=in_channels,
                         **kwargs)
    except ValueError as error:         # the constructors check their arguments
        raise UsageError(str(error)) from None


def build_optimizer(settings, parameters):
    """SGD (PyTorch's rule, optional Nesterov), Adam or AdamW from the settings."""
    name, lr, decay = settings["optimizer"], settings["lr"], settings["weight_decay"]
    if name == "sgd":
        return optim.SGD(parameters, lr=lr, momentum=settings["momentum"],
                         nesterov=settings["nesterov"] and settings["momentum"] > 0,
                         weight_decay=decay)
    optimizer_class = {"adam": optim.Adam, "adamw": optim.AdamW}[name]
    return optimizer_class(parameters, lr=lr, weight_decay=decay)


def build_scheduler(settings, optimizer, done_epochs=0):
    """'multistep': lr / 10 at 50% and 75% of the epochs (the paper); 'cosine': a half cosine
    from lr to 0 over the epochs; 'none': a constant lr. Stepped once per epoch.

    ``done_epochs`` > 0 builds the schedule of a run that has already trained that many epochs
    (the optimizer must hold its ``initial_lr``): it sets the lr of the next epoch.
    """
    epochs, resume = settings["epochs"], dict(last_epoch=done_epochs - 1)
    if settings["schedule"] == "multistep":
        milestones = [max(1, epochs // 2), max(1, epochs * 3 // 4)]
        return optim.lr_scheduler.MultiStepLR(optimizer, milestones=milestones, gamma=0.1,
                                              **resume)
    if settings["schedule"] == "cosine":
        return optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs, **resume)
    return None


def build_from_args(args):
    """Datasets, loaders, model, optimizer and schedule from resolved options (a Namespace or
    dict with the keys of ``DEFAULTS`` plus ``device``, ``data_root``, ``download``).

    Checks the settings, then seeds the run's generator, so the same options build the same
    initial weights.
    """
    settings = vars(args) if isinstance(args, argparse.Namespace) else dict(args)
    check_settings(settings)
    md_random.manual_seed(settings["seed"])
    device = backend.check_device(settings.get("device"))
    train_set = get_dataset(settings["dataset"], train=True, root=settings.get("data_root"),
                            download=settings.get("download", False))
    test_set = get_dataset(settings["dataset"], train=False, root=settings.get("data_root"),
                           download=settings.get("download", False))
    loader_options = dict(batch_size=settings["batch_size"], device=device)
    train_loader = DataLoader(train_set, shuffle=True, limit=settings["limit_train"] or None,
                              transform=standard_transform(train_set, settings["augment"]),
                              **loader_options)
    test_loader = DataLoader(test_set, shuffle=False, limit=settings["limit_test"] or None,
                             transform=standard_transform(train_set, augment=False),
                             **loader_options)
    model = build_model(settings, train_set.images.shape[1], len(train_set.classes)).to(device)
    optimizer = build_optimizer(settings, model.parameters())
    scheduler = build_scheduler(settings, optimizer)
    return TrainingSetup(model, train_loader, test_loader, optimizer, scheduler,
                         list(train_set.classes))
