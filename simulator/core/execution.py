"""Where a run's workers compute: in this process, or on torch.distributed ranks under torchrun.

A registered `Execution` plug-in named by a spec: ``local`` (the default) or
``torchrun(timeout=300, byzantine=server)``: rank 0 is the server, the honest
workers are spread over the other ranks (`simulator.core.distributed`), the
Byzantine ones computed on the server or on the ranks; a rank silent for
``timeout`` seconds stops the run.
"""
from __future__ import annotations

from typing import Literal

from experiments.plugin import Plugin
from experiments.registry import Registry

__all__ = ["EXECUTIONS", "Execution"]


class Execution(Plugin):
    """Where the workers' gradients are computed."""

    family = "execution"
    distributed = False


EXECUTIONS: Registry[type[Execution]] = Registry("execution")


@EXECUTIONS.register("local")
class Local(Execution):
    """every worker in this process"""


@EXECUTIONS.register("torchrun")
class Torchrun(Execution):
    """the honest workers on torch.distributed ranks, rank 0 the server (launch with torchrun)"""

    distributed = True
    neutral = ("timeout",)
    timeout: float = 300.0
    byzantine: Literal["server", "ranks"] = "server"

    def validate(self) -> None:
        self.need(self.timeout > 0, "timeout > 0")
