"""Targeted attacks on small tensors: trigger stamping, DBA's split, the flips, the edge-case tails, bad input."""
import numpy as np
import pytest
import torch

import attacks
from attacks.tails import upside_down
from attacks.targeted import DataView
from attacks.triggers import dba_parts, poisoned_count, rectangle, stamp
from experiments.tools import UserException


def view(shape=(1, 6, 6), classes=10, stats=None, train=None, test=None):
    return DataView.of(torch.zeros(1, *shape), classes, stats, train=train, test=test)


def prepared(spec, **kwargs):
    attack = attacks.get(spec)
    attack.prepare(view(**kwargs))
    return attack


def test_a_rectangle_is_stamped_on_every_channel_where_its_mask_is():
    mask = rectangle((4, 4), 1, 2, 2, 2)
    assert mask.int().tolist() == [[0, 0, 0, 0], [0, 0, 1, 1], [0, 0, 1, 1], [0, 0, 0, 0]]
    images = torch.arange(2 * 16, dtype=torch.float32).view(1, 2, 4, 4)
    out = stamp(images, mask, torch.tensor([-1.0, -2.0]))
    expected = images.clone()
    expected[0, 0, 1:3, 2:4], expected[0, 1, 1:3, 2:4] = -1.0, -2.0
    assert torch.equal(out, expected)
    assert images[0, 0, 1, 2] == 6.0  # a new tensor: the input is left alone


def test_a_pixel_value_goes_through_the_runs_normalisation():
    normalised = view(shape=(2, 4, 4), stats=([0.5, 0.25], [0.25, 0.5]))
    assert normalised.pixel(1.0).tolist() == [2.0, 1.5]  # (1 - 0.5) / 0.25, (1 - 0.25) / 0.5
    assert view().pixel(1.0).tolist() == [1.0]  # without normalisation, the pixel itself


def test_dba_parts_follow_the_papers_layout():
    parts = dba_parts((6, 10), parts=4, size=2, gap=1, shift=1)
    # part i: row (i // 2) * (1 + gap) + shift, column (i % 2) * (size + gap) + shift, one pixel high, size wide
    where = [sorted(map(tuple, part.nonzero().tolist())) for part in parts]
    assert where == [[(1, 1), (1, 2)], [(1, 4), (1, 5)], [(3, 1), (3, 2)], [(3, 4), (3, 5)]]


def test_the_poisoned_count_is_the_floor_of_the_fraction_and_at_least_one():
    assert poisoned_count(64, 0.32) == 20  # FLPoison's int(64 * 0.32)
    assert poisoned_count(3, 0.1) == 1 and poisoned_count(5, 1.0) == 5


def test_badnets_stamps_and_relabels_the_first_fraction_of_each_batch():
    attack = prepared("badnets(size=2,fraction=0.5,target=3)")
    inputs, targets = torch.zeros(2, 4, 1, 6, 6), torch.tensor([[0, 1, 2, 3], [4, 5, 6, 7]])
    x, y = attack.poison(inputs, targets, 10)
    assert y.tolist() == [[3, 3, 2, 3], [3, 3, 6, 7]]
    corner = torch.zeros(6, 6)
    corner[4:, 4:] = 1.0  # bottom-right, white
    assert all(torch.equal(x[w, s, 0], corner) for w in range(2) for s in range(2))
    assert not x[:, 2:].any() and not inputs.any() and targets[0, 0] == 0  # the rest clean, inputs untouched


def test_badnets_works_on_a_federated_rounds_stacked_local_batches():
    attack = prepared("badnets(size=1,row=0,column=0,fraction=0.5,target=3)")
    x, y = attack.poison(torch.zeros(2, 3, 4, 1, 6, 6), torch.zeros(2, 3, 4, dtype=torch.long), 10)  # [f, K, b, ...]
    assert y[..., :2].eq(3).all() and y[..., 2:].eq(0).all()
    assert x[..., :2, 0, 0, 0].eq(1).all() and x.sum() == 2 * 3 * 2


def test_badnets_tests_the_trigger_on_the_other_classes_only():
    attack = prepared("badnets(size=2,target=1)")
    inputs, labels = torch.zeros(3, 1, 6, 6), torch.tensor([0, 1, 2])
    x, y = attack.backdoor(inputs, labels)
    assert y.tolist() == [0, 2] and x[:, 0, 4:, 4:].eq(1).all() and x.sum() == 2 * 4


def test_dba_gives_attacker_i_part_i_mod_parts_and_tests_with_the_whole_trigger():
    attack = prepared("dba(size=2,gap=1,shift=1,fraction=0.5,target=9)", shape=(1, 6, 10))
    parts = dba_parts((6, 10), 4, 2, 1, 1)
    x, y = attack.poison(torch.zeros(5, 4, 1, 6, 10), torch.zeros(5, 4, dtype=torch.long), 10)
    for row in range(5):  # the fifth attacker starts over with part 0
        for sample in range(2):
            assert torch.equal(x[row, sample, 0].bool(), parts[row % 4])
        assert not x[row, 2:].any() and y[row].tolist() == [9, 9, 0, 0]
    triggered, truth = attack.backdoor(torch.zeros(2, 1, 6, 10), torch.tensor([9, 4]))
    assert truth.tolist() == [4] and torch.equal(triggered[0, 0].bool(), parts.any(dim=0))


def test_dba_rows_in_a_federated_round_keep_their_parts():
    attack = prepared("dba(size=2,gap=1,fraction=1.0)", shape=(1, 6, 10))
    parts = dba_parts((6, 10), 4, 2, 1, 0)
    x, _ = attack.poison(torch.zeros(3, 2, 2, 1, 6, 10), torch.zeros(3, 2, 2, dtype=torch.long), 10)
    assert all(torch.equal(x[row, k, s, 0].bool(), parts[row]) for row in range(3) for k in range(2) for s in range(2))


def test_targetflip_relabels_the_source_class_and_tests_it_untouched():
    attack = prepared("targetflip(source=2,target=5)")
    inputs, targets = torch.rand(2, 3, 1, 6, 6), torch.tensor([[2, 1, 2], [5, 0, 2]])
    x, y = attack.poison(inputs, targets, 10)
    assert y.tolist() == [[5, 1, 5], [5, 0, 5]] and torch.equal(x, inputs)
    test = torch.rand(4, 1, 6, 6)
    triggered, truth = attack.backdoor(test, torch.tensor([2, 3, 2, 5]))
    assert truth.tolist() == [2, 2] and torch.equal(triggered, test[[0, 2]])


def _tiny_set():
    images = torch.arange(4 * 9, dtype=torch.float32).view(4, 1, 3, 3)
    return images, torch.tensor([7, 1, 7, 0])


def test_the_edge_case_stand_in_is_the_source_class_upside_down():
    train, test = _tiny_set(), (torch.ones(2, 1, 3, 3), torch.tensor([7, 3]))
    tails_train, tails_test = upside_down(view(shape=(1, 3, 3), train=train, test=test), 7)
    assert torch.equal(tails_train[0, 0], train[0][0, 0].flip(0)) and torch.equal(tails_train[1], train[0][2].flip(1))
    assert len(tails_train) == 2 and len(tails_test) == 1


def test_edge_case_mixes_tail_inputs_drawn_from_the_attackers_generator_labelled_as_the_target():
    train = _tiny_set()
    attack = prepared("edgecase(fraction=0.5)", shape=(1, 3, 3), train=train, test=train)
    pool = train[0][train[1] == 7].flip(-2)
    x, y = attack.poison(torch.full((2, 4, 1, 3, 3), -1.0), torch.zeros(2, 4, dtype=torch.long), 10,
                         generator=torch.Generator().manual_seed(3))
    again, _ = attack.poison(torch.full((2, 4, 1, 3, 3), -1.0), torch.zeros(2, 4, dtype=torch.long), 10,
                             generator=torch.Generator().manual_seed(3))
    assert torch.equal(x, again) and y[:, :2].eq(1).all() and y[:, 2:].eq(0).all()
    assert all(any(torch.equal(x[w, s], p) for p in pool) for w in range(2) for s in range(2))
    assert x[:, 2:].eq(-1).all()
    inputs, labels = attack.backdoor_set(train)
    assert labels.tolist() == [7, 7] and torch.equal(inputs, pool)
    assert attack.backdoor(inputs, labels)[1].tolist() == [7, 7]


def test_edge_case_reads_the_users_tails_from_a_npz_file_or_image_folders(tmp_path):
    from PIL import Image

    np.savez(tmp_path / "tails.npz", train=np.full((3, 4, 4), 255, dtype=np.uint8), test=np.zeros((2, 1, 4, 4)))
    attack = prepared(f"edgecase(data='{tmp_path / 'tails.npz'}')", shape=(1, 4, 4), stats=([0.5], [0.5]))
    assert attack._train.shape == (3, 1, 4, 4) and attack._train.eq(1.0).all()  # (1 - 0.5) / 0.5
    assert attack.backdoor_set(None)[0].eq(-1.0).all()
    for part, count in (("train", 2), ("test", 1)):
        (tmp_path / "folder" / part).mkdir(parents=True)
        for i in range(count):
            Image.fromarray(np.full((8, 8), 255 * i, dtype=np.uint8)).save(tmp_path / "folder" / part / f"{i}.png")
    attack = prepared(f"edgecase(data='{tmp_path / 'folder'}')", shape=(1, 4, 4))
    assert attack._train.shape == (2, 1, 4, 4) and attack._train[1].eq(1.0).all()  # resized to the run's images
    with pytest.raises(UserException, match="no image files"):
        prepared(f"edgecase(data='{tmp_path}')", shape=(1, 4, 4))  # a folder without train/ and test/
    np.savez(tmp_path / "wrong.npz", train=np.zeros((3, 5, 5)), test=np.zeros((2, 4, 4)))
    with pytest.raises(UserException, match=r"train holds inputs of shape \[3, 5, 5\]"):
        prepared(f"edgecase(data='{tmp_path / 'wrong.npz'}')", shape=(1, 4, 4))


@pytest.mark.parametrize("spec, shape, message", [
    ("badnets(size=7)", (1, 6, 6), "its 7x7 trigger at row -1, column -1 inside the 6x6 image"),
    ("badnets(size=2,row=5)", (1, 6, 6), "its 2x2 trigger at row 5, column 4 inside the 6x6 image"),
    ("badnets(column=24)", (1, 28, 28), "trigger at row 23, column 24 inside the 28x28 image"),
    ("dba", (1, 6, 6), r"its global trigger \(4 rows by 10 columns from the top-left corner\) inside the 6x6 image"),
    ("dba(parts=6)", (1, 28, 28), None),  # three rows of bars fit
    ("badnets(target=10)", (1, 6, 6), r"target < 10 \(the number of classes\)"),
    ("targetflip(source=10)", (1, 6, 6), r"source < 10"),
    ("edgecase(source=12)", (1, 6, 6), r"source < 10"),
    ("badnets", (36,), r"image inputs \[C, H, W\], got inputs of shape \[36\]"),
])
def test_a_trigger_outside_the_image_or_a_class_out_of_range_is_one_line(spec, shape, message):
    data = (torch.zeros(2, *shape), torch.tensor([0, 7]))
    if message is None:
        prepared(spec, shape=shape, train=data, test=data)
        return
    with pytest.raises(UserException, match=message) as caught:
        prepared(spec, shape=shape, train=data, test=data)
    assert "\n" not in str(caught.value) and repr(spec.split("(")[0]) in str(caught.value)


@pytest.mark.parametrize("spec, message", [
    ("badnets(fraction=0)", "0 < fraction <= 1"), ("dba(fraction=1.5)", "0 < fraction <= 1"),
    ("edgecase(fraction=-0.1)", "0 < fraction <= 1"), ("badnets(target=-1)", "target >= 0"),
    ("targetflip(source=3,target=3)", "source != target"), ("badnets(value=2)", "0 <= value <= 1"),
    ("ipm(every=0)", "every >= 1"), ("alie(begin=-1)", "begin >= 0"), ("alie(begin=5,end=5)", "end > begin"),
])
def test_bad_parameters_are_refused_at_construction_in_one_line(spec, message):
    with pytest.raises(UserException, match=message) as caught:
        attacks.get(spec)
    assert "\n" not in str(caught.value)


def test_an_unprepared_trigger_is_a_programming_error():
    with pytest.raises(ValueError, match="prepare"):
        attacks.get("badnets").poison(torch.zeros(1, 1, 1, 6, 6), torch.zeros(1, 1, dtype=torch.long), 10)
