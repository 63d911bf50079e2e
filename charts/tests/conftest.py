"""Fixtures shared by the chart tests."""

from __future__ import annotations

from pathlib import Path

import pytest

import chartlib


@pytest.fixture(scope="session")
def crds() -> Path:
    """The real CRDs (Kubewarden, cert-manager, Prometheus operator) from ../shared/crds or
    $CRDS_DIR; skipped, with the reason shown, where absent."""
    directory = chartlib.crds_dir()
    if not directory.is_dir():
        pytest.skip(
            f"CRD schemas not found at {directory} (set CRDS_DIR): custom resources not validated"
        )
    return directory
