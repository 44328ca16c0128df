"""Regressions: half-precision minmax/minsum, opt-alie's error names its own parameter."""
import pytest
import torch

import aggregators
import attacks
from attacks import AttackContext
from experiments.tools import UserException


@pytest.mark.parametrize("name", ["minmax", "minsum"])
def test_distance_bounded_attacks_work_in_half_precision(name):
    honest = torch.randn(10, 100_000, generator=torch.Generator().manual_seed(0))
    ctx = AttackContext(nb_workers=12, decl_f=2, aggregator=None, generator=None)
    full = attacks.get(name)(honest, 2, ctx)
    half = attacks.get(name)(honest.half(), 2, ctx)
    assert half.dtype == torch.float16 and torch.isfinite(half).all()
    assert torch.allclose(half.float(), full, atol=5e-2, rtol=5e-2)


def test_opt_alie_error_names_start_not_z():
    ctx = AttackContext(nb_workers=10, decl_f=3, aggregator=aggregators.get("median"), generator=None)
    with pytest.raises(UserException, match="start="):
        attacks.get("opt-alie")(torch.randn(4, 5), 6, ctx)
