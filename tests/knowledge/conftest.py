"""Fixtures of the knowledge tests."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from atende.config import Settings


@pytest.fixture
def ingest_dir(settings: Settings) -> Path:
    """A fresh folder of this test under the server's ingest root."""
    assert settings.ingest_root is not None
    folder = settings.ingest_root / uuid.uuid4().hex[:8]
    folder.mkdir()
    return folder
