"""The registry, specs, checks, state and trial: the contract other packages build on."""
import pytest
import torch

import aggregators
from aggregators.base import RoundInfo
from experiments.tools import UnavailableException, UserException


def data(n=11, d=20, seed=0, dtype=torch.float64):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=dtype)


RULES = [name for name in aggregators.names() if not aggregators.is_preaggregation(name)]
STEPS = [name for name in aggregators.names() if aggregators.is_preaggregation(name)]


def told(spec, x):
    """``aggregators.get(spec)`` told the stand-in round of ``x``'s size: the rules that read the round
    (fltrust, foolsgold, crfl) need one, the others ignore it."""
    rule = aggregators.get(spec)
    rule.inform(RoundInfo.stand_in(*x.shape))
    return rule


def test_catalogue_is_complete():
    expected = {"average", "median", "trmean", "krum", "multikrum", "bulyan", "geomed", "cclip", "mda",
                "meamed", "phocas", "cge", "monna", "dnc", "nnm", "bucketing", "clip", "arc"}
    assert expected <= set(aggregators.names())
    assert set(STEPS) == {"nnm", "bucketing", "clip", "arc"}
    for name in aggregators.names():
        line = aggregators.describe(name)
        assert line and "\n" not in line


def test_unknown_name_lists_what_exists():
    with pytest.raises(UnavailableException, match="Did you mean 'krum'"):
        aggregators.get("kurm")
    with pytest.raises(UnavailableException):
        aggregators.get("nnm>nope")
    with pytest.raises(UnavailableException):
        aggregators.describe("nope")


@pytest.mark.parametrize("spec, canonical", [
    ("krum", "krum"), (" Krum() ", "krum"), ("multikrum(m=5)", "multikrum(m=5)"),
    ("bucketing(s=3)>cclip(tau=1e-1, iters=2)", "bucketing(s=3)>cclip(tau=0.1,iters=2)"),
    ("clip(tau=2) > bucketing > median", "clip(tau=2.0)>bucketing>median"),
    ("cclip(tau=10)", "cclip"), ("geomed(max_iter=3.0)", "geomed(max_iter=3)"),
])
def test_spec_parsing_and_canonical_form(spec, canonical):
    rule = aggregators.get(spec)
    assert rule.spec == canonical == str(rule)
    assert aggregators.get(rule.spec).spec == canonical


def test_keyword_parameters_go_to_the_last_step():
    rule = aggregators.get("nnm>multikrum", m=5)
    assert rule.spec == "nnm>multikrum(m=5)" and rule.rule.m == 5
    with pytest.raises(UserException, match="both"):
        aggregators.get("multikrum(m=4)", m=5)


@pytest.mark.parametrize("spec", ["krum(x=1)", "cclip(tau=abc)", "cclip(tau=true)", "multikrum(m=1.5)",
                                  "krum(", "krum)", "krum>>median", "", "krum(m)", "cclip(tau=-1)",
                                  "krum>median", "nnm", "bucketing(s=0)>median", "cclip(tau=__import__('os'))"])
def test_bad_specs_raise_user_errors(spec):
    with pytest.raises(UserException):
        aggregators.get(spec)


@pytest.mark.parametrize("spec, n, f, message", [
    ("krum", 5, 2, "krum requires n >= 2f + 3, got n = 5, f = 2"),
    ("bulyan", 10, 2, "bulyan requires n >= 4f + 3, got n = 10, f = 2"),
    ("median", 4, 2, "median requires n >= 2f + 1"),
    ("multikrum(m=9)", 7, 1, "m <= n"),
    ("mda", 60, 20, "C(60, 20)"),
    ("bucketing(s=2)>krum", 10, 3, "krum in 'bucketing>krum' requires n >= 2f + 3, got n = 5, f = 3 after bucketing"),
    ("krum", 5, -1, "f >= 0"),
])
def test_requirements_are_checked_and_named(spec, n, f, message):
    rule = aggregators.get(spec)
    with pytest.raises(UserException, match=message.replace("(", r"\(").replace(")", r"\)").replace("+", r"\+")):
        rule.check(n, f)
    with pytest.raises(UserException):
        rule(data(n=n), f)


def test_bad_inputs_are_user_errors():
    rule = aggregators.get("median")
    for bad in (torch.zeros(5), torch.zeros(3, 0), torch.zeros(3, 2, dtype=torch.int64)):
        with pytest.raises(UserException):
            rule(bad, 1)
    with pytest.raises(UserException):
        rule(data(), 1.0)


@pytest.mark.parametrize("name", RULES + [f"{s}>median" for s in STEPS])
def test_no_alias_no_mutation_same_dtype(name):
    x = data(n=11)
    before = x.clone()
    for dtype in (torch.float64, torch.float32, torch.float16):
        xi = x.to(dtype)
        out = told(name, xi)(xi, 2)
        assert out.shape == (20,) and out.dtype == dtype and out.device == xi.device
        assert out.untyped_storage().data_ptr() != xi.untyped_storage().data_ptr()
    assert torch.equal(x, before)
    out = told(name, x)(x, 2)
    out.add_(1.0)
    assert torch.equal(x, before)


def test_cclip_state_roundtrip_and_reset():
    rule = aggregators.get("cclip(tau=0.5, iters=2)")
    first, second = data(seed=1), data(seed=2)
    rule(first, 2)
    saved = rule.state_dict()
    expected = rule(second, 2)
    other = aggregators.get("cclip(tau=0.5, iters=2)")
    other.load_state_dict(saved)
    assert torch.equal(other(second, 2), expected)
    rule.reset()
    fresh = aggregators.get("cclip(tau=0.5, iters=2)")
    assert torch.equal(rule(first, 2), fresh(first, 2))
    with pytest.raises(UserException, match="belongs to"):
        aggregators.get("cclip").load_state_dict(saved)
    with pytest.raises(UserException, match="reset"):
        rule(data(d=7), 2)


@pytest.mark.parametrize("spec", ["cclip", "dnc(b=5)", "bucketing(s=3)>cclip", "bucketing>dnc(b=5)",
                                  "nnm>geomed"])
def test_trial_matches_call_and_changes_nothing(spec):
    rule = aggregators.get(spec, generator=torch.Generator().manual_seed(3))
    x = data(n=13)
    rule(data(n=13, seed=5), 2)
    state = rule.state_dict()
    tried = [rule.trial(x, 2) for _ in range(3)]
    assert all(torch.equal(t, tried[0]) for t in tried)
    after = rule.state_dict()
    assert all(torch.equal(a, b) if isinstance(a, torch.Tensor) else a == b
               for a, b in zip(after["steps"], state["steps"]) for a, b in zip(a.values(), b.values()))
    assert torch.equal(rule(x, 2), tried[0])


def test_randomness_comes_from_the_generator_only():
    x = data(n=12, d=30)
    runs = []
    for _ in range(2):
        torch.manual_seed(123)
        rule = aggregators.get("bucketing(s=3)>dnc(b=7)")
        runs.append([rule(x, 1) for _ in range(3)])
        torch.manual_seed(999)  # the global RNG has no say
    assert all(torch.equal(a, b) for a, b in zip(*runs))
    seeded = [aggregators.get("bucketing(s=3)>median", generator=torch.Generator().manual_seed(s))
              for s in (1, 1, 2)]
    outs = [r(x, 1) for r in seeded]
    assert torch.equal(outs[0], outs[1])
    global_state = torch.get_rng_state()
    aggregators.get("bucketing>median")(x, 1)
    assert torch.equal(torch.get_rng_state(), global_state)


def test_generator_state_resumes_exactly():
    rule = aggregators.get("bucketing(s=2)>trmean", generator=torch.Generator().manual_seed(7))
    x = data(n=12)
    rule(x, 2)
    saved = rule.state_dict()
    expected = [rule(x, 2) for _ in range(3)]
    resumed = aggregators.get("bucketing(s=2)>trmean", generator=torch.Generator().manual_seed(0))
    resumed.load_state_dict(saved)
    assert all(torch.equal(a, resumed(x, 2)) for a in expected)
    rule.reset()
    again = aggregators.get("bucketing(s=2)>trmean", generator=torch.Generator().manual_seed(7))
    assert torch.equal(rule(x, 2), again(x, 2))


def test_import_has_no_side_effects(capfd):
    import importlib
    state = torch.get_rng_state()
    importlib.reload(aggregators)
    assert torch.equal(torch.get_rng_state(), state)
    assert capfd.readouterr() == ("", "")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("name", RULES + [f"{s}>median" for s in STEPS])
def test_cuda_matches_cpu(name):
    x = data(n=11, d=300)
    cpu = told(name, x)(x, 2)
    gpu = told(name, x)(x.cuda(), 2)
    assert gpu.device.type == "cuda"
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-6, atol=1e-9)
