import os

import pytest
import torch

from experiments import Checkpoint, Configuration, Model, Optimizer, Storage, UserException

CPU = Configuration(device="cpu", dtype=torch.float32)


def _trained():
    model = Model("simples-logit", CPU, in_features=4, num_classes=2, init_seed=0)
    optimizer = Optimizer("sgd", model, lr=0.1, momentum=0.9)
    model.update(torch.ones_like(model.get()), optimizer)
    return model, optimizer


def test_deep_snapshot_restores_model_and_optimizer():
    model, optimizer = _trained()
    saved = model.get().clone()
    checkpoint = Checkpoint().snapshot(model, deepcopy=True).snapshot(optimizer, deepcopy=True)
    assert model in checkpoint and optimizer in checkpoint and len(checkpoint) == 2
    model.update(torch.ones_like(saved), optimizer)
    assert not torch.equal(model.get(), saved)
    checkpoint.restore(model).restore(optimizer)
    assert torch.equal(model.get(), saved)
    assert model.get().data_ptr() == next(model.module.parameters()).data_ptr()  # still views


def test_snapshot_overwrite_rules():
    model, _ = _trained()
    checkpoint = Checkpoint().snapshot(model, deepcopy=True)
    with pytest.raises(UserException, match="already exists"):
        checkpoint.snapshot(model)
    checkpoint.snapshot(model, overwrite=True, deepcopy=True)


def test_restoring_a_reference_warns_unless_told_not_to():
    model, _ = _trained()
    with pytest.warns(UserWarning, match="by reference"):
        Checkpoint().snapshot(model).restore(model)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Checkpoint().snapshot(model, nowarnref=True).restore(model)


def test_restore_of_a_missing_snapshot():
    model, _ = _trained()
    with pytest.raises(UserException, match="No snapshot"):
        Checkpoint().restore(model)
    Checkpoint().restore(model, nothrow=True)


def test_save_and_load_round_trip_with_storage(tmp_path):
    model, optimizer = _trained()
    storage = Storage(step=7, history=[1.0, 2.0], rng=torch.Generator().manual_seed(1).get_state())
    path = tmp_path / "run.pt"
    Checkpoint().snapshot(model).snapshot(optimizer).snapshot(storage).save(path)
    assert [p.name for p in tmp_path.iterdir()] == ["run.pt"]  # no temporary file left behind
    fresh_model, fresh_optimizer = Model("simples-logit", CPU, in_features=4, num_classes=2), None
    fresh_optimizer = Optimizer("sgd", fresh_model, lr=0.1, momentum=0.9)
    restored = Storage()
    Checkpoint().load(path).restore(fresh_model).restore(fresh_optimizer).restore(restored)
    assert torch.equal(fresh_model.get(), model.get())
    assert restored["step"] == 7 and restored["history"] == [1.0, 2.0]
    assert torch.equal(restored["rng"], storage["rng"])
    assert fresh_optimizer.state_dict()["state"].keys() == optimizer.state_dict()["state"].keys()


def test_file_overwrite_rules_and_bad_files(tmp_path):
    path = tmp_path / "ckpt.pt"
    Checkpoint().snapshot(Storage(a=1)).save(path)
    with pytest.raises(UserException, match="already exists"):
        Checkpoint().save(path)
    Checkpoint().snapshot(Storage(a=2)).save(path, overwrite=True)
    loaded = Checkpoint().load(path)
    with pytest.raises(UserException, match="already holds"):
        loaded.load(path)
    target = Storage()
    loaded.load(path, overwrite=True).restore(target)
    assert target == {"a": 2}
    with pytest.raises(UserException, match="does not exist"):
        Checkpoint().load(tmp_path / "missing.pt")
    (tmp_path / "garbage.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(UserException, match="Cannot read"):
        Checkpoint().load(tmp_path / "garbage.pt")
    with pytest.raises(UserException, match="does not exist"):
        Checkpoint().save(tmp_path / "no" / "such" / "dir.pt")


def test_save_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.pt"
    Checkpoint().snapshot(Storage(a=1)).save(path)

    def crash(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        Checkpoint().snapshot(Storage(a=2)).save(path, overwrite=True)
    monkeypatch.undo()
    target = Storage()
    Checkpoint().load(path).restore(target)
    assert target == {"a": 1} and [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]
