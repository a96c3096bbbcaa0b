"""Drawing: boxes land where they should in the class colour, grids have the right shape, PR curves plot AP."""

import io

import numpy as np
import pytest
from PIL import Image

from yolox_np.eval import coco_eval
from yolox_np.viz import PALETTE, class_color, draw_detections, image_grid, plot_pr_curve


def grey_image(h=120, w=160, value=90):
    return np.full((h, w, 3), value, dtype=np.uint8)


def test_box_outline_has_the_class_colour_and_the_rest_is_untouched():
    img = grey_image()
    dets = np.array([[40, 50, 120, 100, 0.9, 0.8, 3]], dtype=np.float32)
    out = np.asarray(draw_detections(img, dets, class_names=[f"n{i}" for i in range(5)], line_width=2))
    color = list(class_color(3))
    assert out.shape == (120, 160, 3)
    for x, y in [(80, 100), (40, 75), (120, 75), (41, 99), (80, 99)]:  # bottom and side edges of the outline
        assert out[y, x].tolist() == color, (x, y)
    assert (out[60:95, 45:115] == 90).all()  # inside, away from the outline and the label
    assert (out[105:, :] == 90).all() and (out[:, 125:] == 90).all()  # outside
    label_band = out[30:50, 40:120]
    assert (label_band == color).all(axis=-1).any() and (label_band != color).any()  # a filled label with text
    assert (img == 90).all()  # input untouched


def test_colours_are_stable_per_class():
    assert class_color(7) == class_color(7) == PALETTE[7]
    assert class_color(7) == class_color(7 + len(PALETTE))
    assert len({class_color(c) for c in range(len(PALETTE))}) == len(PALETTE)
    img = grey_image()
    dets = np.array([[10, 10, 60, 60, 1, 0.9, 2], [80, 10, 150, 60, 1, 0.5, 2], [10, 80, 60, 110, 1, 0.7, 5]])
    out = np.asarray(draw_detections(img, dets, line_width=2))
    assert out[60, 30].tolist() == list(class_color(2)) == out[60, 110].tolist()
    assert out[110, 30].tolist() == list(class_color(5))
    with pytest.raises(ValueError, match="class_id"):
        class_color(-1)


def test_tuple_input_equals_array_input_and_threshold_skips():
    img = grey_image()
    dets = np.array([[20, 20, 80, 90, 0.5, 0.8, 1], [90, 30, 150, 100, 0.5, 0.2, 0]], dtype=np.float32)
    names = ["a", "b"]
    from_array = np.asarray(draw_detections(img, dets, names))
    from_tuple = np.asarray(draw_detections(img, (dets[:, :4], dets[:, 4] * dets[:, 5], dets[:, 6]), names))
    np.testing.assert_array_equal(from_array, from_tuple)
    only_first = np.asarray(draw_detections(img, dets, names, score_threshold=0.3))
    assert (only_first[:, 125:] == 90).all()  # the 0.1-score box at x >= 90 is not drawn beyond its label
    assert only_first[90, 50].tolist() == list(class_color(1))


def test_channel_order_of_arrays_and_pil_input():
    bgr = np.zeros((50, 60, 3), dtype=np.uint8)
    bgr[..., 0] = 255  # blue in BGR
    empty = np.zeros((0, 7))
    assert np.asarray(draw_detections(bgr, empty))[0, 0].tolist() == [0, 0, 255]
    assert np.asarray(draw_detections(bgr, empty, channel_order="rgb"))[0, 0].tolist() == [255, 0, 0]
    pil = Image.new("RGB", (60, 50), (1, 2, 3))
    assert np.asarray(draw_detections(pil, empty))[0, 0].tolist() == [1, 2, 3]


@pytest.mark.parametrize(
    "dets, names, match",
    [
        (np.zeros((2, 6)), None, r"\(N, 7\)"),
        (np.array([[10, 10, 5, 20, 1, 1, 0]]), None, "x2 < x1"),
        (np.array([[0, 0, 5, 5, 1, 1, np.nan]]), None, "non-finite"),
        (np.array([[0, 0, 5, 5, 1, 1, 1.5]]), None, "not a non-negative integer"),
        (np.array([[0, 0, 5, 5, 1, 1, 4]]), ["a", "b"], "class_names has 2"),
    ],
)
def test_draw_rejects_bad_detections(dets, names, match):
    with pytest.raises(ValueError, match=match):
        draw_detections(grey_image(), dets, names)


def test_image_grid_shape_and_placement():
    a = np.full((30, 40, 3), 10, dtype=np.uint8)
    b = np.full((20, 50, 3), 200, dtype=np.uint8)
    grid = image_grid([a, b, a], ncols=2, pad=3)
    cell_w, cell_h = 50, 30
    assert grid.size == (2 * cell_w + 3 * 3, 2 * cell_h + 3 * 3)
    arr = np.asarray(grid)
    assert (arr[3:33, 3:43] == 10).all()  # image 0 at row 0, col 0
    assert (arr[3:23, 56:106] == 200).all()  # image 1 at row 0, col 1
    assert (arr[36:66, 3:43] == 10).all()  # image 2 at row 1, col 0
    assert (arr[36:, 56:] == 255).all()  # the empty cell is background


def test_image_grid_titles_and_arrays():
    heat = np.linspace(-1, 1, 100).reshape(10, 10)  # float maps are min-max scaled
    grid = image_grid([heat, heat], ncols=5, titles=["x", "y"], pad=0, font_size=10)
    assert grid.size == (20, 10 + 16)
    arr = np.asarray(grid)
    assert arr[16, 0].tolist() == [0, 0, 0] and arr[25, 9].tolist() == [255, 255, 255]
    with pytest.raises(ValueError, match="titles"):
        image_grid([heat], 1, titles=["a", "b"])
    with pytest.raises(ValueError, match="ncols"):
        image_grid([heat], 0)
    with pytest.raises(ValueError, match="at least one"):
        image_grid([], 1)


def small_eval():
    gt = {"images": [{"id": 1}, {"id": 2}], "categories": [{"id": 1}, {"id": 2}, {"id": 3}],
          "annotations": [{"id": i + 1, "image_id": 1 + i % 2, "category_id": 1 + i % 2,
                           "bbox": [10 * i, 5, 40, 40], "area": 1600, "iscrowd": 0} for i in range(6)]}
    rng = np.random.default_rng(0)
    dets = [{"image_id": a["image_id"], "category_id": a["category_id"],
             "bbox": [v + rng.normal(0, 4) for v in a["bbox"][:2]] + a["bbox"][2:], "score": float(rng.random())}
            for a in gt["annotations"] for _ in range(2)]
    return coco_eval(gt, dets)


def test_pr_curve_lines_carry_the_eval_numbers():
    result = small_eval()
    fig = plot_pr_curve(result)
    ax = fig.axes[0]
    lines = ax.get_lines()
    assert len(lines) == 3  # IoU 0.5, 0.75 and the mean over 0.50:0.95
    np.testing.assert_allclose(lines[0].get_xdata(), np.linspace(0, 1, 101))
    assert np.mean(lines[0].get_ydata()) == pytest.approx(result["AP50"])
    assert np.mean(lines[1].get_ydata()) == pytest.approx(result["AP75"])
    assert np.mean(lines[2].get_ydata()) == pytest.approx(result["AP"])
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    assert buf.getvalue()[:8] == b"\x89PNG\r\n\x1a\n"


def test_pr_curve_for_one_class_and_bad_arguments():
    result = small_eval()
    fig = plot_pr_curve(result, iou_thresholds=(0.5,), include_mean=False, category_id=2)
    curve = fig.axes[0].get_lines()[0].get_ydata()
    np.testing.assert_allclose(curve, result["precision"][0, :, 1, 0, 2])
    fig = plot_pr_curve(result["precision"], iou_thresholds=(0.5,), include_mean=False)
    assert np.mean(fig.axes[0].get_lines()[0].get_ydata()) == pytest.approx(result["AP50"])
    with pytest.raises(ValueError, match="no category has ground truth"):
        plot_pr_curve(result, category_id=3)
    with pytest.raises(ValueError, match="IoU threshold"):
        plot_pr_curve(result, iou_thresholds=(0.52,))
    with pytest.raises(ValueError, match="area"):
        plot_pr_curve(result, area="huge")
    with pytest.raises(ValueError, match="shape"):
        plot_pr_curve(np.zeros((3, 3)))
