"""The infra tests share the session's one synthesis of the CDK app (`synth` and `cdk_context`, in
tests/conftest.py; see tests/support/cdk.py); here, views of it."""

from __future__ import annotations

import pytest

from tests.support.cdk import REPO_ROOT, Synthesis

__all__ = ["REPO_ROOT"]


@pytest.fixture(scope="session")
def template(synth: Synthesis):
    """aws_cdk.assertions over the synthesized template (no second synth)."""
    from aws_cdk.assertions import Template

    return Template.from_json(synth.template)


@pytest.fixture(scope="session")
def asl(synth: Synthesis) -> dict:
    from infra import asl

    return asl.definition(synth.template)
