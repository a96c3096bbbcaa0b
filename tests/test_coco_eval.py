"""COCO evaluation against pycocotools on tricky synthetic datasets, hand-computed AP, and bad input."""

import contextlib
import copy
import io
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from yolox_np.eval import SUMMARY_KEYS, average_precision, coco_eval, format_summary
from yolox_np.eval.ap import RECALL_THRESHOLDS, sample_precision_envelope

pycocotools = pytest.importorskip("pycocotools")
from pycocotools.coco import COCO  # noqa: E402
from pycocotools.cocoeval import COCOeval  # noqa: E402


def run_pycocotools(gt, dets):
    """pycocotools on deep copies (it mutates its inputs), with its prints silenced."""
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = copy.deepcopy(gt)
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(copy.deepcopy(dets))
        evaluator = COCOeval(coco_gt, coco_dt, "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator


def assert_matches_pycocotools(gt, dets):
    ref = run_pycocotools(gt, dets)
    ours = coco_eval(gt, dets)
    np.testing.assert_allclose([ours[k] for k in SUMMARY_KEYS], ref.stats, rtol=0, atol=1e-4)
    np.testing.assert_allclose(ours["precision"], ref.eval["precision"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(ours["recall"], ref.eval["recall"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(ours["scores"], ref.eval["scores"], rtol=0, atol=1e-12)
    for k, cat in enumerate(ref.params.catIds):
        p = ref.eval["precision"][:, :, k, 0, -1]
        expected = p[p > -1].mean() if (p > -1).any() else -1
        assert ours["per_class"][cat] == pytest.approx(expected, abs=1e-12)
    return ours


# ---------------------------------------------------------------------------------------------------
# seeded synthetic datasets built to hit every rule of the protocol


def make_dataset(seed):
    """Crowds, several detections per GT, empty images, unused categories, >100 detections, tied scores,
    tiny/medium/large boxes, 'area' different from w*h, boxes on the area boundaries."""
    rng = np.random.default_rng(seed)
    images = [{"id": i, "file_name": f"{i}.jpg"} for i in (3, 1, 7, 4, 10, 12, 5, 8)]  # unsorted ids
    categories = [{"id": c, "name": f"c{c}"} for c in (9, 1, 3, 5, 7)]  # 5 has GT but no detections; 9 no GT
    anns, dets = [], []
    ann_id = 100
    for img in images[:-2]:  # the last two images have no annotations
        for _ in range(int(rng.integers(1, 9))):
            cat = int(rng.choice([1, 3, 5, 7]))
            side = float(rng.choice([6.0, 20.0, 32.0, 45.0, 96.0, 150.0]))
            w, h = side * rng.uniform(0.6, 1.6), side * rng.uniform(0.6, 1.6)
            if rng.random() < 0.1:
                w = h = side  # area exactly on a range boundary for 32 and 96
            x, y = rng.uniform(0, 400), rng.uniform(0, 400)
            area = w * h if rng.random() < 0.6 else w * h * rng.uniform(0.4, 0.95)  # like a mask area
            crowd = int(rng.random() < 0.12)
            anns.append({"id": ann_id, "image_id": img["id"], "category_id": cat, "bbox": [x, y, w, h],
                         "area": area, "iscrowd": crowd})
            ann_id += int(rng.integers(1, 4))
            if cat == 5:
                continue
            for _ in range(int(rng.integers(0, 5))):  # several detections per GT (duplicates -> FPs)
                j = rng.normal(0, 0.12 * side, 4)
                dets.append({"image_id": img["id"], "category_id": cat,
                             "bbox": [x + j[0], y + j[1], max(w + j[2], 0.5), max(h + j[3], 0.5)],
                             "score": float(np.round(rng.random(), 1))})  # coarse scores: many ties
            if crowd:  # detections inside a crowd region
                for _ in range(3):
                    dets.append({"image_id": img["id"], "category_id": cat,
                                 "bbox": [x + rng.uniform(0, w / 2), y + rng.uniform(0, h / 2), w / 3, h / 3],
                                 "score": float(rng.random())})
    for _ in range(120):  # false positives everywhere, also on images without GT
        img = int(rng.choice([i["id"] for i in images]))
        dets.append({"image_id": img, "category_id": int(rng.choice([1, 3, 7])),
                     "bbox": [float(v) for v in rng.uniform(1, 200, 4)], "score": float(np.round(rng.random(), 2))})
    crowded = images[0]["id"]  # more than 100 detections in one image and category
    for _ in range(130):
        xy = rng.uniform(0, 300, 2)
        dets.append({"image_id": crowded, "category_id": 1, "bbox": [*map(float, xy), 30.0, 30.0],
                     "score": float(np.round(rng.random(), 2))})
    gt = {"images": images, "annotations": anns, "categories": categories}
    return gt, dets


@pytest.mark.parametrize("seed", range(6))
def test_matches_pycocotools_on_tricky_datasets(seed):
    gt, dets = make_dataset(seed)
    ours = assert_matches_pycocotools(gt, dets)
    assert ours["per_class"][9] == -1  # a category without ground truth
    assert ours["per_class"][5] == 0.0  # ground truth but no detections


# ---------------------------------------------------------------------------------------------------
# hypothesis: small datasets on an integer grid (exact IoU ties, thresholds hit exactly)


@st.composite
def small_datasets(draw):
    n_images = draw(st.integers(1, 3))
    categories = [1, 2]
    box = st.tuples(st.integers(0, 8), st.integers(0, 8), st.integers(1, 6), st.integers(1, 6))
    anns, dets = [], []
    for img in range(1, n_images + 1):
        for x, y, w, h in draw(st.lists(box, max_size=4)):
            s = 8  # 8 px grid: boxes from 8x8 (small) to 48x48 (medium)
            anns.append({"id": len(anns) + 1, "image_id": img, "category_id": draw(st.sampled_from(categories)),
                         "bbox": [x * s, y * s, w * s, h * s], "area": float(w * h * s * s),
                         "iscrowd": int(draw(st.booleans()) and draw(st.booleans()))})
        for x, y, w, h in draw(st.lists(box, max_size=6)):
            dets.append({"image_id": img, "category_id": draw(st.sampled_from(categories)),
                         "bbox": [x * 8, y * 8, w * 8, h * 8], "score": draw(st.sampled_from([0.2, 0.5, 0.9]))})
    if not dets:  # pycocotools cannot load an empty result list
        dets.append({"image_id": 1, "category_id": 1, "bbox": [0, 0, 8, 8], "score": 0.5})
    gt = {"images": [{"id": i} for i in range(1, n_images + 1)], "annotations": anns,
          "categories": [{"id": c} for c in categories]}
    return gt, dets


@settings(max_examples=60, deadline=None)
@given(data=small_datasets())
def test_matches_pycocotools_on_random_small_datasets(data):
    assert_matches_pycocotools(*data)


# ---------------------------------------------------------------------------------------------------
# hand-computed numbers and properties


def one_image(anns, dets, area=None):
    gt = {"images": [{"id": 1}], "categories": [{"id": 1}],
          "annotations": [{"id": i + 1, "image_id": 1, "category_id": 1, "bbox": b,
                           "area": area if area is not None else b[2] * b[3], "iscrowd": 0}
                          for i, b in enumerate(anns)]}
    return gt, [{"image_id": 1, "category_id": 1, "bbox": b, "score": s} for b, s in dets]


def test_hand_computed_ap():
    # GT A, B; detections: A (0.9), a false positive (0.8), B (0.7) -> precision 1, 1/2, 2/3 at recall .5, .5, 1
    gt, dets = one_image([[0, 0, 50, 50], [100, 100, 50, 50]],
                         [([0, 0, 50, 50], 0.9), ([300, 300, 50, 50], 0.8), ([100, 100, 50, 50], 0.7)])
    expected = (51 * 1.0 + 50 * (2 / 3)) / 101  # recall points 0..0.50 read 1, 0.51..1 read 2/3
    result = coco_eval(gt, dets)
    assert result["AP"] == pytest.approx(expected, abs=1e-12)
    assert result["AP50"] == pytest.approx(expected, abs=1e-12)
    assert result["AR1"] == pytest.approx(0.5) and result["AR100"] == pytest.approx(1.0)
    assert result["APm"] == pytest.approx(expected) and result["APs"] == -1 and result["APl"] == -1
    assert average_precision([0.5, 0.5, 1.0], [1.0, 0.5, 2 / 3]) == pytest.approx(expected, abs=1e-12)


def test_perfect_detections_score_one_and_no_detections_score_zero():
    gt, dets = make_dataset(0)
    perfect = [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 1.0}
               for a in gt["annotations"] if not a["iscrowd"]]
    result = coco_eval(gt, perfect)
    assert result["AP"] == pytest.approx(1.0) and result["AR100"] == pytest.approx(1.0)
    empty = coco_eval(gt, [])
    assert all(empty[k] in (0.0, -1.0) for k in SUMMARY_KEYS) and empty["AP"] == 0.0


def test_iou_threshold_boundary_and_crowd_iou():
    # IoU exactly 0.5 matches at 0.50 only; a detection inside a crowd region is ignored, not a false positive
    gt, dets = one_image([[0, 0, 40, 40]], [([0, 0, 40, 20], 0.9)])
    assert coco_eval(gt, dets)["AP50"] == pytest.approx(1.0)
    assert coco_eval(gt, dets)["AP75"] == pytest.approx(0.0)
    gt["annotations"].append({"id": 7, "image_id": 1, "category_id": 1, "bbox": [100, 100, 80, 80],
                              "area": 6400, "iscrowd": 1})
    dets.append({"image_id": 1, "category_id": 1, "bbox": [110, 110, 20, 20], "score": 0.95})
    assert coco_eval(gt, dets)["AP50"] == pytest.approx(1.0)


def test_ground_truth_ids_do_not_matter():
    gt, dets = make_dataset(2)
    renumbered = copy.deepcopy(gt)
    for i, ann in enumerate(renumbered["annotations"]):
        ann["id"] = i  # starts at 0, which pycocotools mishandles
    a, b = coco_eval(gt, dets), coco_eval(renumbered, dets)
    assert [a[k] for k in SUMMARY_KEYS] == [b[k] for k in SUMMARY_KEYS]


def test_reads_json_files(tmp_path):
    gt, dets = make_dataset(1)
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "dets.json").write_text(json.dumps(dets))
    from_files = coco_eval(tmp_path / "gt.json", str(tmp_path / "dets.json"))
    assert from_files["AP"] == coco_eval(gt, dets)["AP"]
    text = format_summary(from_files)
    assert len(text.splitlines()) == 12 and f"{from_files['AP']:0.3f}" in text.splitlines()[0]


# ---------------------------------------------------------------------------------------------------
# average_precision (exercise) and its package twin


@settings(max_examples=60, deadline=None)
@given(st.lists(st.booleans(), max_size=30), st.integers(1, 40))
def test_average_precision_matches_sampled_envelope(hits, num_gt):
    tp = np.cumsum(hits).astype(float)
    fp = np.cumsum(np.logical_not(hits)).astype(float)
    recall = np.minimum(tp / max(num_gt, int(tp[-1]) if len(tp) else 1), 1.0)
    precision = tp / np.maximum(tp + fp, 1)
    values, _ = sample_precision_envelope(recall, precision, RECALL_THRESHOLDS)
    assert average_precision(recall, precision) == pytest.approx(values.mean(), abs=1e-12)
    # the envelope reading is at least the raw precision at the same point
    assert 0.0 <= average_precision(recall, precision) <= 1.0


def test_average_precision_simple_cases():
    assert average_precision([], []) == 0.0
    assert average_precision([1.0], [1.0]) == pytest.approx(1.0)
    assert average_precision([0.5], [1.0]) == pytest.approx(51 / 101)
    with pytest.raises(ValueError, match="non-decreasing"):
        average_precision([0.5, 0.2], [1, 1])
    with pytest.raises(ValueError, match="not in"):
        average_precision([0.5], [1.5])
    with pytest.raises(ValueError, match="one length"):
        average_precision([0.5, 0.6], [1.0])


# ---------------------------------------------------------------------------------------------------
# bad input


def base_case():
    return one_image([[0, 0, 10, 10]], [([0, 0, 10, 10], 0.9)])


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda gt, d: d[0].pop("score"), r"detections\[0\] has no 'score'"),
        (lambda gt, d: d[0].update(bbox=[0, 0, 10]), r"detections\[0\]: bbox must be"),
        (lambda gt, d: d[0].update(bbox=[0, 0, -1, 10]), "negative width or height"),
        (lambda gt, d: d[0].update(image_id=99), "image_id 99 is not an image"),
        (lambda gt, d: d[0].update(category_id=0), "category_id 0 is not a category"),
        (lambda gt, d: d[0].update(score=float("nan")), "must be finite"),
        (lambda gt, d: gt["annotations"][0].pop("area"), r"annotations\[0\] has no 'area'"),
        (lambda gt, d: gt["annotations"][0].update(bbox=[0, 0, 1, 2, 3]), r"annotations\[0\]: bbox"),
        (lambda gt, d: gt["annotations"][0].update(image_id=5), "image_id 5 is not in 'images'"),
        (lambda gt, d: gt.pop("categories"), "'categories'"),
        (lambda gt, d: gt["images"].append({"id": 1}), "image id 1 appears more than once"),
    ],
)
def test_bad_input_raises_clear_value_error(edit, match):
    gt, dets = base_case()
    edit(gt, dets)
    with pytest.raises(ValueError, match=match):
        coco_eval(gt, dets)


def test_missing_files_and_wrong_types(tmp_path):
    gt, dets = base_case()
    with pytest.raises(FileNotFoundError):
        coco_eval(tmp_path / "nope.json", dets)
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        coco_eval(tmp_path / "bad.json", dets)
    with pytest.raises(ValueError, match="list of"):
        coco_eval(gt, {"annotations": dets})
