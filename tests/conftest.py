"""Shared fixtures: paths of the repository and of the real data sets."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def shared_data_path(*parts: str) -> Path:
    """Return a path under ../shared/data, or skip the test when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(
            f"real data set {path} not found: it is present in the project's own "
            "checkout next to ../shared, not in a user's clone"
        )
    return path


@pytest.fixture
def repo() -> Path:
    """Root of the repository."""
    return REPO
