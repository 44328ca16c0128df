"""Per-worker sampling: own partition only, epochs without replacement, exact resume."""
import io

import pytest
import torch

from experiments.tools import UserException
from simulator.core.sampler import ROW, WorkerSampler, worker_seed


def dataset(size: int = 60):
    """Inputs whose single feature is the sample's index, so a batch shows which samples it drew."""
    inputs = torch.arange(size, dtype=torch.float32).view(size, 1, 1)
    return inputs, torch.arange(size) % 10


def make(parts, batch_size=4, seed=0, size=60) -> WorkerSampler:
    return WorkerSampler(*dataset(size), [torch.as_tensor(p) for p in parts], batch_size, seed)


def drawn(batch) -> torch.Tensor:
    """The sample indices of a batch, [n, b]."""
    return batch[0].view(batch[0].shape[0], -1).long()


def test_batches_are_stacked_per_worker_and_come_from_each_workers_own_partition():
    parts = [torch.arange(0, 20), torch.arange(20, 50), torch.arange(50, 60)]
    sampler = make(parts, batch_size=4)
    for _ in range(10):
        inputs, targets = sampler.sample()
        assert inputs.shape == (3, 4, 1, 1) and targets.shape == (3, 4)
        indices = drawn((inputs, targets))
        assert torch.equal(targets, indices % 10)
        for i, part in enumerate(parts):
            assert torch.isin(indices[i], part).all()


def test_each_epoch_visits_every_sample_of_the_partition_exactly_once():
    parts = [torch.arange(0, 12), torch.arange(12, 60)]
    sampler = make(parts, batch_size=4)
    first = torch.cat([drawn(sampler.sample()) for _ in range(3)], dim=1)  # worker 0: one epoch of 12
    assert torch.equal(first[0].sort().values, parts[0])
    second = torch.cat([drawn(sampler.sample()) for _ in range(3)], dim=1)
    assert torch.equal(second[0].sort().values, parts[0])
    assert not torch.equal(first[0], second[0])  # a fresh permutation each epoch
    rest = torch.cat([first[1], second[1], torch.cat([drawn(sampler.sample())[1] for _ in range(6)])])
    assert torch.equal(rest.sort().values, parts[1])  # 48 samples = 12 batches, each once


def test_a_partition_smaller_than_the_batch_wraps_around_evenly():
    sampler = make([torch.tensor([3, 7, 9])], batch_size=8)
    counts = torch.bincount(torch.cat([drawn(sampler.sample())[0] for _ in range(3)]), minlength=10)
    assert counts[[3, 7, 9]].tolist() == [8, 8, 8] and counts.sum() == 24
    assert sampler.epochs.item() == ROW // 3  # as many whole epochs as a row holds, drawn at once


def permutations(part: torch.Tensor, seed: int, count: int) -> torch.Tensor:
    """The stream a worker walks: its generator's permutations of its partition, one after the other."""
    generator = torch.Generator().manual_seed(seed)
    return torch.cat([part[torch.randperm(len(part), generator=generator)] for _ in range(count)])


def test_the_batches_walk_the_workers_permutations_in_order_however_the_table_is_filled():
    parts = [torch.arange(0, 7), torch.arange(7, 60)]
    sampler = make(parts, batch_size=5, seed=3)
    got = torch.cat([drawn(sampler.sample()) for _ in range(400)], dim=1)  # 2000 samples: refills of worker 0
    for i, part in enumerate(parts):
        want = permutations(part, worker_seed(3, i), 2000 // len(part) + 1)[:2000]
        assert torch.equal(got[i], want)


def test_a_checkpoint_with_a_narrower_table_resumes_on_the_same_stream(monkeypatch):
    """Checkpoints written before rows held `ROW` indices have a table as wide as the largest partition + b."""
    parts = [torch.arange(0, 7), torch.arange(7, 20)]
    with monkeypatch.context() as patch:
        patch.setattr("simulator.core.sampler.ROW", 0)
        old = make(parts, batch_size=5, seed=3)
        [old.sample() for _ in range(3)]
    state = old.state_dict()
    assert state["table"].shape == (2, 13 + 5)
    resumed = make(parts, batch_size=5, seed=99)
    resumed.load_state_dict(state)
    got = torch.cat([drawn(resumed.sample()) for _ in range(50)], dim=1)
    for i, part in enumerate(parts):
        assert torch.equal(got[i], permutations(part, worker_seed(3, i), 300 // len(part) + 2)[15:265])
    with pytest.raises(UserException, match="different partition"):
        resumed.load_state_dict({**state, "table": state["table"][:, :17]})  # narrower than any table was


def test_the_same_seed_gives_the_same_batches_and_workers_get_different_streams():
    parts = [torch.arange(0, 30), torch.arange(30, 60)]
    a, b, c = make(parts, seed=5), make(parts, seed=5), make(parts, seed=6)
    batches_a = [drawn(a.sample()) for _ in range(5)]
    assert all(torch.equal(x, drawn(b.sample())) for x in batches_a)
    assert not all(torch.equal(x, drawn(c.sample())) for x in batches_a)
    assert worker_seed(5, 0) != worker_seed(5, 1) != worker_seed(6, 1)


def test_a_restored_state_draws_exactly_the_same_batches():
    parts = [torch.arange(0, 10), torch.arange(10, 13), torch.arange(13, 60)]
    sampler = make(parts, batch_size=4, seed=1)
    for _ in range(4):
        sampler.sample()
    buffer = io.BytesIO()
    torch.save(sampler.state_dict(), buffer)
    expected = [drawn(sampler.sample()) for _ in range(7)]
    resumed = make(parts, batch_size=4, seed=99)
    resumed.sample()
    buffer.seek(0)
    resumed.load_state_dict(torch.load(buffer))
    assert all(torch.equal(x, drawn(resumed.sample())) for x in expected)


def test_bad_arguments_are_refused():
    with pytest.raises(UserException, match="batch size"):
        make([torch.arange(5)], batch_size=0)
    with pytest.raises(UserException, match="non-empty"):
        make([torch.arange(5), torch.arange(0)])
    with pytest.raises(UserException, match="different partition"):
        make([torch.arange(5)]).load_state_dict(make([torch.arange(5), torch.arange(5, 9)]).state_dict())
