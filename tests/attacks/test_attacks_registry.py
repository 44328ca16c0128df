"""The catalogue's registry: names, descriptions, construction and parameter checks."""
import pytest
import torch

import attacks
from attacks.base import AttackContext, DataAttack, GradientAttack
from attacks.targeted import DataView, TargetedAttack
from experiments.tools import UnavailableException, UserException

EXPECTED = {
    "none", "signflip", "ipm", "alie", "gaussian", "inf", "nan", "zero", "mimic", "bitflip",
    "reverse", "minmax", "minsum", "opt-alie", "opt-ipm", "labelflip", "anticge",
    "badnets", "dba", "targetflip", "edgecase", "model-replacement", "neurotoxin", "fang-krum", "fang-trim",
    "dissensus",
}
TARGETED = {"badnets", "dba", "targetflip", "edgecase", "model-replacement", "neurotoxin"}
IMAGES = torch.zeros(10, 1, 28, 28), torch.arange(10)  # a stand-in data set with one image of each class


def test_names_lists_the_whole_catalogue_sorted():
    assert set(attacks.names()) == EXPECTED
    assert attacks.names() == sorted(attacks.names())


@pytest.mark.parametrize("name", attacks.names())
def test_every_attack_builds_with_defaults_and_describes_itself_in_one_line(name):
    attack = attacks.get(name)
    assert isinstance(attack, (GradientAttack, DataAttack))
    line = attacks.describe(name)
    assert line and "\n" not in line
    assert str(attack).startswith(name)
    assert attack.state_dict() == {}
    attack.load_state_dict({})
    with pytest.raises(UserException, match=name):  # another attack's checkpoint: a bad file
        attack.load_state_dict({"foreign": 1})


def test_the_attack_type_says_how_byzantine_vectors_are_made():
    assert {n for n in attacks.names() if isinstance(attacks.get(n), DataAttack)} == {"labelflip", "none", *TARGETED}
    honest = torch.randn(6, 4, generator=torch.Generator().manual_seed(0))
    computed = []

    class Median:
        def __call__(self, gradients, f):
            return gradients.median(dim=0).values

        def trial(self, gradients, f, generator=None):
            return self(gradients, f)

    def vectors(poison, momentum):
        inputs, targets = torch.zeros(2, 3, 1, 28, 28), torch.zeros(2, 3).long()
        if poison is not None:
            inputs, targets = poison(inputs, targets, 10)
        computed.append(inputs.shape[0])
        return torch.zeros(inputs.shape[0], 4)

    needing = set()
    for name in attacks.names():
        computed.clear()
        context = AttackContext(nb_workers=8, decl_f=2, aggregator=Median(), generator=torch.Generator(),
                                num_classes=10, vectors=vectors)
        attack = attacks.get(name)
        if isinstance(attack, TargetedAttack):  # a trigger needs the run's data
            attack.prepare(DataView.of(IMAGES[0], 10, train=IMAGES, test=IMAGES))
        out = attack.byzantine(honest, 2, context)
        assert out.shape == (2, 4)
        if computed:
            needing.add(name)
    assert needing == {"bitflip", "reverse", "none", "labelflip", *TARGETED}


def test_unknown_name_lists_the_catalogue_and_suggests_a_close_match():
    with pytest.raises(UnavailableException) as caught:
        attacks.get("alei")
    message = str(caught.value)
    assert "'alie'" in message and "signflip" in message
    with pytest.raises(UnavailableException):
        attacks.describe("nope")


def test_unknown_parameter_is_a_user_error_naming_the_valid_ones():
    with pytest.raises(UserException, match="epsilon"):
        attacks.get("ipm", eps=0.2)
    with pytest.raises(UserException, match="no parameter"):
        attacks.get("signflip", scale=2)


@pytest.mark.parametrize("name, params", [
    ("ipm", {"epsilon": -0.1}),
    ("alie", {"z": float("inf")}),
    ("alie", {"z": "large"}),
    ("gaussian", {"std": -1.0}),
    ("gaussian", {"mean": float("nan")}),
    ("bitflip", {"scale": 0}),
    ("reverse", {"scale": -2}),
    ("mimic", {"worker": -1}),
    ("mimic", {"worker": 1.5}),
    ("mimic", {"heuristic": "loudest"}),
    ("mimic", {"warmup": 0}),
    ("minmax", {"direction": "up"}),
    ("opt-alie", {"evals": 0}),
    ("opt-ipm", {"start": -1}),
    ("opt-ipm", {"step": 0}),
    ("ipm", {"epsilon": True}),
])
def test_bad_parameter_values_are_user_errors(name, params):
    with pytest.raises(UserException, match=name):
        attacks.get(name, **params)


def test_numeric_strings_from_a_command_line_are_accepted():
    assert attacks.get("alie", z="1.5").z == 1.5
    assert str(attacks.get("ipm", epsilon="0.5")) == "ipm(epsilon=0.5)"


@pytest.mark.parametrize("spec, canonical", [
    ("alie(z=1.5)", "alie(z=1.5)"), ("ALIE(z=1.5)", "alie(z=1.5)"), ("alie(z=1.50)", "alie(z=1.5)"),
    ("ipm(epsilon=0.1)", "ipm"), ("gaussian(std=2, shared=true)", "gaussian(std=2.0,shared=true)"),
    ("mimic(heuristic=variance)", "mimic(heuristic=variance)"), ("opt-alie(evals=8)", "opt-alie(evals=8)"),
])
def test_specs_are_canonical_and_round_trip(spec, canonical):
    attack = attacks.get(spec)
    assert attack.spec == canonical
    again = attacks.get(attack.spec)
    assert again.spec == attack.spec and again.canonical == attack.canonical


def test_spec_parameters_and_keywords_combine_but_never_twice():
    assert attacks.get("alie(z=1.5)").z == attacks.get("alie", z=1.5).z == 1.5
    with pytest.raises(UserException, match="both"):
        attacks.get("alie(z=1.5)", z=2.0)


def test_canonical_fills_every_default():
    assert attacks.get("ipm").canonical == "ipm(epsilon=0.1,begin=0,end=none,every=1)"  # its schedule last
    assert attacks.get("alie").canonical == "alie(z=none,begin=0,end=none,every=1)"
