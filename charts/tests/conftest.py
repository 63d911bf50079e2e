"""Fixtures shared by the chart tests."""

from __future__ import annotations

from pathlib import Path

import pytest

import chartlib


@pytest.fixture(scope="session")
def crds() -> list[Path]:
    """The real CRDs (Kubewarden, cert-manager, Prometheus operator) from ../shared/crds or
    $CRDS_DIR; skipped, with the reason shown, where absent."""
    directory = chartlib.crds_dir()
    if not directory.is_dir():
        pytest.skip(
            f"CRD schemas not found at {directory} (set CRDS_DIR): custom resources not validated"
        )
    assert any(directory.glob("*.yaml")), f"no CRD file found in {directory}"
    # CRDs the shared set lacks, kept here unchanged from their source (crds/README.md).
    return [directory, chartlib.CHARTS / "tests" / "crds"]
