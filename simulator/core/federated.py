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
   pseudo-gradient) and steps with its optimiser ``server_opt``: ``sgd(lr=1)``,
   w <- w - lr * G (the server and update momentum placements apply to G; lr 1
   is FedAvg), or ``adam(...)``/``yogi(...)`` (Reddi et al., "Adaptive Federated Optimization", ICLR 2021).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from experiments.plugin import Plugin
from experiments.registry import Registry
from simulator.core.optim import Momentum

if TYPE_CHECKING:
    from simulator.core.config import Config

__all__ = ["Selection", "Everyone", "ClientPool", "participants", "SERVER_OPTIMIZERS", "ServerOptimizer",
           "ServerSGD", "FedOpt"]


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


class ServerOptimizer(Plugin):
    """The server's step: ``start(...)`` gives the stepper of one run, ``lr`` its rate in federated rounds."""

    family = "server optimiser"
    lr: float = 1.0

    def validate(self) -> None:
        self.need(self.lr > 0, "lr > 0")

    def start(self, momentum: Momentum, dim: int, device: torch.device, dtype: torch.dtype) -> "ServerSGD | FedOpt":
        raise NotImplementedError


SERVER_OPTIMIZERS: Registry[type[ServerOptimizer]] = Registry("server optimiser")


@SERVER_OPTIMIZERS.register("sgd")
class SGD(ServerOptimizer):
    """SGD with the momentum placements (lr 1 on -aggregate is FedAvg)"""

    def start(self, momentum: Momentum, dim: int, device: torch.device, dtype: torch.dtype) -> "ServerSGD":
        return ServerSGD(momentum)


@SERVER_OPTIMIZERS.register("adam")
class Adam(ServerOptimizer):
    """FedAdam (Reddi et al., ICLR 2021): Adam on the pseudo-gradient, no bias correction"""

    beta1: float = 0.9
    beta2: float = 0.99
    tau: float = 1e-3  # the adaptivity; the second moment starts at tau^2

    def validate(self) -> None:
        super().validate()
        self.need(0 <= self.beta1 < 1 and 0 <= self.beta2 < 1 and self.tau > 0, "beta1, beta2 in [0, 1) and tau > 0")

    def start(self, momentum: Momentum, dim: int, device: torch.device, dtype: torch.dtype) -> "FedOpt":
        return FedOpt(self.name, [self.beta1, self.beta2], self.tau, dim, device, dtype)


@SERVER_OPTIMIZERS.register("yogi")
class Yogi(Adam):
    """FedYogi (Reddi et al., ICLR 2021): Yogi's additive second moment on the pseudo-gradient"""


class ServerSGD:
    """The step of a run without a server optimiser: momentum placements on the aggregate, scaled by lr.

    One-gradient steps subtract ``lr`` times the (momentum-processed) aggregate;
    federated rounds pass G = -aggregate and the server optimiser's ``lr`` instead.
    """

    def __init__(self, momentum: Momentum) -> None:
        self.momentum = momentum

    def update(self, gradient: torch.Tensor, lr: float) -> torch.Tensor:
        """The vector to subtract from the parameters."""
        return self.momentum.update(gradient, lr)

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class FedOpt:
    """Server Adam or Yogi on the pseudo-gradient G (Reddi et al., ICLR 2021, Algorithm 2).

    m <- b1 m + (1 - b1) G; v <- b2 v + (1 - b2) G^2 (Adam) or v - (1 - b2) G^2 sign(v - G^2)
    (Yogi); the update is lr m / (sqrt(v) + tau), with v started at tau^2, no bias correction.
    """

    def __init__(self, kind: str, betas: list[float], tau: float, dim: int, device: torch.device,
                 dtype: torch.dtype) -> None:
        self.kind, (self.beta1, self.beta2), self.tau = kind, betas, tau
        self.m = torch.zeros(dim, device=device, dtype=dtype)
        self.v = torch.full((dim,), tau * tau, device=device, dtype=dtype)

    def update(self, gradient: torch.Tensor, lr: float) -> torch.Tensor:
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
