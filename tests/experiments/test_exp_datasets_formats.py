"""The offline readers, on small files in the real on-disk formats written here."""
import gzip
import pickle
import struct

import numpy as np
import pytest
import torch

from experiments import UnavailableException, UserException, datasets
from experiments.datasets import idx


def write_idx(path, array, gz=False):
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    (gzip.open if gz else open)(path, "wb").write(data)


def write_mnist(folder, n_train=6, n_test=4, gz=True, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        suffix = ".gz" if gz else ""
        write_idx(folder / f"{prefix}-images-idx3-ubyte{suffix}", images, gz)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", labels, gz)
        arrays[prefix] = (images, labels)
    return arrays


def write_cifar(folder, per_batch=2):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8)
        data[0, :1024], data[0, 1024:2048], data[0, 2048:] = 255, 0, 51  # first image: R=1, G=0, B=0.2
        batch = {b"data": data, b"labels": [int(x) for x in rng.integers(0, 10, per_batch)], b"batch_label": b"x"}
        with open(folder / name, "wb") as file:
            pickle.dump(batch, file)


def test_read_idx_plain_and_gzipped(tmp_path):
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "a", array)
    write_idx(tmp_path / "b.gz", array, gz=True)
    assert np.array_equal(idx.read_idx(tmp_path / "a"), array)
    assert np.array_equal(idx.read_idx(tmp_path / "b.gz"), array)


def test_read_idx_rejects_bad_files(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x01\x02\x03\x04rest")
    with pytest.raises(UserException, match="magic"):
        idx.read_idx(tmp_path / "bad")
    write_idx(tmp_path / "short", np.zeros((2, 2), dtype=np.uint8))
    (tmp_path / "short").write_bytes((tmp_path / "short").read_bytes()[:-1])
    with pytest.raises(UserException, match="truncated"):
        idx.read_idx(tmp_path / "short")


def test_mnist_in_torchvision_layout_matches_the_default_transform(tmp_path):
    arrays = write_mnist(tmp_path / "MNIST" / "raw", gz=True)
    inputs, labels = datasets.load_tensors("mnist", train=True, root=tmp_path)
    assert inputs.shape == (6, 1, 28, 28) and inputs.dtype == torch.float32 and labels.dtype == torch.int64
    assert labels.tolist() == arrays["train"][1].tolist()
    expected = (torch.from_numpy(arrays["train"][0]).float() / 255 - 0.1307) / 0.3081
    assert torch.allclose(inputs[:, 0], expected, atol=1e-6)
    test_set = datasets.build("mnist", tmp_path, train=False)
    test_inputs, _ = datasets.load_tensors("mnist", train=False, root=tmp_path)
    assert torch.equal(torch.stack([test_set[i][0] for i in range(4)]), test_inputs)
    assert [test_set[i][1] for i in range(4)] == arrays["t10k"][1].tolist()


def test_fashionmnist_uncompressed_directly_in_the_root(tmp_path):
    arrays = write_mnist(tmp_path, n_train=3, n_test=2, gz=False)
    inputs, labels = datasets.load_tensors("fashionmnist", train=False, root=tmp_path)
    assert inputs.shape == (2, 1, 28, 28) and labels.tolist() == arrays["t10k"][1].tolist()


def test_missing_dataset_says_where_it_looked_and_how_to_fix(tmp_path):
    with pytest.raises(UserException) as info:
        datasets.load_tensors("mnist", train=True, root=tmp_path)
    message = str(info.value)
    assert str(tmp_path / "MNIST" / "raw") in message and "train-images-idx3-ubyte" in message
    assert "BYZSIM_DATA" in message and "download=True" in message
    with pytest.raises(UserException, match="cifar-10-batches-py"):
        datasets.load_tensors("cifar10", train=False, root=tmp_path)


def test_download_only_on_request(tmp_path, monkeypatch):
    import torchvision.datasets
    calls = []

    def fake_mnist(root, train, download):
        calls.append(download)
        write_mnist(tmp_path / "MNIST" / "raw")
    monkeypatch.setattr(torchvision.datasets, "MNIST", fake_mnist)
    with pytest.raises(UserException):
        datasets.load_tensors("mnist", train=True, root=tmp_path)
    assert calls == []
    inputs, _ = datasets.load_tensors("mnist", train=True, root=tmp_path, download=True)
    assert calls == [True] and inputs.shape == (6, 1, 28, 28)


def test_cifar10_pickles(tmp_path):
    write_cifar(tmp_path / "cifar-10-batches-py")
    inputs, labels = datasets.load_tensors("cifar10", train=True, root=tmp_path)
    assert inputs.shape == (10, 3, 32, 32) and labels.shape == (10,)
    mean, std = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
    first = inputs[0, :, 0, 0].tolist()
    assert first == pytest.approx([(1 - mean[0]) / std[0], (0 - mean[1]) / std[1], (0.2 - mean[2]) / std[2]], abs=1e-5)
    test_set = datasets.build("cifar10", tmp_path, train=False)
    test_inputs, test_labels = datasets.load_tensors("cifar10", train=False, root=tmp_path)
    assert torch.equal(torch.stack([test_set[i][0] for i in range(2)]), test_inputs)
    assert test_labels.tolist() == [test_set[i][1] for i in range(2)]


def test_corrupt_cifar_batch_is_a_user_error(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    write_cifar(folder)
    (folder / "test_batch").write_bytes(b"garbage")
    with pytest.raises(UserException, match="Cannot read CIFAR-10 batch"):
        datasets.load_tensors("cifar10", train=False, root=tmp_path)


def test_digits_fixed_split_normalised_on_the_training_part():
    x_train, y_train = datasets.load_tensors("digits", train=True)
    x_test, y_test = datasets.load_tensors("digits", train=False)
    assert x_train.shape == (1437, 1, 8, 8) and x_test.shape == (360, 1, 8, 8)
    assert abs(x_train.mean().item()) < 1e-4 and x_train.std().item() == pytest.approx(1.0, abs=1e-3)
    assert torch.equal(datasets.load_tensors("digits", train=True)[0], x_train)
    from sklearn.datasets import load_digits
    counts = np.bincount(load_digits().target, minlength=10)
    assert (torch.bincount(y_train, minlength=10) + torch.bincount(y_test, minlength=10)).tolist() == counts.tolist()


def test_registry_names_and_errors():
    assert datasets.names() == ["cifar10", "cifar100", "digits", "fashionmnist", "mnist"]
    assert {n: datasets.num_classes(n) for n in datasets.names()} == {"cifar10": 10, "cifar100": 100, "digits": 10,
                                                                      "fashionmnist": 10, "mnist": 10}
    assert all("\n" not in datasets.describe(n) for n in datasets.names())
    with pytest.raises(UnavailableException, match="Did you mean 'mnist'"):
        datasets.num_classes("mnis")
    with pytest.raises(UnavailableException):
        datasets.load_tensors("imagenet", train=True)
    with pytest.raises(UserException, match="no extra arguments"):
        datasets.build("digits", None, 3)
