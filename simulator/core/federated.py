"""Federated rounds: who takes part in a round, and the server's optimiser.

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
   pseudo-gradient) and steps: w <- w - server_lr * G for ``sgd`` (the server
   and update momentum placements apply to G; server_lr = 1 is FedAvg), or
   Adam/Yogi (Reddi et al., "Adaptive Federated Optimization", ICLR 2021).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from simulator.core.config import Config
from simulator.core.optim import Momentum

__all__ = ["Selection", "Everyone", "ClientPool", "participants", "ServerSGD", "FedOpt", "server_optimizer"]


@dataclass(frozen=True)
class Selection:
    """The workers of one step: rows of the honest and of the Byzantine samplers, and the f the rule is told."""

    honest: torch.Tensor     # int64 indices of the honest workers (clients) taking part
    byzantine: torch.Tensor  # int64 indices of the Byzantine ones
    told_f: int

    @property
    def f(self) -> int:
        """How many Byzantine vectors this step has."""
        return len(self.byzantine)


class Everyone:
    """No pool: every worker takes part in every step, the rule told the declared f."""

    def __init__(self, config: Config) -> None:
        self._selection = Selection(torch.arange(config.nb_honest), torch.arange(config.real_byz),
                                    config.nb_decl_byz)

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
        return Selection(honest, byzantine, len(byzantine) if self.known_f else self.declared)

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])


def participants(config: Config, generator: torch.Generator) -> Everyone | ClientPool:
    """Who takes part in each step of this run."""
    return ClientPool(config, generator) if config.clients is not None else Everyone(config)


class ServerSGD:
    """The step of a run without a server optimiser: momentum placements on the aggregate, scaled by lr.

    One-gradient steps subtract ``lr`` times the (momentum-processed) aggregate;
    federated rounds pass G = -aggregate and ``server_lr`` instead.
    """

    def __init__(self, momentum: Momentum) -> None:
        self.momentum = momentum

    def update(self, gradient: torch.Tensor, params: torch.Tensor, lr: float) -> torch.Tensor:
        """The vector to subtract from the parameters."""
        return self.momentum.update(gradient, params, lr)

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class FedOpt:
    """Server Adam or Yogi on the pseudo-gradient G (Reddi et al., ICLR 2021, Algorithm 2).

    m <- b1 m + (1 - b1) G; v <- b2 v + (1 - b2) G^2 (Adam) or v - (1 - b2) G^2 sign(v - G^2)
    (Yogi); the update is lr m / (sqrt(v) + tau), with v started at tau^2, no bias correction.
    Weight decay adds weight_decay * params to G first.
    """

    def __init__(self, kind: str, betas: list[float], tau: float, weight_decay: float, dim: int,
                 device: torch.device, dtype: torch.dtype) -> None:
        self.kind, (self.beta1, self.beta2), self.tau, self.weight_decay = kind, betas, tau, weight_decay
        self.m = torch.zeros(dim, device=device, dtype=dtype)
        self.v = torch.full((dim,), tau * tau, device=device, dtype=dtype)

    def update(self, gradient: torch.Tensor, params: torch.Tensor, lr: float) -> torch.Tensor:
        if self.weight_decay:
            gradient = gradient + self.weight_decay * params
        self.m.mul_(self.beta1).add_(gradient, alpha=1 - self.beta1)
        square = gradient.square()
        if self.kind == "adam":
            self.v.mul_(self.beta2).add_(square, alpha=1 - self.beta2)
        else:
            self.v.sub_((1 - self.beta2) * square * torch.sign(self.v - square))
        return lr * self.m / (self.v.sqrt() + self.tau)

    def state_dict(self) -> dict:
        return {"m": self.m.clone(), "v": self.v.clone()}

    def load_state_dict(self, state: dict) -> None:
        self.m.copy_(state["m"])
        self.v.copy_(state["v"])


def server_optimizer(config: Config, momentum: Momentum, dim: int, device: torch.device,
                     dtype: torch.dtype) -> ServerSGD | FedOpt:
    """The server's step of this run."""
    if config.server_opt == "sgd":
        return ServerSGD(momentum)
    return FedOpt(config.server_opt, config.server_betas, config.server_eps, config.weight_decay, dim, device, dtype)
