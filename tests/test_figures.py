"""Figures: the registry draws valid, non-trivial PNGs, and every figure a lesson shows is registered."""

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from yolox_np.figures import FIGURES, REPO_FIGURES, figure_png, save_figure

REPO = Path(__file__).resolve().parents[1]
LESSONS = sorted((REPO / "lessons").glob("[0-9][0-9]_*.py"))
USE = re.compile(r"""FIGURES\[\s*["'](\w+)["']\s*\]""")


def _used_by_lessons() -> dict[str, list[str]]:
    used: dict[str, list[str]] = {}
    for path in LESSONS:
        for name in USE.findall(path.read_text(encoding="utf-8")):
            used.setdefault(name, []).append(path.name)
    return used


def _used_by_readme() -> set[str]:
    readme = REPO / "README.md"
    text = readme.read_text(encoding="utf-8") if readme.is_file() else ""
    return set(re.findall(r"figures/(\w+)\.png", text))


def _check_png(path: Path) -> None:
    with Image.open(path) as im:
        im.verify()  # a complete, uncorrupted PNG
    with Image.open(path) as im:
        assert im.format == "PNG"
        assert im.width >= 200 and im.height >= 150, im.size
        pixels = np.asarray(im.convert("L"), dtype=np.float64)
    # a drawing, not a blank canvas: several grey levels and real contrast
    assert pixels.std() > 5, f"{path.name} is nearly uniform (std {pixels.std():.2f})"
    assert len(np.unique(pixels)) > 10


@pytest.mark.parametrize("name", ["iou_giou", "simota_cost"])
def test_a_figure_is_drawn_into_a_valid_png(tmp_path, name):
    path = save_figure(name, tmp_path)
    assert path == tmp_path / f"{name}.png"
    _check_png(path)


def test_figure_png_matches_save_figure(tmp_path):
    fig = FIGURES["bce_logits"]()
    assert fig.axes, "a figure function must draw at least one axis"
    data = figure_png(fig)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert save_figure("bce_logits", tmp_path).read_bytes() == data


def test_unknown_figure_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown figure 'no_such_figure'"):
        save_figure("no_such_figure", tmp_path)


def test_every_figure_a_lesson_shows_is_registered():
    used = _used_by_lessons()
    assert used, "no lesson shows a figure from the registry"
    missing = {name: files for name, files in used.items() if name not in FIGURES}
    assert not missing, f"lessons show figures that are not registered: {missing}"


def test_every_registered_figure_is_used_and_checked_in():
    used = set(_used_by_lessons()) | _used_by_readme()
    unused = sorted(set(FIGURES) - used)
    assert not unused, f"registered figures no lesson or README uses: {unused}"
    pngs = {p.stem for p in REPO_FIGURES.glob("*.png")}
    assert pngs == set(FIGURES), (
        f"figures/ must hold exactly the registry's PNGs (run `make figures`): missing {sorted(set(FIGURES) - pngs)}, "
        f"stale {sorted(pngs - set(FIGURES))}"
    )


def test_checked_in_pngs_are_valid():
    for path in sorted(REPO_FIGURES.glob("*.png")):
        _check_png(path)
