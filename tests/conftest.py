"""Shared fixtures: where the reference assets live, and how to skip without them."""

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ASSETS = REPO.parent / "shared" / "assets"


def require_assets() -> Path:
    """Return ../shared/assets; skip if it is absent, but fail under CI, where it must exist."""
    if ASSETS.is_dir():
        return ASSETS
    if os.environ.get("CI"):
        pytest.fail(f"reference assets not found at {ASSETS} (they must exist in CI)")
    pytest.skip(f"reference assets not found at {ASSETS}")


@pytest.fixture
def assets_dir() -> Path:
    return require_assets()
