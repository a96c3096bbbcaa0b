"""Pre-processing: golden network inputs, OpenCV-exact bilinear resize, letterbox geometry, image reading."""

import importlib.util

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from yolox_np.data.preprocess import (
    ImageReadError,
    letterbox,
    load_image,
    resize_bilinear,
    scale_boxes_back,
)

# ---------------------------------------------------------------------------------------------------
# golden inputs of the real YOLOX-Nano pipeline


@pytest.mark.assets
@pytest.mark.parametrize("photo", ["chelsea.png", "coffee.jpg"])
def test_letterboxed_photo_equals_golden_input(assets_dir, photo):
    golden = np.load(assets_dir / "yolox_nano" / f"golden_{photo.split('.')[0]}.npz")
    chw, ratio = letterbox(load_image(assets_dir / "images" / photo), size=(416, 416))
    assert ratio == float(golden["ratio"])
    assert chw.dtype == np.float32 and chw.shape == (3, 416, 416)
    max_diff = float(np.abs(chw[None] - golden["input"]).max())
    assert max_diff == 0.0, f"max difference to the golden input: {max_diff}"


def golden_tool_resize(assets_dir):
    """The asset folder's own reproduction of cv2.resize, loaded as an independent reference."""
    spec = importlib.util.spec_from_file_location("make_golden", assets_dir / "tools" / "make_golden.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.resize_bilinear


@pytest.mark.assets
def test_resize_matches_the_golden_tool_on_random_images(assets_dir):
    reference = golden_tool_resize(assets_dir)
    rng = np.random.default_rng(0)
    for _ in range(25):
        h, w = rng.integers(1, 70, 2)
        out_h, out_w = rng.integers(1, 90, 2)
        img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        np.testing.assert_array_equal(resize_bilinear(img, int(out_w), int(out_h)), reference(img, out_w, out_h))


# ---------------------------------------------------------------------------------------------------
# resize properties against independent formulas


def float_bilinear(img, out_w, out_h):
    """Plain float bilinear with half-pixel centres and edge clamping, rounded half up."""
    h, w = img.shape[:2]

    def taps(n_in, n_out):
        pos = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
        left = np.minimum(np.floor(pos).astype(int), n_in - 1)
        right = np.minimum(left + 1, n_in - 1)
        return left, right, pos - left

    x0, x1, fx = taps(w, out_w)
    y0, y1, fy = taps(h, out_h)
    src = img.astype(np.float64)
    rows = src[:, x0] * (1 - fx)[None, :, None] + src[:, x1] * fx[None, :, None]
    out = rows[y0] * (1 - fy)[:, None, None] + rows[y1] * fy[:, None, None]
    return np.floor(out + 0.5)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 40), st.integers(1, 40), st.integers(1, 50), st.integers(1, 50), st.integers(0, 2**32 - 1))
def test_resize_is_within_one_level_of_float_bilinear(h, w, out_h, out_w, seed):
    img = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    out = resize_bilinear(img, out_w, out_h)
    assert out.shape == (out_h, out_w, 3) and out.dtype == np.uint8
    assert np.abs(out.astype(int) - float_bilinear(img, out_w, out_h)).max() <= 1


def test_resize_identity_constant_and_exact_halving():
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (9, 13, 3), dtype=np.uint8)
    np.testing.assert_array_equal(resize_bilinear(img, 13, 9), img)
    flat = np.full((17, 11, 3), 201, dtype=np.uint8)
    assert (resize_bilinear(flat, 29, 6) == 201).all()
    # an exact 2x downscale is OpenCV's INTER_AREA: the rounded mean of each 2x2 block, (a+b+c+d+2) >> 2
    even = rng.integers(0, 256, (8, 12, 3), dtype=np.uint8).astype(int)
    blocks = even[0::2, 0::2] + even[1::2, 0::2] + even[0::2, 1::2] + even[1::2, 1::2]
    np.testing.assert_array_equal(resize_bilinear(even.astype(np.uint8), 6, 4), (blocks + 2) >> 2)


def test_resize_greyscale_and_bad_input():
    grey = np.arange(30, dtype=np.uint8).reshape(5, 6)
    out = resize_bilinear(grey, 3, 2)
    np.testing.assert_array_equal(out, resize_bilinear(np.dstack([grey] * 3), 3, 2)[:, :, 0])
    with pytest.raises(ValueError, match="uint8"):
        resize_bilinear(grey.astype(np.float32), 3, 2)
    with pytest.raises(ValueError, match="out_w"):
        resize_bilinear(grey, 0, 2)


# ---------------------------------------------------------------------------------------------------
# letterbox and the way back


def test_letterbox_geometry():
    rng = np.random.default_rng(2)
    img = rng.integers(0, 256, (300, 451, 3), dtype=np.uint8)
    chw, ratio = letterbox(img, size=(416, 416))
    assert ratio == 416 / 451
    new_w, new_h = int(451 * ratio), int(300 * ratio)  # truncation
    assert (new_w, new_h) == (416, 276)
    hwc = chw.transpose(1, 2, 0)
    np.testing.assert_array_equal(hwc[:new_h, :new_w], resize_bilinear(img, new_w, new_h))
    assert (hwc[new_h:] == 114).all()


def test_letterbox_non_square_size_and_pad_value():
    img = np.zeros((100, 50, 3), dtype=np.uint8)
    chw, ratio = letterbox(img, size=(64, 96), pad_value=0)  # (height, width)
    assert chw.shape == (3, 64, 96) and ratio == 0.64
    img = np.full((100, 50, 3), 255, dtype=np.uint8)
    chw, _ = letterbox(img, size=(64, 96), pad_value=7)
    assert (chw[:, :, :32] == 255).all() and (chw[:, :, 32:] == 7).all()  # top-left, padding on the right


def test_letterbox_upscales_small_images():
    img = np.full((10, 20, 3), 50, dtype=np.uint8)
    chw, ratio = letterbox(img, size=(416, 416))
    assert ratio == 20.8 and (chw[:, :208, :] == 50).all() and (chw[:, 208:, :] == 114).all()


@pytest.mark.parametrize(
    "img, size, match",
    [
        (np.zeros((10, 10), np.uint8), (32, 32), r"\(H, W, 3\)"),
        (np.zeros((10, 10, 3), np.float32), (32, 32), "uint8"),
        (np.zeros((10, 10, 3), np.uint8), (32,), "size"),
        (np.zeros((1, 1000, 3), np.uint8), (32, 32), "aspect"),
    ],
)
def test_letterbox_rejects_bad_input(img, size, match):
    with pytest.raises(ValueError, match=match):
        letterbox(img, size=size)


def test_scale_boxes_back_inverts_the_ratio():
    boxes = np.array([[10, 20, 30, 40], [0, 0, 416, 276]], dtype=np.float32)
    back = scale_boxes_back(boxes, 0.5)
    assert back.dtype == np.float32
    np.testing.assert_allclose(back, boxes * 2)
    np.testing.assert_allclose(scale_boxes_back(back, 2.0), boxes)
    with pytest.raises(ValueError, match="ratio"):
        scale_boxes_back(boxes, 0)
    with pytest.raises(ValueError, match=r"\(\.\.\., 4\)"):
        scale_boxes_back(np.zeros((2, 3)), 1.0)
    with pytest.raises(ValueError, match="non-finite"):
        scale_boxes_back(np.array([[0, 0, np.nan, 1]]), 1.0)


# ---------------------------------------------------------------------------------------------------
# reading images


def test_load_image_gives_bgr(tmp_path):
    rgb = np.zeros((4, 5, 3), dtype=np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 200, 100, 10
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    img = load_image(tmp_path / "rgb.png")
    assert img.shape == (4, 5, 3) and img.dtype == np.uint8
    assert img[0, 0].tolist() == [10, 100, 200]
    assert load_image(Image.fromarray(rgb))[0, 0].tolist() == [10, 100, 200]
    assert load_image(str(tmp_path / "rgb.png"))[0, 0].tolist() == [10, 100, 200]


def test_load_image_modes(tmp_path):
    grey = np.arange(20, dtype=np.uint8).reshape(4, 5) * 10
    Image.fromarray(grey, mode="L").save(tmp_path / "grey.png")
    img = load_image(tmp_path / "grey.png")
    assert img.shape == (4, 5, 3) and all((img[..., c] == grey).all() for c in range(3))
    rgba = np.dstack([np.full((3, 3), v, np.uint8) for v in (1, 2, 3, 40)])
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "rgba.png")
    assert load_image(tmp_path / "rgba.png")[0, 0].tolist() == [3, 2, 1]  # alpha dropped, not blended
    deep = (np.arange(12, dtype=np.uint16).reshape(3, 4) * 5000).astype(np.uint16)
    Image.fromarray(deep).save(tmp_path / "deep.png")
    np.testing.assert_array_equal(load_image(tmp_path / "deep.png")[..., 1], deep >> 8)
    palette = Image.new("P", (2, 2), 1)
    palette.putpalette([0, 0, 0, 200, 100, 10] + [0] * 762)
    assert load_image(palette)[0, 0].tolist() == [10, 100, 200]


def test_load_image_arrays():
    bgr = np.random.default_rng(0).integers(0, 256, (6, 7, 3), dtype=np.uint8)
    np.testing.assert_array_equal(load_image(bgr), bgr)  # arrays are taken as BGR already
    np.testing.assert_array_equal(load_image(np.dstack([bgr, bgr[..., :1]])), bgr)
    assert load_image(bgr[..., 0]).shape == (6, 7, 3)
    with pytest.raises(ValueError, match="uint8"):
        load_image(bgr.astype(np.float32))
    with pytest.raises(ValueError, match="shape"):
        load_image(np.zeros((4, 4, 2), np.uint8))
    with pytest.raises(ValueError, match="path, a PIL image"):
        load_image(42)


def test_load_image_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.png"):
        load_image(tmp_path / "missing.png")
    (tmp_path / "notes.txt").write_text("not an image")
    with pytest.raises(ImageReadError, match="notes.txt"):
        load_image(tmp_path / "notes.txt")
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(tmp_path / "full.jpg")
    (tmp_path / "cut.jpg").write_bytes((tmp_path / "full.jpg").read_bytes()[:200])
    with pytest.raises(ImageReadError, match="cut.jpg"):
        load_image(tmp_path / "cut.jpg")
    with pytest.raises(ValueError):  # ImageReadError is a ValueError
        load_image(tmp_path)
