"""What exists, with one-line descriptions: the content of `byzsim list`."""
from __future__ import annotations

import aggregators
import attacks
from experiments import datasets, models
from simulator.core import engines, partition
from simulator.core.schedule import SCHEDULES


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
        "heterogeneity": pairs(partition.names(), partition.describe),
        "engines": pairs(engines.names(), engines.describe),
        "schedules": pairs(SCHEDULES.names(), SCHEDULES.describe),
    }
