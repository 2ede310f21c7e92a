"""``python -m minidense evaluate CKPT``: test accuracy, per-class accuracy, confusion matrix.

CKPT is a run's ``best.npz`` or ``last.npz``, or a file of weights alone (a state dict) with a
``model.json`` beside it that names the architecture, as the shipped pretrained models have. A
user error or a fault of the machine is one line and exit status 2; Ctrl-C or SIGTERM stop with one
line (exit 130 or 143).
"""
import argparse
import json
from pathlib import Path

from . import metrics
from .checkpoints import model_from_checkpoint
from .data import DATASETS, DEFAULT_DATASET, DataLoader, get_dataset, standard_transform
from .errors import UsageError, file_access_errors, run_command, signals_held
from .run_folder import check_writable_folder, make_folder
from .run_settings import check_device_option
from .serialization import load
from .train import evaluate

PROGRAM = "python -m minidense evaluate"


def build_evaluate_parser():
    """The options of ``python -m minidense evaluate``."""
    parser = argparse.ArgumentParser(
        prog=PROGRAM,
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
    return run_command(PROGRAM, build_evaluate_parser(), run_evaluation, argv, "evaluation")


def run_evaluation(args):
    """Evaluate, print the accuracy and the per-class table, write the confusion matrix."""
    loader, model, classes, dataset_name, out_dir = prepare_evaluation(args)
    evaluation = evaluate(model, loader, num_classes=len(classes))
    matrix = evaluation["confusion"]
    print(f"{args.checkpoint} on {dataset_name} ({loader.num_samples} test images): "
          f"accuracy {100 * evaluation['accuracy']:.2f}%, error "
          f"{100 * (1 - evaluation['accuracy']):.2f}%, loss {evaluation['loss']:.4f}")
    print(metrics.format_class_table(classes, matrix))
    with signals_held(), file_access_errors(out_dir, "write"):    # Ctrl-C waits for both files
        metrics.write_confusion_csv(matrix, classes, out_dir / "confusion.csv")
        metrics.plot_confusion(matrix, classes, out_dir / "confusion.png",
                               title=f"{model.config['name']} on {dataset_name}: "
                                     f"{100 * evaluation['accuracy']:.2f}% accuracy")
    print(f"wrote {out_dir / 'confusion.png'} and {out_dir / 'confusion.csv'}")
    return 0


def prepare_evaluation(args):
    """Check the options, load the checkpoint and the data. Returns (loader, model, classes,
    dataset name, output folder); raises UserError for anything that cannot run."""
    if args.batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1, got {args.batch_size}")
    if args.limit is not None and args.limit < 1:
        raise UsageError(f"--limit must be at least 1 (or left out for all images), got "
                         f"{args.limit}")
    out_dir = Path(args.out) if args.out else Path(args.checkpoint).parent
    check_writable_folder(out_dir)
    checkpoint = with_files_beside(load(args.checkpoint), Path(args.checkpoint))
    saved = checkpoint.get("arguments")
    saved = saved if isinstance(saved, dict) else {}
    dataset_name = args.dataset or saved.get("dataset", DEFAULT_DATASET)
    if not isinstance(dataset_name, str) or dataset_name not in DATASETS:
        raise UsageError(f"{args.checkpoint} was trained on {dataset_name!r}, which is not a "
                         f"dataset here; pass --dataset, one of: {', '.join(DATASETS)}")
    device = check_device_option(args.device)
    model = model_from_checkpoint(checkpoint, args.checkpoint).to(device)
    train_set = get_dataset(dataset_name, train=True, root=args.data_root, download=args.download)
    test_set = get_dataset(dataset_name, train=False, root=args.data_root, download=args.download)
    check_model_fits(model, test_set)
    make_folder(out_dir)
    loader = DataLoader(test_set, batch_size=args.batch_size, device=device, limit=args.limit,
                        transform=standard_transform(train_set, augment=False))
    return loader, model, list(test_set.classes), dataset_name, out_dir


def with_files_beside(checkpoint, path):
    """A training checkpoint as it is; a file of weights alone (a state dict) as a checkpoint
    whose model config comes from ``model.json`` beside it and whose options, if any, from
    ``config.json`` (the layout of a shipped pretrained model)."""
    if not isinstance(checkpoint, dict) or "model_config" in checkpoint \
            or not (path.parent / "model.json").is_file():
        return checkpoint if isinstance(checkpoint, dict) else {}
    found = {"model": checkpoint, "model_config": read_json_beside(path.parent / "model.json")}
    if (path.parent / "config.json").is_file():
        found["arguments"] = read_json_beside(path.parent / "config.json")
    return found


def read_json_beside(path, max_bytes=1 << 20):
    """A small JSON object file (model.json, config.json); UsageError if it is anything else."""
    with file_access_errors(path), open(path, "rb") as file:
        text = file.read(max_bytes + 1)
    try:
        value = json.loads(text) if len(text) <= max_bytes else None
    except ValueError:      # also bad UTF-8
        value = None
    if not isinstance(value, dict):
        raise UsageError(f"{path} is not a JSON object of a few keys (a model's architecture or "
                         f"a run's options); restore it or remove it")
    return value


def check_model_fits(model, dataset):
    """Raise UsageError when the model's input channels or classes differ from the dataset's."""
    config = model.config or {}
    channels, classes = dataset.images.shape[1], len(dataset.classes)
    expected = (config.get("in_channels", 3), config.get("num_classes", 10))
    if expected != (channels, classes):
        raise UsageError(f"the model takes {expected[0]}-channel images and predicts "
                         f"{expected[1]} classes, but {dataset.name} has {channels}-channel "
                         f"images and {classes} classes; pass the --dataset it was trained on")
