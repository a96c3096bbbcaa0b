"""The procedural shapes dataset: determinism, tight boxes, COCO export."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pycocotools.coco import COCO

from yolox_np.data.shapes import CLASS_NAMES, ShapesDataset


def _pixels_of_colour(image, colour):
    return np.all(image == np.asarray(colour, dtype=np.uint8), axis=-1)


def test_item_format_and_value_ranges():
    ds = ShapesDataset(5, img_size=(96, 128), seed=3, min_objects=2, max_objects=5)
    assert len(ds) == 5 and ds.class_names == CLASS_NAMES
    for i in range(len(ds)):
        img, boxes, classes, image_id = ds[i]
        assert img.shape == (96, 128, 3) and img.dtype == np.uint8
        assert boxes.dtype == np.float32 and boxes.shape == (len(classes), 4)
        assert classes.dtype == np.int64 and np.all((classes >= 0) & (classes < len(CLASS_NAMES)))
        assert image_id == i + 1
        assert 2 <= len(boxes) <= 5
        assert np.all(boxes[:, :2] >= 0) and np.all(boxes[:, 2] <= 128) and np.all(boxes[:, 3] <= 96)
        assert np.all(boxes[:, 2] - boxes[:, 0] >= 2) and np.all(boxes[:, 3] - boxes[:, 1] >= 2)


def test_image_depends_only_on_seed_and_index():
    big = ShapesDataset(20, img_size=(64, 64), seed=11)
    small = ShapesDataset(4, img_size=(64, 64), seed=11)
    a = big[3]
    _ = big[17]  # generating other indices first must not matter
    b = small[3]
    c = big[3]
    for x, y in ((a, b), (a, c)):
        np.testing.assert_array_equal(x[0], y[0])
        np.testing.assert_array_equal(x[1], y[1])
        np.testing.assert_array_equal(x[2], y[2])
    other_seed = ShapesDataset(4, img_size=(64, 64), seed=12)[3]
    assert not np.array_equal(a[0], other_seed[0])
    assert not np.array_equal(big[2][0], a[0])


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    height=st.integers(24, 120),
    width=st.integers(24, 120),
    max_objects=st.integers(1, 6),
)
def test_boxes_are_tight_around_the_visible_pixels(seed, height, width, max_objects):
    """Flat background and no noise: each object's pixels are exactly its fill colour, so its box can be
    measured back from the image alone."""
    ds = ShapesDataset(1, img_size=(height, width), seed=seed, max_objects=max_objects, clutter=False,
                       min_size=4, max_size=min(height, width) * 0.8)
    sample = ds.render(0)
    background = sample.image[0, 0] if len(sample.boxes) == 0 else None
    for box, colour, area in zip(sample.boxes, sample.colours, sample.areas):
        ys, xs = np.nonzero(_pixels_of_colour(sample.image, colour))
        assert xs.size == area
        np.testing.assert_array_equal(box, [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
    if background is not None:
        assert np.all(sample.image == background)
    # everything that is not an object is the one background colour
    covered = np.zeros(sample.image.shape[:2], bool)
    for colour in sample.colours:
        covered |= _pixels_of_colour(sample.image, colour)
    rest = sample.image[~covered]
    assert len(np.unique(rest, axis=0)) <= 1


def test_shape_geometry_of_a_lone_circle_and_square():
    """A lone, unoccluded circle fills about pi/4 of its (square) box; a square fills 1/2..1 of its box."""
    checked = set()
    for seed in range(200):
        ds = ShapesDataset(1, img_size=(80, 80), seed=seed, min_objects=1, max_objects=1, clutter=False,
                           min_size=30, max_size=40, class_names=("circle", "square"))
        s = ds.render(0)
        (x1, y1, x2, y2), cls, area = s.boxes[0], int(s.classes[0]), int(s.areas[0])
        if x1 == 0 or y1 == 0 or x2 == 80 or y2 == 80:
            continue  # cut by the image border
        w, h = x2 - x1, y2 - y1
        fill = area / (w * h)
        if cls == 0:
            assert abs(w - h) <= 1
            assert abs(fill - np.pi / 4) < 0.05
        else:
            assert 0.45 < fill <= 1.0
        checked.add(cls)
        if checked == {0, 1}:
            break
    assert checked == {0, 1}


def test_sizes_span_tiny_to_large():
    ds = ShapesDataset(30, img_size=(128, 128), seed=0, min_size=6, max_size=100)
    boxes = np.concatenate([ds[i][1] for i in range(30)])
    sides = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    assert sides.min() <= 12 and sides.max() >= 60
    classes = np.concatenate([ds[i][2] for i in range(30)])
    assert set(classes.tolist()) == set(range(len(CLASS_NAMES)))


def test_coco_export_matches_items_and_loads_in_pycocotools(tmp_path):
    ds = ShapesDataset(6, img_size=(64, 80), seed=5, class_names=("star", "circle", "ring"))
    coco = ds.to_coco()
    assert [c["id"] for c in coco["categories"]] == [1, 2, 3]
    assert [c["name"] for c in coco["categories"]] == ["star", "circle", "ring"]
    assert ds.coco_gt() == coco
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(coco))
    api = COCO(str(path))
    assert sorted(api.getImgIds()) == [1, 2, 3, 4, 5, 6]
    for i in range(len(ds)):
        _, boxes, classes, image_id = ds[i]
        anns = api.loadAnns(api.getAnnIds(imgIds=[image_id]))
        assert len(anns) == len(boxes)
        for ann, box, cls in zip(anns, boxes, classes):
            x, y, w, h = ann["bbox"]
            np.testing.assert_allclose([x, y, x + w, y + h], box)
            assert ann["category_id"] == cls + 1 and ann["iscrowd"] == 0
            assert 0 < ann["area"] <= w * h
        info = api.loadImgs([image_id])[0]
        assert (info["height"], info["width"]) == (64, 80)
    subset = ds.to_coco(indices=[4, 1])
    assert [im["id"] for im in subset["images"]] == [5, 2]


def test_write_coco_writes_lossless_pngs(tmp_path):
    from PIL import Image

    ds = ShapesDataset(3, img_size=(40, 56), seed=9)
    images_dir, ann_path = ds.write_coco(tmp_path / "shapes")
    coco = json.loads(ann_path.read_text())
    assert coco == ds.to_coco()
    for i, info in enumerate(coco["images"]):
        rgb = np.asarray(Image.open(images_dir / info["file_name"]).convert("RGB"))
        np.testing.assert_array_equal(rgb[..., ::-1], ds[i][0])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_images": 0}, "num_images"),
        ({"img_size": (0, 10)}, "img_size"),
        ({"img_size": (10,)}, "img_size"),
        ({"seed": -1}, "seed"),
        ({"min_objects": 5, "max_objects": 2}, "min_objects"),
        ({"min_size": 2}, "min_size"),
        ({"min_size": 20, "max_size": 10}, "min_size"),
        ({"max_size": 500}, "max_size"),
        ({"class_names": ("circle", "hexagon")}, "hexagon"),
        ({"class_names": ()}, "class_names"),
        ({"class_names": ("circle", "circle")}, "class_names"),
        ({"noise_std": float("nan")}, "noise_std"),
        ({"max_occlusion": 1.0}, "max_occlusion"),
    ],
)
def test_bad_arguments_raise(kwargs, message):
    args = {"num_images": 2, "img_size": (64, 64)}
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        ShapesDataset(**args)


def test_bad_index_raises():
    ds = ShapesDataset(2, img_size=(32, 32))
    with pytest.raises(IndexError, match="5"):
        ds[5]
    with pytest.raises(IndexError):
        ds[-1]
    with pytest.raises(TypeError):
        ds[1.5]
