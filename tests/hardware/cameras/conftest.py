"""Fixtures for the camera backends: MJPG videos as cameras."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.hardware.cameras.mjpg_video import write_mjpg


@pytest.fixture
def mjpg(tmp_path: Path) -> Callable[..., Path]:
    """write_mjpg into the test's folder: mjpg("name.avi", frames=30, width=400, height=300)."""

    def make(name: str, **kwargs: object) -> Path:
        return write_mjpg(tmp_path / name, **kwargs)

    return make
