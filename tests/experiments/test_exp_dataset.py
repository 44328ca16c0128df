import itertools
import tempfile
from pathlib import Path

import pytest
import torch
import torchvision.transforms as T

from experiments import (Configuration, Dataset, UnavailableException, UserException, batch_dataset,
                         get_default_transform, make_datasets, make_sampler)

CPU64 = Configuration(device="cpu", dtype=torch.float64)


def test_make_sampler_restarts_and_reports_an_empty_loader():
    assert list(itertools.islice(make_sampler([1, 2, 3]), 7)) == [1, 2, 3, 1, 2, 3, 1]
    with pytest.raises(UserException, match="empty"):
        next(make_sampler([]))


def test_batch_dataset_split_and_order():
    inputs, labels = torch.arange(10.0).view(10, 1), torch.arange(10)
    test = batch_dataset(inputs, labels, train=False, batch_size=2, split=0.6)
    assert [next(test)[1].tolist() for _ in range(3)] == [[6, 7], [8, 9], [6, 7]]
    full = next(batch_dataset(inputs, labels, train=False, split=4))
    assert full[1].tolist() == [4, 5, 6, 7, 8, 9]
    train = batch_dataset(inputs, labels, train=True, batch_size=3, split=0.6)
    epoch = torch.cat([next(train)[1] for _ in range(2)])
    assert sorted(epoch.tolist()) == [0, 1, 2, 3, 4, 5]


def test_batch_dataset_shuffling_is_seeded():
    inputs, labels = torch.zeros(20, 1), torch.arange(20)

    def first_epochs(seed):
        stream = batch_dataset(inputs, labels, train=True, batch_size=15, split=15, seed=seed)
        return [next(stream)[1].tolist() for _ in range(2)]
    assert first_epochs(1) == first_epochs(1)
    assert first_epochs(1) != first_epochs(2)
    one, two = first_epochs(1)
    assert one != two  # a new permutation every epoch


def test_batch_dataset_errors():
    with pytest.raises(UserException, match="labels"):
        batch_dataset(torch.zeros(3), torch.zeros(4))
    with pytest.raises(UserException, match="empty"):
        batch_dataset(torch.zeros(4), torch.zeros(4), split=4)


def test_dataset_from_a_generator_or_a_fixed_batch():
    stream = Dataset(iter([(torch.ones(1), torch.tensor([1]))] * 3), name="stream")
    x, y = stream.sample(CPU64)
    assert x.dtype == torch.float64 and y.dtype == torch.int64 and str(stream) == "dataset stream"
    fixed = Dataset((torch.zeros(2), torch.tensor([0, 1])))
    assert all(torch.equal(fixed.sample()[1], torch.tensor([0, 1])) for _ in range(3))
    with pytest.raises(UserException, match="no finite epoch"):
        fixed.epoch()
    with pytest.raises(TypeError):
        Dataset((torch.zeros(2),), None, None, 3)


def test_named_dataset_samples_forever_and_walks_one_epoch():
    testset = Dataset("digits", train=False, batch_size=100)
    batches = list(testset.epoch(CPU64))
    assert [len(b[1]) for b in batches] == [100, 100, 100, 60]
    assert batches[0][0].dtype == torch.float64 and batches[0][0].shape[1:] == (1, 8, 8)
    sizes = [len(testset.sample()[1]) for _ in range(6)]
    assert sizes == [100, 100, 100, 60, 100, 100]
    assert torch.equal(batches[0][1], next(iter(Dataset("digits", train=False, batch_size=100).epoch()))[1])


def test_named_dataset_shuffles_with_its_seed():
    def labels(seed):
        return Dataset("digits", train=True, batch_size=16, seed=seed).sample()[1].tolist()
    assert labels(5) == labels(5) and labels(5) != labels(6)
    full = Dataset("digits", train=True)  # batch_size None: the whole set
    assert len(full.sample()[1]) == 1437


def test_make_datasets_builds_both_halves():
    trainset, testset = make_datasets("digits", train_batch=10, test_batch=0, num_workers=(0, 0))
    assert len(trainset.sample()[1]) == 10 and len(testset.sample()[1]) == 360
    with pytest.raises(UnavailableException, match="digits"):
        make_datasets("digit", num_workers=0)
    with pytest.raises(UnavailableException, match="digits"):
        Dataset("digit", transform=T.ToTensor())


def test_default_transforms_never_augment_test_sets():
    for name in ("digits", "mnist", "fashionmnist", "cifar10"):
        steps = get_default_transform(name, train=False).transforms
        assert not any(isinstance(s, (T.RandomCrop, T.RandomHorizontalFlip)) for s in steps)
        assert isinstance(steps[-1], T.Normalize)
    assert any(isinstance(s, T.RandomHorizontalFlip) for s in get_default_transform("cifar10", True).transforms)
    assert isinstance(get_default_transform("svhn", True), T.ToTensor)  # a torchvision name byzsim does not register
    with pytest.raises(UnavailableException):
        get_default_transform("nope", True)


def test_torchvision_fallback_without_files_is_a_user_error(tmp_path):
    with pytest.raises(UserException, match="cifar100"):
        Dataset("cifar100", root=tmp_path)


def test_default_root(monkeypatch, tmp_path):
    monkeypatch.setenv("BYZSIM_DATA", str(tmp_path / "data"))
    assert Dataset.get_default_root() == tmp_path / "data"
    monkeypatch.delenv("BYZSIM_DATA")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert Dataset.get_default_root() == Path(tempfile.gettempdir())
    (tmp_path / ".cache" / "byzsim" / "data").mkdir(parents=True)
    assert Dataset.get_default_root() == tmp_path / ".cache" / "byzsim" / "data"


from hypothesis import given, settings, strategies as st


@settings(max_examples=25, deadline=None)
@given(n=st.integers(2, 40), batch=st.integers(1, 50), seed=st.integers(0, 2**31))
def test_every_training_epoch_is_a_permutation_of_the_training_part(n, batch, seed):
    count = max(1, n // 2)
    stream = batch_dataset(torch.zeros(n, 1), torch.arange(n), train=True, batch_size=batch, split=count, seed=seed)
    per_epoch = -(-count // min(batch, count))
    for _ in range(2):
        seen = torch.cat([next(stream)[1] for _ in range(per_epoch)])
        assert sorted(seen.tolist()) == list(range(count))
