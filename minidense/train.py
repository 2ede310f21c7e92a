"""Training and evaluating a model: the loop behind ``python -m minidense train`` / ``evaluate``.

In a notebook::

    from minidense.train import fit, evaluate
    result = fit(model, train_loader, test_loader, optimizer, scheduler, epochs=5, out_dir="runs/x")
    result.history[-1]["test_acc"]

One epoch of ``fit``: a training step on every batch (forward, cross-entropy, backward, optimizer
step), one ``scheduler.step()``, a pass over the test set, then the run folder is brought up to
date. What a run folder holds:

    config.json     the run's arguments          metrics.csv / metrics.jsonl   one row per epoch
    curves.png      loss and error per epoch     last.npz / best.npz           checkpoints
    results.json    final accuracy and timings   figure5.png / figure5.csv     feature reuse

Every file is replaced atomically (see ``minidense.metrics``), so Ctrl-C or a crash never leaves a
half-written file, and ``--resume`` continues from ``last.npz`` with exactly the numbers an
uninterrupted run would have produced (the checkpoint holds the random generator's state too).
"""
import argparse
import json
import math
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy

from . import backend, metrics, optim
from . import random as md_random
from .autograd import no_grad
from .data import DATASETS, DEFAULT_DATASET, DataLoader, get_dataset, standard_transform
from .models import MODELS, get_model
from .nn import functional as F
from .serialization import load, save

METRIC_COLUMNS = ["epoch", "lr", "train_loss", "train_acc", "test_loss", "test_acc", "test_error",
                  "seconds", "images_per_s"]

# The default run (``python -m minidense train`` with no arguments): a small DenseNet-BC on the
# embedded Fashion-MNIST sample that reaches >= 85% test accuracy in a few CPU minutes.
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
ARCHITECTURE_OPTIONS = ("depth", "growth_rate", "bottleneck", "compression", "drop_rate")
RUN_CONTROL_OPTIONS = ("out", "resume", "preset", "device", "data_root", "download", "heatmap",
                       "quiet")


class UsageError(Exception):
    """A problem with the command line or the run folder; printed without a traceback (exit 2)."""


# ----------------------------------------------------------------------------------------------
# One step, one pass over the test set
# ----------------------------------------------------------------------------------------------
def count_correct(logits, labels):
    """How many rows of ``logits`` have their largest value at the label's position."""
    return int((logits.data.argmax(axis=1) == labels.data).sum())


def train_step(model, images, labels, optimizer):
    """Forward, loss, backward and one optimizer step on a batch. Returns (loss, correct)."""
    logits = model(images)
    loss = F.cross_entropy(logits, labels)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item(), count_correct(logits, labels)


def evaluate(model, loader, num_classes=None):
    """Loss, accuracy and confusion matrix of ``model`` on every batch of ``loader``.

    The model runs in eval mode (batch norm uses its running statistics, no dropout) and without
    recording a graph; its previous mode is restored afterwards.
    """
    was_training = model.training
    model.eval()
    num_classes = num_classes or len(loader.dataset.classes)
    total_loss, targets, predictions = 0.0, [], []
    try:
        with no_grad():
            for images, labels in loader:
                logits = model(images)
                total_loss += F.cross_entropy(logits, labels).item() * len(labels.data)
                predictions.append(backend.to_numpy(logits.data.argmax(axis=1)))
                targets.append(backend.to_numpy(labels.data))
    finally:
        model.train(was_training)
    targets, predictions = numpy.concatenate(targets), numpy.concatenate(predictions)
    confusion = metrics.confusion_matrix(targets, predictions, num_classes)
    accuracy = float(numpy.mean(targets == predictions))
    return {"loss": total_loss / len(targets), "accuracy": accuracy, "confusion": confusion}


# ----------------------------------------------------------------------------------------------
# The loop
# ----------------------------------------------------------------------------------------------
@dataclass
class FitResult:
    """What ``fit`` returns: the per-epoch rows, the best test accuracy, the last evaluation."""
    history: list = field(default_factory=list)
    best_accuracy: float = 0.0
    last_evaluation: dict = None
    interrupted: bool = False


def current_lr(optimizer):
    return float(optimizer.param_groups[0]["lr"])


def make_checkpoint(model, optimizer, scheduler, epoch, best_accuracy, history, arguments=None):
    """Everything needed to continue a run or rebuild its model, as md.save-able values."""
    return {
        "model": model.state_dict(),
        "model_config": dict(model.config or {}),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "rng": md_random.get_state(),
        "epoch": epoch,
        "best_accuracy": best_accuracy,
        "history": history,
        "arguments": arguments or {},
    }


def restore_checkpoint(checkpoint, model, optimizer, scheduler):
    """Load a checkpoint's weights, optimizer/scheduler state and random state; return it as a
    FitResult so ``fit`` can continue (start at ``checkpoint['epoch']``)."""
    model.load_state_dict(checkpoint["model"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    if scheduler is not None and checkpoint.get("scheduler") is not None:
        scheduler.load_state_dict(checkpoint["scheduler"])
    md_random.set_state(checkpoint["rng"])
    return FitResult(history=list(checkpoint["history"]),
                     best_accuracy=float(checkpoint["best_accuracy"]))


def write_history(out_dir, history):
    """metrics.csv, metrics.jsonl and curves.png from the per-epoch rows (rewritten each epoch)."""
    metrics.write_csv(out_dir / "metrics.csv", history, METRIC_COLUMNS)
    metrics.write_jsonl(out_dir / "metrics.jsonl", history)
    metrics.plot_curves(history, out_dir / "curves.png")


def train_one_epoch(model, loader, optimizer, progress):
    """One pass over ``loader`` with a training step per batch. Returns (mean loss, accuracy,
    images per second)."""
    model.train()
    total_loss, correct, seen = 0.0, 0, 0
    start = time.perf_counter()
    for images, labels in loader:
        loss, batch_correct = train_step(model, images, labels, optimizer)
        count = len(labels.data)
        total_loss, correct, seen = total_loss + loss * count, correct + batch_correct, seen + count
        progress.update(1)
        progress.set_postfix({"loss": f"{total_loss / seen:.4f}", "acc": f"{correct / seen:.3f}",
                              "lr": f"{current_lr(optimizer):.4g}",
                              "img/s": f"{seen / (time.perf_counter() - start):.0f}"},
                             refresh=False)
    return total_loss / seen, correct / seen, seen / (time.perf_counter() - start)


def fit(model, train_loader, test_loader, optimizer, scheduler=None, epochs=1, out_dir=None, *,
        resume_from=None, arguments=None, quiet=False):
    """Train ``model`` for ``epochs`` epochs (in total, counting epochs already done).

    out_dir      folder for metrics, curves and checkpoints (None: keep everything in memory).
    resume_from  a checkpoint dict (``md.load('run/last.npz')``) to continue from, or the
                 FitResult that ``restore_checkpoint`` returned for it.
    arguments    plain values stored in the checkpoints (the CLI stores its options).

    Ctrl-C stops after tidying up: the last finished epoch's checkpoint stays intact and the result
    has ``interrupted=True``. Returns a ``FitResult``.
    """
    from tqdm.auto import tqdm

    out_dir = Path(out_dir) if out_dir is not None else None
    result = resume_from if isinstance(resume_from, FitResult) else FitResult()
    if isinstance(resume_from, dict):
        result = restore_checkpoint(resume_from, model, optimizer, scheduler)
    finished = len(result.history)
    say = (lambda text: None) if quiet else tqdm.write
    on_gpu = any(p.device == "cuda" for p in model.parameters())
    try:
        for epoch in range(finished + 1, epochs + 1):
            epoch_start, lr = time.perf_counter(), current_lr(optimizer)
            if on_gpu:   # dropout masks on the GPU: a generator that a resumed run can rebuild
                md_random.reseed_device_generator(backend.array_module("cuda"), epoch)
            with tqdm(total=len(train_loader), desc=f"epoch {epoch}/{epochs}", unit="batch",
                      disable=quiet, leave=False, dynamic_ncols=True) as progress:
                train_loss, train_acc, images_per_s = train_one_epoch(model, train_loader,
                                                                      optimizer, progress)
            if scheduler is not None:
                scheduler.step()
            result.last_evaluation = evaluate(model, test_loader)
            test_acc = result.last_evaluation["accuracy"]
            result.history.append({
                "epoch": epoch, "lr": lr, "train_loss": train_loss, "train_acc": train_acc,
                "test_loss": result.last_evaluation["loss"], "test_acc": test_acc,
                "test_error": 1.0 - test_acc, "seconds": time.perf_counter() - epoch_start,
                "images_per_s": images_per_s})
            improved = test_acc > result.best_accuracy
            result.best_accuracy = max(result.best_accuracy, test_acc)
            if out_dir is not None:
                checkpoint = make_checkpoint(model, optimizer, scheduler, epoch,
                                             result.best_accuracy, result.history, arguments)
                save(checkpoint, out_dir / "last.npz")
                if improved:
                    save(checkpoint, out_dir / "best.npz")
                write_history(out_dir, result.history)
            finished = epoch
            say(f"epoch {epoch}/{epochs}  lr {lr:.4g}  train loss {train_loss:.4f} "
                f"acc {100 * train_acc:.2f}%  test loss {result.last_evaluation['loss']:.4f} "
                f"acc {100 * test_acc:.2f}%  ({result.history[-1]['seconds']:.1f} s, "
                f"{images_per_s:.0f} img/s)")
    except KeyboardInterrupt:
        result.interrupted = True
        where = f"; {out_dir / 'last.npz'} holds it" if out_dir is not None and finished else ""
        print(f"\ninterrupted: {finished} of {epochs} epochs finished{where}", file=sys.stderr)
    return result


# ----------------------------------------------------------------------------------------------
# From command-line options to a model, loaders, optimizer and schedule
# ----------------------------------------------------------------------------------------------
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
    return get_model(settings["model"], num_classes=num_classes, in_channels=in_channels, **kwargs)


def build_optimizer(settings, parameters):
    """SGD (PyTorch's rule, optional Nesterov), Adam or AdamW from the settings."""
    name, lr, decay = settings["optimizer"], settings["lr"], settings["weight_decay"]
    if name == "sgd":
        return optim.SGD(parameters, lr=lr, momentum=settings["momentum"],
                         nesterov=settings["nesterov"] and settings["momentum"] > 0,
                         weight_decay=decay)
    optimizer_class = {"adam": optim.Adam, "adamw": optim.AdamW}[name]
    return optimizer_class(parameters, lr=lr, weight_decay=decay)


def build_scheduler(settings, optimizer):
    """'multistep': lr / 10 at 50% and 75% of the epochs (the paper); 'cosine': a half cosine
    from lr to 0 over the epochs; 'none': a constant lr. Stepped once per epoch."""
    epochs = settings["epochs"]
    if settings["schedule"] == "multistep":
        milestones = [max(1, epochs // 2), max(1, epochs * 3 // 4)]
        return optim.lr_scheduler.MultiStepLR(optimizer, milestones=milestones, gamma=0.1)
    if settings["schedule"] == "cosine":
        return optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    return None


def build_from_args(args):
    """Datasets, loaders, model, optimizer and schedule from resolved options (a Namespace or
    dict with the keys of ``DEFAULTS`` plus ``device``, ``data_root``, ``download``).

    Seeds the run's generator first, so the same options build the same initial weights.
    """
    settings = vars(args) if isinstance(args, argparse.Namespace) else dict(args)
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


# ----------------------------------------------------------------------------------------------
# python -m minidense train
# ----------------------------------------------------------------------------------------------
def build_train_parser():
    parser = argparse.ArgumentParser(
        prog="python -m minidense train",
        description=("Train a model and write metrics, learning curves, checkpoints and the "
                     "Figure 5 heatmap into a run folder. With no options: a small DenseNet-BC "
                     "on the embedded Fashion-MNIST sample, a few minutes on a CPU."),
        epilog=(f"defaults: {json.dumps(DEFAULTS)}. --preset paper: the paper's recipe "
                f"{json.dumps(PRESETS['paper'])}. Explicit options override a preset; with "
                f"--resume they override the run's saved options."))
    model = parser.add_argument_group("model")
    model.add_argument("--model", choices=sorted(MODELS), metavar="NAME",
                       help=f"one of: {', '.join(sorted(MODELS))} (default: densenet_cifar)")
    model.add_argument("--depth", type=int, help="densenet_cifar depth (3n+4, or 6n+4 with "
                       "bottlenecks); for presets it overrides theirs")
    model.add_argument("--growth-rate", type=int, help="k, new feature maps per dense layer")
    model.add_argument("--bottleneck", action=argparse.BooleanOptionalAction,
                       help="1x1 bottleneck convolutions (DenseNet-B)")
    model.add_argument("--compression", type=float, help="theta, transition compression (0.5: -C)")
    model.add_argument("--drop-rate", type=float, help="dropout after each conv (paper: 0.2 "
                       "without augmentation)")
    model.add_argument("--memory-efficient", action="store_true", default=None,
                       help="shared concatenation storage and recomputed BN (Pleiss et al. 2017)")
    data = parser.add_argument_group("data")
    data.add_argument("--dataset", choices=list(DATASETS), metavar="NAME",
                      help=f"one of: {', '.join(DATASETS)} (default: {DEFAULT_DATASET})")
    data.add_argument("--data-root", help="where datasets are stored (default: $MINIDENSE_DATA "
                      "or ~/.minidense/data)")
    data.add_argument("--download", action="store_true", help="download a missing dataset")
    data.add_argument("--augment", action=argparse.BooleanOptionalAction,
                      help="random crop (padding 4) and horizontal flip")
    data.add_argument("--limit-train", type=int, metavar="N",
                      help="use the first N training images")
    data.add_argument("--limit-test", type=int, metavar="N", help="use the first N test images")
    recipe = parser.add_argument_group("optimisation")
    recipe.add_argument("--preset", choices=sorted(PRESETS), default="quick",
                        help="'quick' (default) or 'paper' (SGD Nesterov, wd 1e-4, lr 0.1 /10 at "
                             "50%% and 75%%, batch 64, 300 epochs, augmentation)")
    recipe.add_argument("--epochs", type=int)
    recipe.add_argument("--batch-size", type=int)
    recipe.add_argument("--optimizer", choices=["sgd", "adam", "adamw"])
    recipe.add_argument("--lr", type=float, help="initial learning rate")
    recipe.add_argument("--momentum", type=float, help="SGD momentum")
    recipe.add_argument("--nesterov", action=argparse.BooleanOptionalAction,
                        help="Nesterov momentum (SGD)")
    recipe.add_argument("--weight-decay", type=float)
    recipe.add_argument("--schedule", choices=["multistep", "cosine", "none"],
                        help="multistep: lr/10 at 50%% and 75%% of the epochs (paper)")
    recipe.add_argument("--seed", type=int, help="seeds weights, shuffling and augmentation")
    run = parser.add_argument_group("run")
    run.add_argument("--device", choices=["cpu", "cuda"], default=None,
                     help="default: cpu (or $MINIDENSE_DEVICE)")
    run.add_argument("--out", metavar="DIR", help="run folder (default: runs/MODEL-DATASET-TIME)")
    run.add_argument("--resume", action="store_true", help="continue the run in --out DIR from "
                     "its last.npz")
    run.add_argument("--no-heatmap", dest="heatmap", action="store_false",
                     help="skip the Figure 5 heatmap at the end")
    run.add_argument("--quiet", action="store_true", help="no progress bars or epoch lines")
    return parser


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
    settings["device"] = backend.check_device(settings.get("device"))
    return settings


def default_out_dir(settings):
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{settings['model']}-{settings['dataset']}-{stamp}"


def prepare_run(args):
    """Resolve options and the run folder; load ``last.npz`` when resuming. Returns
    (settings, out_dir, checkpoint or None)."""
    checkpoint = None
    if args.resume:
        if args.out is None:
            raise UsageError("--resume needs --out DIR, the run folder to continue")
        last = Path(args.out) / "last.npz"
        if not last.is_file():
            raise UsageError(f"nothing to resume: {last} does not exist")
        checkpoint = load(last)
    settings = resolve_settings(args, checkpoint["arguments"] if checkpoint else None)
    out_dir = Path(settings["out"]) if settings.get("out") else default_out_dir(settings)
    if not args.resume and (out_dir / "last.npz").exists():
        raise UsageError(f"{out_dir} already holds a run (last.npz): add --resume to continue it, "
                         f"or choose another --out")
    settings["out"] = str(out_dir)
    return settings, out_dir, checkpoint


def describe(setup, settings, out_dir):
    parameters = setup.model.num_parameters()
    config = ", ".join(f"{k}={v}" for k, v in setup.model.config.items() if k != "name")
    return (f"{setup.model.config['name']}({config}): {parameters:,} parameters\n"
            f"{settings['dataset']}: {setup.train_loader.num_samples} train / "
            f"{setup.test_loader.num_samples} test images, batch {settings['batch_size']}, "
            f"{settings['epochs']} epochs, {settings['optimizer']} lr {settings['lr']} "
            f"({settings['schedule']}), augment={settings['augment']}, "
            f"device {settings['device']}\n"
            f"run folder: {out_dir}")


def write_results(out_dir, setup, settings, result, evaluation):
    """results.json: final accuracy and error, per-class accuracy, timings, size."""
    history = result.history
    per_class = metrics.per_class_accuracy(evaluation["confusion"])
    results = {
        "model": setup.model.config, "dataset": settings["dataset"],
        "test_accuracy": evaluation["accuracy"], "test_error": 1.0 - evaluation["accuracy"],
        "test_loss": evaluation["loss"], "best_test_accuracy": result.best_accuracy,
        "per_class_accuracy": {name: (None if math.isnan(a) else float(a))
                               for name, a in zip(setup.classes, per_class)},
        "epochs": len(history),
        "wall_time_s": sum(row["seconds"] for row in history),
        "images_per_s": (float(numpy.mean([row["images_per_s"] for row in history]))
                         if history else None),
        "parameters": setup.model.num_parameters(),
    }
    metrics.write_json(out_dir / "results.json", results)
    return results


def is_densenet(model):
    from .models import DenseNet
    return isinstance(model, DenseNet)


def train_main(argv=None):
    """``python -m minidense train [options]``; returns the exit code (0, 2 usage, 130 Ctrl-C)."""
    try:
        args = build_train_parser().parse_args(argv)
    except SystemExit as exit_request:          # --help, or argparse already printed the error
        return exit_request.code
    try:
        settings, out_dir, checkpoint = prepare_run(args)
        setup = build_from_args(settings)
        previous = None
        if checkpoint is not None:      # another architecture: the error names mismatched keys
            previous = restore_checkpoint(checkpoint, setup.model, setup.optimizer,
                                          setup.scheduler)
    except (UsageError, ValueError, TypeError, RuntimeError, FileNotFoundError, KeyError) as error:
        print(f"python -m minidense train: error: {error}", file=sys.stderr)
        return 2
    out_dir.mkdir(parents=True, exist_ok=True)
    metrics.write_json(out_dir / "config.json", settings)
    if not args.quiet:
        print(describe(setup, settings, out_dir))

    try:
        return finish_run(setup, settings, out_dir, previous, args)
    except KeyboardInterrupt:
        print(f"\ninterrupted; resume with: python -m minidense train --out {out_dir} --resume",
              file=sys.stderr)
        return 130


def finish_run(setup, settings, out_dir, previous, args):
    """Train (or continue), then write results.json and the Figure 5 heatmap."""
    result = fit(setup.model, setup.train_loader, setup.test_loader, setup.optimizer,
                 setup.scheduler, settings["epochs"], out_dir, resume_from=previous,
                 arguments=settings, quiet=args.quiet)
    if result.interrupted:
        print(f"resume with: python -m minidense train --out {out_dir} --resume", file=sys.stderr)
        return 130
    evaluation = result.last_evaluation or evaluate(setup.model, setup.test_loader)
    write_results(out_dir, setup, settings, result, evaluation)
    print(f"test accuracy {100 * evaluation['accuracy']:.2f}%  "
          f"error {100 * (1 - evaluation['accuracy']):.2f}%  "
          f"(best {100 * result.best_accuracy:.2f}%)  -> {out_dir}")
    if args.heatmap and is_densenet(setup.model):
        from .analysis.cli import write_feature_reuse
        png, _ = write_feature_reuse(setup.model, out_dir)
        print(f"Figure 5 feature-reuse heatmap: {png}")
    return 0


# ----------------------------------------------------------------------------------------------
# python -m minidense evaluate
# ----------------------------------------------------------------------------------------------
def model_from_checkpoint(checkpoint):
    """Rebuild a checkpoint's model from its stored config and load its weights."""
    config = dict(checkpoint.get("model_config") or {})
    if "name" not in config:
        raise UsageError("the checkpoint has no model config (was it written by "
                         "`python -m minidense train`?); build the model yourself and use "
                         "model.load_state_dict(md.load(path))")
    model = get_model(config.pop("name"), **config)
    model.load_state_dict(checkpoint["model"])
    return model


def build_evaluate_parser():
    parser = argparse.ArgumentParser(
        prog="python -m minidense evaluate",
        description="Test accuracy, per-class accuracy and confusion matrix of a checkpoint.")
    parser.add_argument("checkpoint", metavar="CKPT", help="a run's best.npz or last.npz")
    parser.add_argument("--dataset", choices=list(DATASETS), metavar="NAME",
                        help=f"one of: {', '.join(DATASETS)} (default: the one it was trained on)")
    parser.add_argument("--data-root", help="where datasets are stored")
    parser.add_argument("--download", action="store_true", help="download a missing dataset")
    parser.add_argument("--device", choices=["cpu", "cuda"], default=None)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--limit", type=int, metavar="N", help="use the first N test images")
    parser.add_argument("--out", metavar="DIR", help="where confusion.png and confusion.csv go "
                        "(default: the checkpoint's folder)")
    return parser


def evaluate_main(argv=None):
    """``python -m minidense evaluate CKPT [--dataset NAME] [--device] [--out DIR]``."""
    try:
        args = build_evaluate_parser().parse_args(argv)
    except SystemExit as exit_request:
        return exit_request.code
    try:
        checkpoint = load(args.checkpoint)
        saved = checkpoint.get("arguments") or {}
        dataset_name = args.dataset or saved.get("dataset", DEFAULT_DATASET)
        device = backend.check_device(args.device)
        model = model_from_checkpoint(checkpoint).to(device)
        train_set = get_dataset(dataset_name, train=True, root=args.data_root,
                                download=args.download)
        test_set = get_dataset(dataset_name, train=False, root=args.data_root,
                               download=args.download)
        check_model_fits(model, test_set)
    except (UsageError, ValueError, RuntimeError, FileNotFoundError, KeyError) as error:
        print(f"python -m minidense evaluate: error: {error}", file=sys.stderr)
        return 2
    loader = DataLoader(test_set, batch_size=args.batch_size, device=device, limit=args.limit,
                        transform=standard_transform(train_set, augment=False))
    evaluation = evaluate(model, loader, num_classes=len(test_set.classes))
    matrix, classes = evaluation["confusion"], list(test_set.classes)
    print(f"{args.checkpoint} on {dataset_name} ({loader.num_samples} test images): "
          f"accuracy {100 * evaluation['accuracy']:.2f}%, error "
          f"{100 * (1 - evaluation['accuracy']):.2f}%, loss {evaluation['loss']:.4f}")
    print(metrics.format_class_table(classes, matrix))
    out_dir = Path(args.out) if args.out else Path(args.checkpoint).parent
    metrics.write_confusion_csv(matrix, classes, out_dir / "confusion.csv")
    metrics.plot_confusion(matrix, classes, out_dir / "confusion.png",
                           title=f"{model.config['name']} on {dataset_name}: "
                                 f"{100 * evaluation['accuracy']:.2f}% accuracy")
    print(f"wrote {out_dir / 'confusion.png'} and {out_dir / 'confusion.csv'}")
    return 0


def check_model_fits(model, dataset):
    """Raise UsageError when the model's input channels or classes differ from the dataset's."""
    config = model.config or {}
    channels, classes = dataset.images.shape[1], len(dataset.classes)
    expected = (config.get("in_channels", 3), config.get("num_classes", 10))
    if expected != (channels, classes):
        raise UsageError(f"the model takes {expected[0]}-channel images and predicts "
                         f"{expected[1]} classes, but {dataset.name} has {channels}-channel "
                         f"images and {classes} classes; pass the --dataset it was trained on")
