"""The COCO-format reader: clipping, crowd boxes, category mapping, errors that name the culprit."""

import json

import numpy as np
import pytest
from PIL import Image

from yolox_np.data.coco import CocoDataset
from yolox_np.data.shapes import ShapesDataset


def _write_png(path, rgb):
    Image.fromarray(np.asarray(rgb, dtype=np.uint8)).save(path)


@pytest.fixture
def small_coco(tmp_path):
    """Three images (one without annotations) and annotations exercising every rule."""
    images = tmp_path / "images"
    images.mkdir()
    rgb = np.zeros((20, 30, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 200, 100, 50  # R, G, B
    _write_png(images / "a.png", rgb)
    _write_png(images / "b.png", np.full((40, 10, 3), 7, np.uint8))
    _write_png(images / "c.png", np.full((16, 16, 3), 9, np.uint8))
    coco = {
        "images": [
            {"id": 42, "file_name": "a.png", "height": 20, "width": 30},
            {"id": 7, "file_name": "b.png", "height": 40, "width": 10},
            {"id": 100, "file_name": "c.png", "height": 16, "width": 16},
        ],
        # deliberately unsorted, non-contiguous ids
        "categories": [{"id": 12, "name": "dog"}, {"id": 3, "name": "cat"}, {"id": 7, "name": "bird"}],
        "annotations": [
            {"id": 1, "image_id": 42, "category_id": 3, "bbox": [2, 3, 10, 5], "area": 50, "iscrowd": 0},
            # partly left of and below the image: clipped to [0, 8] x [15, 20]
            {"id": 2, "image_id": 42, "category_id": 12, "bbox": [-4, 15, 12, 9], "area": 108, "iscrowd": 0},
            # crowd: skipped
            {"id": 3, "image_id": 42, "category_id": 7, "bbox": [0, 0, 5, 5], "area": 25, "iscrowd": 1},
            # completely right of the image: nothing left after clipping -> dropped
            {"id": 4, "image_id": 42, "category_id": 7, "bbox": [31, 2, 4, 4], "area": 16, "iscrowd": 0},
            # zero width -> dropped
            {"id": 5, "image_id": 42, "category_id": 7, "bbox": [5, 5, 0, 4], "area": 0, "iscrowd": 0},
            # the second image: one box, kept
            {"id": 6, "image_id": 7, "category_id": 7, "bbox": [1.5, 2.25, 3, 30], "area": 90, "iscrowd": 0},
        ],
    }
    ann = tmp_path / "instances.json"
    ann.write_text(json.dumps(coco))
    return images, ann, coco


def test_category_mapping_is_sorted_and_contiguous(small_coco):
    ds = CocoDataset(*small_coco[:2])
    assert ds.cat_ids == [3, 7, 12]
    assert ds.class_names == ("cat", "bird", "dog")
    assert len(ds) == 3 and ds.image_ids == [42, 7, 100]


def test_boxes_clipped_crowd_and_empty_boxes_dropped(small_coco):
    ds = CocoDataset(*small_coco[:2])
    img, boxes, classes, image_id = ds[0]
    assert image_id == 42
    assert boxes.dtype == np.float32 and classes.dtype == np.int64
    np.testing.assert_array_equal(boxes, [[2, 3, 12, 8], [0, 15, 8, 20]])
    np.testing.assert_array_equal(classes, [0, 2])  # cat -> 0, dog -> 2
    _, boxes, classes, image_id = ds[1]
    assert image_id == 7
    np.testing.assert_allclose(boxes, [[1.5, 2.25, 4.5, 32.25]])
    np.testing.assert_array_equal(classes, [1])


def test_image_without_annotations(small_coco):
    ds = CocoDataset(*small_coco[:2])
    img, boxes, classes, image_id = ds[2]
    assert img.shape == (16, 16, 3) and image_id == 100
    assert boxes.shape == (0, 4) and classes.shape == (0,)


def test_images_are_bgr_uint8(small_coco):
    ds = CocoDataset(*small_coco[:2])
    img = ds[0][0]
    assert img.dtype == np.uint8 and img.shape == (20, 30, 3)
    np.testing.assert_array_equal(img[0, 0], [50, 100, 200])


def test_coco_gt_is_the_file_and_a_copy(small_coco):
    ds = CocoDataset(*small_coco[:2])
    gt = ds.coco_gt()
    assert gt == small_coco[2]
    gt["images"].clear()
    assert len(ds.coco_gt()["images"]) == 3


def test_items_are_copies(small_coco):
    ds = CocoDataset(*small_coco[:2])
    boxes = ds[0][1]
    boxes[:] = -1
    assert ds[0][1][0, 2] == 12


def test_annotation_without_reading_the_image(small_coco):
    ds = CocoDataset(*small_coco[:2])
    boxes, classes = ds.annotation(1)
    np.testing.assert_array_equal(boxes, ds[1][1])
    np.testing.assert_array_equal(classes, ds[1][2])


def test_missing_image_names_the_file(small_coco):
    images, ann, _ = small_coco
    (images / "b.png").unlink()
    ds = CocoDataset(images, ann)
    with pytest.raises(FileNotFoundError, match="b.png"):
        ds[1]


def test_missing_or_corrupt_json_names_the_file(small_coco, tmp_path):
    images, _, _ = small_coco
    with pytest.raises(FileNotFoundError, match="nothing.json"):
        CocoDataset(images, tmp_path / "nothing.json")
    bad = tmp_path / "broken.json"
    bad.write_text('{"images": [')
    with pytest.raises(ValueError, match="broken.json"):
        CocoDataset(images, bad)
    no_images = tmp_path / "noimg.json"
    no_images.write_text(json.dumps({"categories": []}))
    with pytest.raises(ValueError, match="images"):
        CocoDataset(images, no_images)
    with pytest.raises(FileNotFoundError, match="no_such_dir"):
        CocoDataset(tmp_path / "no_such_dir", small_coco[1])


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda c: c["annotations"][0].update(category_id=99), "unknown category id 99"),
        (lambda c: c["annotations"][0].update(image_id=5), "unknown image id 5"),
        (lambda c: c["annotations"][0].update(bbox=[1, 2, 3]), "bbox"),
        (lambda c: c["annotations"][0].update(bbox=[1, float("nan"), 3, 4]), "non-finite"),
        (lambda c: c["images"].append(dict(c["images"][0])), "duplicate image id 42"),
        (lambda c: c["images"][0].pop("height"), "image entry 0"),
        (lambda c: c["categories"].append({"id": 3, "name": "again"}), "duplicate category"),
    ],
)
def test_inconsistent_annotations_raise(small_coco, tmp_path, change, message):
    images, ann, coco = small_coco
    coco = json.loads(json.dumps(coco))
    change(coco)
    path = tmp_path / "changed.json"
    path.write_text(json.dumps(coco))
    with pytest.raises(ValueError, match=message):
        CocoDataset(images, path)


def test_image_size_mismatch_raises(small_coco, tmp_path):
    images, ann, coco = small_coco
    coco["images"][1]["height"] = 41
    path = tmp_path / "size.json"
    path.write_text(json.dumps(coco))
    ds = CocoDataset(images, path)
    with pytest.raises(ValueError, match="b.png"):
        ds[1]


def test_index_errors(small_coco):
    ds = CocoDataset(*small_coco[:2])
    with pytest.raises(IndexError):
        ds[3]
    with pytest.raises(TypeError):
        ds["0"]


def test_round_trip_with_the_shapes_dataset(tmp_path):
    shapes = ShapesDataset(4, img_size=(48, 64), seed=21, class_names=("ring", "cross", "triangle"))
    images_dir, ann_path = shapes.write_coco(tmp_path)
    ds = CocoDataset(images_dir, ann_path)
    assert ds.class_names == ("ring", "cross", "triangle") and ds.cat_ids == [1, 2, 3]
    assert len(ds) == len(shapes)
    for i in range(len(ds)):
        a, b = ds[i], shapes[i]
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
        np.testing.assert_array_equal(a[2], b[2])
        assert a[3] == b[3]
    assert ds.coco_gt() == shapes.coco_gt()
