"""The command line: ``python -m minidense COMMAND ...`` (also installed as ``minidense``).

Each command lives next to the code it runs and parses its own arguments:

    train      train a model                      minidense/train_cli.py (loop: train.py)
    evaluate   accuracy and confusion matrix      minidense/evaluate_cli.py
    heatmap    Figure 5 feature-reuse heatmap     minidense/analysis/cli.py
    summary    per-layer table of a model         minidense/models/summary.py
    grade      autograde homework exercises       minidense/grading/cli.py
    bench      time training steps                minidense/bench.py
"""
import importlib
import sys

COMMANDS = {
    "train": ("minidense.train_cli", "train_main", "train a DenseNet (default: on the embedded dataset)"),
    "evaluate": ("minidense.evaluate_cli", "evaluate_main", "evaluate a checkpoint on a dataset"),
    "heatmap": ("minidense.analysis.cli", "heatmap_main", "draw the Figure 5 feature-reuse heatmap"),
    "summary": ("minidense.models.summary", "summary_main", "print a model's per-layer table"),
    "grade": ("minidense.grading.cli", "grade_main", "autograde exercises (Gradescope output)"),
    "bench": ("minidense.bench", "bench_main", "time training steps (and PyTorch, if installed)"),
}


def usage():
    lines = ["usage: python -m minidense COMMAND [options]   (COMMAND --help for its options)", "",
             "commands:"]
    lines += [f"  {name:<10} {help_text}" for name, (_, _, help_text) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module_name, function_name, _ = COMMANDS[name]
    try:
        function = getattr(importlib.import_module(module_name), function_name)
        return function(rest) or 0
    except KeyboardInterrupt:       # Ctrl-C while a command starts (train and others say more)
        print(f"\n{name}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
