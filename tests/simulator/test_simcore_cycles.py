"""A finished run leaves nothing of its own in reference cycles. A grid runs many runs in one process, and a cycle
keeps a run's model, data and buffers alive until the garbage collector's next full pass, which allocations of
tensors do not hasten: a 360-run study's worker grew by about 100 MB a run until it was killed for memory."""
import gc
import weakref

import pytest
import torch

from simulator.core.config import Config
from simulator.core.run import run

CASES = {
    "server": {},
    "server, FLTrust": {"aggregator": "fltrust"},
    "DP-SGD": {"privacy": "dpsgd(clip=1,sigma=1)"},
    "federated, DP-FedAvg": {"local_steps": 2, "privacy": "dpfedavg(clip=1,sigma=1)"},
    "decentralised": {"topology": "ring", "aggregator": "clippedgossip", "attack": "dissensus",
                      "momentum_at": "worker"},
    "decentralised, a neighbourhood rule": {"topology": "ring", "aggregator": "median", "attack": "alie"},
}
OURS = ("simulator", "aggregators", "attacks", "experiments")


@pytest.mark.parametrize("extra", CASES.values(), ids=CASES)
def test_a_finished_run_leaves_no_tensor_or_part_of_its_own_in_a_reference_cycle(extra, tmp_path):
    config = Config(dataset="digits", model="simples-digits", nb_workers=8, nb_decl_byz=1, steps=4, eval_every=2,
                    checkpoint_every=4, output=str(tmp_path), **extra)
    gc.collect()
    gc.disable()
    try:
        run(config, progress=False)
        gc.set_debug(gc.DEBUG_SAVEALL)  # what the next pass finds unreachable is kept in gc.garbage to be looked at
        gc.collect()
        caught = sorted({type(o).__name__ for o in gc.garbage
                         if isinstance(o, torch.Tensor) or type(o).__module__.startswith(OURS)})
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert caught == []


def test_the_grid_frees_a_run_caught_in_a_cycle_before_the_next(monkeypatch):
    """A plug-in of the user's may still make a cycle: the grid's worker collects after every run."""
    from simulator.grid import runner

    class Held:  # a run's state in a cycle with itself
        def __init__(self):
            self.me = self

    left = []

    def cyclic_run(config, **kwargs):
        held = Held()
        left.append(weakref.ref(held))

    monkeypatch.setattr(runner, "run", cyclic_run)
    gc.disable()
    try:
        assert runner._run_one(Config(dataset="digits").to_dict())[1] is None
        assert left and left[0]() is None
    finally:
        gc.enable()
