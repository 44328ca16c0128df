"""Edge-case backdoor (Wang et al., NeurIPS 2020, "Attack of the Tails: Yes, You Really Can Backdoor
Federated Learning"): inputs from the tail of a class's distribution, relabelled as the target.

Each Byzantine worker replaces the first ``fraction`` of its batch with tail
inputs (drawn uniformly, with replacement, from the attacker's own
generator) labelled ``target``; the rest of its batch stays clean. The
backdoor is tested on held-out tail inputs, whose true class is ``source``:
ASR is the share the model sends to the target, robust accuracy the share it
keeps in the source class. The tail inputs are the user's (``data``: a folder
or a ``.npz`` file, see `attacks.tails`), or, without ``data``, a stand-in
built from the run's own data: the ``source``-class images turned upside
down (`attacks.tails.upside_down`; the paper's ARDIS 7s and Southwest planes
cannot be downloaded here, and unlike them the stand-in is a transform of
the training set's own images). Defaults: the paper's (E)MNIST task, ARDIS
7s labelled 1 (Sec. 4), on Fashion-MNIST class 7 (sneaker) to class 1
(trouser); FLPoison's (``attackers/edgecase.py``) share of edge-case data in
the attacker's training set, 0.8. The paper's projected gradient descent and
update scaling (FLPoison's ``PGD_attack``, ``scaling_attack``) are left out:
this is the attack's data poisoning.
"""
from __future__ import annotations

import functools

import torch

from attacks.base import AttackContext, Poison, register
from attacks.tails import load, upside_down
from attacks.targeted import DataView, Pair, TargetedAttack
from attacks.triggers import poisoned_count


@register("edgecase")
class EdgeCase(TargetedAttack):
    """Edge-case backdoor (Wang et al. 2020): tail inputs of the source class, relabelled as the target."""

    source: int = 7
    target: int = 1
    fraction: float = 0.8
    data: str | None = None  # a folder (train/, test/ images) or .npz file of tail inputs; none: the stand-in

    def validate(self) -> None:
        super().validate()
        self.need(self.source >= 0, "source >= 0")
        self.need(self.source != self.target, "source != target")
        self.need(0.0 < self.fraction <= 1.0, "a poisoning fraction 0 < fraction <= 1")

    def prepare(self, view: DataView) -> None:
        super().prepare(view)
        self.need(self.source < view.num_classes, f"source < {view.num_classes} (the number of classes)")
        self._train, self._test = load(self.data, view) if self.data is not None else upside_down(view, self.source)
        self.need(len(self._train) > 0 and len(self._test) > 0,
                  f"tail inputs to train and test on (class {self.source} has none)")

    def poisoning(self, ctx: AttackContext) -> Poison:
        return functools.partial(self.poison, generator=ctx.generator)

    def poison(self, inputs: torch.Tensor, targets: torch.Tensor, num_classes: int | None,
               generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The first ``fraction`` of each batch replaced by tail inputs drawn from ``generator`` (a fresh one by
        default), labelled as the target."""
        self.ready()
        k = poisoned_count(targets.shape[-1], self.fraction)
        draws = torch.randint(len(self._train), (*targets.shape[:-1], k),
                              generator=generator if generator is not None else torch.Generator())
        inputs, targets = inputs.clone(), targets.clone()
        inputs[..., :k, :, :, :] = self._train[draws.to(self._train.device)].to(inputs)
        targets[..., :k] = self.target
        return inputs, targets

    def backdoor_set(self, test: Pair) -> Pair:
        """The held-out tail inputs, whose true class is the source."""
        self.ready()
        return self._test, torch.full((len(self._test),), self.source, dtype=torch.int64, device=self._test.device)

    def backdoor(self, inputs: torch.Tensor, labels: torch.Tensor) -> Pair:
        keep = labels != self.target
        return inputs[keep], labels[keep]
