"""Regressions: far attackers against geomed, zero norms in arc, empty DnC intersections,
spec keys that are not parameters, numpy integers for f."""
import numpy as np
import pytest
import torch

import aggregators
from experiments.tools import UserException


@pytest.mark.parametrize("spec", ["geomed", "nnm>geomed", "bucketing>geomed"])
@pytest.mark.parametrize("scale", [1e8, 1e12, 1e30])
def test_geomed_stays_with_the_honest_vectors_whatever_the_attackers_scale(spec, scale):
    honest = torch.randn(9, 20, generator=torch.Generator().manual_seed(0))
    x = torch.cat([honest, torch.full((2, 20), scale)])
    out = aggregators.get(spec, generator=torch.Generator().manual_seed(1))(x, 2)
    assert torch.isfinite(out).all()
    assert (out - honest.mean(dim=0)).norm() < 5.0


def test_geomed_rejects_non_finite_parameters():
    with pytest.raises(UserException, match="finite"):
        aggregators.get("geomed", nu=float("inf"))


@pytest.mark.parametrize("rule", ["median", "krum", "average"])
def test_arc_leaves_zero_vectors_at_zero(rule):
    out = aggregators.get(f"arc>{rule}")(torch.zeros(5, 3), 1)
    assert torch.equal(out, torch.zeros(3))


def test_clip_of_a_zero_vector_is_zero():
    assert torch.equal(aggregators.get("clip(tau=1.0)>average")(torch.zeros(4, 2), 0), torch.zeros(2))


@pytest.mark.parametrize("seed", range(10))
def test_dnc_never_returns_nan_when_no_row_survives_every_iteration(seed):
    x = torch.randn(5, 20, generator=torch.Generator().manual_seed(seed))
    rule = aggregators.get("dnc(niters=5,b=5)", generator=torch.Generator().manual_seed(seed))
    out = rule(x, 2)
    assert torch.isfinite(out).all()


def test_generator_in_a_spec_is_a_user_error():
    with pytest.raises(UserException, match="generator"):
        aggregators.get("krum(generator=1)")


def test_f_may_be_a_numpy_integer():
    x = torch.randn(7, 3, generator=torch.Generator().manual_seed(0))
    assert torch.equal(aggregators.get("krum")(x, np.int64(1)), aggregators.get("krum")(x, 1))
