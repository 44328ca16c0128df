"""Class groups: the classes and the workers each cut into k contiguous groups, every group of workers sharing its
group of classes iid.

He, Karimireddy & Jaggi 2022 split MNIST this way on their dumbbell (their code's ``DumbbellSampler``, Fig. 4): the
first clique's nodes hold the first half of the classes, the second clique's the other half, and inside a clique
every node draws from all of its clique's classes. With k = 2 on a ``dumbbell`` topology, whose cliques are the
first and the second half of the vertices, ``groups(k=2)`` is that split. Class c belongs to group floor(c' k / C),
c' its rank among the C classes present, and worker w to group floor(w k / n).
"""
from __future__ import annotations

import torch

from experiments.tools import UserException
from simulator.core.heterogeneity import Heterogeneity, register


@register("groups")
class Groups(Heterogeneity):
    """k groups of workers, each sharing one of k contiguous groups of classes iid (He et al. 2022's dumbbell)"""

    k: int = 2

    def validate(self) -> None:
        self.need(self.k >= 1, "k >= 1")

    def split(self, labels: torch.Tensor, n: int, generator: torch.Generator) -> list[torch.Tensor]:
        classes = torch.unique(labels)
        if self.k > min(n, len(classes)):
            raise UserException(f"Heterogeneity {self.spec!r} needs at least k = {self.k} workers and classes, "
                                f"got {n} workers and {len(classes)} classes.")
        rank = torch.searchsorted(classes, labels)  # each sample's class rank among those present
        perm = torch.randperm(labels.numel(), generator=generator)
        group = (rank[perm] * self.k) // len(classes)
        owners = (torch.arange(n) * self.k) // n  # each worker's group, contiguous and balanced
        parts: list[torch.Tensor] = []
        for g in range(self.k):  # k groups, a few: each one's samples in random order, cut among its workers
            parts += list(torch.tensor_split(perm[group == g], int((owners == g).sum())))
        return parts
