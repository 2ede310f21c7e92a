"""Regenerate minidense/data/fashion_mnist_sample.npz from the Fashion-MNIST IDX files.

    python tools/make_sample_dataset.py [--source /usr/share/datasets/fashion-mnist]

Picks, with a fixed seed, 1,000 training images per class from the train split and 200 test images
per class from the test split, keeps them in their original order, and stores them as uint8 28x28
with their labels, their original indices and the sample's training mean/std (np.savez_compressed).
The same source files and seed always give the same arrays.
"""
import argparse
import os
import sys

import numpy

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from minidense.data.mnist import FashionMNIST  # noqa: E402
from minidense.data.sample import SAMPLE_PATH  # noqa: E402

SEED = 2017
PER_CLASS = {"train": 1000, "test": 200}


def balanced_indices(labels, per_class, rng):
    """``per_class`` indices of every class, drawn without replacement, returned sorted."""
    chosen = [rng.choice(numpy.flatnonzero(labels == c), size=per_class, replace=False)
              for c in range(int(labels.max()) + 1)]
    return numpy.sort(numpy.concatenate(chosen))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--source", default=None,
                        help="folder with the Fashion-MNIST IDX .gz files (default: the usual places)")
    parser.add_argument("--output", default=SAMPLE_PATH)
    args = parser.parse_args(argv)

    rng = numpy.random.default_rng(SEED)
    arrays = {}
    for split, per_class in PER_CLASS.items():
        full = FashionMNIST(args.source, train=(split == "train"), pad_to=None)
        indices = balanced_indices(full.labels, per_class, rng)
        arrays[f"{split}_images"] = full.images[indices, 0]            # (N, 28, 28) uint8
        arrays[f"{split}_labels"] = full.labels[indices].astype(numpy.uint8)
        arrays[f"{split}_indices"] = indices.astype(numpy.int32)
        print(f"{split}: {len(indices)} images from {full.source}")
    pixels = arrays["train_images"].astype(numpy.float64) / 255.0
    arrays["train_mean"] = numpy.array([pixels.mean()])
    arrays["train_std"] = numpy.array([pixels.std()])
    numpy.savez_compressed(args.output, **arrays)
    print(f"wrote {args.output} ({os.path.getsize(args.output) / 1e6:.2f} MB); "
          f"train mean {arrays['train_mean'][0]:.6f}, std {arrays['train_std'][0]:.6f}")


if __name__ == "__main__":
    main()
