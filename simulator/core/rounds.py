"""What the aggregation rule is told about each step besides the vectors: `aggregators.base.RoundInfo`.

Only what some step of the rule reads (`Rule.needed`) is built, since the server's own update costs a gradient
pass: the senders' identities (`Selection.clients`); the server's own update on its root set (FLTrust), taken
as a worker takes its own, one gradient on a root batch, or the round's K local steps in a federated round,
with the workers' l2 term and clipping but no momentum, the batch-norm buffers untouched; the global parameters
and the server's step (CRFL). The simulation hands the round to the rule before the attack runs, so an
adaptive attack's `trial` sees the same round.
"""
from __future__ import annotations

from collections.abc import Callable

import torch

from aggregators.base import RoundInfo, Rule
from experiments.tools import UserException
from simulator.core.build import Pair, root_sampler, root_set
from simulator.core.config import Config
from simulator.core.engines import Engine
from simulator.core.federated import Selection
from simulator.core.weak import weakly
from simulator.core.workers import LocalSteps, LocalWorkers

__all__ = ["Rounds"]


class Rounds:
    """Builds each step's `RoundInfo` for the run's rule; holds the server's root sampler (checkpointed)."""

    def __init__(self, c: Config, rule: Rule, engine: Engine, train: Pair, num_classes: int,
                 finish: Callable[[torch.Tensor, int, bool], torch.Tensor]) -> None:
        """``finish(vectors, rows, momentum)``, a method of the simulation, is what workers apply to their raw
        vectors (l2, clipping); held weakly, so that the simulation and its rounds make no reference cycle (which
        would keep a finished run's data alive until the garbage collector's next full pass)."""
        self.config, self.needs, self.finish = c, rule.needed(), weakly(finish)
        if "lr" in self.needs:
            refuse_other_server_steps(c, rule)
        self.server: LocalWorkers | None = None
        if "reference" in self.needs:
            # `LocalWorkers.byzantine` computes vectors on a sampler's batches without moving the batch-norm
            # buffers, as the server's own update must: the root sampler stands in its Byzantine sampler.
            self.server = LocalWorkers(engine, None, root_sampler(c, train, root_set(c, len(train[1]))), num_classes)

    def info(self, step: int, chosen: Selection, local: LocalSteps | None, lr: float,
             params: torch.Tensor) -> RoundInfo:
        """This step's round: ``lr`` the scheduled rate, ``params`` the global parameters before the step."""
        needs = self.needs
        server_lr = lr if local is None else -self.config.parts["server_opt"].lr  # params - server_lr * aggregate
        return RoundInfo(clients=chosen.clients.to(params.device) if "clients" in needs else None,
                         reference=self.reference(local) if "reference" in needs else None,
                         params=params.detach().clone() if "params" in needs else None,
                         lr=server_lr if "lr" in needs else None, step=step)

    def reference(self, local: LocalSteps | None) -> torch.Tensor:
        """[d]: the server's own update on its next root batch (or batches, one per local step)."""
        return self.finish()(self.server.byzantine(None, None, local), 0, False)[0]

    def state_dict(self) -> dict:
        return {"root_sampler": self.server.byzantine_sampler.state_dict()} if self.server is not None else {}

    def load_state_dict(self, state: dict) -> None:
        if self.server is not None:
            self.server.byzantine_sampler.load_state_dict(state["root_sampler"])


def refuse_other_server_steps(c: Config, rule: Rule) -> None:
    """A rule reading the server's step sets the next parameters through it: the server must apply exactly
    ``params - lr * aggregate`` (plain SGD; momentum, if any, at the workers or ByzantineMomentum's server
    placement, which shifts the vectors before the rule; no weight decay)."""
    placement = c.momentum_at if c.momentum else None
    breaks = [what for what, broken in (
        (f"server_opt {c.server_opt}", c.parts["server_opt"].name != "sgd"),
        (f"momentum at {placement}", placement in ("aggregate", "update")),
        (f"weight_decay {c.weight_decay}", bool(c.weight_decay))) if broken]
    if breaks:
        raise UserException(f"{c.aggregator} sets the next parameters through the server's step params - lr * "
                            f"aggregate, which {' and '.join(breaks)} would change: use server_opt sgd, momentum "
                            "at the workers (or none) and no weight_decay.")
