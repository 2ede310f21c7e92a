"""Training side by side with PyTorch: does a whole minidense training run follow PyTorch's?

One training step's gradients match PyTorch's to rounding (tests/). This script checks whole runs:
a DenseNet is built and initialised by minidense, copied into PyTorch with
``minidense.models.torch_reference.torch_mirror`` (same architecture, same initial weights), and
both copies are trained in lockstep on the very same batches: the same images in the same order
with the same random crops and flips (minidense's DataLoader makes each batch once and both
frameworks get its arrays). Both use SGD with Nesterov momentum 0.9, weight decay 1e-4, lr 0.1 on a
cosine schedule stepped once per epoch, batch 64, float32.

Rounding differs between the two (other BLAS calls, other summation orders), and a training run
amplifies tiny differences, so the two runs cannot stay equal to the last digit. The yardsticks
are PyTorch against itself: the same run with its initial weights nudged by one part in 10 million
(rounding-sized), and PyTorch trained with another seed (other initial weights, batch order and
augmentation). In float64 (--float64-check) the two frameworks stay equal to about 1e-14.

    python benchmarks/convergence.py                    # DenseNet depth 22, k = 12, 2 epochs
    python benchmarks/convergence.py --train-images 256 --test-images 128 --epochs 1   # a trial
    python benchmarks/convergence.py --float64-check 10   # 10 steps in float64: the same step?

Writes benchmarks/results/convergence_densenet22_k12.{csv,json,png} (the stem follows --depth
and --growth-rate) and prints a table. Needs PyTorch (``pip install torch``, or the
``torch-oracle`` extra).
"""
import argparse
import csv
import json
import os
import sys
import time
from datetime import date

import numpy

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import minidense as md  # noqa: E402
from minidense import optim  # noqa: E402
from minidense.data import DataLoader, get_dataset, standard_transform  # noqa: E402
from minidense.models import densenet_cifar  # noqa: E402
from minidense.models.torch_reference import torch_mirror  # noqa: E402
from minidense.optim.lr_scheduler import CosineAnnealingLR  # noqa: E402
from minidense.train import evaluate, train_step  # noqa: E402

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
RECIPE = dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4)
BATCH_SIZE = 64


class MinidenseTrainer:
    """minidense's own training step (the one `python -m minidense train` uses)."""
    name = "minidense"

    def __init__(self, model, epochs):
        self.model = model
        self.optimizer = optim.SGD(model.parameters(), **RECIPE)
        self.scheduler = CosineAnnealingLR(self.optimizer, T_max=epochs)

    def step(self, images, labels):
        """One training step on NumPy arrays; returns (loss, number correct)."""
        self.model.train()
        return train_step(self.model, md.tensor(images), md.tensor(labels), self.optimizer)

    def end_epoch(self):
        self.scheduler.step()

    def test(self, loader):
        result = evaluate(self.model, loader)
        return result["loss"], result["accuracy"]


class TorchTrainer:
    """The same step in PyTorch, on a torch_mirror of the minidense model (same weights)."""
    name = "pytorch"

    def __init__(self, model, epochs):
        import torch
        self.torch = torch
        self.model = torch_mirror(model)
        self.optimizer = torch.optim.SGD(self.model.parameters(), **RECIPE)
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, T_max=epochs)

    def step(self, images, labels):
        torch = self.torch
        self.model.train()
        logits = self.model(torch.from_numpy(images))
        loss = torch.nn.functional.cross_entropy(logits, torch.from_numpy(labels))
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return loss.item(), int((logits.argmax(1).numpy() == labels).sum())

    def end_epoch(self):
        self.scheduler.step()

    def test(self, loader):
        torch = self.torch
        self.model.eval()
        total_loss, correct, seen = 0.0, 0, 0
        with torch.no_grad():
            for images, labels in loader:
                logits = self.model(torch.from_numpy(images.data))
                targets = torch.from_numpy(labels.data)
                total_loss += torch.nn.functional.cross_entropy(logits, targets).item() * len(targets)
                correct += int((logits.argmax(1) == targets).sum())
                seen += len(targets)
        return total_loss / seen, correct / seen


class NudgedTorchTrainer(TorchTrainer):
    """PyTorch again, its initial weights each multiplied by (1 + NUDGE x a standard normal draw):
    a change of the size of float32 rounding, to show how far rounding alone carries a run."""
    name = "pytorch-nudged"
    NUDGE = 1e-7

    def __init__(self, model, epochs):
        super().__init__(model, epochs)
        generator = self.torch.Generator().manual_seed(0)
        with self.torch.no_grad():
            for parameter in self.model.parameters():
                noise = self.torch.randn(parameter.shape, generator=generator)
                parameter.mul_(1 + self.NUDGE * noise)


TRAINERS = {trainer.name: trainer for trainer in (MinidenseTrainer, TorchTrainer,
                                                  NudgedTorchTrainer)}
LABELS = {"minidense": "minidense", "pytorch": "PyTorch",
          "pytorch-nudged": f"PyTorch, weights nudged by {NudgedTorchTrainer.NUDGE:g}"}


def train_in_lockstep(seed, framework_names, args):
    """Train one seed's model with each named framework on the same batches, batch by batch.

    The seed fixes the initial weights (minidense's initialisation, copied into PyTorch), the batch
    order and the augmentation. Returns (per-epoch rows, {framework: per-step losses}).
    """
    md.manual_seed(seed)
    train_set, test_set = get_dataset("sample", train=True), get_dataset("sample", train=False)
    model = densenet_cifar(args.depth, growth_rate=args.growth_rate, in_channels=1)
    trainers = [TRAINERS[name](model, args.epochs) for name in framework_names]  # before any step
    train_loader = DataLoader(train_set, batch_size=BATCH_SIZE, shuffle=True,
                              limit=args.train_images, transform=standard_transform(train_set, True))
    test_loader = DataLoader(test_set, batch_size=250, limit=args.test_images,
                             transform=standard_transform(train_set))
    rows, step_losses = [], {trainer.name: [] for trainer in trainers}
    for epoch in range(1, args.epochs + 1):
        totals = {trainer.name: dict(loss=0.0, correct=0, seconds=0.0) for trainer in trainers}
        lr = trainers[0].optimizer.param_groups[0]["lr"]
        for images, labels in train_loader:      # one batch, drawn once, for every framework
            for trainer in trainers:
                start = time.perf_counter()
                loss, correct = trainer.step(images.data, labels.data)
                total = totals[trainer.name]
                total["seconds"] += time.perf_counter() - start
                total["loss"] += loss * len(labels.data)
                total["correct"] += correct
                step_losses[trainer.name].append(loss)
        seen = train_loader.num_samples
        for trainer in trainers:
            trainer.end_epoch()
            test_loss, test_acc = trainer.test(test_loader)
            total = totals[trainer.name]
            rows.append(dict(seed=seed, framework=trainer.name, epoch=epoch, lr=lr,
                             train_loss=total["loss"] / seen, train_acc=total["correct"] / seen,
                             test_loss=test_loss, test_acc=test_acc,
                             train_seconds=total["seconds"]))
            print(f"seed {seed} {trainer.name:9s} epoch {epoch}: train loss {rows[-1]['train_loss']:.4f} "
                  f"test acc {100 * test_acc:.2f}% ({total['seconds']:.0f} s training)", flush=True)
    return rows, step_losses


MEASURES = {  # key: (label, how a value is written, how a difference is written)
    "train_loss": ("Training loss (mean over the epoch's batches)", "{:.4f}".format, "{:+.5f}".format),
    "test_acc": ("Test accuracy after the epoch", lambda v: f"{100 * v:.2f}%", lambda d: f"{100 * d:+.2f} points"),
}


def float64_agreement(steps, args, seed=0):
    """Train minidense and PyTorch in float64 for a few lockstep steps; returns the largest
    |loss difference| per step and the largest |weight difference| at the end. Near 1e-14 and
    1e-12, it shows that the two compute the same training step, and that float32 runs part
    only because rounding differences grow."""
    md.manual_seed(seed)
    train_set = get_dataset("sample", train=True)
    model = densenet_cifar(args.depth, growth_rate=args.growth_rate, in_channels=1).double()
    mine, theirs = MinidenseTrainer(model, args.epochs), TorchTrainer(model, args.epochs)
    loader = DataLoader(train_set, batch_size=BATCH_SIZE, shuffle=True, limit=steps * BATCH_SIZE,
                        transform=standard_transform(train_set, True))
    loss_gaps = []
    for images, labels in loader:
        images = images.data.astype(numpy.float64)
        loss_gaps.append(abs(mine.step(images, labels.data)[0] - theirs.step(images, labels.data)[0]))
    torch_state = theirs.model.state_dict()
    weight_gap = max(float(numpy.abs(value - torch_state[name].numpy()).max())
                     for name, value in model.state_dict().items())
    return loss_gaps, weight_gap


def comparison_table(rows, seeds):
    """Markdown tables per measure and epoch: every run, then the gaps between minidense and
    PyTorch on the same seed, between PyTorch and its nudged copy, and PyTorch over the seeds."""
    def value(seed, framework, epoch, key):
        return next(r[key] for r in rows
                    if (r["seed"], r["framework"], r["epoch"]) == (seed, framework, epoch))

    first = seeds[0]
    runs = [(r["framework"], r["seed"]) for r in rows if r["epoch"] == 1]
    gaps = [("minidense - PyTorch, same seed", "minidense", "pytorch")]
    if ("pytorch-nudged", first) in runs:
        gaps.append(("nudged PyTorch - PyTorch", "pytorch-nudged", "pytorch"))
    lines = []
    for key, (label, write, write_gap) in MEASURES.items():
        lines += [f"{label}:", "",
                  "| epoch | " + " | ".join(f"{LABELS[f]}, seed {s}" for f, s in runs)
                  + " | " + " | ".join(name for name, _, _ in gaps)
                  + " | PyTorch's spread over the seeds |",
                  "| ---: " * (2 + len(runs) + len(gaps)) + "|"]
        for epoch in sorted({r["epoch"] for r in rows}):
            cells = [write(value(s, f, epoch, key)) for f, s in runs]
            cells += [write_gap(value(first, a, epoch, key) - value(first, b, epoch, key))
                      for _, a, b in gaps]
            torch_runs = [value(s, "pytorch", epoch, key) for s in seeds]
            cells.append(write_gap(max(torch_runs) - min(torch_runs)).lstrip("+"))
            lines.append(f"| {epoch} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def plot(rows, step_losses, seeds, path, title):
    """Three panels: the training loss step by step, how far apart the runs' losses are (log
    scale), and the test accuracy after each epoch."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (loss_axes, gap_axes, acc_axes) = plt.subplots(1, 3, figsize=(16, 4.4),
                                                           layout="constrained")
    first = seeds[0]
    styles = {("minidense", first): dict(color="tab:blue", linewidth=1.6),
              ("pytorch", first): dict(color="tab:orange", linewidth=1.0, linestyle="--"),
              ("pytorch-nudged", first): dict(color="tab:green", linewidth=0.8, linestyle=":")}
    for (framework, seed), losses in step_losses.items():
        style = styles.get((framework, seed), dict(color="tab:gray", linewidth=0.8, alpha=0.7))
        label = f"{LABELS[framework]}, seed {seed}"
        loss_axes.plot(numpy.arange(1, len(losses) + 1), losses, label=label, **style)
        mine = [r for r in rows if (r["framework"], r["seed"]) == (framework, seed)]
        acc_axes.plot([r["epoch"] for r in mine], [100 * r["test_acc"] for r in mine],
                      marker="o", label=label, **style)
    reference = numpy.array(step_losses["pytorch", first])
    steps = numpy.arange(1, len(reference) + 1)
    gap_axes.semilogy(steps, numpy.abs(numpy.array(step_losses["minidense", first]) - reference),
                      color="tab:blue", linewidth=1.0,
                      label=f"minidense vs PyTorch, same seed {first}")
    if ("pytorch-nudged", first) in step_losses:
        gap_axes.semilogy(steps, numpy.abs(numpy.array(step_losses["pytorch-nudged", first])
                                           - reference), color="tab:green", linewidth=0.8,
                          label=f"{LABELS['pytorch-nudged']} vs PyTorch, seed {first}")
    for seed in seeds[1:]:
        gap_axes.semilogy(steps, numpy.abs(numpy.array(step_losses["pytorch", seed]) - reference),
                          color="tab:gray", linewidth=0.8, alpha=0.7,
                          label=f"PyTorch seed {seed} vs PyTorch seed {first}")
    loss_axes.set(xlabel="training step (batch of 64)", ylabel="training loss of the batch",
                  title="training loss, step by step")
    gap_axes.set(xlabel="training step", ylabel="|difference of the batch losses|",
                 title="how far apart two runs are")
    acc_axes.set(xlabel="epoch", ylabel="test accuracy (%)", title="test accuracy after each epoch",
                 xticks=sorted({r["epoch"] for r in rows}))
    for axes in (loss_axes, gap_axes, acc_axes):
        axes.grid(alpha=0.3)
        axes.legend(fontsize="small")
    figure.suptitle(title)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def write_outputs(rows, step_losses, args, stem, seconds):
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, stem + ".csv"), "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    record = dict(date=date.today().isoformat(), depth=args.depth, growth_rate=args.growth_rate,
                  epochs=args.epochs, batch_size=BATCH_SIZE, train_images=args.train_images or 10000,
                  test_images=args.test_images or 2000, seeds=args.seeds, recipe=RECIPE,
                  torch_version=torch_version(), torch_threads=args.threads,
                  seconds=round(seconds, 1), epochs_table=rows,
                  step_losses={f"{framework} seed {seed}": losses
                               for (framework, seed), losses in step_losses.items()})
    with open(os.path.join(RESULTS, stem + ".json"), "w") as file:
        json.dump(record, file, indent=1)
    title = (f"DenseNet (depth {args.depth}, k = {args.growth_rate}) on the Fashion-MNIST sample: "
             f"minidense and PyTorch from the same weights on the same batches")
    plot(rows, step_losses, args.seeds, os.path.join(RESULTS, stem + ".png"), title)


def torch_version():
    import torch
    return torch.__version__


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depth", type=int, default=22, help="DenseNet depth (3n + 4; default 22)")
    parser.add_argument("--growth-rate", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1],
                        help="the first seed is trained by both frameworks, the others by PyTorch "
                             "only, as the yardstick (default: 0 1)")
    parser.add_argument("--train-images", type=int, default=None,
                        help="use only this many training images (default: all 10,000)")
    parser.add_argument("--test-images", type=int, default=None,
                        help="use only this many test images (default: all 2,000)")
    parser.add_argument("--nudged", action=argparse.BooleanOptionalAction, default=True,
                        help="also train, on the first seed, a PyTorch copy whose initial weights "
                             "are nudged by one part in 10 million (default: on)")
    parser.add_argument("--float64-check", type=int, metavar="STEPS", default=0,
                        help="instead of the float32 runs, train both frameworks in float64 for "
                             "STEPS lockstep steps and print how far apart they are")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="PyTorch's CPU threads")
    parser.add_argument("--out-stem", default=None,
                        help="file name stem under benchmarks/results (default: "
                             "convergence_densenet<depth>_k<growth rate>)")
    args = parser.parse_args(argv)

    import torch
    torch.set_num_threads(args.threads)
    if args.float64_check:
        loss_gaps, weight_gap = float64_agreement(args.float64_check, args)
        print(f"float64, depth {args.depth}, k = {args.growth_rate}, {len(loss_gaps)} steps: largest "
              f"|loss difference| {max(loss_gaps):.1e}, largest |weight difference| after the last "
              f"step {weight_gap:.1e}")
        return
    rows, step_losses = [], {}
    start = time.perf_counter()
    for index, seed in enumerate(args.seeds):
        frameworks = ["pytorch"]
        if index == 0:
            frameworks = ["minidense", "pytorch"] + (["pytorch-nudged"] if args.nudged else [])
        seed_rows, seed_losses = train_in_lockstep(seed, frameworks, args)
        rows += seed_rows
        step_losses.update({(name, seed): losses for name, losses in seed_losses.items()})
    first_steps = numpy.abs(numpy.subtract(step_losses["minidense", args.seeds[0]][:3],
                                           step_losses["pytorch", args.seeds[0]][:3]))
    print(f"\n{time.perf_counter() - start:.0f} s in all; PyTorch {torch.__version__}, "
          f"{args.threads} threads; |loss difference| of the first three steps: "
          + ", ".join(f"{d:.1e}" for d in first_steps) + "\n")
    print(comparison_table(rows, args.seeds))
    stem = args.out_stem or f"convergence_densenet{args.depth}_k{args.growth_rate}"
    write_outputs(rows, step_losses, args, stem, time.perf_counter() - start)
    print(f"wrote {os.path.join(RESULTS, stem)}.csv/.json/.png")


if __name__ == "__main__":
    main()
