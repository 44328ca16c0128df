"""A rule from outside byzsim: the mean of the n - f vectors of smallest norm.

Load it with ``--plugins examples/plugins/normfilter.py`` (or BYZSIM_PLUGINS);
then ``--aggregator normfilter`` works in train, grids, reports and studies.
"""
import torch

from aggregators.base import Rule, register


@register("normfilter")
class NormFilter(Rule):
    """Mean of the n - f vectors of smallest l2 norm."""

    bound = (1, 1)  # n >= f + 1
    keep_all: bool = False  # a parameter like any rule's: normfilter(keep_all=true) averages every vector

    def aggregate(self, gradients: torch.Tensor, f: int) -> torch.Tensor:
        if self.keep_all or f == 0:
            return gradients.mean(dim=0)
        kept = gradients.norm(dim=1).topk(gradients.shape[0] - f, largest=False).indices
        return gradients[kept].mean(dim=0)
