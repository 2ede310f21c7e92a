"""Batch transforms (crop, flip, normalise) and the DataLoader."""
import numpy
import pytest

import minidense as md
from minidense import random as md_random
from minidense.autograd import Tensor
from minidense.data import (ArrayDataset, Compose, DataLoader, Normalize, RandomCrop,
                            RandomHorizontalFlip, SampleFashionMNIST, ToFloat, standard_transform)


class ConstantGenerator:
    """Stands in for a random generator: every 'uniform' draw is ``value``."""

    def __init__(self, value):
        self.value = value

    def random(self, count):
        return numpy.full(count, self.value)


def numbered_batch(count=6, channels=3, size=8):
    """A float batch whose every pixel is distinct, so any shift or flip is visible."""
    values = numpy.arange(count * channels * size * size, dtype=numpy.float32) + 1
    return values.reshape(count, channels, size, size)


def small_dataset(count=10):
    images = numpy.arange(count, dtype=numpy.uint8)[:, None, None, None] * numpy.ones(
        (1, 1, 4, 4), numpy.uint8)
    return ArrayDataset(images, numpy.arange(count) % 3, ["a", "b", "c"], (0.5,), (0.25,), "tiny")


# ----------------------------------------------------------------------------------------------
# Transforms
# ----------------------------------------------------------------------------------------------
def test_to_float_scales_uint8_to_unit_range():
    batch = numpy.array([0, 51, 255], dtype=numpy.uint8).reshape(1, 1, 1, 3)
    out = ToFloat()(batch)
    assert out.dtype == numpy.float32 and out.ravel().tolist() == pytest.approx([0.0, 0.2, 1.0])


def test_normalize_gives_zero_mean_unit_std_per_channel():
    rng = numpy.random.default_rng(0)
    batch = (rng.normal(size=(500, 3, 4, 4)) * [[[[2.0]], [[0.5]], [[3.0]]]]
             + [[[[1.0]], [[-2.0]], [[0.3]]]]).astype(numpy.float32)
    mean, std = batch.mean(axis=(0, 2, 3)), batch.std(axis=(0, 2, 3))
    out = Normalize(mean, std)(batch)
    assert out.dtype == numpy.float32
    assert out.mean(axis=(0, 2, 3)) == pytest.approx([0, 0, 0], abs=1e-5)
    assert out.std(axis=(0, 2, 3)) == pytest.approx([1, 1, 1], abs=1e-5)
    with pytest.raises(ValueError, match="3 channels but mean/std have 2 values"):
        Normalize((0.1, 0.2), (1.0, 1.0))(batch)
    with pytest.raises(TypeError, match="ToFloat"):
        Normalize((0.5,), (0.2,))(numpy.zeros((1, 1, 2, 2), numpy.uint8))


def test_normalize_with_the_sample_statistics():
    sample = SampleFashionMNIST()
    batch = ToFloat()(sample.images)
    out = Normalize(sample.mean, sample.std)(batch)
    assert float(out.mean()) == pytest.approx(0.0, abs=1e-4)
    assert float(out.std()) == pytest.approx(1.0, abs=1e-4)


def test_random_crop_at_offset_padding_keeps_the_image():
    batch = numbered_batch()
    # a uniform draw of 0.5 over the 9 offsets 0..8 picks offset 4 = no shift at all
    assert numpy.array_equal(RandomCrop(8, padding=4, generator=ConstantGenerator(0.5))(batch), batch)
    # offset 0 shifts the content down and right by 4, with zeros coming in
    shifted = RandomCrop(8, padding=4, generator=ConstantGenerator(0.0))(batch)
    assert numpy.array_equal(shifted[:, :, 4:, 4:], batch[:, :, :4, :4])
    assert shifted[:, :, :4].sum() == 0 and shifted[:, :, :, :4].sum() == 0
    # the largest offset (8) shifts up and left
    last = RandomCrop(8, padding=4, generator=ConstantGenerator(0.999))(batch)
    assert numpy.array_equal(last[:, :, :4, :4], batch[:, :, 4:, 4:])


def test_random_crop_chooses_an_independent_offset_per_image():
    image = numbered_batch(count=1, channels=2)
    batch = numpy.repeat(image, 200, axis=0)
    out = RandomCrop(8, padding=4, generator=0)(batch)
    assert out.shape == batch.shape and out.flags.c_contiguous
    padded = numpy.pad(image[0], ((0, 0), (4, 4), (4, 4)))
    shifts = {(dy, dx): padded[:, dy:dy + 8, dx:dx + 8] for dy in range(9) for dx in range(9)}
    seen = set()
    for cropped in out:
        matches = [offset for offset, window in shifts.items() if numpy.array_equal(cropped, window)]
        assert len(matches) == 1  # every output is exactly one of the 81 shifted windows
        seen.add(matches[0])
    assert len(seen) > 40  # 200 images spread over many of the 81 offsets


def test_random_crop_to_a_smaller_size():
    out = RandomCrop(5, padding=0, generator=ConstantGenerator(0.0))(numbered_batch(2, 1, 8))
    assert out.shape == (2, 1, 5, 5)
    assert numpy.array_equal(out, numbered_batch(2, 1, 8)[:, :, :5, :5])
    with pytest.raises(ValueError, match="larger than the padded image"):
        RandomCrop(20, padding=2)(numbered_batch(1, 1, 8))


def test_horizontal_flip_flips_the_chosen_images_only():
    batch = numbered_batch(count=100)
    assert numpy.array_equal(RandomHorizontalFlip(p=1.0)(batch), batch[..., ::-1])
    assert numpy.array_equal(RandomHorizontalFlip(p=0.0)(batch), batch)
    out = RandomHorizontalFlip(p=0.5, generator=1)(batch)
    flipped = [numpy.array_equal(o, b[..., ::-1]) for o, b in zip(out, batch)]
    kept = [numpy.array_equal(o, b) for o, b in zip(out, batch)]
    assert all(f != k for f, k in zip(flipped, kept))  # each image is one or the other
    assert 30 < sum(flipped) < 70


def test_transforms_are_deterministic_with_a_seed():
    batch = numbered_batch(count=20)
    augment = lambda seed: Compose([RandomCrop(8, 4, generator=seed),  # noqa: E731
                                    RandomHorizontalFlip(generator=seed + 1)])
    assert numpy.array_equal(augment(5)(batch), augment(5)(batch))
    assert not numpy.array_equal(augment(5)(batch), augment(6)(batch))
    # without an explicit generator they follow md.manual_seed
    pipeline = Compose([RandomCrop(8, 4), RandomHorizontalFlip()])
    md.manual_seed(11)
    first = pipeline(batch)
    md.manual_seed(11)
    assert numpy.array_equal(pipeline(batch), first)


def test_compose_order_and_repr():
    pipeline = Compose([Normalize((0.5,), (0.5,)), RandomCrop(32, padding=4),
                        RandomHorizontalFlip(p=0.25)])
    text = repr(pipeline)
    assert "Normalize(mean=(0.5,), std=(0.5,))" in text
    assert "RandomCrop(size=(32, 32), padding=4)" in text and "RandomHorizontalFlip(p=0.25)" in text
    assert text.index("Normalize") < text.index("RandomCrop") < text.index("RandomHorizontalFlip")
    batch = numpy.full((2, 1, 32, 32), 0.75, numpy.float32)
    out = Compose([Normalize((0.5,), (0.5,)), RandomCrop(32, padding=4,
                                                         generator=ConstantGenerator(0.0))])(batch)
    # normalised first (0.75 -> 0.5), then cropped: the zero padding enters at the top-left
    assert out[:, :, 4:, 4:].min() == out[:, :, 4:, 4:].max() == 0.5
    assert out[:, :, :4].max() == 0.0


def test_standard_transform_for_a_dataset():
    sample = SampleFashionMNIST(train=False)
    plain, augmented = standard_transform(sample), standard_transform(sample, augment=True)
    assert len(plain.transforms) == 1 and len(augmented.transforms) == 3
    assert augmented.transforms[1].size == (32, 32)
    batch = ToFloat()(sample.images[:8])
    assert augmented(batch).shape == (8, 1, 32, 32)


# ----------------------------------------------------------------------------------------------
# DataLoader
# ----------------------------------------------------------------------------------------------
def test_loader_batches_values_and_types():
    loader = DataLoader(small_dataset(10), batch_size=4)
    batches = list(loader)
    assert len(loader) == 3 and [len(labels.data) for _, labels in batches] == [4, 4, 2]
    images, labels = batches[0]
    assert isinstance(images, Tensor) and isinstance(labels, Tensor)
    assert images.data.dtype == numpy.float32 and labels.data.dtype == numpy.int64
    assert images.shape == (4, 1, 4, 4) and images.device == "cpu"
    assert images.data[:, 0, 0, 0].tolist() == pytest.approx([0, 1 / 255, 2 / 255, 3 / 255])
    assert labels.data.tolist() == [0, 1, 2, 0]


def test_loader_drop_last_and_limit():
    dataset = small_dataset(10)
    assert len(DataLoader(dataset, batch_size=4, drop_last=True)) == 2
    assert [len(y.data) for _, y in DataLoader(dataset, batch_size=4, drop_last=True)] == [4, 4]
    limited = DataLoader(dataset, batch_size=3, limit=7)
    assert limited.num_samples == 7 and len(limited) == 3
    seen = numpy.concatenate([x.data[:, 0, 0, 0] for x, _ in limited]) * 255
    assert numpy.round(seen).tolist() == list(range(7))  # the first 7 samples, in order
    assert len(DataLoader(SampleFashionMNIST(), batch_size=64)) == 157
    assert len(DataLoader(SampleFashionMNIST(), batch_size=64, drop_last=True)) == 156


def epoch_order(loader):
    return numpy.concatenate([numpy.round(x.data[:, 0, 0, 0] * 255) for x, _ in loader]).astype(int)


def test_loader_shuffle_is_a_seeded_permutation():
    dataset = small_dataset(10)
    loader = DataLoader(dataset, batch_size=3, shuffle=True, seed=7)
    first, second = epoch_order(loader), epoch_order(loader)
    assert sorted(first.tolist()) == list(range(10)) and sorted(second.tolist()) == list(range(10))
    assert first.tolist() != second.tolist()  # a new order every epoch
    again = DataLoader(dataset, batch_size=3, shuffle=True, seed=7)
    assert epoch_order(again).tolist() == first.tolist()
    assert epoch_order(again).tolist() == second.tolist()
    with pytest.raises(ValueError, match="either seed or generator"):
        DataLoader(dataset, seed=1, generator=numpy.random.default_rng(1))


def test_loader_follows_the_run_generator_and_resumes():
    loader = DataLoader(small_dataset(10), batch_size=4, shuffle=True)
    md.manual_seed(3)
    first = epoch_order(loader)
    md.manual_seed(3)
    assert epoch_order(loader).tolist() == first.tolist()
    state = md_random.get_state()  # as a checkpoint would save it
    expected = epoch_order(loader)
    md.manual_seed(99)
    md_random.set_state(state)
    assert epoch_order(loader).tolist() == expected.tolist()


def test_loader_applies_the_transform_after_scaling():
    dataset = small_dataset(6)
    loader = DataLoader(dataset, batch_size=6, transform=Normalize(dataset.mean, dataset.std))
    images, _ = next(iter(loader))
    expected = (numpy.arange(6) / 255 - 0.5) / 0.25
    assert images.data[:, 0, 2, 2].tolist() == pytest.approx(expected.tolist(), rel=1e-6)
    assert images.data.dtype == numpy.float32


def test_loader_accepts_a_plain_sequence_of_pairs():
    pairs = [(numpy.full((1, 2, 2), i, numpy.uint8), i % 2) for i in range(5)]
    images, labels = next(iter(DataLoader(pairs, batch_size=5)))
    assert images.shape == (5, 1, 2, 2) and labels.data.tolist() == [0, 1, 0, 1, 0]


def test_loader_and_transforms_on_the_gpu(cuda):
    sample = SampleFashionMNIST(train=False)
    loader = DataLoader(sample, batch_size=128, shuffle=True, seed=0, device=cuda,
                        transform=standard_transform(sample, augment=True))
    images, labels = next(iter(loader))
    assert images.device == "cuda" and labels.device == "cuda"
    assert images.shape == (128, 1, 32, 32) and images.data.dtype == numpy.float32
    cpu_loader = DataLoader(sample, batch_size=128, shuffle=True, seed=0)
    _, cpu_labels = next(iter(cpu_loader))
    assert labels.numpy().tolist() == cpu_labels.numpy().tolist()  # same order on both devices


def test_transforms_run_in_the_batch_array_module(device):
    xp = md.backend.array_module(device)
    batch = xp.asarray(numbered_batch(count=4))
    kept = RandomCrop(8, padding=4, generator=ConstantGenerator(0.5))(batch)
    flipped = RandomHorizontalFlip(p=1.0)(batch)
    normalised = Normalize((1.0, 2.0, 3.0), (2.0, 2.0, 2.0))(batch)
    for out in (kept, flipped, normalised):
        assert md.backend.get_array_module(out) is xp
    assert md.backend.to_numpy(kept).tolist() == numbered_batch(count=4).tolist()
    assert md.backend.to_numpy(flipped).tolist() == numbered_batch(count=4)[..., ::-1].tolist()
    expected = (numbered_batch(count=4)[:, 1] - 2.0) / 2.0
    assert numpy.allclose(md.backend.to_numpy(normalised)[:, 1], expected)
