"""What exists, with one-line descriptions: the content of `byzsim list`."""
from __future__ import annotations

import aggregators
import attacks
from experiments import datasets, models
from experiments.grammar import format_value
from experiments.registry import Registry
from simulator.core.decentralised.gossip import GOSSIP
from simulator.core.decentralised.topologies import TOPOLOGIES
from simulator.core.engines import ENGINES
from simulator.core.execution import EXECUTIONS
from simulator.core.server import SERVER_OPTIMIZERS
from simulator.core.heterogeneity import MODES
from simulator.core.privacy import PRIVACY
from simulator.core.schedules import SCHEDULES

SECTIONS = ("aggregators", "attacks", "models", "datasets", "heterogeneity", "schedules", "server-optimisers",
            "engines", "executions", "privacy", "topologies", "gossip-rules")


def _specs(registry: Registry) -> list[tuple[str, str]]:
    """A spec plug-in's description and its parameters with their defaults."""
    def line(name: str) -> str:
        params = ", ".join(f"{k}={format_value(v)}" for k, v in registry.get(name).parameters().items())
        return registry.describe(name) + (f" [{params}]" if params else "")
    return [(name, line(name)) for name in registry.names()]


def catalogue() -> dict[str, list[tuple[str, str]]]:
    """Section name -> [(name, one-line description)]."""
    def pairs(names, describe):
        return [(name, describe(name)) for name in names]

    return {
        "aggregators": pairs(aggregators.names(), aggregators.describe),
        "attacks": pairs(attacks.names(), attacks.describe),
        "models": pairs(models.names(), models.describe)
        + [("<torchvision name>", "any torchvision.models constructor, e.g. resnet18")],
        "datasets": pairs(datasets.names(), datasets.describe),
        "heterogeneity": _specs(MODES),
        "schedules": _specs(SCHEDULES),
        "server-optimisers": _specs(SERVER_OPTIMIZERS),
        "engines": _specs(ENGINES),
        "executions": _specs(EXECUTIONS),
        "topologies": _specs(TOPOLOGIES),
        "gossip-rules": _specs(GOSSIP),
        "privacy": _specs(PRIVACY),
    }
