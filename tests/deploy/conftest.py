"""Fixtures shared by the deploy tests: the packaged definition and its deployment for project ``my-proj``."""

from __future__ import annotations

import pytest

from deploy.spec import DeploymentSpec, build_spec
from shared.pipeline import load_definition
from shared.pipeline.definition import PipelineDefinition

PROJECT = "my-proj"  # the golden plan's project


@pytest.fixture(scope="module")
def definition() -> PipelineDefinition:
    return load_definition()


@pytest.fixture(scope="module")
def spec(definition: PipelineDefinition) -> DeploymentSpec:
    return build_spec(definition, PROJECT)
