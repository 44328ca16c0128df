"""Data heterogeneity: every mode covers the set exactly once, and its statistics match its definition."""
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from experiments.tools import UnavailableException, UserException
from simulator.core import partition as heterogeneity
from simulator.core.partition import partition

MODES = {"iid": {}, "extreme": {}, "gamma": {"gamma": 0.5}, "dirichlet": {"alpha": 1.0}}


def balanced(classes: int = 10, per_class: int = 100) -> torch.Tensor:
    """Labels of a balanced set, shuffled deterministically."""
    labels = torch.arange(classes).repeat_interleave(per_class)
    return labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))]


def split(mode: str, labels: torch.Tensor, n: int, seed: int = 0, **params) -> list[torch.Tensor]:
    return partition(labels, n, mode, torch.Generator().manual_seed(seed), **params)


def classes_per_worker(labels: torch.Tensor, parts: list[torch.Tensor]) -> list[int]:
    return [len(labels[p].unique()) for p in parts]


@settings(max_examples=30, deadline=None)
@given(mode=st.sampled_from(sorted(MODES)), n=st.integers(1, 30), size=st.integers(30, 300),
       classes=st.integers(1, 12), seed=st.integers(0, 2**31))
def test_every_mode_gives_each_worker_a_disjoint_nonempty_share_of_the_whole_set(mode, n, size, classes, seed):
    assume(mode != "dirichlet" or size >= 5 * n)  # tiny sets can leave a Dirichlet worker empty (tested below)
    labels = torch.randint(classes, (size,), generator=torch.Generator().manual_seed(seed))
    parts = split(mode, labels, n, seed, **({"alpha": 10.0} if mode == "dirichlet" else MODES[mode]))
    assert len(parts) == n
    assert all(p.dtype == torch.int64 and p.numel() > 0 for p in parts)
    assert torch.equal(torch.cat(parts).sort().values, torch.arange(size))


@pytest.mark.parametrize("mode", sorted(MODES))
def test_the_same_generator_seed_gives_the_same_partition(mode):
    labels = balanced()
    first, again = split(mode, labels, 7, 3, **MODES[mode]), split(mode, labels, 7, 3, **MODES[mode])
    other = split(mode, labels, 7, 4, **MODES[mode])
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not all(torch.equal(a, b) for a, b in zip(first, other))


def test_iid_shares_are_equal_in_size_and_each_holds_every_class():
    labels = balanced()
    parts = split("iid", labels, 10)
    assert {len(p) for p in parts} == {100}
    assert min(classes_per_worker(labels, parts)) >= 8


def test_extreme_gives_each_worker_one_or_two_classes():
    labels = balanced()
    parts = split("extreme", labels, 25)
    assert max(classes_per_worker(labels, parts)) <= 2
    assert {len(p) for p in parts} == {40}


def test_gamma_one_is_iid_and_gamma_zero_is_label_sorted():
    labels = balanced()
    assert min(classes_per_worker(labels, split("gamma", labels, 10, gamma=1.0))) >= 8
    assert classes_per_worker(labels, split("gamma", labels, 10, gamma=0.0)) == [1] * 10


def test_gamma_gives_each_worker_a_fraction_gamma_of_iid_samples():
    """Worker 0's sorted shard is all class 0; everything else it holds comes from its iid share."""
    labels = balanced()
    parts = split("gamma", labels, 10, gamma=0.3)
    assert {len(p) for p in parts} == {100}
    foreign = (labels[parts[0]] != 0).sum().item()
    assert 20 <= foreign <= 30  # 30 iid samples, of which about 9/10 are not class 0


def test_dirichlet_skew_grows_as_alpha_shrinks():
    labels = balanced(10, 200)

    def mean_dominant_share(alpha: float) -> float:
        parts = split("dirichlet", labels, 10, 1, alpha=alpha)
        return sum(torch.bincount(labels[p], minlength=10).max().item() / len(p) for p in parts) / len(parts)

    skewed, mild, flat = mean_dominant_share(0.1), mean_dominant_share(1.0), mean_dominant_share(1000.0)
    assert skewed > mild > flat
    assert skewed > 0.5 and flat < 0.2


def test_names_and_descriptions():
    assert heterogeneity.names() == ["dirichlet", "extreme", "gamma", "iid"]
    assert all(heterogeneity.describe(name) for name in heterogeneity.names())
    with pytest.raises(UnavailableException, match="iid"):
        heterogeneity.describe("idd")


@pytest.mark.parametrize("mode, params, message", [
    ("idd", {}, "Unknown heterogeneity 'idd'. Did you mean 'iid'"),
    ("dirichlet", {}, "needs the parameter alpha"),
    ("dirichlet", {"alpha": 0.0}, "alpha must be positive"),
    ("dirichlet", {"alpha": float("nan")}, "alpha must be a finite number"),
    ("gamma", {"gamma": 1.5}, "gamma must be in"),
    ("gamma", {"gamma": "half"}, "gamma must be a finite number"),
    ("iid", {"alpha": 0.5}, "does not take alpha"),
])
def test_bad_modes_and_parameters_raise_one_clear_sentence(mode, params, message):
    with pytest.raises(UserException, match=message):
        split(mode, balanced(), 5, **params)


def test_more_workers_than_samples_or_an_impossible_dirichlet_is_refused():
    with pytest.raises(UserException, match="Cannot give each of 20 workers"):
        split("iid", torch.arange(10), 20)
    with pytest.raises(UserException, match="without samples"):
        split("dirichlet", balanced(2, 10), 15, alpha=0.001)
    with pytest.raises(UserException, match="1-D integer"):
        split("iid", torch.rand(10), 2)
