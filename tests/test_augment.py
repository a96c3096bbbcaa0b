"""The official YOLOX augmentations: boxes stay glued to the pixels, OpenCV colour maths, exact recipes."""

import colorsys
import copy
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from yolox_np.data.augment import (
    YoloxAugment,
    affine_boxes,
    affine_matrix,
    augment_hsv,
    bgr_to_hsv,
    bgr_to_hsv_numpy,
    hflip,
    hsv_to_bgr,
    hsv_to_bgr_numpy,
    invert_affine,
    mixup,
    mosaic,
    random_affine,
    train_transform,
    val_transform,
    warp_affine,
    warp_affine_numpy,
)
from yolox_np.data.preprocess import letterbox

FAST = settings(max_examples=40, deadline=None)


def _blank_with_rectangle(height, width, box, value=255, background=0):
    img = np.full((height, width, 3), background, np.uint8)
    x1, y1, x2, y2 = box
    img[y1:y2, x1:x2] = value
    return img


def _bounds(mask):
    """Pixel-edge bounds [x1, y1, x2, y2] of a boolean mask (None if empty)."""
    ys, xs = np.nonzero(mask)
    if xs.size == 0:
        return None
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=np.float64)


@st.composite
def image_and_box(draw, min_side=8, max_side=48):
    height = draw(st.integers(min_side, max_side))
    width = draw(st.integers(min_side, max_side))
    x1 = draw(st.integers(0, width - 2))
    y1 = draw(st.integers(0, height - 2))
    x2 = draw(st.integers(x1 + 1, width))
    y2 = draw(st.integers(y1 + 1, height))
    return _blank_with_rectangle(height, width, (x1, y1, x2, y2)), np.array([[x1, y1, x2, y2]], np.float32)


# -- hflip ------------------------------------------------------------------------------------------------


def test_hflip_by_hand():
    img = np.zeros((4, 10, 3), np.uint8)
    img[:, 0] = 7
    out, boxes = hflip(img, np.array([[1, 2, 4, 3], [0, 0, 10, 4]], np.float32))
    np.testing.assert_array_equal(boxes, [[6, 2, 9, 3], [0, 0, 10, 4]])
    assert np.all(out[:, 9] == 7) and np.all(out[:, :9] == 0)


@FAST
@given(data=image_and_box())
def test_hflip_keeps_the_box_tight_and_twice_is_identity(data):
    img, boxes = data
    flipped, fboxes = hflip(img, boxes)
    np.testing.assert_array_equal(_bounds(flipped[..., 0] > 0), fboxes[0])
    again, aboxes = hflip(flipped, fboxes)
    np.testing.assert_array_equal(again, img)
    np.testing.assert_array_equal(aboxes, boxes)


def test_hflip_validates():
    img = np.zeros((4, 5, 3), np.uint8)
    with pytest.raises(ValueError, match=r"boxes_xyxy\[1\]"):
        hflip(img, [[0, 0, 1, 1], [3, 0, 2, 1]])
    with pytest.raises(ValueError, match="non-finite"):
        hflip(img, [[0, np.nan, 1, 1]])
    with pytest.raises(ValueError, match="uint8"):
        hflip(img.astype(np.float32), [[0, 0, 1, 1]])
    with pytest.raises(ValueError, match=r"\(G, 4\)"):
        hflip(img, [[0, 0, 1]])


# -- HSV --------------------------------------------------------------------------------------------------


def test_bgr_to_hsv_hand_values():
    # b, g, r = 10, 20, 30: V = 30, S = round(255 * 20 / 30) = 170, H = round(30 * (20 - 10) / 20) = 15
    bgr = np.array([[[10, 20, 30], [0, 0, 255], [0, 255, 0], [255, 0, 0], [0, 255, 255], [7, 7, 7],
                     [255, 255, 255], [0, 0, 0]]], np.uint8)
    expected = [[15, 170, 30], [0, 255, 255], [60, 255, 255], [120, 255, 255], [30, 255, 255], [0, 0, 7],
                [0, 0, 255], [0, 0, 0]]
    np.testing.assert_array_equal(bgr_to_hsv(bgr)[0], expected)
    np.testing.assert_array_equal(bgr_to_hsv_numpy(bgr)[0], expected)
    np.testing.assert_array_equal(hsv_to_bgr(np.array([expected[1:5]], np.uint8))[0], bgr[0, 1:5])


def test_hsv_kernels_equal_their_numpy_reference():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (64, 96, 3), dtype=np.uint8)
    np.testing.assert_array_equal(bgr_to_hsv(img), bgr_to_hsv_numpy(img))
    hsv = rng.integers(0, 256, (64, 96, 3), dtype=np.uint8)
    hsv[..., 0] %= 180
    np.testing.assert_array_equal(hsv_to_bgr(hsv), hsv_to_bgr_numpy(hsv))


def test_bgr_to_hsv_agrees_with_colorsys():
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    got = bgr_to_hsv(img).reshape(-1, 3).astype(np.float64)
    ref = np.array([colorsys.rgb_to_hsv(*(px[::-1] / 255.0)) for px in img.reshape(-1, 3).astype(np.float64)])
    dh = np.abs(got[:, 0] - ref[:, 0] * 180.0)
    dh = np.minimum(dh, 180.0 - dh)  # hue is circular
    assert dh.max() <= 1.0
    assert np.abs(got[:, 1] - ref[:, 1] * 255.0).max() <= 1.0
    np.testing.assert_array_equal(got[:, 2], ref[:, 2] * 255.0)


def test_hsv_to_bgr_agrees_with_colorsys():
    rng = np.random.default_rng(2)
    hsv = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    hsv[..., 0] %= 180
    got = hsv_to_bgr(hsv).reshape(-1, 3)[:, ::-1].astype(np.float64)
    ref = np.array([colorsys.hsv_to_rgb(h * 2 / 360.0, s / 255.0, v / 255.0)
                    for h, s, v in hsv.reshape(-1, 3).astype(np.float64)]) * 255.0
    assert np.abs(got - ref).max() <= 0.5 + 1e-3  # exact up to rounding


def test_augment_hsv_follows_the_official_recipe():
    rng_img = np.random.default_rng(3)
    img = rng_img.integers(0, 256, (16, 24, 3), dtype=np.uint8)
    before = img.copy()
    for seed in range(30):
        out = augment_hsv(img, np.random.default_rng(seed), hgain=5, sgain=30, vgain=30)
        # the recipe, redone by hand from the same draws
        draws = np.random.default_rng(seed)
        gains = draws.uniform(-1, 1, 3) * np.array([5, 30, 30])
        gains = (gains * draws.integers(0, 2, 3)).astype(np.int16)
        hsv = bgr_to_hsv_numpy(img).astype(np.int64)
        hsv[..., 0] = (hsv[..., 0] + gains[0]) % 180
        hsv[..., 1] = np.clip(hsv[..., 1] + gains[1], 0, 255)
        hsv[..., 2] = np.clip(hsv[..., 2] + gains[2], 0, 255)
        np.testing.assert_array_equal(out, hsv_to_bgr_numpy(hsv.astype(np.uint8)))
    np.testing.assert_array_equal(img, before)  # pure: the input is untouched


def test_augment_hsv_value_shift_moves_brightness():
    img = np.full((4, 4, 3), 100, np.uint8)
    img[..., 2] = 150  # a reddish grey: V = 150
    shifts = []
    for seed in range(40):
        out = augment_hsv(img, np.random.default_rng(seed), hgain=0, sgain=0, vgain=30)
        shifts.append(int(out.max()) - 150)
    assert min(shifts) < -5 and max(shifts) > 5 and 0 in shifts  # each gain is zeroed half of the time
    assert all(abs(s) <= 30 for s in shifts)


# -- affine --------------------------------------------------------------------------------------------------


def _naive_bilinear_warp(img, matrix, out_size, border, subpixel=None):
    """Float bilinear inverse mapping, one pixel at a time; ``subpixel=32`` first rounds the source
    position to 1/32 px as OpenCV does."""
    inv = invert_affine(matrix)
    out = np.zeros((*out_size, 3))
    h, w = img.shape[:2]
    for y in range(out_size[0]):
        for x in range(out_size[1]):
            sx = inv[0, 0] * x + inv[0, 1] * y + inv[0, 2]
            sy = inv[1, 0] * x + inv[1, 1] * y + inv[1, 2]
            if subpixel:
                sx, sy = math.floor(sx * subpixel + 0.5) / subpixel, math.floor(sy * subpixel + 0.5) / subpixel
            x0, y0 = math.floor(sx), math.floor(sy)
            fx, fy = sx - x0, sy - y0
            for dy, wy in ((0, 1 - fy), (1, fy)):
                for dx, wx in ((0, 1 - fx), (1, fx)):
                    yy, xx = y0 + dy, x0 + dx
                    pixel = img[yy, xx] if (0 <= yy < h and 0 <= xx < w) else np.full(3, border)
                    out[y, x] += wy * wx * pixel
    return out


def _smooth_image(rng, height, width):
    """Smooth random image (neighbouring pixels differ by a few grey levels)."""
    ys = np.linspace(0, 3, height)[:, None, None]
    xs = np.linspace(0, 3, width)[None, :, None]
    phase = rng.uniform(0, 6, 3)
    img = 127 + 100 * np.sin(xs + phase) * np.cos(ys - phase)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def test_warp_affine_matches_a_naive_float_warp():
    rng = np.random.default_rng(4)
    img = _smooth_image(rng, 30, 40)
    for _ in range(3):
        m, _ = affine_matrix(rng, (26, 34), degrees=30, translate=0.2, scales=(0.6, 1.6), shear=5)
        got = warp_affine(img, m, (26, 34), border=114).astype(np.float64)
        # with positions rounded to 1/32 px, only the final rounding differs -- except where OpenCV's
        # separately rounded row and column terms tip a position to the neighbouring 1/32 step
        ref = _naive_bilinear_warp(img, m, (26, 34), 114, subpixel=32)
        diff = np.abs(got - ref).max(axis=-1)
        assert np.mean(diff > 0.5 + 1e-9) < 0.03
        assert diff.max() <= 255 / 32 + 0.5
        # against exact positions, the 1/64 px position error shows only where the image is steep:
        # inside the smooth image (neighbours differ by < 10 levels) it stays within a grey level
        ref = _naive_bilinear_warp(img, m, (26, 34), 114)
        inv = invert_affine(m)
        ys, xs = np.mgrid[0:26, 0:34]
        sx, sy = inv[0, 0] * xs + inv[0, 1] * ys + inv[0, 2], inv[1, 0] * xs + inv[1, 1] * ys + inv[1, 2]
        interior = (sx > 0.1) & (sx < 38.9) & (sy > 0.1) & (sy < 28.9)
        assert interior.sum() > 100
        assert np.abs(got - ref)[interior].max() <= 1.0


@FAST
@given(seed=st.integers(0, 2**31), height=st.integers(1, 30), width=st.integers(1, 30),
       out_h=st.integers(1, 30), out_w=st.integers(1, 30), border=st.integers(0, 255))
def test_warp_kernel_equals_the_numpy_reference(seed, height, width, out_h, out_w, border):
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    m, _ = affine_matrix(rng, (out_h, out_w), degrees=45, translate=0.5, scales=(0.2, 3.0), shear=10)
    np.testing.assert_array_equal(warp_affine(img, m, (out_h, out_w), border),
                                  warp_affine_numpy(img, m, (out_h, out_w), border))


def test_warp_exact_cases():
    rng = np.random.default_rng(5)
    img = rng.integers(0, 256, (12, 17, 3), dtype=np.uint8)
    np.testing.assert_array_equal(warp_affine(img, [[1, 0, 0], [0, 1, 0]], (12, 17)), img)
    # integer shift right 3, up 2: uncovered pixels take the border value
    out = warp_affine(img, [[1, 0, 3], [0, 1, -2]], (12, 17), border=9)
    np.testing.assert_array_equal(out[:10, 3:], img[2:, :14])
    assert np.all(out[:, :3] == 9) and np.all(out[10:] == 9)
    # rotation by 90 degrees: (x, y) -> (y, W - 1 - x) is np.rot90
    out = warp_affine(img, [[0, 1, 0], [-1, 0, 16]], (17, 12))
    np.testing.assert_array_equal(out, np.rot90(img))


def test_invert_affine():
    m = np.array([[1.2, 0.3, 5.0], [-0.4, 0.9, -2.0]])
    inv = invert_affine(m)
    full = np.vstack([m, [0, 0, 1]])
    np.testing.assert_allclose(np.vstack([inv, [0, 0, 1]]), np.linalg.inv(full), atol=1e-12)
    with pytest.raises(ValueError, match="singular"):
        invert_affine([[1, 1, 0], [1, 1, 0]])


def test_affine_matrix_hand_values():
    rng = np.random.default_rng(0)
    # rotation 90 degrees with scale 2 about the origin: a = 0, b = 2
    m, scale = affine_matrix(rng, (10, 20), degrees=(90, 90), translate=0, scales=(2, 2), shear=0)
    np.testing.assert_allclose(m, [[0, 2, 0], [-2, 0, 0]], atol=1e-12)
    assert scale == 2
    # shear of 30 degrees on both axes: rows mix by tan(30)
    t = math.tan(math.radians(30))
    m, _ = affine_matrix(rng, (10, 20), degrees=0, translate=0, scales=(1, 1), shear=(30, 30))
    np.testing.assert_allclose(m, [[1, t, 0], [t, 1, 0]], atol=1e-12)
    # translation as a fraction of the output width (x) and height (y)
    m, _ = affine_matrix(rng, (10, 20), degrees=0, translate=(0.25, 0.25), scales=(1, 1), shear=0)
    np.testing.assert_allclose(m, [[1, 0, 5], [0, 1, 2.5]], atol=1e-12)


def test_affine_matrix_draws_in_the_documented_order():
    for seed in range(10):
        m, scale = affine_matrix(np.random.default_rng(seed), (40, 60), degrees=10, translate=0.1,
                                 scales=(0.1, 2), shear=2)
        d = np.random.default_rng(seed)
        angle, s = math.radians(d.uniform(-10, 10)), d.uniform(0.1, 2)
        shx, shy = math.tan(math.radians(d.uniform(-2, 2))), math.tan(math.radians(d.uniform(-2, 2)))
        tx, ty = d.uniform(-0.1, 0.1) * 60, d.uniform(-0.1, 0.1) * 40
        a, b = s * math.cos(angle), s * math.sin(angle)
        r0, r1 = np.array([a, b]), np.array([-b, a])
        expected = np.array([[*(r0 + shy * r1), tx], [*(r1 + shx * r0), ty]])
        np.testing.assert_allclose(m, expected, rtol=1e-12, atol=1e-12)
        assert scale == s


def test_affine_matrix_validates():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="scales"):
        affine_matrix(rng, (10, 10), scales=(-1, 0.5))
    with pytest.raises(ValueError, match="degrees"):
        affine_matrix(rng, (10, 10), degrees=(5, 1))
    with pytest.raises(ValueError, match="rng"):
        affine_matrix(0, (10, 10))


def test_affine_boxes_by_hand():
    # 90 degree rotation with a shift: (x, y) -> (y, 16 - x); box [2, 3, 6, 5] -> x in [3, 5], y in [10, 14]
    out = affine_boxes([[2, 3, 6, 5]], [[0, 1, 0], [-1, 0, 16]], (17, 12))
    np.testing.assert_allclose(out, [[3, 10, 5, 14]])
    # clipped to the output window
    out = affine_boxes([[2, 3, 6, 5]], [[1, 0, -4], [0, 1, 0]], (17, 12))
    np.testing.assert_allclose(out, [[0, 3, 2, 5]])


@FAST
@given(data=image_and_box(min_side=12, max_side=40), seed=st.integers(0, 2**31))
def test_random_affine_without_rotation_keeps_boxes_tight(data, seed):
    img, boxes = data
    out, oboxes = random_affine(img, boxes, np.random.default_rng(seed), degrees=0, translate=0.2,
                                scales=(0.5, 1.5), shear=0, border=0)
    bounds = _bounds(out[..., 0] >= 128)
    box = oboxes[0]
    if bounds is None:  # moved out of the window, or a line too thin to reach half intensity
        assert min(box[2] - box[0], box[3] - box[1]) < 2
        return
    np.testing.assert_allclose(bounds, box, atol=1.01)


@FAST
@given(data=image_and_box(min_side=12, max_side=40), seed=st.integers(0, 2**31))
def test_random_affine_with_rotation_box_bounds_the_object(data, seed):
    img, boxes = data
    out, oboxes = random_affine(img, boxes, np.random.default_rng(seed), degrees=30, translate=0.1,
                                scales=(0.5, 1.5), shear=5, out_size=(36, 44), border=0)
    assert out.shape == (36, 44, 3)
    ys, xs = np.nonzero(out[..., 0] > 0)  # every touched pixel, even faint edge blends
    x1, y1, x2, y2 = oboxes[0]
    assert 0 <= x1 <= x2 <= 44 and 0 <= y1 <= y2 <= 36
    # bilinear blending reaches half a source pixel beyond the object (<= 1.2 px after scale and rotation)
    if xs.size:
        assert xs.min() >= x1 - 2 and xs.max() + 1 <= x2 + 2
        assert ys.min() >= y1 - 2 and ys.max() + 1 <= y2 + 2


def test_random_affine_is_deterministic_and_pure():
    rng = np.random.default_rng(7)
    img = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    boxes = np.array([[1, 2, 10, 12]], np.float32)
    a = random_affine(img, boxes, np.random.default_rng(11))
    b = random_affine(img, boxes, np.random.default_rng(11))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_array_equal(boxes, [[1, 2, 10, 12]])


# -- mosaic ------------------------------------------------------------------------------------------------


COLOURS = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255]], np.uint8)


def _near(img, colour, tol=60):
    return np.all(np.abs(img.astype(np.int32) - colour.astype(np.int32)) <= tol, axis=-1)


def test_mosaic_places_whole_images_exactly():
    """Four constant images, each with a box covering it all: every pixel of colour k lies in box k and
    every pixel in box k has colour k; the rest of the canvas is 114."""
    sizes = [(16, 24), (64, 48), (8, 4), (32, 96)]  # every resize ratio gives whole pixels
    samples = [(np.full((h, w, 3), COLOURS[k], np.uint8), np.array([[0, 0, w, h]], np.float32), np.array([k]))
               for k, (h, w) in enumerate(sizes)]
    for seed in range(8):
        canvas, boxes, classes = mosaic(samples, np.random.default_rng(seed), (32, 48))
        assert canvas.shape == (64, 96, 3) and canvas.dtype == np.uint8
        np.testing.assert_array_equal(classes, [0, 1, 2, 3])
        assert np.all(boxes[:, 0::2] >= 0) and np.all(boxes[:, 0::2] <= 96)
        assert np.all(boxes[:, 1::2] >= 0) and np.all(boxes[:, 1::2] <= 64)
        covered = np.zeros((64, 96), bool)
        for k in range(4):
            mask = np.all(canvas == COLOURS[k], axis=-1)
            inside = np.zeros_like(mask)
            x1, y1, x2, y2 = boxes[k].astype(int)
            np.testing.assert_array_equal(boxes[k], boxes[k].astype(int))  # whole-pixel placement
            inside[y1:y2, x1:x2] = True
            np.testing.assert_array_equal(mask, inside)
            covered |= inside
        assert np.all(canvas[~covered] == 114)
        # the four tiles meet at the random centre
        d = np.random.default_rng(seed)
        yc, xc = int(d.uniform(16, 48)), int(d.uniform(24, 72))
        assert boxes[0, 2] == xc and boxes[0, 3] == yc and boxes[3, 0] == xc and boxes[3, 1] == yc


def test_mosaic_keeps_boxes_on_their_objects():
    rng = np.random.default_rng(8)
    samples = []
    for k in range(4):
        h, w = rng.integers(20, 70, 2)
        x1, y1 = rng.integers(0, w // 2), rng.integers(0, h // 2)
        x2, y2 = rng.integers(x1 + 3, w + 1), rng.integers(y1 + 3, h + 1)
        img = np.zeros((h, w, 3), np.uint8)
        img[y1:y2, x1:x2] = COLOURS[k]
        samples.append((img, np.array([[x1, y1, x2, y2]], np.float32), np.array([k])))
    for seed in range(10):
        canvas, boxes, classes = mosaic(samples, np.random.default_rng(seed), (40, 40))
        for box, k in zip(boxes, classes):
            bounds = _bounds(_near(canvas, COLOURS[k]))
            if bounds is None:
                assert (box[2] - box[0]) * (box[3] - box[1]) < 2
            else:
                # the box is scaled by the exact ratio, the image to whole pixels: up to a pixel apart
                np.testing.assert_allclose(bounds, box, atol=2.0)


def test_mosaic_is_deterministic_and_validates():
    samples = [(np.full((10, 12, 3), 50 * k, np.uint8), np.zeros((0, 4), np.float32), np.zeros(0, np.int64))
               for k in range(4)]
    a = mosaic(samples, np.random.default_rng(3), (16, 16))
    b = mosaic(samples, np.random.default_rng(3), (16, 16))
    np.testing.assert_array_equal(a[0], b[0])
    assert a[1].shape == (0, 4) and a[2].shape == (0,)
    with pytest.raises(ValueError, match="4 samples"):
        mosaic(samples[:3], np.random.default_rng(0), (16, 16))
    bad = copy.deepcopy(samples)
    bad[2] = (bad[2][0], np.array([[5, 5, 1, 1]], np.float32), np.array([0]))
    with pytest.raises(ValueError, match=r"samples\[2\] boxes\[0\]"):
        mosaic(bad, np.random.default_rng(0), (16, 16))


# -- mixup --------------------------------------------------------------------------------------------------


def test_mixup_blend_and_box_are_exact_for_a_full_frame_partner():
    """A constant partner of the same size as the image: the jittered copy is constant, so the blended
    region 0.5 * 200 + 0.5 * 100 = 150 is exactly the appended box; the black canvas gives 100."""
    img = np.full((24, 32, 3), 200, np.uint8)
    boxes, classes = np.array([[1, 1, 5, 5]], np.float32), np.array([2])
    partner = np.full((24, 32, 3), 100, np.uint8)
    seen_shrink = seen_grow = False
    for seed in range(20):
        out, oboxes, oclasses = mixup(img, boxes, classes, partner, np.array([[0, 0, 32, 24]], np.float32),
                                      np.array([4]), np.random.default_rng(seed))
        np.testing.assert_array_equal(oclasses, [2, 4])
        np.testing.assert_array_equal(oboxes[0], boxes[0])
        assert set(np.unique(out)) <= {100, 150}
        mask = np.zeros((24, 32), bool)
        x1, y1, x2, y2 = oboxes[1]
        mask[int(y1):int(math.ceil(y2)), int(x1):int(math.ceil(x2))] = True
        np.testing.assert_array_equal(np.all(out == 150, axis=-1), mask)
        f = np.random.default_rng(seed).uniform(0.5, 1.5)
        seen_shrink |= f < 1
        seen_grow |= f > 1
        if f >= 1:
            assert np.all(out == 150)
    assert seen_shrink and seen_grow


def test_mixup_partner_boxes_follow_their_objects_including_flips():
    rng = np.random.default_rng(9)
    img = np.zeros((40, 48, 3), np.uint8)
    flips = set()
    for seed in range(24):
        h, w = (int(v) for v in rng.integers(20, 80, 2))
        x1, y1 = int(rng.integers(0, w // 2)), int(rng.integers(0, h // 2))
        x2, y2 = int(rng.integers(x1 + 4, w + 1)), int(rng.integers(y1 + 4, h + 1))
        partner = np.zeros((h, w, 3), np.uint8)
        partner[y1:y2, x1:x2] = 254
        out, oboxes, _ = mixup(img, np.zeros((0, 4)), np.zeros(0, np.int64), partner,
                               np.array([[x1, y1, x2, y2]], np.float32), np.array([0]),
                               np.random.default_rng(seed))
        draws = np.random.default_rng(seed)
        draws.uniform(0.5, 1.5)
        flips.add(bool(draws.uniform(0, 1) > 0.5))
        box = oboxes[0]
        assert 0 <= box[0] <= box[2] <= 48 and 0 <= box[1] <= box[3] <= 40
        bounds = _bounds(out[..., 0] >= 100)  # 0.5 * 254 on the object, <= 57 elsewhere
        if bounds is None:
            assert min(box[2] - box[0], box[3] - box[1]) < 3
        else:
            # two whole-pixel resizes against one exact box scaling: up to about two pixels apart
            np.testing.assert_allclose(bounds, box, atol=2.5)
    assert flips == {True, False}


# -- TrainTransform ------------------------------------------------------------------------------------------


def _example():
    rng = np.random.default_rng(10)
    img = rng.integers(0, 256, (100, 200, 3), dtype=np.uint8)
    boxes = np.array([[10, 20, 50, 60], [0, 0, 2, 2], [100, 50, 190, 99]], np.float32)
    return img, boxes, np.array([3, 1, 0])


def test_train_transform_targets_by_hand():
    img, boxes, classes = _example()
    chw, targets = train_transform(img, boxes, classes, np.random.default_rng(0), (64, 64), hsv_prob=0,
                                   flip_prob=0)
    np.testing.assert_array_equal(chw, letterbox(img, (64, 64))[0])
    r = 0.32  # min(64 / 100, 64 / 200)
    # the 2 x 2 box becomes 0.64 px wide: dropped (min side must exceed 1 px)
    np.testing.assert_allclose(targets, [[3, 30 * r, 40 * r, 40 * r, 40 * r],
                                         [0, 145 * r, 74.5 * r, 90 * r, 49 * r]], rtol=1e-6)
    assert targets.dtype == np.float32


def test_train_transform_flip():
    img, boxes, classes = _example()
    chw, targets = train_transform(img, boxes, classes, np.random.default_rng(0), (64, 64), hsv_prob=0,
                                   flip_prob=1)
    np.testing.assert_array_equal(chw, letterbox(np.ascontiguousarray(img[:, ::-1]), (64, 64))[0])
    r = 0.32
    np.testing.assert_allclose(targets[:, 1], [(200 - 30) * r, (200 - 145) * r], rtol=1e-6)


def test_train_transform_hsv_uses_the_next_draws():
    img, boxes, classes = _example()
    chw, _ = train_transform(img, boxes, classes, np.random.default_rng(5), (64, 64), hsv_prob=1, flip_prob=0)
    d = np.random.default_rng(5)
    d.random()  # the hsv coin
    np.testing.assert_array_equal(chw, letterbox(augment_hsv(img, d), (64, 64))[0])


def test_train_transform_falls_back_when_no_box_survives():
    img, _, _ = _example()
    tiny = np.array([[0, 0, 2, 2], [10, 10, 11, 13]], np.float32)
    chw, targets = train_transform(img, tiny, np.array([1, 2]), np.random.default_rng(0), (64, 64),
                                   hsv_prob=1, flip_prob=1)
    np.testing.assert_array_equal(chw, letterbox(img, (64, 64))[0])  # un-augmented image
    r = 0.32
    np.testing.assert_allclose(targets, [[1, 1 * r, 1 * r, 2 * r, 2 * r], [2, 10.5 * r, 11.5 * r, 1 * r, 3 * r]],
                               rtol=1e-6)


def test_train_transform_without_boxes_skips_hsv_and_flip():
    img, _, _ = _example()
    chw, targets = train_transform(img, np.zeros((0, 4)), np.zeros(0, np.int64), np.random.default_rng(0),
                                   (64, 64), hsv_prob=1, flip_prob=1)
    np.testing.assert_array_equal(chw, letterbox(img, (64, 64))[0])
    assert targets.shape == (0, 5)


def test_train_transform_cuts_at_max_labels():
    img = np.zeros((64, 64, 3), np.uint8)
    boxes = np.array([[i, i, i + 10, i + 10] for i in range(6)], np.float32)
    _, targets = train_transform(img, boxes, np.arange(6), np.random.default_rng(0), (64, 64), hsv_prob=0,
                                 flip_prob=0, max_labels=4)
    np.testing.assert_array_equal(targets[:, 0], [0, 1, 2, 3])


def test_val_transform_keeps_every_box():
    img, boxes, classes = _example()
    chw, targets = val_transform(img, boxes, classes, (64, 64))
    np.testing.assert_array_equal(chw, letterbox(img, (64, 64))[0])
    assert len(targets) == 3
    np.testing.assert_allclose(targets[1], [1, 0.32, 0.32, 0.64, 0.64], rtol=1e-6)


# -- the composed pipeline ------------------------------------------------------------------------------------


class RectanglesDataset:
    """Image i: a rectangle of colour i % 4 on black, at least 12 px from the border; class = colour."""

    def __init__(self, n=4, seed=0):
        rng = np.random.default_rng(seed)
        self.items = []
        for i in range(n):
            h, w = (int(v) for v in rng.integers(40, 80, 2))
            x1, y1 = int(rng.integers(12, w // 2)), int(rng.integers(12, h // 2))
            x2, y2 = int(rng.integers(x1 + 6, w - 11)), int(rng.integers(y1 + 6, h - 11))
            img = np.zeros((h, w, 3), np.uint8)
            img[y1:y2, x1:x2] = COLOURS[i % 4]
            self.items.append((img, np.array([[x1, y1, x2, y2]], np.float32), np.array([i % 4]), 100 + i))
        self.class_names = ("red", "green", "blue", "white")

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        img, boxes, classes, image_id = self.items[i]
        return img.copy(), boxes.copy(), classes.copy(), image_id


def _hwc(chw):
    return np.clip(np.rint(chw.transpose(1, 2, 0)), 0, 255).astype(np.uint8)


def test_pipeline_boxes_stay_on_their_objects():
    ds = RectanglesDataset()
    aug = YoloxAugment(hsv_prob=0.0, degrees=0.0, shear=0.0, mosaic_scale=(0.5, 1.5), enable_mixup=False)
    for seed in range(12):
        chw, targets, _ = aug(ds, seed % len(ds), (64, 64), np.random.default_rng(seed))
        img = _hwc(chw)
        for cls, cx, cy, w, h in targets:
            box = np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
            mask = _near(img, COLOURS[int(cls)])
            near = np.zeros_like(mask)
            x1, y1 = max(int(box[0]) - 2, 0), max(int(box[1]) - 2, 0)
            near[y1:int(math.ceil(box[3])) + 2, x1:int(math.ceil(box[2])) + 2] = True
            bounds = _bounds(mask & near)
            if bounds is None:
                assert min(w, h) < 3
                continue
            np.testing.assert_allclose(bounds, box, atol=2.5)


def test_pipeline_with_rotation_and_mixup_keeps_every_object_inside_its_boxes():
    ds = RectanglesDataset(seed=1)
    aug = YoloxAugment(hsv_prob=0.0, degrees=10.0, shear=2.0, mosaic_scale=(0.5, 1.5), mixup_prob=1.0)
    for seed in range(8):  # with MixUp: colours blend, so only the target format is checked here
        chw, targets, _ = aug(ds, seed % len(ds), (64, 64), np.random.default_rng(seed))
        assert chw.shape == (3, 64, 64) and chw.dtype == np.float32
        assert np.all(np.minimum(targets[:, 3], targets[:, 4]) > 1)
        assert np.all(targets[:, 1:3] >= 0) and np.all(targets[:, 1:3] <= 64)
    aug = YoloxAugment(hsv_prob=0.0, degrees=10.0, shear=2.0, mosaic_scale=(0.5, 1.5), enable_mixup=False)
    for seed in range(8):
        chw, targets, _ = aug(ds, seed % len(ds), (64, 64), np.random.default_rng(seed))
        img = _hwc(chw)
        for k in range(4):
            pixels = _near(img, COLOURS[k], tol=20)
            allowed = np.zeros_like(pixels)
            for _, cx, cy, w, h in targets[targets[:, 0] == k]:
                x1, y1 = max(int(cx - w / 2) - 1, 0), max(int(cy - h / 2) - 1, 0)
                allowed[y1:int(math.ceil(cy + h / 2)) + 1, x1:int(math.ceil(cx + w / 2)) + 1] = True
            # a strongly coloured pixel may only sit inside a box of its class (tiny slivers were filtered)
            stray = pixels & ~allowed
            assert stray.sum() <= 6


def test_pipeline_is_deterministic_by_seed():
    ds = RectanglesDataset()
    aug = YoloxAugment()
    a = aug(ds, 2, (64, 64), np.random.default_rng(42))
    b = aug(ds, 2, (64, 64), np.random.default_rng(42))
    c = aug(ds, 2, (64, 64), np.random.default_rng(43))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert a[2] == b[2] == 102
    assert not np.array_equal(a[0], c[0])


def test_close_mosaic_leaves_only_the_train_transform():
    ds = RectanglesDataset()
    aug = YoloxAugment()
    aug.close_mosaic()
    assert not aug.enable_mosaic
    chw, targets, image_id = aug(ds, 3, (64, 64), np.random.default_rng(5))
    ref_chw, ref_targets = train_transform(*ds[3][:3], np.random.default_rng(5), (64, 64))
    np.testing.assert_array_equal(chw, ref_chw)
    np.testing.assert_array_equal(targets, ref_targets)
    assert image_id == 103
    # mosaic_prob = 0 takes the same path after spending one draw on the coin
    chw, targets, _ = YoloxAugment(mosaic_prob=0.0)(ds, 3, (64, 64), np.random.default_rng(5))
    d = np.random.default_rng(5)
    d.random()
    ref_chw, ref_targets = train_transform(*ds[3][:3], d, (64, 64))
    np.testing.assert_array_equal(chw, ref_chw)


def test_presets_and_validation():
    nano = YoloxAugment.preset("nano")
    assert (nano.mosaic_prob, nano.mosaic_scale, nano.enable_mixup) == (0.5, (0.5, 1.5), False)
    default = YoloxAugment.preset()
    assert (default.mosaic_prob, default.mixup_prob, default.hsv_prob, default.flip_prob) == (1.0, 1.0, 1.0, 0.5)
    assert (default.degrees, default.translate, default.shear) == (10.0, 0.1, 2.0)
    assert default.mosaic_scale == (0.1, 2.0) and default.mixup_scale == (0.5, 1.5)
    with pytest.raises(ValueError, match="mosaic_prob"):
        YoloxAugment(mosaic_prob=1.5)
    with pytest.raises(ValueError, match="mosaic_scale"):
        YoloxAugment(mosaic_scale=(0.0, 1.0))
    with pytest.raises(ValueError, match="preset"):
        YoloxAugment.preset("huge")
