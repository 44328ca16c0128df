"""Every gradient attack: shape, dtype, device, no mutation, no aliasing, determinism."""
import pytest
import torch
from hypothesis import given, settings, strategies as st

import attacks
from attacks.base import AttackContext, GradientAttack

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
GRADIENT = [n for n in attacks.names() if isinstance(attacks.get(n), GradientAttack)]


class Median:
    def __call__(self, gradients, f):
        return gradients.median(dim=0).values

    def trial(self, gradients, f, generator=None):
        return self(gradients, f)


def context(h, f, d, dtype, device, seed=0):
    generator = torch.Generator(device=device).manual_seed(seed)
    own = torch.linspace(-1, 1, f * d, dtype=dtype, device=device).reshape(f, d)
    return AttackContext(nb_workers=h + f, decl_f=f, aggregator=Median(), generator=generator, own_gradients=own)


def honest_vectors(h, d, dtype, device, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(h, d, generator=g, dtype=dtype).to(device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", GRADIENT)
@settings(max_examples=15, deadline=None)
@given(h=st.integers(1, 6), d=st.integers(1, 9), extra=st.integers(0, 6),
       dtype=st.sampled_from([torch.float32, torch.float64]), seed=st.integers(0, 2**16))
def test_output_shape_dtype_device_and_input_untouched(name, device, h, d, extra, dtype, seed):
    f = min(extra, h)  # keeps the ALIE formula's Byzantine minority
    honest = honest_vectors(h, d, dtype, device, seed)
    before = honest.clone()
    out = attacks.get(name)(honest, f, context(h, f, d, dtype, device))
    assert out.shape == (f, d) and out.dtype == dtype and out.device == honest.device
    assert torch.equal(honest, before)
    if f:
        out.fill_(7.0)
        assert torch.equal(honest, before)


@pytest.mark.parametrize("name", GRADIENT)
def test_f_zero_gives_an_empty_tensor(name):
    honest = honest_vectors(4, 3, torch.float32, "cpu", 0)
    out = attacks.get(name)(honest, 0, context(4, 0, 3, torch.float32, "cpu"))
    assert out.shape == (0, 3) and out.dtype == torch.float32


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", GRADIENT)
def test_same_generator_seed_gives_bit_identical_vectors(name, device):
    honest = honest_vectors(6, 11, torch.float32, device, 3)
    first = attacks.get(name)(honest, 3, context(6, 3, 11, torch.float32, device, seed=5))
    second = attacks.get(name)(honest, 3, context(6, 3, 11, torch.float32, device, seed=5))
    assert torch.equal(first.nan_to_num(), second.nan_to_num())
