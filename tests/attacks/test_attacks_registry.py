"""The catalogue's registry: names, descriptions, construction and parameter checks."""
import pytest

import attacks
from experiments.tools import UnavailableException, UserException

EXPECTED = {
    "none", "signflip", "ipm", "alie", "gaussian", "inf", "nan", "zero", "mimic", "bitflip",
    "reverse", "minmax", "minsum", "opt-alie", "opt-ipm", "labelflip",
}


def test_names_lists_the_whole_catalogue_sorted():
    assert set(attacks.names()) == EXPECTED
    assert attacks.names() == sorted(attacks.names())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_attack_builds_with_defaults_and_describes_itself_in_one_line(name):
    attack = attacks.get(name)
    assert attack.kind in {"gradient", "data", "none"}
    line = attacks.describe(name)
    assert line and "\n" not in line
    assert str(attack).startswith(name)
    assert attack.state_dict() == {}


def test_kinds_and_own_gradient_needs():
    assert attacks.get("labelflip").kind == "data"
    assert attacks.get("none").kind == "none"
    assert attacks.get("alie").kind == "gradient"
    needing = {n for n in attacks.names() if attacks.get(n).needs_own_gradients}
    assert needing == {"bitflip", "reverse", "none"}


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
    with pytest.raises(UserException, match="no parameters"):
        attacks.get("signflip", scale=2)


@pytest.mark.parametrize("name, params", [
    ("ipm", {"epsilon": -0.1}),
    ("alie", {"z": -1}),
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
