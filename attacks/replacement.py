"""Model replacement, and its norm-constrained form constrain-and-scale (Bagdasaryan, Veit, Hua, Estrin &
Shmatikov, AISTATS 2020, "How To Backdoor Federated Learning", Sec. 4).

The attacker trains a backdoored model X on a mix of triggered and clean data
(BadNets' pixel trigger, `attacks.badnets`: a ``size`` x ``size`` square on
the first ``fraction`` of each batch, relabelled ``target``) and sends its
update scaled by gamma, X~ - G = gamma (X - G), so that the server's averaged
step replaces the global model G by X: with n participants and a server whose
step on the mean update is eta times a worker's own, eta / n * gamma (X - G) =
X - G for gamma = n / eta, the benign updates cancelling out near convergence.
In byzsim's vectors (`AttackContext.federated`):

- a federated round's vector is the local update X - G, which the server adds
  times its own lr: eta = ``ctx.server_lr`` and gamma = n / server lr;
- a one-gradient step's vector is a gradient, which the server subtracts times
  the lr the worker's own step would take: eta = 1 and gamma = n.

n is the round's participants (``ctx.nb_workers``), gamma is computed at every
step; ``scale`` given replaces it. ``bound`` is constrain-and-scale (Sec. 4):
against a defence that bounds each update's norm by S (`normclip`, FLAME's
clipping to the median norm), the paper's attacker scales only as far as the
bound allows; here the scaled vector is projected onto the l2 ball of radius
``bound`` (`project`), which is that scaling whenever the bound binds.

Defaults: the trigger, target 6 and poisoning fraction 0.32 are FLPoison's
(``attackers/modelreplacement.py``: a 5 x 5 white square, ``poisoning_ratio``
0.32, BadNets' defaults); the scale is the paper's n / eta (FLPoison fixes
``scaling_factor = 50``, its total number of clients over a global lr of 1,
where the paper's n is a round's participants); no bound: the paper's plain
model replacement (S is the defence's, known to the attacker: give it).
Differences from the paper: its constrain-and-scale also trains with an
anomaly term, alpha L_class + (1 - alpha) L_ano (FLPoison: alpha 0.5, L_ano
the cosine distance between the local and the global model); byzsim's engine
trains every worker on its batch loss alone, so that term is left out (alpha
= 1) and only the norm constraint remains. The attacker trains as the honest
workers do (the run's local steps and lr; the paper's attacker trains longer,
with its own lr). The paper has one attacker a round: here every Byzantine
worker of a step scales by gamma, so f of them move the model about f times
as far (``scale`` = n / (f eta) shares the replacement). gamma = n / eta
assumes a server stepping by plain SGD (an adaptive server rescales whatever
it receives).
"""
from __future__ import annotations

import math

import torch

from attacks.badnets import BadNets
from attacks.base import AttackContext, register

__all__ = ["ModelReplacement", "project", "replacement_scale"]


@register("model-replacement")
class ModelReplacement(BadNets):
    """Model replacement (Bagdasaryan et al. 2020): a BadNets update scaled by n / eta; bound: constrain-and-scale."""

    scale: float | None = None  # none: n / eta, per step (the paper's gamma)
    bound: float | None = None  # none: unconstrained; S: the scaled update projected onto the l2 ball of radius S

    def validate(self) -> None:
        super().validate()
        self.need(self.scale is None or 0 < self.scale < math.inf, "a finite scale > 0")
        self.need(self.bound is None or 0 < self.bound < math.inf, "a finite bound > 0 (none: no bound)")

    def byzantine(self, honest: torch.Tensor, f: int, ctx: AttackContext) -> torch.Tensor:
        vectors = super().byzantine(honest, f, ctx)  # trained on the poisoned batches, as BadNets'
        gamma = self.scale if self.scale is not None else replacement_scale(ctx)
        return project(vectors * gamma, self.bound)


def replacement_scale(ctx: AttackContext) -> float:
    """gamma = n / eta: n the step's participants, eta the server's lr in a federated round, 1 otherwise."""
    if not ctx.federated:
        return float(ctx.nb_workers)
    if ctx.server_lr is None:
        raise ValueError("Model replacement in a federated round needs the server's lr in its context (server_lr).")
    return ctx.nb_workers / ctx.server_lr


def project(vectors: torch.Tensor, bound: float | None) -> torch.Tensor:
    """Each row of ``vectors`` ``[f, d]`` projected onto the l2 ball of radius ``bound``: times min(1, bound /
    norm) (None: unchanged). A new tensor."""
    if bound is None:
        return vectors.clone()
    norms = vectors.norm(dim=1, keepdim=True)
    return vectors * (bound / norms).clamp(max=1.0)
