"""The shipped DenseNet-40 (minidense/pretrained/densenet40_fashion_sample): it installs with the
package, loads without pickle into the paper's architecture, and classifies real test images."""
import json
import re
from pathlib import Path

import numpy as np
import pytest

import minidense as md
from minidense import pretrained
from minidense.data import DataLoader, get_dataset, standard_transform
from minidense.train import evaluate

NAME = "densenet40_fashion_sample"
# The paper's DenseNet-40 (k = 12) has 1,019,722 parameters with a 3-channel stem (Huang et al.,
# CVPR 2017, Table 2); the 1-channel stem for grey images has 16 x 2 x 3 x 3 = 288 fewer.
PAPER_DENSENET40_PARAMETERS = 1_019_722
ONE_CHANNEL_STEM_SAVING = 16 * 2 * 3 * 3


@pytest.fixture(scope="module")
def model():
    return pretrained.densenet40_fashion_sample()


def test_the_shipped_model_is_listed_with_all_its_files():
    assert NAME in pretrained.available()
    folder = pretrained.folder(NAME)
    for file in ("weights.npz", "model.json", "config.json", "metrics.csv", "README.md"):
        assert (folder / file).is_file(), file


def test_weights_file_is_a_state_dict_readable_without_pickle():
    with np.load(pretrained.folder(NAME) / "weights.npz", allow_pickle=False) as archive:
        assert all(archive[name].dtype != object for name in archive.files)
    state = pretrained.load_state_dict(NAME)
    assert "features.conv0.weight" in state and "classifier.weight" in state
    assert not any(key.startswith(("optimizer", "rng", "history")) for key in state)
    assert state["features.conv0.weight"].shape == (16, 1, 3, 3)
    assert state["features.denseblock3.denselayer12.conv1.weight"].shape == (12, 16 + 12 * 35, 3, 3)


def test_parameter_count_is_the_papers_densenet40_with_a_one_channel_stem(model):
    count = sum(p.data.size for p in model.parameters())
    assert count == PAPER_DENSENET40_PARAMETERS - ONE_CHANNEL_STEM_SAVING == 1_019_434
    assert json.loads((pretrained.folder(NAME) / "model.json").read_text())["name"] == "densenet40"


def best_recorded_accuracy():
    return max(row["test_acc"] for row in pretrained.training_history(NAME))


def test_it_was_trained_for_ten_epochs_by_the_command_its_readme_states():
    config = json.loads((pretrained.folder(NAME) / "config.json").read_text())
    assert (config["model"], config["dataset"], config["epochs"]) == ("densenet40", "sample", 10)
    assert (config["optimizer"], config["nesterov"], config["batch_size"]) == ("sgd", True, 64)
    history = pretrained.training_history(NAME)
    assert [row["epoch"] for row in history] == list(range(1, 11))
    readme = (pretrained.folder(NAME) / "README.md").read_text()
    assert "python -m minidense train --model densenet40 --preset paper --epochs 10" in readme
    assert f"Test accuracy {100 * best_recorded_accuracy():.2f}%" in readme
    assert best_recorded_accuracy() >= 0.85


def test_the_project_readme_quotes_the_recorded_accuracy():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    text = " ".join(readme.split())
    assert f"**{100 * best_recorded_accuracy():.2f}% test accuracy**" in text
    placeholder = re.search(r"\{[^{}\n]*(best|test_acc|:\.\d+f)[^{}\n]*\}", readme)
    assert placeholder is None, f"unfilled placeholder in README.md: {placeholder.group(0)}"


def test_it_classifies_a_slice_of_the_real_test_split_as_well_as_recorded(model):
    train_set, test_set = get_dataset("sample", train=True), get_dataset("sample", train=False)
    loader = DataLoader(test_set, batch_size=100, limit=200, transform=standard_transform(train_set))
    result = evaluate(model, loader)
    assert model.training is False
    # 200 of the 2,000 images: within 8 points (four standard deviations) of the whole split
    assert abs(result["accuracy"] - best_recorded_accuracy()) < 0.08, result["accuracy"]
    assert result["accuracy"] >= 0.8


def test_unknown_names_list_the_shipped_ones():
    with pytest.raises(KeyError, match=NAME):
        pretrained.folder("densenet_does_not_exist")
