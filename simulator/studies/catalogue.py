"""The reproduction studies: one module per paper under `simulator.studies.papers`, registered by name."""
from __future__ import annotations

from experiments.registry import Registry
from simulator.studies.study import Study

__all__ = ["STUDIES", "register", "get", "names"]

STUDIES: Registry[Study] = Registry("study", packages=("simulator.studies.papers",))


def register(study: Study) -> Study:
    """Make ``study`` available by its name (a study module calls this once)."""
    STUDIES.add(study.name, study, f"{study.citation}: {study.title}")
    return study


def get(name: str) -> Study:
    return STUDIES.get(name)


def names() -> list[str]:
    return STUDIES.names()
