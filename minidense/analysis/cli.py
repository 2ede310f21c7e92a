"""`python -m minidense heatmap`: Figure 5 (feature reuse) of a saved DenseNet, as PNG and CSV.

A checkpoint that is not a DenseNet's, an --out that cannot be written and a fault of the machine
are one line and exit status 2; Ctrl-C or SIGTERM one line and exit 130 or 143.
"""
import argparse
from pathlib import Path

from ..errors import UsageError, file_access_errors, run_command, signals_held
from ..run_folder import check_writable_folder, make_folder
from .feature_reuse import feature_reuse, paper_figure5, reuse_observations, write_feature_reuse_csv
from .plot import close_figure, plot_compare_paper, plot_feature_reuse

__all__ = ["heatmap_main", "write_feature_reuse", "build_parser"]


def write_feature_reuse(model_or_state, out_dir, rescale=True):
    """Write figure5.png and figure5.csv for a model (or state dict) into out_dir.

    Returns (png_path, csv_path). Used at the end of a training run.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    matrices = feature_reuse(model_or_state)
    csv_path = write_feature_reuse_csv(matrices, out_dir / "figure5.csv")
    png_path = out_dir / "figure5.png"
    close_figure(plot_feature_reuse(matrices, png_path, rescale=rescale, show=False))
    return png_path, csv_path


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m minidense heatmap",
        description=("Draw the feature-reuse heatmap (Huang et al., CVPR 2017, Figure 5) of a "
                     "saved DenseNet and write its values as CSV."))
    parser.add_argument("checkpoint", metavar="CKPT",
                        help="a checkpoint saved by training (its 'model' entry is used) or a "
                             "state-dict file written with minidense.save")
    parser.add_argument("--out", default="figure5.png",
                        help="PNG to write; the CSV goes next to it as <stem>.csv "
                             "(default: figure5.png)")
    parser.add_argument("--raw", action="store_true",
                        help="colour raw mean |W| instead of rescaling each column to [0, 1]")
    parser.add_argument("--compare-paper", action="store_true",
                        help="also draw the paper's figure above the model (<stem>_vs_paper.png) "
                             "and print the paper's four observations for both")
    return parser


PROGRAM = "python -m minidense heatmap"


def _load_checkpoint(path):
    import minidense
    if not hasattr(minidense, "load"):
        raise RuntimeError("minidense.load is not available in this installation.")
    return minidense.load(path)


def densenet_matrices(checkpoint, path):
    """feature_reuse of a loaded checkpoint; UsageError when it is not a DenseNet's."""
    config = checkpoint.get("model_config") if isinstance(checkpoint, dict) else None
    name = config.get("name") if isinstance(config, dict) else None
    if isinstance(name, str) and not name.startswith("densenet"):
        raise UsageError(f"{path} holds a {name}; the feature-reuse heatmap (Figure 5) needs a "
                         f"DenseNet, whose dense blocks it draws")
    try:
        return feature_reuse(checkpoint)
    except (ValueError, TypeError) as error:    # its checks of the state dict's layout
        raise UsageError(f"{path}: {error} The heatmap needs a DenseNet checkpoint.") from None


def check_png_path(out):
    """--out must name a file in a folder that can be written (created if missing)."""
    if out.is_dir():
        raise UsageError(f"--out {out} is a folder; give the file to write, e.g. "
                         f"--out {out / 'figure5.png'}")
    check_writable_folder(out.parent, value=out)


def _print_observations(model_matrices):
    """Print each observation's verdict and evidence, for the model and for the paper."""
    paper = reuse_observations(paper_figure5())
    for mine, theirs in zip(reuse_observations(model_matrices), paper):
        print(f"({mine['id']}) {mine['statement']}")
        print(f"    model: {'holds' if mine['holds'] else 'does not hold'}. {mine['evidence']}")
        print(f"    paper: {'holds' if theirs['holds'] else 'does not hold'}. {theirs['evidence']}")


def heatmap_main(argv=None):
    """Entry point of `python -m minidense heatmap CKPT --out fig5.png [--raw] [--compare-paper]`."""
    return run_command(PROGRAM, build_parser(), draw_heatmap, argv, "heatmap")


def draw_heatmap(args):
    out = Path(args.out)
    check_png_path(out)
    matrices = densenet_matrices(_load_checkpoint(args.checkpoint), args.checkpoint)
    make_folder(out.parent)
    rescale = not args.raw
    with signals_held(), file_access_errors(out, "write"):     # Ctrl-C waits for the files
        close_figure(plot_feature_reuse(matrices, out, rescale=rescale, show=False))
        csv_path = write_feature_reuse_csv(matrices, out.with_suffix(".csv"))
        print(f"wrote {out} and {csv_path} ({len(matrices)} dense blocks, layers per block: "
              f"{[m.shape[0] - 1 for m in matrices]})")
        if args.compare_paper:
            comparison = out.with_name(f"{out.stem}_vs_paper.png")
            close_figure(plot_compare_paper(matrices, comparison, rescale=rescale, show=False))
            print(f"wrote {comparison}")
            _print_observations(matrices)
    return 0
