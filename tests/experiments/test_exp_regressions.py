"""Regressions: Configuration and Model copy and pickle; invalid dataset arguments are TypeErrors."""
import copy
import pickle

import pytest
import torch

from experiments import Configuration, Dataset, Model, UserException


def test_configuration_pickles_and_copies():
    config = Configuration(device="cpu", dtype=torch.float64, noblock=True, relink=True)
    for clone in (copy.deepcopy(config), copy.copy(config), pickle.loads(pickle.dumps(config))):
        assert clone == config and clone.relink and clone["non_blocking"]


def test_model_deep_copies():
    model = Model("simples-digits", init_seed=0)
    clone = copy.deepcopy(model)
    assert torch.equal(clone.get(), model.get())


def test_invalid_dataset_arguments_are_type_errors_as_the_seed_says():
    with pytest.raises(TypeError):
        Dataset("digits", foo=1)
    with pytest.raises(UserException):  # and still user errors the command prints in one line
        Dataset("digits", foo=1)
