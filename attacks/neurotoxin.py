"""Neurotoxin (Zhang, Panda, Song, Yang, Mahoney, Gonzalez, Ramchandran & Mittal, ICML 2022, "Neurotoxin:
Durable Backdoors in Federated Learning").

The attacker hides its backdoor in the coordinates the benign updates change
least, so that later benign training does not wash it out. It trains on the
poisoned batches as BadNets' attackers do (a ``size`` x ``size`` square on the
first ``fraction`` of each batch, relabelled ``target``), then

1. keeps its update only off the top ``ratio`` of coordinates by magnitude of
   the benign direction (the paper's top-k%; `neurotoxin_mask`: all but the
   int((1 - ratio) d) smallest |reference_j| are zeroed). The reference is
   the previous step's aggregate, ``ctx.previous_aggregate``, what the server
   applied, as the paper's attacker reads the benign update off the global
   models of consecutive rounds; at the first step, with no aggregate yet, the
   mean of the Byzantine workers' own benign vectors on clean batches
   (without worker momentum), as the authors' code and FLPoison compute
   their mask from a clean pass;
2. projects the masked update onto the l2 ball of radius ``bound``
   (projected gradient descent against norm-bounding defences;
   `attacks.replacement.project`; none: no projection).

Both act on the vector each Byzantine worker sends (a federated round's local
update w_K - w, or a gradient after worker momentum), with one [d] mask for
all of them. The paper, the authors' code and FLPoison mask the gradient at
every local step (FLPoison also projects after every step); byzsim's engine
runs a client's K local steps in one call, so the mask and the projection are
applied to the final update: exact for one-gradient steps and for one local
step without clipping, an approximation for K > 1, where the masked
coordinates still move during local training and change the later
gradients.

Defaults: ``ratio`` 0.01, the top 1% of coordinates excluded: the authors'
code (github jhcknzzm/Federated-Learning-Backdoor) keeps the ``gradmask_ratio``
= 0.99 smallest-magnitude share of coordinates, the first Neurotoxin setting
of its CIFAR-10 script (``run_backdoor_cv_task.sh``; also 0.97, 0.95);
``bound`` 0.2, FLPoison's ``norm_threshold`` (``attackers/neurotoxin.py``)
and the authors' CIFAR-10 norm bound ``s_norm``; the trigger, target 6 and
fraction 0.32 are FLPoison's (BadNets' defaults). FLPoison keeps
``topk_ratio`` = 0.1 of the coordinates, chosen by ``np.argpartition`` on
the signed gradient: the 10% most negative entries, not the 10% smallest in
magnitude that the paper describes; byzsim ranks by magnitude, as the paper
and the authors' code do (``torch.topk`` of minus the absolute gradient).
"""
from __future__ import annotations

import math

import torch

from attacks.badnets import BadNets
from attacks.base import AttackContext, register
from attacks.replacement import project

__all__ = ["Neurotoxin", "neurotoxin_mask"]


@register("neurotoxin")
class Neurotoxin(BadNets):
    """Neurotoxin (Zhang et al. 2022): a BadNets update kept off the benign direction's top coordinates, bounded."""

    ratio: float = 0.01  # share of coordinates excluded: the largest in magnitude of the benign direction
    bound: float | None = 0.2  # l2 bound on the update (none: no projection)

    def validate(self) -> None:
        super().validate()
        self.need(0.0 <= self.ratio < 1.0, "an excluded share 0 <= ratio < 1")
        self.need(self.bound is None or 0 < self.bound < math.inf, "a finite bound > 0 (none: no projection)")

    def byzantine(self, honest: torch.Tensor, f: int, ctx: AttackContext) -> torch.Tensor:
        if f == 0:
            return honest.new_empty((0, honest.shape[1]))
        reference = ctx.previous_aggregate
        if reference is None:  # the first step: the attackers' own benign direction (raw: no momentum step taken)
            reference = ctx.own(momentum=False).mean(dim=0)
        vectors = ctx.vectors(self.poisoning(ctx), self.momentum)
        keep = neurotoxin_mask(reference.to(vectors.device), self.ratio)
        return project(vectors.masked_fill(~keep, 0.0), self.bound)


def neurotoxin_mask(reference: torch.Tensor, ratio: float) -> torch.Tensor:
    """Bool ``[d]``: true on the int((1 - ratio) d) coordinates of smallest ``|reference|``, where the attacker
    may write (the authors' code keeps ``int(d * gradmask_ratio)``), false on the others (ties: any of them)."""
    d = reference.numel()
    keep = torch.ones(d, dtype=torch.bool, device=reference.device)
    excluded = d - int(d * (1.0 - ratio))
    if excluded:
        keep[reference.abs().topk(excluded).indices] = False
    return keep
