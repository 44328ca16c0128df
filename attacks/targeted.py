"""Targeted (backdoor) attacks: data attacks that teach the model one chosen misbehaviour.

A `TargetedAttack` poisons the Byzantine workers' batches so that the model
sends some inputs (stamped with a trigger, of a source class, or from the
tail of the distribution) to its ``target`` class, while it keeps its clean
accuracy. It says how its backdoor is tested: `backdoor` turns a batch of test
examples into the triggered inputs of those whose class is not the target,
with their true labels. The simulator then records, beside clean accuracy,

- ``asr``: the share of those inputs the model classifies as the target;
- ``robust_accuracy``: the share that keep their true label.

Before its first step a run tells the attack what its data looks like
(`prepare` with a `DataView`: the input shape, the classes, the
normalisation a trigger's pixel value goes through), which is also where a
trigger outside the image or a class out of range is refused.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch

from attacks.base import AttackContext, DataAttack, Poison

__all__ = ["DataView", "TargetedAttack"]

Pair = tuple[torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class DataView:
    """What a targeted attack is told of a run's data, once, before the first step.

    ``shape`` is one input's (``[C, H, W]``); inputs are ``(pixel - mean) / std`` per channel, pixels in
    [0, 1] (mean 0 and std 1 without normalisation). ``train`` and ``test`` are the run's sets as it holds
    them (inputs already normalised), for attacks that build their data from them.
    """

    shape: tuple[int, ...]
    num_classes: int
    mean: torch.Tensor
    std: torch.Tensor
    train: Pair | None = None
    test: Pair | None = None

    @classmethod
    def of(cls, inputs: torch.Tensor, num_classes: int, stats: tuple[Sequence[float], Sequence[float]] | None = None,
           train: Pair | None = None, test: Pair | None = None) -> "DataView":
        """The view of a dataset whose inputs look like ``inputs`` ``[N, *shape]``, ``stats`` its (mean, std) per
        channel when the inputs are normalised (None: pixels as they are)."""
        channels = inputs.shape[1] if inputs.dim() > 1 else 1
        mean, std = stats if stats is not None else ([0.0] * channels, [1.0] * channels)
        as_tensor = lambda v: torch.as_tensor(v, dtype=inputs.dtype, device=inputs.device).reshape(-1)  # noqa: E731
        return cls(tuple(inputs.shape[1:]), num_classes, as_tensor(mean), as_tensor(std), train, test)

    def pixel(self, value: float) -> torch.Tensor:
        """``[C]``: a pixel value in [0, 1] as an input of this run (normalised as its data is)."""
        return (value - self.mean) / self.std

    def inputs(self, pixels: torch.Tensor) -> torch.Tensor:
        """Images ``[N, C, H, W]`` with pixels in [0, 1] as inputs of this run, on its device."""
        pixels = pixels.to(self.mean)
        return (pixels - self.mean.view(-1, 1, 1)) / self.std.view(-1, 1, 1)


class TargetedAttack(DataAttack):
    """A data attack with a target class and a backdoor test (see the module docstring).

    Subclasses implement `poison` (as every data attack) and `backdoor`, and extend `prepare` and
    `validate` (calling the base's) with their own checks.
    """

    target: int = 0
    # Whether `poison` works alone on any slice of the Byzantine workers, unprepared (torchrun ranks holding
    # Byzantine workers build their own attack from its spec): false when it needs `prepare` or a worker's
    # row among the step's f.
    on_ranks: ClassVar[bool] = False

    def validate(self) -> None:
        self.need(self.target >= 0, "target >= 0")

    def prepare(self, view: DataView) -> None:
        """Check the parameters against the run's data and keep what poisoning needs; `UserException` if bad."""
        self.need(self.target < view.num_classes, f"target < {view.num_classes} (the number of classes)")
        self._prepared = True

    def ready(self) -> None:
        """Raise `ValueError` (a caller's mistake) unless `prepare` was called: a trigger needs the run's data."""
        if not getattr(self, "_prepared", False):
            raise ValueError(f"Attack {self.name!r} needs prepare(view) with the run's data before it poisons or "
                             f"tests a backdoor.")

    def need_image(self, view: DataView) -> tuple[int, int]:
        """The image plane (H, W) of ``view``, refused unless its inputs are images ``[C, H, W]``."""
        self.need(len(view.shape) == 3, f"image inputs [C, H, W], got inputs of shape {list(view.shape)}")
        return view.shape[1], view.shape[2]

    def byzantine(self, honest: torch.Tensor, f: int, ctx: AttackContext) -> torch.Tensor:
        if f == 0:
            return honest.new_empty((0, honest.shape[1]))
        return ctx.vectors(self.poisoning(ctx), self.momentum)

    def poisoning(self, ctx: AttackContext) -> Poison:
        """The poison of this step (`poison`; an attack drawing at random binds the attacker's generator)."""
        return self.poison

    def backdoor_set(self, test: Pair) -> Pair | None:
        """The examples the backdoor is tested on, before `backdoor`: None for the run's test set itself."""
        return None

    def backdoor(self, inputs: torch.Tensor, labels: torch.Tensor) -> Pair:
        """From a batch of test examples, the triggered inputs of those whose class is not the target, and
        their true labels (a batch at a time, on the inputs' device)."""
        raise NotImplementedError
