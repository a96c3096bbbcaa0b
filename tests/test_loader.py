"""The batch loader: shapes, seeded order per epoch, exact resume from a saved state."""

import numpy as np
import pytest

from yolox_np.data.augment import YoloxAugment
from yolox_np.data.loader import DataLoader
from yolox_np.data.preprocess import letterbox
from yolox_np.data.shapes import ShapesDataset


@pytest.fixture(scope="module")
def dataset():
    return ShapesDataset(10, img_size=(48, 64), seed=4, max_objects=4)


def _collect(loader):
    return [(images.copy(), [t.copy() for t in targets], list(ids)) for images, targets, ids in loader]


def _assert_same_batches(a, b):
    assert len(a) == len(b)
    for (ia, ta, da), (ib, tb, db) in zip(a, b):
        np.testing.assert_array_equal(ia, ib)
        assert da == db
        for x, y in zip(ta, tb):
            np.testing.assert_array_equal(x, y)


def test_batch_format(dataset):
    loader = DataLoader(dataset, batch_size=4, shuffle=False, img_size=(32, 32))
    batches = _collect(loader)
    assert len(loader) == 3 and len(batches) == 3
    assert [len(ids) for _, _, ids in batches] == [4, 4, 2]
    images, targets, ids = batches[0]
    assert images.shape == (4, 3, 32, 32) and images.dtype == np.float32
    assert ids == [1, 2, 3, 4]
    for t in targets:
        assert t.dtype == np.float32 and t.ndim == 2 and t.shape[1] == 5


def test_plain_loader_letterboxes_and_converts_boxes(dataset):
    loader = DataLoader(dataset, batch_size=3, shuffle=False, img_size=(32, 32))
    images, targets, ids = next(iter(loader))
    r = 0.5  # min(32 / 48, 32 / 64)
    for k in range(3):
        img, boxes, classes, image_id = dataset[k]
        assert ids[k] == image_id
        np.testing.assert_array_equal(images[k], letterbox(img, (32, 32))[0])
        x1, y1, x2, y2 = boxes.T.astype(np.float64)
        expected = np.stack([classes, (x1 + x2) / 2 * r, (y1 + y2) / 2 * r, (x2 - x1) * r, (y2 - y1) * r], 1)
        np.testing.assert_allclose(targets[k], expected, rtol=1e-6)


def test_drop_last(dataset):
    loader = DataLoader(dataset, batch_size=4, img_size=(32, 32), drop_last=True)
    assert len(loader) == 2
    assert [len(ids) for _, _, ids in loader] == [4, 4]


def test_each_epoch_is_a_seeded_permutation(dataset):
    loader = DataLoader(dataset, batch_size=3, shuffle=True, seed=7, img_size=(32, 32))
    epoch0 = [i for _, _, ids in loader for i in ids]
    assert loader.epoch == 1  # a full pass moves to the next epoch
    epoch1 = [i for _, _, ids in loader for i in ids]
    assert sorted(epoch0) == sorted(epoch1) == list(range(1, 11))
    assert epoch0 != epoch1
    again = DataLoader(dataset, batch_size=5, shuffle=True, seed=7, img_size=(32, 32))
    assert [i for _, _, ids in again for i in ids] == epoch0  # the order does not depend on the batch size
    other = DataLoader(dataset, batch_size=3, shuffle=True, seed=8, img_size=(32, 32))
    assert [i for _, _, ids in other for i in ids] != epoch0
    loader.set_epoch(0)
    assert [i for _, _, ids in loader for i in ids] == epoch0
    np.testing.assert_array_equal(np.asarray(epoch1) - 1, loader.order(1))


def test_augmented_batches_are_reproducible_per_seed_and_epoch(dataset):
    def make():
        return DataLoader(dataset, batch_size=4, seed=3, img_size=(32, 32), augment=YoloxAugment())

    a, b = make(), make()
    first = _collect(a)
    _assert_same_batches(first, _collect(b))
    second = _collect(a)
    assert not np.array_equal(first[0][0], second[0][0])
    c = make()
    c.set_epoch(1)
    _assert_same_batches(second, _collect(c))
    for _, targets, _ in first:
        for t in targets:
            assert np.all(np.minimum(t[:, 3], t[:, 4]) > 1)
            assert np.all((t[:, 1:3] >= 0) & (t[:, 1:3] <= 32))


def test_resume_mid_epoch_is_exact(dataset):
    def make():
        return DataLoader(dataset, batch_size=3, seed=11, img_size=(32, 32), augment=YoloxAugment())

    reference = make()
    ref = _collect(reference) + _collect(reference)  # two epochs
    run = make()
    it = iter(run)
    consumed = [next(it), next(it)]
    state = run.state_dict()
    assert state["epoch"] == 0 and state["next_batch"] == 2
    resumed = make()
    resumed.load_state_dict(state)
    rest = _collect(resumed) + _collect(resumed)
    _assert_same_batches(ref[:2], [(i, t, d) for i, t, d in consumed])
    _assert_same_batches(ref[2:], rest)


def test_state_dict_survives_the_end_of_an_epoch_and_mosaic_switch(dataset):
    aug = YoloxAugment()
    loader = DataLoader(dataset, batch_size=5, seed=1, img_size=(32, 32), augment=aug)
    _collect(loader)
    aug.close_mosaic()
    state = loader.state_dict()
    assert (state["epoch"], state["next_batch"], state["enable_mosaic"]) == (1, 0, False)
    fresh_aug = YoloxAugment()
    fresh = DataLoader(dataset, batch_size=5, seed=1, img_size=(32, 32), augment=fresh_aug)
    fresh.load_state_dict(state)
    assert not fresh_aug.enable_mosaic
    _assert_same_batches(_collect(loader), _collect(fresh))


def test_load_state_dict_refuses_a_different_setup(dataset):
    loader = DataLoader(dataset, batch_size=5, img_size=(32, 32))
    state = loader.state_dict()
    other = DataLoader(dataset, batch_size=4, img_size=(32, 32))
    with pytest.raises(ValueError, match="batch_size"):
        other.load_state_dict(state)
    with pytest.raises(ValueError, match="missing"):
        loader.load_state_dict({"seed": 0})
    with pytest.raises(ValueError, match="next_batch"):
        loader.load_state_dict({**state, "next_batch": 9})


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": 2.5}, "batch_size"),
        ({"seed": -3}, "seed"),
        ({"img_size": (0, 32)}, "img_size"),
        ({"img_size": 32}, "img_size"),
        ({"augment": "mosaic"}, "augment"),
        ({"batch_size": 11, "drop_last": True}, "drop_last"),
    ],
)
def test_bad_arguments(dataset, kwargs, message):
    args = {"batch_size": 2, "img_size": (32, 32)}
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        DataLoader(dataset, **args)


def test_set_epoch_validates(dataset):
    loader = DataLoader(dataset, batch_size=2, img_size=(32, 32))
    with pytest.raises(ValueError, match="epoch"):
        loader.set_epoch(-1)
