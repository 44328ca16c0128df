"""Byzantine-robust aggregation rules and pre-aggregation steps.

``aggregators.get("krum")`` returns a rule; ``rule(gradients, f)`` maps an
[n, d] tensor to a [d] tensor. Specs chain pre-aggregation steps in front of a
rule: ``get("bucketing(s=2)>cclip(tau=10)")``. See docs/aggregators.md.
"""
from aggregators.base import PreAggregation, Rule
from aggregators.registry import describe, get, is_preaggregation, names

__all__ = ["get", "names", "describe", "is_preaggregation", "Rule", "PreAggregation"]
