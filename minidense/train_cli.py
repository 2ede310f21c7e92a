"""``python -m minidense train``: options, run folder, then the loop of ``minidense.train``.

A user error (a bad option, a damaged dataset, a checkpoint that does not fit) or a fault of the
machine (disk full, read-only file system, a run folder deleted or used by another run) is printed
as one line and exits with status 2; Ctrl-C (exit 130) and SIGTERM (exit 143) stop after the last
finished epoch's checkpoint is safe and print the command that resumes; anything else is a bug
and keeps its traceback.
"""
import argparse
import json
import sys
from pathlib import Path

from .data import DATASETS, DEFAULT_DATASET
from .errors import StopSignals, UsageError, UserError, report_user_error, signals_held
from .models import MODELS
from .checkpoints import read_training_checkpoint, weights_bound_the_model
from .metrics import write_json
from .run_folder import (RunFolderError, RunLock, check_writable_folder, default_out_dir,
                         describe, make_folder, storage_faults, write_results)
from .run_settings import (DEFAULTS, OPTIMIZERS, PRESETS, SCHEDULES, build_from_args,
                           build_scheduler, check_resume_options, check_settings,
                           resolve_settings)
from .train import evaluate, fit, restore_checkpoint

PROGRAM = "python -m minidense train"


def build_train_parser():
    """The options of ``python -m minidense train``."""
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
    recipe.add_argument("--epochs", type=int, help="epochs in total; with --resume, more than "
                        "the run planned extends it (its schedule is rebuilt for the new length)")
    recipe.add_argument("--batch-size", type=int)
    recipe.add_argument("--optimizer", choices=OPTIMIZERS)
    recipe.add_argument("--lr", type=float, help="initial learning rate")
    recipe.add_argument("--momentum", type=float, help="SGD momentum")
    recipe.add_argument("--nesterov", action=argparse.BooleanOptionalAction,
                        help="Nesterov momentum (SGD)")
    recipe.add_argument("--weight-decay", type=float)
    recipe.add_argument("--schedule", choices=SCHEDULES,
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


def prepare_run(args):
    """Resolve options and the run folder; load ``last.npz`` when resuming. Returns
    (settings, out_dir, checkpoint or None). Raises UsageError for anything that cannot run."""
    checkpoint = None
    if args.out is not None:
        RunLock(args.out).check_free()      # another run trains there: say so first
    if args.resume:
        if args.out is None:
            raise UsageError("--resume needs --out DIR, the run folder to continue")
        last = Path(args.out) / "last.npz"
        if not last.is_file():
            raise UsageError(f"nothing to resume: {last} does not exist")
        checkpoint = read_training_checkpoint(last)
        check_resume_options(vars(args), checkpoint["arguments"])
    settings = resolve_settings(args, checkpoint["arguments"] if checkpoint else None)
    check_settings(settings)
    out_dir = Path(settings["out"]) if settings.get("out") else default_out_dir(settings)
    check_writable_folder(out_dir)
    if not args.resume:
        check_no_run_yet(out_dir)
    settings["out"] = str(out_dir)
    return settings, out_dir, checkpoint


def check_no_run_yet(out_dir):
    """Raise UsageError if ``out_dir`` already holds a run that a new one would overwrite."""
    if (out_dir / "last.npz").exists():
        raise UsageError(f"{out_dir} already holds a run (last.npz): add --resume to continue it, "
                         f"or choose another --out")


def continue_run(setup, settings, checkpoint, say):
    """Restore a checkpoint into the freshly built setup. A run extended to more epochs gets its
    schedule rebuilt for the new length (``say`` tells how); fewer epochs than done is an error."""
    previous = restore_checkpoint(checkpoint, setup.model, setup.optimizer, setup.scheduler,
                                  Path(settings["out"]) / "last.npz")
    done, planned, epochs = len(previous.history), checkpoint["arguments"].get("epochs"), \
        settings["epochs"]
    if epochs < done:
        raise UsageError(f"the run in {settings['out']} has already trained {done} epochs; pass "
                         f"--epochs {done + 1} or more to extend it")
    if planned != epochs and setup.scheduler is not None:
        setup.scheduler = build_scheduler(settings, setup.optimizer, done_epochs=done)
        say(f"the run planned {planned} epochs and now has {epochs}: its {settings['schedule']} "
            f"schedule is rebuilt for {epochs} epochs (epoch {done + 1} starts at lr "
            f"{setup.optimizer.param_groups[0]['lr']:.4g})")
    return previous


def train_main(argv=None):
    """``python -m minidense train [options]``; returns the exit code (0; 2 for a user error or a
    fault of the machine; 130 after Ctrl-C, 143 after SIGTERM)."""
    try:
        args = build_train_parser().parse_args(argv)
    except SystemExit as exit_request:          # --help, or argparse already printed the error
        return exit_request.code
    out_dir = None
    with StopSignals() as stop:
        try:
            settings, out_dir, checkpoint = prepare_run(args)
            return start_run(args, settings, out_dir, checkpoint)
        except RunFolderError as error:
            return report_user_error(PROGRAM, f"{error}{how_to_go_on(error, out_dir)}")
        except UserError as error:
            return report_user_error(PROGRAM, error)
        except KeyboardInterrupt:
            resumable = out_dir is not None and (out_dir / "last.npz").is_file()
            hint = f"; resume with: {resume_command(out_dir)}" if resumable else ""
            print(f"\n{stop.name}: stopped{hint}", file=sys.stderr)
            return stop.exit_status


def resume_command(out_dir):
    return f"{PROGRAM} --out {out_dir} --resume"


def how_to_go_on(error, out_dir):
    """What follows a RunFolderError's message: the command that resumes, where there is one."""
    if not error.resumable:
        return ""
    return (f", then resume with: {resume_command(out_dir)}" if error.epoch
            else ", then start the run again")


def start_run(args, settings, out_dir, checkpoint):
    """Build the run, take the run folder's lock, write config.json, train; returns the exit
    code. Nothing is written before the options, data and checkpoint have been checked."""
    if checkpoint is None:
        setup = build_from_args(settings)
    else:                  # the checkpoint's options describe the model: its weights bound it
        with weights_bound_the_model(checkpoint, Path(settings["out"]) / "last.npz"):
            setup = build_from_args(settings)
    previous = None
    if checkpoint is not None:
        previous = continue_run(setup, settings, checkpoint,
                                say=lambda text: print(text, file=sys.stderr))
    make_folder(out_dir)
    with RunLock(out_dir):
        if checkpoint is None:
            check_no_run_yet(out_dir)       # another run may have started meanwhile
        with storage_faults(out_dir, len(previous.history) if previous else 0):
            write_json(out_dir / "config.json", settings)
        if not args.quiet:
            print(describe(setup, settings, out_dir))
        return finish_run(setup, settings, out_dir, previous, args)


def finish_run(setup, settings, out_dir, previous, args):
    """Train (or continue), then write results.json and the Figure 5 heatmap."""
    result = fit(setup.model, setup.train_loader, setup.test_loader, setup.optimizer,
                 setup.scheduler, settings["epochs"], out_dir, resume_from=previous,
                 arguments=settings, quiet=args.quiet)
    if result.interrupted:
        raise KeyboardInterrupt         # fit has said how far it got; train_main says the rest
    evaluation = result.last_evaluation or evaluate(setup.model, setup.test_loader)
    with signals_held(), storage_faults(out_dir, len(result.history)):
        write_results(out_dir, setup, settings, result, evaluation)
    print(f"test accuracy {100 * evaluation['accuracy']:.2f}%  "
          f"error {100 * (1 - evaluation['accuracy']):.2f}%  "
          f"(best {100 * result.best_accuracy:.2f}%)  -> {out_dir}")
    if args.heatmap and is_densenet(setup.model):
        from .analysis.cli import write_feature_reuse
        with signals_held(), storage_faults(out_dir, len(result.history)):
            png, _ = write_feature_reuse(setup.model, out_dir)
        print(f"Figure 5 feature-reuse heatmap: {png}")
    return 0


def is_densenet(model):
    from .models import DenseNet
    return isinstance(model, DenseNet)
