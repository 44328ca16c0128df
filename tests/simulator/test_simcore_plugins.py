"""Every configurable part is a plug-in: one registered in a test file alone runs a whole run.

Each kind gets a throwaway plug-in defined here (a heterogeneity mode, a learning-rate
schedule, a server optimiser, an engine), named by its spec with inline parameters;
nothing outside this file knows about them.
"""
import pytest
import torch

from experiments.tools import UserException
from simulator import Config, run
from simulator.core.engines import ENGINES, EngineChoice, LoopEngine
from simulator.core.server import SERVER_OPTIMIZERS, ServerOptimizer
from simulator.core.heterogeneity import MODES, Heterogeneity
from simulator.core.schedules import SCHEDULES, Schedule


class Halves(Heterogeneity):
    """the first half of the workers share the even samples, the rest the odd ones"""

    def split(self, labels, n, generator):
        order = torch.randperm(labels.numel(), generator=generator)
        even, odd = order[order % 2 == 0], order[order % 2 == 1]
        return [*torch.tensor_split(even, n // 2), *torch.tensor_split(odd, n - n // 2)]


class Halving(Schedule):
    """the rate halves every `every` steps"""

    every: int = 1

    def validate(self):
        self.need(self.every >= 1, "every >= 1")

    def rate(self, lr, step, steps):
        return lr * 0.5 ** (step // self.every)


class Scaled(ServerOptimizer):
    """plain SGD on the pseudo-gradient, scaled by `factor`"""

    factor: float = 2.0

    def start(self, momentum, dim, device, dtype):
        return _ScaledStep(self.factor)


class _ScaledStep:
    def __init__(self, factor):
        self.factor = factor

    def update(self, gradient, lr):
        return self.factor * lr * gradient

    def state_dict(self):
        return {}

    def load_state_dict(self, state):
        pass


class Counting(EngineChoice):
    """the loop engine, counting its calls"""

    engine = LoopEngine
    calls = 0

    def make(self, model, loss_fn, *, chunk_size, seed, probe):
        type(self).calls += 1
        return super().make(model, loss_fn, chunk_size=chunk_size, seed=seed, probe=probe)


KINDS = [(MODES, "halves", Halves, dict(heterogeneity="halves")),
         (SCHEDULES, "halving", Halving, dict(lr_schedule="halving(every=2)")),
         (SERVER_OPTIMIZERS, "scaled", Scaled, dict(server_opt="scaled(factor=3)", local_steps=2)),
         (ENGINES, "counting", Counting, dict(engine="counting"))]


@pytest.fixture
def registered():
    for registry, name, cls, _ in KINDS:
        registry.register(name)(cls)
    yield
    for registry, name, _, _ in KINDS:
        registry._entries.pop(name)


@pytest.mark.parametrize("registry, name, cls, fields", KINDS, ids=[k[1] for k in KINDS])
def test_a_plugin_defined_in_a_test_file_runs_three_steps(registered, tmp_path, registry, name, cls, fields):
    config = Config(dataset="digits", nb_workers=6, nb_decl_byz=1, aggregator="median", attack="signflip",
                    steps=3, eval_every=3, output=str(tmp_path), **fields)
    assert isinstance(next(p for p in config.parts.values() if isinstance(p, cls)), cls)
    result = run(config, progress=False)
    assert result.summary["steps"] == 3 and len(result.evaluations) == 2
    assert any(str(v).startswith(name) for v in config.identity().values())


def test_the_plugins_spec_parameters_are_checked_and_printed_canonically(registered):
    assert Config(lr_schedule="HALVING(every=2.0)").lr_schedule == "halving(every=2)"
    assert Config(lr_schedule="halving").identity()["lr_schedule"] == "halving(every=1)"
    with pytest.raises(UserException, match="needs every >= 1"):
        Config(lr_schedule="halving(every=0)")
    with pytest.raises(UserException, match="has no parameter 'each'"):
        Config(lr_schedule="halving(each=2)")


def test_the_schedule_and_engine_plugins_are_used(registered, tmp_path):
    config = Config(dataset="digits", nb_workers=5, nb_decl_byz=0, steps=4, eval_every=4, lr=0.4,
                    lr_schedule="halving(every=2)", engine="counting", output=str(tmp_path))
    Counting.calls = 0
    result = run(config, progress=False)
    assert [row["lr"] for row in result.metrics] == pytest.approx([0.4, 0.4, 0.2, 0.2])
    assert Counting.calls == 1
