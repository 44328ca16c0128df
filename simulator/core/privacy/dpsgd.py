"""``dpsgd``: local DP-SGD at every honest worker (Abadi et al., "Deep Learning with Differential Privacy", CCS 2016).

Each honest worker computes every sample's gradient of its own loss, clips it
to l2 norm C (``clip``), sums them, adds Gaussian noise of std sigma C and
divides by its batch size b (Algorithm 1's mean): the engines compute the
clipped sums in their batched passes (`Engine.clipped_gradients`). The noisy
gradient then goes through the worker's l2 term, ``--clip`` and momentum, and
is sent: nothing leaves a worker before its noise. In federated rounds every
local step is a DP-SGD step (clipping and noise at each of the K steps). The
guarantee is sample-level, for each honest worker's partition, against
everyone who sees its messages (the server, the other workers, the attack).

Accounting (`simulator.core.privacy.accounting`): each worker's steps form a
subsampled Gaussian mechanism of noise multiplier sigma and sample rate
q = b / (its partition size); the run reports the largest epsilon over the
honest workers, that of the smallest partition. One-gradient steps count one
step per step; federated rounds count K per round for every client, selected
or not (an upper bound for a client that sits rounds out).

``attack_sees``: ``noisy`` (the default), the honest vectors as the server
receives them; ``clean``, what the workers would send without this step's
noise (an attacker who observes the clipped gradients before the noise). The
clean view needs one-gradient steps and no momentum at the workers (whose
buffers carry every past step's noise).

Defaults: clip 1.0, sigma 1.0, delta 1e-5, Opacus's MNIST example
(``examples/mnist.py``: ``--sigma 1.0``, ``-c 1.0``, ``--delta 1e-5``; Abadi et
al. also take delta = 1e-5, Section 5); the ``prv`` accountant is Opacus's
`PrivacyEngine` default.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

import torch

from experiments.tools import UserException
from simulator.core.engines import Engine
from simulator.core.engines.base import PrivateSteps, per_sample_unsupported
from simulator.core.privacy import GaussianPrivacy, Mechanism, Setup, register
from simulator.core.privacy.accounting import Accountant, calibrate

if TYPE_CHECKING:
    from simulator.core.config import Config

__all__ = ["DPSGD", "PerSample"]


class PerSample:
    """The honest workers' DP-SGD gradients: clipped per-sample sums from the engine, noise, over b."""

    def __init__(self, clip: float, sigma: float, generator: torch.Generator, keep_clean: bool) -> None:
        self.clip, self.sigma, self.generator, self.keep_clean = clip, sigma, generator, keep_clean
        self.clean: torch.Tensor | None = None  # the last step's gradients before their noise (attack_sees=clean)

    def noise(self, shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
        """Gaussian noise of std sigma C, from the mechanism's own generator."""
        noise = torch.randn(shape, generator=self.generator, device=like.device, dtype=like.dtype)
        return noise.mul_(self.sigma * self.clip)

    def gradients(self, engine: Engine, inputs: torch.Tensor, targets: torch.Tensor,
                  at: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """[k, d]: (sum of clipped per-sample gradients + noise) / b for each worker, and its mean losses [k]."""
        sums, losses = engine.clipped_gradients(inputs, targets, clip=self.clip, at=at)
        b = inputs.shape[1]
        self.clean = sums / b if self.keep_clean else None
        return sums.add_(self.noise(tuple(sums.shape), sums)).div_(b), losses

    def steps(self, clients: int, steps: int, dimension: int, like: torch.Tensor) -> PrivateSteps:
        """The noise of every local step of a round, drawn before the round ([m, K, d]), for the engines."""
        return PrivateSteps(self.clip, self.noise((clients, steps, dimension), like))


@register("dpsgd")
class DPSGD(GaussianPrivacy):
    """local DP-SGD at every honest worker: per-sample clipping, Gaussian noise before anything is sent (Abadi et al. 2016)"""

    attack_sees: Literal["noisy", "clean"] = "noisy"
    per_sample = True

    def relations(self, c: "Config") -> list[tuple[bool, str]]:
        clean = self.attack_sees == "clean"
        return [
            (not c.federated or c.local_batches == "fresh",
             "dpsgd's accountant takes a fresh batch at every local step: use local_batches fresh"),
            (not clean or not c.federated, "dpsgd(attack_sees=clean) takes one-gradient steps, not federated rounds"),
            (not clean or c.momentum == 0 or c.momentum_at != "worker",
             "dpsgd(attack_sees=clean) cannot take momentum at the workers, whose buffers carry every past noise"),
        ]

    def start(self, setup: Setup) -> "DPSGDRun":
        c, sizes = setup.config, setup.partition_sizes
        owner = f"Privacy {self.spec!r}"
        _check_layers(setup.engine, setup.probe, owner)
        if min(sizes) < c.batch_size:
            raise UserException(f"{owner} samples batches of {c.batch_size} from each honest worker's partition, "
                                f"but the smallest holds {min(sizes)} samples: use a smaller batch_size.")
        total = sum(sizes)
        if self.delta >= 1 / total:
            raise UserException(f"{owner} needs delta below 1/N = {1 / total:.3g}, N = {total} the honest workers' "
                                f"training samples; got delta={self.delta}.")
        q = c.batch_size / min(sizes)
        steps = c.steps * (c.local_steps if c.federated else 1)
        sigma = self.sigma if self.epsilon is None else calibrate(self.accountant, self.epsilon, self.delta, q,
                                                                  steps, owner)
        generator = torch.Generator(device=setup.device).manual_seed(setup.seed)
        return DPSGDRun(self, sigma, q, c.local_steps if c.federated else 1, generator)


def _check_layers(engine: Engine, probe: tuple[torch.Tensor, torch.Tensor], owner: str) -> None:
    """Refuse, in one line naming the layer and the engines that take it, a model without per-sample gradients.

    Batch norm has none in any engine. The batched engines' per-sample pass is tried on the probe samples (the
    engine's generator state kept, so the run draws what it would): the grouped engine refuses an in-place
    operation on a layer's output (the vmap engine takes it), and any failure sends the run to the loop engine.
    """
    reason = per_sample_unsupported(engine.module)
    if reason is not None:
        raise UserException(f"{owner} clips each sample's gradient, but {reason}, which makes it depend on the "
                            f"whole batch: no engine takes it (GroupNorm or LayerNorm in its place run on the vmap "
                            f"and loop engines).")
    if engine.name == "loop":  # the reference takes any model autograd can differentiate
        return
    state = engine.generator.get_state()
    try:
        engine.clipped_gradients(probe[0][None], probe[1][None], clip=1.0)
    except UserException as error:
        raise UserException(f"{owner}: {error}") from None
    except Exception as error:  # noqa: BLE001 - any failure of the batched per-sample pass means: not this engine
        raise UserException(f"{owner}: the {engine.name} engine's per-sample pass fails on this model "
                            f"({type(error).__name__}: {str(error).splitlines()[0]}); the loop engine takes it: "
                            f"--engine loop.") from None
    finally:
        engine.generator.set_state(state)


class DPSGDRun(Mechanism):
    """One run's DP-SGD: the workers' `PerSample`, the accountant, the attack's view."""

    def __init__(self, spec: DPSGD, sigma: float, q: float, steps_per_round: int,
                 generator: torch.Generator) -> None:
        self.spec, self.steps_per_round = spec, steps_per_round
        self.per_sample = PerSample(spec.clip, sigma, generator, keep_clean=spec.attack_sees == "clean")
        self.accountant = Accountant(spec.accountant, sigma, q, spec.delta)

    def seen(self, honest: torch.Tensor, finish: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        return finish(self.per_sample.clean) if self.per_sample.keep_clean else honest

    def released(self, aggregate: torch.Tensor, byzantine: torch.Tensor) -> torch.Tensor:
        self.accountant.step(self.steps_per_round)
        return aggregate

    def epsilon(self) -> float:
        return self.accountant.epsilon()

    def summary(self) -> dict:
        return {"epsilon": self.epsilon(), "delta": self.spec.delta, "noise_multiplier": self.accountant.sigma,
                "sample_rate": self.accountant.q, "accountant": self.spec.accountant}

    def state_dict(self) -> dict:
        return {"accountant": self.accountant.state_dict(), "generator": self.per_sample.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.accountant.load_state_dict(state["accountant"])
        self.per_sample.generator.set_state(state["generator"])
