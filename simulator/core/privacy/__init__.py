"""Differential privacy beside robustness: a registered plug-in per mechanism, named by a spec (``--privacy``).

- ``none``: no privacy (the default; every run made before privacy keeps its id).
- ``dpsgd(clip=1.0, sigma=1.0, delta=1e-5, ...)``: local DP-SGD at every honest
  worker (Abadi et al., "Deep Learning with Differential Privacy", CCS 2016):
  per-sample gradients clipped to ``clip``, Gaussian noise of std sigma clip on
  their sum, divided by the batch size, before the worker's l2 term, clipping
  and momentum; in federated rounds at every local step. Sample-level privacy
  of each honest worker's partition.
- ``dpfedavg(clip=0.1, sigma=1.0, delta=1e-5, ...)``: user-level DP at the
  server (McMahan et al., "Learning Differentially Private Recurrent Language
  Models", ICLR 2018): each honest client's update clipped to ``clip`` before
  the rule, Gaussian noise added once to the rule's output; adaptive clipping
  (Andrew et al., "Differentially Private Learning with Adaptive Clipping",
  NeurIPS 2021) with ``adaptive=true``.

Byzantine workers are not bound by the protocol: their vectors, a data
attack's honest-looking ones included, are neither clipped nor noised.
Accounting is Opacus's (`simulator.core.privacy.accounting`): RDP or PRV,
epsilon at the mechanism's delta after every evaluation; ``epsilon=`` in place
of ``sigma`` calibrates the noise before the run. A mechanism is a `Privacy`
plug-in: `relations` states what it needs of the run's other fields (checked
with the config), `start` builds the run's `Mechanism` once the data is known
(before anything is written). A new one is one module in this package,
decorated with ``@register("name")``.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

import torch

from experiments.plugin import Plugin
from experiments.registry import Registry

from simulator.core.engines import Engine

if TYPE_CHECKING:
    from simulator.core.config import Config
    from simulator.core.privacy.dpsgd import PerSample

__all__ = ["PRIVACY", "Privacy", "Mechanism", "Setup", "register"]


@dataclass(frozen=True)
class Setup:
    """What a mechanism needs of a run to start: its config, where it runs, its honest data and its engine."""

    config: "Config"
    device: torch.device
    dtype: torch.dtype
    dimension: int             # d, the model's parameters
    partition_sizes: list[int]  # each honest worker's (client's) training samples
    seed: int                  # the seed of the mechanism's own noise
    engine: Engine             # the run's gradient engine (DP-SGD checks its per-sample pass)
    probe: tuple[torch.Tensor, torch.Tensor]  # two training samples and their labels


class Mechanism:
    """A private run's mechanism, asked at each step (see `simulator.core.simulation`); the default does nothing.

    `per_sample`: DP-SGD's gradients for the honest workers (`LocalWorkers`), or None.
    """

    per_sample: "PerSample | None" = None

    def sent(self, honest: torch.Tensor) -> torch.Tensor:
        """What the honest workers send [h, d], given their vectors after l2, clipping and momentum."""
        return honest

    def seen(self, honest: torch.Tensor, finish: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """The honest vectors the attack sees; ``finish`` is the workers' l2, clipping and momentum."""
        return honest

    def released(self, aggregate: torch.Tensor, byzantine: torch.Tensor) -> torch.Tensor:
        """The rule's output as the server applies it; the step is counted by the accountant."""
        raise NotImplementedError

    def epsilon(self) -> float:
        raise NotImplementedError

    def summary(self) -> dict:
        raise NotImplementedError

    def state_dict(self) -> dict:
        raise NotImplementedError

    def load_state_dict(self, state: dict) -> None:
        raise NotImplementedError


class Privacy(Plugin):
    """A privacy mechanism: ``relations(config)`` to check, ``start(setup)`` the run's `Mechanism` (None: off)."""

    family: ClassVar[str] = "privacy mechanism"
    per_sample: ClassVar[bool] = False  # whether the honest workers clip each sample's gradient (engines' memory)

    def relations(self, c: "Config") -> list[tuple[bool, str]]:
        """What must hold between this mechanism and the run's other fields: (holds, what is needed)."""
        return []

    def start(self, setup: Setup) -> Mechanism | None:
        return None


class GaussianPrivacy(Privacy):
    """What both Gaussian mechanisms take: the clip norm C, the noise multiplier sigma (or a target epsilon, from
    which sigma is calibrated before the run), delta, and Opacus's accountant."""

    clip: float = 1.0
    sigma: float = 1.0
    delta: float = 1e-5
    epsilon: float | None = None  # a target: sigma is calibrated before the run
    accountant: Literal["prv", "rdp"] = "prv"

    def validate(self) -> None:
        self.need(0 < self.clip < math.inf, "clip > 0 (finite)")
        self.need(0 < self.sigma < math.inf, "sigma > 0 (finite)")
        self.need(0 < self.delta < 1, "0 < delta < 1")
        self.need(self.epsilon is None or 0 < self.epsilon < math.inf, "epsilon > 0 (finite)")
        self.need(self.epsilon is None or "sigma" not in self._given, "sigma or a target epsilon, not both")


PRIVACY: Registry[type[Privacy]] = Registry("privacy mechanism", packages=("simulator.core.privacy",))
register = PRIVACY.register
