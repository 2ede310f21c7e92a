"""Turn a finished training run into a shipped pretrained model under minidense/pretrained/.

    python tools/export_pretrained.py RUN_DIR densenet40_fashion_sample \
        --command "python -m minidense train --model densenet40 --preset paper ..." [--commit SHA]

Reads RUN_DIR/best.npz and keeps only its model weights (no optimizer or random state), checks
that they load into the architecture the checkpoint names, and writes into
minidense/pretrained/NAME/: weights.npz (md.save of the state dict), model.json (the
architecture), the run's config.json and metrics.csv, and a README.md with the command, the test
accuracy and the paper's four Figure 5 observations checked on the weights.
"""
import argparse
import json
import os
import shutil
import sys
from pathlib import Path

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import minidense as md  # noqa: E402
from minidense.analysis import feature_reuse, reuse_observations  # noqa: E402
from minidense.models import get_model  # noqa: E402
from minidense.pretrained import PRETRAINED_ROOT, training_history  # noqa: E402

README = """\
# {name}

The DenseNet of Huang et al. (CVPR 2017) with L = 40 layers and growth rate k = 12 (three dense
blocks of 12 basic BN-ReLU-Conv3x3 layers, no bottlenecks, no compression), with a 1-channel stem
for grey images: `{architecture}`, **{parameters:,} parameters** (the paper's 1,019,722 for a
3-channel stem, less 16 x 2 x 3 x 3 = 288).

**Test accuracy {accuracy:.2f}%** on the 2,000 test images of minidense's embedded Fashion-MNIST
sample (200 per class, taken from the real Fashion-MNIST test split;
`minidense.data.get_dataset("sample", train=False)`), after epoch {epoch} of {epochs}
(the run's best.npz; test loss {test_loss:.4f}).

## How it was trained

```
{command}
```

{commit_line}on the sample's 10,000 training images (1,000 per class from the Fashion-MNIST train
split), zero-padded from 28x28 to 32x32: SGD with Nesterov momentum {momentum}, weight decay
{weight_decay}, batch {batch_size}, lr {lr} on a cosine schedule over {epochs} epochs, random
crop (padding 4) and horizontal flip, seed {seed}; {seconds:.0f} s per epoch on average on
{hardware}. Rerunning the command repeats the run (up to floating-point differences between BLAS
builds). The paper trained the same network for 300 epochs on CIFAR-10 with augmentation (C10+)
to 5.24% error (its Table 2).

| epoch | lr | train loss | train acc | test loss | test acc | seconds |
| ---: | ---: | ---: | ---: | ---: | ---: | ---: |
{epoch_rows}

## Use

```python
from minidense import pretrained
model = pretrained.densenet40_fashion_sample()    # eval mode; device="cuda" for a GPU
```

`python -m minidense heatmap minidense/pretrained/{name}/weights.npz --out fig5.png --compare-paper`
draws its Figure 5 beside the paper's; chapter 9 does the same step by step.

## The paper's four Figure 5 observations on these weights

(criteria: `minidense.analysis.reuse_observations`)

{observation_rows}

## Files

- `weights.npz`: the state dict only (parameters and batch-norm running statistics), written with
  `md.save`; `md.load` reads it with `allow_pickle=False`.
- `model.json`: the architecture; `minidense.models.get_model(**model.json)` rebuilds it.
- `config.json`, `metrics.csv`: the training run's options and per-epoch metrics, as written by
  `python -m minidense train`.
"""


def epoch_table(history):
    return "\n".join(
        f"| {row['epoch']} | {row['lr']:.4g} | {row['train_loss']:.4f} | "
        f"{100 * row['train_acc']:.2f}% | {row['test_loss']:.4f} | {100 * row['test_acc']:.2f}% | "
        f"{row['seconds']:.0f} |" for row in history)


def observation_list(state):
    return "\n".join(
        f"{o['id']}. {o['statement']} **{'Holds' if o['holds'] else 'Does not hold'}**: "
        f"{o['evidence']}" for o in reuse_observations(feature_reuse(state)))


def export(run_dir, name, command, commit=None, hardware="a 2-core x86-64 CPU"):
    run_dir = Path(run_dir)
    checkpoint = md.load(run_dir / "best.npz")
    state, architecture = checkpoint["model"], dict(checkpoint["model_config"])
    model = get_model(**architecture)
    model.load_state_dict(state)                      # strict: every key and shape must match
    parameters = sum(p.data.size for p in model.parameters())

    target = PRETRAINED_ROOT / name
    target.mkdir(parents=True, exist_ok=True)
    md.save(state, target / "weights.npz")
    (target / "model.json").write_text(json.dumps(architecture, indent=2) + "\n")
    for file in ("config.json", "metrics.csv"):
        shutil.copyfile(run_dir / file, target / file)

    config = json.loads((run_dir / "config.json").read_text())
    history = training_history(name)                   # every epoch of the run
    best = history[checkpoint["epoch"] - 1]            # the epoch best.npz was saved at
    arguments = ", ".join(f"{key}={value}" for key, value in architecture.items() if key != "name")
    (target / "README.md").write_text(README.format(
        name=name, architecture=f"{architecture['name']}({arguments})", parameters=parameters,
        accuracy=100 * best["test_acc"], test_loss=best["test_loss"], epoch=best["epoch"],
        command=command, hardware=hardware,
        commit_line=f"from commit {commit[:7]}, " if commit else "",
        seconds=sum(row["seconds"] for row in history) / len(history),
        epoch_rows=epoch_table(history), observation_rows=observation_list(state),
        **{key: config[key] for key in ("epochs", "momentum", "weight_decay", "batch_size", "lr",
                                        "seed")}))
    print(f"wrote {target}: {parameters:,} parameters, epoch {best['epoch']}, "
          f"test accuracy {100 * best['test_acc']:.2f}%")
    return target


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", help="a finished run folder (best.npz, config.json, metrics.csv)")
    parser.add_argument("name", help="folder name under minidense/pretrained/")
    parser.add_argument("--command", required=True, help="the command that trained the run")
    parser.add_argument("--commit", help="the commit the run was trained from")
    parser.add_argument("--hardware", default="a 2-core x86-64 CPU",
                        help="what the run was trained on, for the README")
    args = parser.parse_args(argv)
    export(args.run_dir, args.name, args.command, args.commit, args.hardware)


if __name__ == "__main__":
    main()
