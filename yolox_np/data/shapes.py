"""A procedural detection dataset: coloured geometric shapes on cluttered backgrounds.

Image ``i`` depends only on ``(seed, i)``, so any index can be generated on its own, in any order.
Boxes are the tight boxes of the *visible* pixels of each drawn shape (COCO's convention for a
partly covered object), measured on the rasterised masks, never guessed from the geometry.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

CLASS_NAMES = ("circle", "square", "triangle", "star", "cross", "ring")

_PLACEMENT_ATTEMPTS = 12
_MIN_COLOUR_DISTANCE = 60.0  # colour distance between an object and the background / other objects
_GRADIENT_LEVELS = 1024  # background gradients are drawn through a palette of this many steps
_NOISE_TABLE_EXTRA = 1 << 16  # the noise table is this much longer than one image


@dataclass
class ShapesSample:
    """One generated image with everything known about how it was drawn.

    image (H, W, 3) uint8 BGR; boxes (G, 4) float32 xyxy in pixels (x2, y2 exclusive, i.e. a box covers
    pixel columns x1 .. x2 - 1); classes (G,) int64; colours (G, 3) uint8 BGR fill colour of each object;
    areas (G,) int64 visible pixel counts; image_id int.
    """

    image: np.ndarray
    boxes: np.ndarray
    classes: np.ndarray
    colours: np.ndarray
    areas: np.ndarray
    image_id: int


def _check_positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _polygon_vertices(kind: str, radius: float, angle: float, rng: np.random.Generator) -> np.ndarray:
    """Vertices (K, 2) of a polygonal shape centred on the origin with circumradius ``radius``."""
    if kind == "square":
        thetas = angle + math.pi / 4 + np.arange(4) * math.pi / 2
        radii = np.full(4, radius)
    elif kind == "triangle":
        thetas = angle + np.arange(3) * 2 * math.pi / 3
        radii = np.full(3, radius)
    elif kind == "star":
        thetas = angle + np.arange(10) * math.pi / 5
        inner = radius * rng.uniform(0.38, 0.5)
        radii = np.where(np.arange(10) % 2 == 0, radius, inner)
    elif kind == "cross":
        # A plus sign: arm half-width a, arm length b, scaled so that the far corners lie on the circle.
        ratio = rng.uniform(0.22, 0.34)
        b = radius / math.hypot(1.0, ratio)
        a = ratio * b
        pts = np.array(
            [[a, b], [a, a], [b, a], [b, -a], [a, -a], [a, -b],
             [-a, -b], [-a, -a], [-b, -a], [-b, a], [-a, a], [-a, b]]
        )
        c, s = math.cos(angle), math.sin(angle)
        return pts @ np.array([[c, s], [-s, c]])
    else:
        raise ValueError(f"unknown polygon kind {kind!r}")
    return np.stack([radii * np.cos(thetas), radii * np.sin(thetas)], axis=1)


def _rasterise(kind: str, size: float, rng: np.random.Generator) -> np.ndarray:
    """Binary mask (h, w) bool of one shape whose outer diameter is ``size`` pixels."""
    radius = size / 2.0
    extent = int(math.ceil(size)) + 3
    centre = extent / 2.0
    mask = Image.new("L", (extent, extent), 0)
    draw = ImageDraw.Draw(mask)
    angle = rng.uniform(0.0, 2 * math.pi)
    if kind == "circle":
        draw.ellipse([centre - radius, centre - radius, centre + radius, centre + radius], fill=255)
    elif kind == "ring":
        inner = radius * rng.uniform(0.4, 0.65)
        draw.ellipse([centre - radius, centre - radius, centre + radius, centre + radius], fill=255)
        draw.ellipse([centre - inner, centre - inner, centre + inner, centre + inner], fill=0)
    else:
        vertices = _polygon_vertices(kind, radius, angle, rng) + centre
        draw.polygon([(float(x), float(y)) for x, y in vertices], fill=255)
    return np.asarray(mask) > 127


def _random_colour(rng: np.random.Generator, saturated: bool) -> np.ndarray:
    """A random colour (3,) float; saturated ones are for objects, muted ones for backgrounds."""
    hue = rng.uniform(0.0, 6.0)
    sat = rng.uniform(0.55, 1.0) if saturated else rng.uniform(0.0, 0.45)
    val = rng.uniform(0.55, 1.0) if saturated else rng.uniform(0.15, 0.85)
    sector = int(hue) % 6
    f = hue - int(hue)
    p, q, t = val * (1 - sat), val * (1 - sat * f), val * (1 - sat * (1 - f))
    channels = [(val, t, p), (q, val, p), (p, val, t), (p, q, val), (t, p, val), (val, p, q)][sector]
    return np.round(np.array(channels) * 255.0)


class ShapesDataset:
    """Procedural shapes for detection; ``__getitem__(i) -> (image BGR uint8 (H, W, 3), boxes (G, 4)
    xyxy float32, classes (G,) int64, image_id)`` with ``image_id = i + 1``.

    Parameters: ``img_size`` (H, W); objects per image uniform in [min_objects, max_objects]; outer
    diameters log-uniform in [min_size, max_size] pixels (default max_size = 0.6 * min(H, W));
    ``class_names`` a subset of :data:`CLASS_NAMES` (class id = position in this tuple);
    ``clutter=False`` gives a flat background without lines or noise (handy for tests and lessons);
    ``max_occlusion`` is the largest fraction of an object that later objects may cover.
    """

    def __init__(
        self,
        num_images: int,
        img_size=(256, 256),
        seed: int = 0,
        min_objects: int = 1,
        max_objects: int = 6,
        min_size: float = 8.0,
        max_size: float | None = None,
        class_names=CLASS_NAMES,
        clutter: bool = True,
        noise_std: float = 6.0,
        max_lines: int = 8,
        max_occlusion: float = 0.5,
    ):
        self.num_images = _check_positive_int(num_images, "num_images")
        if len(tuple(img_size)) != 2:
            raise ValueError(f"img_size must be (H, W), got {img_size!r}")
        height = _check_positive_int(img_size[0], "img_size[0] (height)")
        width = _check_positive_int(img_size[1], "img_size[1] (width)")
        self.img_size = (height, width)
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        self.seed = int(seed)
        if isinstance(min_objects, bool) or not isinstance(min_objects, (int, np.integer)) or min_objects < 0:
            raise ValueError(f"min_objects must be a non-negative integer, got {min_objects!r}")
        self.min_objects = int(min_objects)
        self.max_objects = _check_positive_int(max_objects, "max_objects")
        if self.min_objects > self.max_objects:
            raise ValueError(f"min_objects ({min_objects}) must not exceed max_objects ({max_objects})")
        if max_size is None:
            max_size = 0.6 * min(height, width)
        if not (np.isfinite(min_size) and np.isfinite(max_size)):
            raise ValueError(f"min_size and max_size must be finite, got {min_size!r}, {max_size!r}")
        if not 3.0 <= min_size <= max_size:
            raise ValueError(f"need 3 <= min_size <= max_size, got min_size={min_size}, max_size={max_size}")
        if max_size > min(height, width):
            raise ValueError(f"max_size ({max_size}) must not exceed the image's shorter side {min(height, width)}")
        self.min_size, self.max_size = float(min_size), float(max_size)
        names = tuple(class_names)
        unknown = [n for n in names if n not in CLASS_NAMES]
        if not names or unknown or len(set(names)) != len(names):
            raise ValueError(
                f"class_names must be distinct names from {CLASS_NAMES}, got {names!r}"
                + (f" (unknown: {unknown})" if unknown else "")
            )
        self.class_names = names
        if not np.isfinite(noise_std) or noise_std < 0:
            raise ValueError(f"noise_std must be a finite non-negative number, got {noise_std!r}")
        if isinstance(max_lines, bool) or not isinstance(max_lines, (int, np.integer)) or max_lines < 0:
            raise ValueError(f"max_lines must be a non-negative integer, got {max_lines!r}")
        if not 0.0 <= max_occlusion < 1.0:
            raise ValueError(f"max_occlusion must lie in [0, 1), got {max_occlusion!r}")
        self.clutter = bool(clutter)
        self.noise_std = float(noise_std)
        self.max_lines = int(max_lines)
        self.max_occlusion = float(max_occlusion)
        self._coco_cache: dict | None = None
        self._noise: np.ndarray | None = None

    def __len__(self) -> int:
        return self.num_images

    def _check_index(self, index) -> int:
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"index must be an integer, got {type(index).__name__}")
        if not 0 <= index < self.num_images:
            raise IndexError(f"index {index} out of range for a dataset of {self.num_images} images")
        return int(index)

    def __getitem__(self, index):
        sample = self.render(index)
        return sample.image, sample.boxes, sample.classes, sample.image_id

    # -- generation -------------------------------------------------------------------------------------

    def _background(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Background (H, W, 3) uint8 and its mean colour (all colours are random, so the arrays are simply
        read as BGR; Pillow draws on them as if they were RGB)."""
        height, width = self.img_size
        c0 = _random_colour(rng, saturated=False)
        if not self.clutter:
            return np.broadcast_to(c0.astype(np.uint8), (height, width, 3)).copy(), c0
        c1 = _random_colour(rng, saturated=False)
        theta = rng.uniform(0.0, 2 * math.pi)
        ys = np.arange(height, dtype=np.float32)[:, None] * np.float32(math.sin(theta))
        xs = np.arange(width, dtype=np.float32)[None, :] * np.float32(math.cos(theta))
        lo = min(0.0, float(xs.min())) + min(0.0, float(ys.min()))
        hi = max(0.0, float(xs.max())) + max(0.0, float(ys.max()))
        levels = _GRADIENT_LEVELS - 1
        t = ((xs + ys - np.float32(lo)) * np.float32(levels / max(hi - lo, 1e-6)) + np.float32(0.5)).astype(np.intp)
        ramp = np.linspace(0.0, 1.0, _GRADIENT_LEVELS)[:, None]
        palette = np.rint(c0 + ramp * (c1 - c0)).astype(np.uint8)
        background = np.take(palette, np.clip(t, 0, levels), axis=0)
        n_lines = int(rng.integers(0, self.max_lines + 1))
        if n_lines:
            canvas = Image.fromarray(background)
            draw = ImageDraw.Draw(canvas)
            for _ in range(n_lines):
                x0, x1 = rng.uniform(0, width, 2)
                y0, y1 = rng.uniform(0, height, 2)
                colour = tuple(int(v) for v in rng.integers(0, 256, 3))
                draw.line([(x0, y0), (x1, y1)], fill=colour, width=int(rng.integers(1, 4)))
            background = np.array(canvas)
        return background, (c0 + c1) / 2.0

    def _noise_table(self) -> np.ndarray:
        """Rounded Gaussian sensor noise, drawn once per dataset; each image reads a random window of it
        (drawing fresh normals for every pixel would dominate the generation time)."""
        if self._noise is None:
            n = self.img_size[0] * self.img_size[1] * 3 + _NOISE_TABLE_EXTRA
            rng = np.random.default_rng([self.seed, 2**32 - 1])
            noise = np.rint(rng.standard_normal(n) * self.noise_std)
            self._noise = np.clip(noise, -255, 255).astype(np.int16)
        return self._noise

    def _pick_colour(self, rng, avoid: list[np.ndarray]) -> np.ndarray:
        colour = _random_colour(rng, saturated=True)
        for _ in range(20):
            if all(np.linalg.norm(colour - other) >= _MIN_COLOUR_DISTANCE for other in avoid):
                break
            colour = _random_colour(rng, saturated=True)
        return colour

    def render(self, index) -> ShapesSample:
        """Generate image ``index`` with its boxes, classes, fill colours and visible areas."""
        index = self._check_index(index)
        rng = np.random.default_rng([self.seed, index])
        height, width = self.img_size
        image, background_colour = self._background(rng)

        # owner[y, x] = index of the object that owns the pixel (-1: background)
        owner = np.full((height, width), -1, dtype=np.int32)
        full_area: list[int] = []
        extents: list[tuple[int, int, int, int]] = []
        classes: list[int] = []
        colours: list[np.ndarray] = []
        n_objects = int(rng.integers(self.min_objects, self.max_objects + 1))
        log_lo, log_hi = math.log(self.min_size), math.log(self.max_size)
        for _ in range(n_objects):
            cls = int(rng.integers(0, len(self.class_names)))
            size = math.exp(rng.uniform(log_lo, log_hi))
            shape_mask = _rasterise(self.class_names[cls], size, rng)
            colour = self._pick_colour(rng, [background_colour, *colours])
            for _attempt in range(_PLACEMENT_ATTEMPTS):
                placed = self._try_place(shape_mask, owner, full_area, rng)
                if placed is not None:
                    break
            else:
                continue
            (y0, y1, x0, x1), local = placed
            k = len(classes)
            owner[y0:y1, x0:x1][local] = k
            extents.append((y0, y1, x0, x1))
            full_area.append(int(local.sum()))
            classes.append(cls)
            colours.append(colour)

        boxes, areas, keep = [], [], []
        for k in range(len(classes)):
            y0, y1, x0, x1 = extents[k]
            ys, xs = np.nonzero(owner[y0:y1, x0:x1] == k)
            if xs.size == 0 or xs.max() - xs.min() < 1 or ys.max() - ys.min() < 1:
                # too little left to be a fair target: give its pixels back to the background
                owner[y0:y1, x0:x1][ys, xs] = -1
                continue
            keep.append(k)
            boxes.append([x0 + xs.min(), y0 + ys.min(), x0 + xs.max() + 1, y0 + ys.max() + 1])
            areas.append(xs.size)

        for k in keep:
            y0, y1, x0, x1 = extents[k]
            image[y0:y1, x0:x1][owner[y0:y1, x0:x1] == k] = colours[k].astype(np.uint8)
        if self.clutter and self.noise_std > 0:
            table = self._noise_table()
            start = int(rng.integers(0, table.size - image.size + 1))
            noisy = table[start : start + image.size].reshape(image.shape) + image
            image = np.clip(noisy, 0, 255, out=noisy).astype(np.uint8)
        return ShapesSample(
            image=image,
            boxes=np.asarray(boxes, dtype=np.float32).reshape(-1, 4),
            classes=np.asarray([classes[k] for k in keep], dtype=np.int64),
            colours=np.asarray([colours[k] for k in keep], dtype=np.uint8).reshape(-1, 3),
            areas=np.asarray(areas, dtype=np.int64),
            image_id=index + 1,
        )

    def _try_place(self, shape_mask, owner, full_area, rng):
        """Choose a position for ``shape_mask``; None if it would hide too much of an earlier object."""
        height, width = owner.shape
        mh, mw = shape_mask.shape
        # Centres keep at least about three quarters of the shape inside the image.
        cx = rng.uniform(0.25 * mw, width - 0.25 * mw) if width > 0.5 * mw else width / 2
        cy = rng.uniform(0.25 * mh, height - 0.25 * mh) if height > 0.5 * mh else height / 2
        top, left = int(round(cy - mh / 2)), int(round(cx - mw / 2))
        y0, y1 = max(top, 0), min(top + mh, height)
        x0, x1 = max(left, 0), min(left + mw, width)
        if y1 - y0 < 2 or x1 - x0 < 2:
            return None
        local = shape_mask[y0 - top : y1 - top, x0 - left : x1 - left]
        if local.sum() < 4:
            return None
        covered = owner[y0:y1, x0:x1][local]
        covered = covered[covered >= 0]
        if covered.size:
            lost = np.bincount(covered, minlength=len(full_area))
            visible = np.bincount(owner[owner >= 0], minlength=len(full_area))
            for k in np.nonzero(lost)[0]:
                if visible[k] - lost[k] < (1.0 - self.max_occlusion) * full_area[k]:
                    return None
        return (y0, y1, x0, x1), local

    # -- COCO export ----------------------------------------------------------------------------------

    def categories(self) -> list[dict]:
        return [{"id": c + 1, "name": name, "supercategory": "shape"} for c, name in enumerate(self.class_names)]

    def to_coco(self, indices=None) -> dict:
        """COCO instances dict (images, annotations, categories) for ``indices`` (default: all).

        Category id = class id + 1; image file names are ``{image_id:06d}.png``; ``area`` is the visible
        pixel count, ``bbox`` is ``[x, y, w, h]``.
        """
        if indices is None:
            if self._coco_cache is not None:
                return json.loads(json.dumps(self._coco_cache))
            chosen = range(self.num_images)
        else:
            chosen = [self._check_index(i) for i in indices]
        images, annotations = [], []
        for index in chosen:
            sample = self.render(index)
            images.append(self._image_record(sample))
            annotations.extend(self._annotation_records(sample, first_id=len(annotations) + 1))
        coco = {"images": images, "annotations": annotations, "categories": self.categories()}
        if indices is None:
            self._coco_cache = coco
            return json.loads(json.dumps(coco))
        return coco

    def coco_gt(self) -> dict:
        """Ground truth of the whole dataset as a COCO dict (for the evaluator)."""
        return self.to_coco()

    def _image_record(self, sample: ShapesSample) -> dict:
        height, width = self.img_size
        return {"id": sample.image_id, "file_name": f"{sample.image_id:06d}.png", "height": height, "width": width}

    def _annotation_records(self, sample: ShapesSample, first_id: int) -> list[dict]:
        records = []
        for k, (box, cls, area) in enumerate(zip(sample.boxes, sample.classes, sample.areas)):
            x1, y1, x2, y2 = (float(v) for v in box)
            records.append(
                {
                    "id": first_id + k,
                    "image_id": sample.image_id,
                    "category_id": int(cls) + 1,
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "area": int(area),
                    "iscrowd": 0,
                }
            )
        return records

    def write_coco(self, out_dir, images_subdir: str = "images", ann_name: str = "instances.json"):
        """Write every image as PNG to ``out_dir/images_subdir`` and the COCO JSON to ``out_dir/ann_name``.

        Returns ``(images_dir, ann_path)``, ready for ``CocoDataset(images_dir, ann_path)``.
        """
        out_dir = Path(out_dir)
        images_dir = out_dir / images_subdir
        images_dir.mkdir(parents=True, exist_ok=True)
        images, annotations = [], []
        for index in range(self.num_images):
            sample = self.render(index)
            record = self._image_record(sample)
            Image.fromarray(sample.image[..., ::-1]).save(images_dir / record["file_name"], compress_level=1)
            images.append(record)
            annotations.extend(self._annotation_records(sample, first_id=len(annotations) + 1))
        coco = {"images": images, "annotations": annotations, "categories": self.categories()}
        ann_path = out_dir / ann_name
        ann_path.write_text(json.dumps(coco))
        return images_dir, ann_path
