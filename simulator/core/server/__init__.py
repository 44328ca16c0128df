"""The server's optimiser: registered plug-ins named by a spec (``adam(lr=0.01)``).

The server steps on the aggregate: in one-gradient steps ``sgd`` subtracts the
scheduled lr times it, through the momentum placements (`simulator.core.optim`);
in federated rounds it treats G = -aggregate as a gradient (FedOpt's
pseudo-gradient) and steps with its own ``lr``: ``sgd(lr=1)`` is FedAvg,
``adam(...)`` and ``yogi(...)`` are FedOpt's (Reddi et al., "Adaptive Federated
Optimization", ICLR 2021). A new optimiser is one module in this package: a
`ServerOptimizer` subclass decorated with ``@register("name")``.
"""
from __future__ import annotations

import torch

from experiments.plugin import Plugin
from experiments.registry import Registry
from simulator.core.optim import Momentum

__all__ = ["SERVER_OPTIMIZERS", "ServerOptimizer", "ServerSGD", "FedOpt", "register"]


class ServerOptimizer(Plugin):
    """The server's step: ``start(...)`` gives the stepper of one run, ``lr`` its rate in federated rounds."""

    family = "server optimiser"
    lr: float = 1.0

    def validate(self) -> None:
        self.need(self.lr > 0, "lr > 0")

    def start(self, momentum: Momentum, dim: int, device: torch.device, dtype: torch.dtype) -> "ServerSGD | FedOpt":
        raise NotImplementedError


SERVER_OPTIMIZERS: Registry[type[ServerOptimizer]] = Registry("server optimiser", packages=("simulator.core.server",))
register = SERVER_OPTIMIZERS.register


@register("sgd")
class SGD(ServerOptimizer):
    """SGD with the momentum placements (lr 1 on -aggregate is FedAvg)"""

    def start(self, momentum: Momentum, dim: int, device: torch.device, dtype: torch.dtype) -> "ServerSGD":
        return ServerSGD(momentum)


@register("adam")
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


@register("yogi")
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
