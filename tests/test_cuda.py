"""The whole library on device='cuda': NumPy/CuPy parity and the training command end to end.

Each test builds the same thing on 'cpu' and on 'cuda' from the same weights and input and asks
for the same numbers within float32 tolerance. On a machine with CuPy and a GPU this is the real
GPU; without one, the ``cuda`` fixture (conftest.py) runs it on the CPU emulation of CuPy, which
still proves that no NumPy array leaks into device code.
"""
import json

import numpy as np
import pytest

import minidense as md
from minidense import bench, evaluate_cli, optim, train, train_cli
from minidense.analysis import feature_reuse
from conftest import REAL_GPU
from minidense.data import DataLoader, SampleFashionMNIST, standard_transform
from minidense.data.transforms import RandomCrop, RandomHorizontalFlip
from minidense.models import densenet_cifar

FLOAT32 = dict(rtol=2e-4, atol=2e-5)


def twin_models(cuda, **config):
    """The same DenseNet twice: on the CPU and, with the same weights, on the device."""
    md.manual_seed(3)
    cpu_model = densenet_cifar(**config)
    gpu_model = densenet_cifar(**config).to(cuda)
    gpu_model.load_state_dict(cpu_model.state_dict())
    return cpu_model, gpu_model


def images_and_labels(count=6, channels=3, size=16, classes=10):
    rng = np.random.default_rng(7)
    return (rng.standard_normal((count, channels, size, size)).astype(np.float32),
            rng.integers(0, classes, count))


def forward_backward(model, images, labels, device):
    logits = model(md.tensor(images, device=device))
    loss = md.nn.functional.cross_entropy(logits, md.tensor(labels, device=device))
    loss.backward()
    return logits


@pytest.mark.parametrize("config", [
    dict(depth=10, growth_rate=4),
    dict(depth=16, growth_rate=4, bottleneck=True, compression=0.5, drop_rate=0.0),
    dict(depth=16, growth_rate=4, bottleneck=True, compression=0.5, memory_efficient=True),
], ids=["basic", "bc", "bc-memory-efficient"])
def test_densenet_forward_backward_and_running_stats_match_the_cpu(cuda, config):
    cpu_model, gpu_model = twin_models(cuda, **config)
    images, labels = images_and_labels()
    cpu_logits = forward_backward(cpu_model, images, labels, "cpu")
    gpu_logits = forward_backward(gpu_model, images, labels, cuda)
    assert gpu_logits.device == "cuda"
    np.testing.assert_allclose(gpu_logits.numpy(), cpu_logits.numpy(), **FLOAT32)
    gpu_parameters = dict(gpu_model.named_parameters())
    for name, p in cpu_model.named_parameters():
        assert gpu_parameters[name].grad.device == "cuda", name
        np.testing.assert_allclose(gpu_parameters[name].grad.numpy(), p.grad.numpy(),
                                   err_msg=name, rtol=1e-3, atol=1e-5)
    gpu_state = gpu_model.state_dict()
    for name, value in cpu_model.state_dict().items():   # running statistics moved the same way
        np.testing.assert_allclose(gpu_state[name], value, err_msg=name, **FLOAT32)
    cpu_model.eval(), gpu_model.eval()
    np.testing.assert_allclose(gpu_model(md.tensor(images, device=cuda)).numpy(),
                               cpu_model(md.tensor(images)).numpy(), **FLOAT32)


@pytest.mark.parametrize("make_optimizer", [
    lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4),
    lambda ps: optim.AdamW(ps, lr=1e-3, weight_decay=1e-2),
], ids=["sgd-nesterov", "adamw"])
def test_training_steps_with_optimizer_and_scheduler_match_the_cpu(cuda, make_optimizer):
    cpu_model, gpu_model = twin_models(cuda, depth=10, growth_rate=4)
    runs = []
    for model, device in ((cpu_model, "cpu"), (gpu_model, cuda)):
        optimizer = make_optimizer(model.parameters())
        scheduler = optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=3)
        for step in range(3):
            images, labels = images_and_labels(count=4)
            optimizer.zero_grad()
            forward_backward(model, images + step, labels, device)
            optimizer.step()
            scheduler.step()
        runs.append((model.state_dict(), optimizer.state_dict()))
    (cpu_state, cpu_optimizer), (gpu_state, gpu_optimizer) = runs
    for name, value in cpu_state.items():
        np.testing.assert_allclose(gpu_state[name], value, err_msg=name, rtol=1e-3, atol=1e-5)
    assert json.dumps(gpu_optimizer["param_groups"]) == json.dumps(cpu_optimizer["param_groups"])


def test_a_gpu_checkpoint_loads_on_the_cpu_and_back(cuda, tmp_path):
    cpu_model, gpu_model = twin_models(cuda, depth=10, growth_rate=4)
    optimizer = optim.SGD(gpu_model.parameters(), lr=0.1, momentum=0.9)
    images, labels = images_and_labels(count=4)
    forward_backward(gpu_model, images, labels, cuda)
    optimizer.step()
    md.save({"model": gpu_model.state_dict(), "optimizer": optimizer.state_dict()},
            tmp_path / "gpu.npz")
    checkpoint = md.load(tmp_path / "gpu.npz")
    cpu_model.load_state_dict(checkpoint["model"])
    restored = optim.SGD(cpu_model.parameters(), lr=0.1, momentum=0.9)
    restored.load_state_dict(checkpoint["optimizer"])
    back_on_gpu = optim.SGD(gpu_model.parameters(), lr=0.1, momentum=0.9)
    back_on_gpu.load_state_dict(checkpoint["optimizer"])
    for model, device in ((cpu_model, "cpu"), (gpu_model, cuda)):
        model.eval()
    np.testing.assert_allclose(gpu_model(md.tensor(images, device=cuda)).numpy(),
                               cpu_model(md.tensor(images)).numpy(), **FLOAT32)


def test_loader_transforms_and_evaluate_on_the_device(cuda):
    sample = SampleFashionMNIST(train=False)
    loader = DataLoader(sample, batch_size=64, shuffle=False, device=cuda,
                        transform=standard_transform(sample, augment=False))
    md.manual_seed(0)
    model = densenet_cifar(depth=10, growth_rate=4, in_channels=1, num_classes=10).to(cuda)
    cpu_model = densenet_cifar(depth=10, growth_rate=4, in_channels=1, num_classes=10)
    cpu_model.load_state_dict(model.state_dict())
    small = [batch for _, batch in zip(range(2), loader)]
    assert all(x.device == "cuda" and y.device == "cuda" for x, y in small)
    result = train.evaluate(model, small, num_classes=10)
    cpu_result = train.evaluate(cpu_model, [(x.to("cpu"), y.to("cpu")) for x, y in small],
                                num_classes=10)
    assert result["accuracy"] == cpu_result["accuracy"]
    assert result["loss"] == pytest.approx(cpu_result["loss"], rel=1e-4)


def test_feature_reuse_of_a_model_on_the_device(cuda):
    cpu_model, gpu_model = twin_models(cuda, depth=16, growth_rate=4, bottleneck=True,
                                       compression=0.5)
    for cpu_matrix, gpu_matrix in zip(feature_reuse(cpu_model), feature_reuse(gpu_model)):
        np.testing.assert_allclose(gpu_matrix, cpu_matrix, equal_nan=True)


def test_the_training_command_on_the_device_resumes_exactly(cuda, tmp_path):
    """Dropout masks on the device and augmentation: two epochs straight equal one + one resumed
    (exact with the emulation; on a real GPU within float32 rounding of its kernels)."""
    tiny = ["--depth", "10", "--growth-rate", "4", "--batch-size", "64", "--limit-train", "128",
            "--limit-test", "64", "--quiet", "--device", cuda, "--drop-rate", "0.2", "--augment",
            "--no-heatmap", "--schedule", "none"]   # the schedule must not depend on --epochs
    assert train_cli.train_main(tiny + ["--epochs", "2", "--out", str(tmp_path / "straight")]) == 0
    assert train_cli.train_main(tiny + ["--epochs", "1", "--out", str(tmp_path / "resumed")]) == 0
    assert train_cli.train_main(tiny + ["--epochs", "2", "--out", str(tmp_path / "resumed"),
                                    "--resume"]) == 0
    runs = [[json.loads(line) for line in (tmp_path / name / "metrics.jsonl").open()]
            for name in ("straight", "resumed")]
    keys = ["epoch", "lr", "train_loss", "train_acc", "test_loss", "test_acc"]
    straight, resumed = ([[row[k] for k in keys] for row in rows] for rows in runs)
    exact = not REAL_GPU
    assert straight == resumed if exact else np.allclose(straight, resumed, rtol=1e-4)
    assert json.loads((tmp_path / "straight" / "config.json").read_text())["device"] == "cuda"
    out = tmp_path / "straight"
    assert evaluate_cli.evaluate_main([str(out / "best.npz"), "--device", cuda, "--limit", "64"]) == 0
    assert (out / "confusion.csv").is_file()


def test_the_training_command_gives_the_cpu_numbers_on_the_device(cuda, tmp_path):
    """Same seed, shuffling and augmentation (no dropout): the same run on either device."""
    tiny = ["--depth", "10", "--growth-rate", "4", "--batch-size", "32", "--limit-train", "96",
            "--limit-test", "64", "--quiet", "--augment", "--no-heatmap", "--epochs", "2"]
    for device in ("cpu", cuda):
        assert train_cli.train_main(tiny + ["--device", device, "--out", str(tmp_path / device)]) == 0
    cpu_rows, gpu_rows = ([json.loads(line) for line in (tmp_path / name / "metrics.jsonl").open()]
                          for name in ("cpu", cuda))
    # emulated: the same arithmetic; a real GPU rounds differently, and an accuracy on 64 images
    # may move by a prediction or two
    loss_rtol, accuracy_atol = (1e-6, 0) if not REAL_GPU else (2e-2, 2 / 64)
    for cpu_row, gpu_row in zip(cpu_rows, gpu_rows, strict=True):
        for key in ("train_loss", "test_loss"):
            assert gpu_row[key] == pytest.approx(cpu_row[key], rel=loss_rtol), key
        for key in ("train_acc", "test_acc"):
            assert gpu_row[key] == pytest.approx(cpu_row[key], abs=accuracy_atol), key


def test_augmentation_is_the_same_on_the_cpu_and_the_device(cuda):
    batch = np.random.default_rng(0).random((8, 3, 32, 32)).astype(np.float32)
    augment = lambda images: RandomHorizontalFlip()(RandomCrop(32, padding=4)(images))  # noqa: E731
    md.manual_seed(5)
    on_cpu = augment(batch)
    md.manual_seed(5)
    on_device = augment(md.tensor(batch, device=cuda).data)
    np.testing.assert_array_equal(md.backend.to_numpy(on_device), on_cpu)


def test_the_benchmark_and_its_profile_run_on_the_device(cuda):
    result = bench.run_minidense("densenet40", 2, cuda, steps=1, warmup=0, memory_efficient=True)
    assert result["images_per_s"] > 0 and len(result["step_seconds"]) == 1
    wall, parts = bench.profile_minidense("densenet_bc_100", 2, cuda, steps=1,
                                          memory_efficient=False)
    assert {"conv forward", "conv backward", "batch norm forward", "optimizer step"} <= set(parts)
    assert sum(parts.values()) == pytest.approx(wall)
