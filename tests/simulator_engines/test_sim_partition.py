"""Data heterogeneity: every mode covers the set exactly once, and its statistics match its definition."""
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from experiments.tools import UnavailableException, UserException
from simulator.core.heterogeneity import MODES as HETEROGENEITY
from simulator.core.heterogeneity import partition

# Every registered mode at its defaults (a new mode joins the property tests by registering).
MODES = {name: name for name in HETEROGENEITY.names()}


def balanced(classes: int = 10, per_class: int = 100) -> torch.Tensor:
    """Labels of a balanced set, shuffled deterministically."""
    labels = torch.arange(classes).repeat_interleave(per_class)
    return labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))]


def split(spec: str, labels: torch.Tensor, n: int, seed: int = 0) -> list[torch.Tensor]:
    return partition(labels, n, HETEROGENEITY.build(spec), torch.Generator().manual_seed(seed))


def classes_per_worker(labels: torch.Tensor, parts: list[torch.Tensor]) -> list[int]:
    return [len(labels[p].unique()) for p in parts]


@settings(max_examples=30, deadline=None)
@given(mode=st.sampled_from(sorted(MODES)), n=st.integers(1, 30), size=st.integers(30, 300),
       classes=st.integers(1, 12), seed=st.integers(0, 2**31))
def test_every_mode_gives_each_worker_a_disjoint_nonempty_share_of_the_whole_set(mode, n, size, classes, seed):
    assume(mode not in ("dirichlet", "groups") or size >= 5 * n)  # tiny sets can leave a worker empty (tested below)
    labels = torch.randint(classes, (size,), generator=torch.Generator().manual_seed(seed))
    assume(mode != "groups" or min(n, len(labels.unique())) >= 2)  # two groups of workers and of classes
    parts = split("dirichlet(alpha=10.0)" if mode == "dirichlet" else MODES[mode], labels, n, seed)
    assert len(parts) == n
    assert all(p.dtype == torch.int64 and p.numel() > 0 for p in parts)
    assert torch.equal(torch.cat(parts).sort().values, torch.arange(size))


@pytest.mark.parametrize("mode", sorted(MODES))
def test_the_same_generator_seed_gives_the_same_partition(mode):
    labels = balanced()
    first, again = split(MODES[mode], labels, 7, 3), split(MODES[mode], labels, 7, 3)
    other = split(MODES[mode], labels, 7, 4)
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
    assert min(classes_per_worker(labels, split("gamma(iid_fraction=1.0)", labels, 10))) >= 8
    assert classes_per_worker(labels, split("gamma(iid_fraction=0.0)", labels, 10)) == [1] * 10


def test_gamma_gives_each_worker_a_fraction_gamma_of_iid_samples():
    """Worker 0's sorted shard is all class 0; everything else it holds comes from its iid share."""
    labels = balanced()
    parts = split("gamma(iid_fraction=0.3)", labels, 10)
    assert {len(p) for p in parts} == {100}
    foreign = (labels[parts[0]] != 0).sum().item()
    assert 20 <= foreign <= 30  # 30 iid samples, of which about 9/10 are not class 0


def test_groups_give_each_group_of_workers_its_group_of_classes_iid():
    """He et al.'s dumbbell split: workers 0-4 share classes 0-4, workers 5-9 classes 5-9, every worker all five."""
    labels = balanced()
    parts = split("groups", labels, 10)
    assert [sorted(labels[p].unique().tolist()) for p in parts] == [[0, 1, 2, 3, 4]] * 5 + [[5, 6, 7, 8, 9]] * 5
    assert [len(p) for p in parts] == [100] * 10
    counts = torch.stack([torch.bincount(labels[p], minlength=10) for p in parts]).float()
    assert counts[:5, :5].std() < 6 and counts[5:, 5:].std() < 6  # about 20 of each class: shuffled, not sorted
    uneven = split("groups(k=3)", labels, 7)  # classes 0-3 | 4-6 | 7-9 to workers 0-2 | 3-4 | 5-6
    assert [sorted(labels[p].unique().tolist()) for p in uneven] == [[0, 1, 2, 3]] * 3 + [[4, 5, 6]] * 2 + [[7, 8, 9]] * 2
    with pytest.raises(UserException, match="at least k = 3 workers and classes, got 2 workers"):
        split("groups(k=3)", labels, 2)


def test_dirichlet_skew_grows_as_alpha_shrinks():
    labels = balanced(10, 200)

    def mean_dominant_share(alpha: float) -> float:
        parts = split(f"dirichlet(alpha={alpha})", labels, 10, 1)
        return sum(torch.bincount(labels[p], minlength=10).max().item() / len(p) for p in parts) / len(parts)

    skewed, mild, flat = mean_dominant_share(0.1), mean_dominant_share(1.0), mean_dominant_share(1000.0)
    assert skewed > mild > flat
    assert skewed > 0.5 and flat < 0.2


def test_names_and_descriptions():
    assert HETEROGENEITY.names() == ["dirichlet", "extreme", "gamma", "groups", "iid"]
    assert all(HETEROGENEITY.describe(name) for name in HETEROGENEITY.names())
    with pytest.raises(UnavailableException, match="iid"):
        HETEROGENEITY.describe("idd")


@pytest.mark.parametrize("spec, message", [
    ("idd", r"Unknown heterogeneity 'idd'\. Did you mean 'iid'"),
    ("dirichlet(alpha=0.0)", r"Heterogeneity 'dirichlet' needs a finite alpha > 0, got dirichlet\(alpha=0\.0\)"),
    ("dirichlet(alpha=inf)", r"Heterogeneity 'dirichlet' needs a finite alpha > 0"),
    ("dirichlet(alpha=nan)", r"Heterogeneity 'dirichlet': parameter 'alpha' must be a number, got nan"),
    ("gamma(iid_fraction=1.5)", r"Heterogeneity 'gamma' needs iid_fraction in \[0, 1\]"),
    ("gamma(iid_fraction=half)", r"Heterogeneity 'gamma': parameter 'iid_fraction' must be a number"),
    ("iid(alpha=0.5)", r"Heterogeneity 'iid' has no parameter 'alpha'; it takes no parameters"),
    ("groups(k=0)", r"Heterogeneity 'groups' needs k >= 1, got groups\(k=0\)"),
])
def test_bad_modes_and_parameters_raise_one_clear_sentence(spec, message):
    with pytest.raises(UserException, match=message):
        split(spec, balanced(), 5)


def test_a_mode_named_without_parameters_takes_its_defaults():
    """A parameter is no longer required: a bare name means the documented default."""
    assert HETEROGENEITY.build("dirichlet").alpha == 1.0
    assert HETEROGENEITY.build("gamma").iid_fraction == 0.5


def test_more_workers_than_samples_or_an_impossible_dirichlet_is_refused():
    with pytest.raises(UserException, match="Cannot give each of 20 workers"):
        split("iid", torch.arange(10), 20)
    with pytest.raises(UserException, match="without samples"):
        split("dirichlet(alpha=0.001)", balanced(2, 10), 15)
    with pytest.raises(UserException, match="1-D integer"):
        split("iid", torch.rand(10), 2)
