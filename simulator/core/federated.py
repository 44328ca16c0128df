"""Federated rounds: who takes part in a round (the server's optimiser is `simulator.core.server`).

A federated round, step by step (docs/federated.md):

1. **Selection.** With a pool (``clients`` = N, the last B = ``nb_real_byz``
   of them Byzantine), m clients are sampled uniformly without replacement
   each round (``clients_per_round``, or ``participation`` p: m = round(p N))
   from the run's "clients" generator; f_t of them are Byzantine
   (hypergeometric). Without a pool, every worker takes part.
2. **Local steps.** Each selected honest client starts from the global
   parameters w, takes K = ``local_steps`` SGD steps on its own partition
   (`Engine.local_updates`) and sends its update w_K - w, through worker
   momentum when momentum is placed at the workers.
3. The attack sees the selected honest clients' updates and makes the f_t
   Byzantine vectors; the rule combines the m vectors, told the declared f, or
   f_t with ``known_f``.
4. **The server** treats G = -aggregate as a gradient (FedOpt's
   pseudo-gradient) and steps with its optimiser ``server_opt``: ``sgd(lr=1)``,
   w <- w - lr * G (the server and update momentum placements apply to G; lr 1
   is FedAvg), or ``adam(...)``/``yogi(...)`` (Reddi et al., "Adaptive Federated Optimization", ICLR 2021).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from simulator.core.config import Config

__all__ = ["Selection", "Everyone", "ClientPool", "participants"]


@dataclass(frozen=True)
class Selection:
    """The workers of one step: rows of the honest and of the Byzantine samplers, and the f the rule is told."""

    honest: torch.Tensor     # int64 indices of the honest workers (clients) taking part
    byzantine: torch.Tensor  # int64 indices of the Byzantine ones
    told_f: int
    nb_honest: int           # honest workers (clients) of the run: the Byzantine ones' identities follow theirs

    @property
    def f(self) -> int:
        """How many Byzantine vectors this step has."""
        return len(self.byzantine)

    @property
    def clients(self) -> torch.Tensor:
        """int64 [n]: the identity of the sender of each vector the rule combines, in its rows' order (honest
        first): an honest worker (client) is its index, a Byzantine one nb_honest + its index. Without a pool,
        0..n-1; stable across rounds, so a rule may keep state per client (FoolsGold)."""
        return torch.cat([self.honest, self.byzantine + self.nb_honest])


class Everyone:
    """No pool: every worker takes part in every step, the rule told the declared f."""

    def __init__(self, config: Config) -> None:
        self._selection = Selection(torch.arange(config.nb_honest), torch.arange(config.real_byz),
                                    config.nb_decl_byz, config.nb_honest)

    def select(self) -> Selection:
        return self._selection

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class ClientPool:
    """N clients, the last B Byzantine; m sampled uniformly without replacement each round."""

    def __init__(self, config: Config, generator: torch.Generator) -> None:
        self.honest, self.byzantine = config.nb_honest, config.real_byz
        self.per_round, self.declared, self.known_f = config.per_round, config.nb_decl_byz, config.known_f
        self.generator = generator

    def select(self) -> Selection:
        chosen = torch.randperm(self.honest + self.byzantine, generator=self.generator)[:self.per_round].sort().values
        honest, byzantine = chosen[chosen < self.honest], chosen[chosen >= self.honest] - self.honest
        return Selection(honest, byzantine, len(byzantine) if self.known_f else self.declared, self.honest)

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])


def participants(config: Config, generator: torch.Generator) -> Everyone | ClientPool:
    """Who takes part in each step of this run."""
    return ClientPool(config, generator) if config.clients is not None else Everyone(config)
