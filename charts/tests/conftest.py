"""Fixtures shared by the chart tests."""

from __future__ import annotations

from typing import Any

import pytest

import chartlib


@pytest.fixture(scope="session")
def crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """The real CRD schemas (Kubewarden, cert-manager, Prometheus operator) from
    ../shared/crds or $CRDS_DIR; skipped, with the reason shown, where absent."""
    directory = chartlib.crds_dir()
    if not directory.is_dir():
        pytest.skip(
            f"CRD schemas not found at {directory} (set CRDS_DIR): custom resources not validated"
        )
    schemas = chartlib.crd_schemas(directory)
    assert schemas, f"no CustomResourceDefinition found in {directory}"
    # CRDs the shared set lacks, kept here unchanged from their source (crds/README.md).
    schemas.update(chartlib.crd_schemas(chartlib.CHARTS / "tests" / "crds"))
    return schemas
