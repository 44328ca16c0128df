"""An attack from outside byzsim: every Byzantine worker sends the honest mean scaled by -scale.

Load it with ``--plugins examples/plugins/reverse.py`` (or BYZSIM_PLUGINS);
then ``--attack "reverse(scale=4)"`` works in train, grids, reports and studies.
"""
import torch

from attacks.base import AttackContext, GradientAttack, register


@register("reverse")
class Reverse(GradientAttack):
    """The honest mean times -scale."""

    scale: float = 4.0

    def validate(self) -> None:
        self.need(self.scale > 0, "scale > 0")

    def forge(self, honest: torch.Tensor, f: int, ctx: AttackContext) -> torch.Tensor:
        return honest.mean(dim=0) * -self.scale
