"""One synthesis of the CDK app per test session (about 5 s), shared by every infra test.

The app is built as `cdk synth` builds it: with cdk.json's context and the cdk-nag checks. The layer
is always the library-only fallback (kg:layerDir points at a folder that does not exist), so that
the run is the same, and fast, whether or not scripts/build_lambda_layer.sh has been run. A synth
that cdk-nag fails still leaves its template and validation report in the output folder: the fixture
keeps the error for the nag test to report, so the other tests still say what they check.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Synthesis:
    outdir: Path
    stack_name: str
    template: dict
    report: dict
    error: str | None  # the synth's exception, when validation failed

    @property
    def template_path(self) -> Path:
        return self.outdir / f"{self.stack_name}.template.json"

    @property
    def metadata(self) -> dict[str, list[dict]]:
        """Construct path -> metadata entries (acknowledgments among them), as the synth wrote them."""
        return json.loads((self.outdir / f"{self.stack_name}.metadata.json").read_text())

    def resources(self, type_: str) -> dict[str, dict]:
        return {k: v for k, v in self.template["Resources"].items() if v["Type"] == type_}


@pytest.fixture(scope="session")
def cdk_context() -> dict:
    return json.loads((REPO_ROOT / "cdk.json").read_text())["context"]


def synthesize(context: dict, outdir: Path) -> Synthesis:
    from infra.app import build_app

    app, stack = build_app(context, str(outdir))
    error = None
    try:
        app.synth()
    except RuntimeError as e:  # jsii: "ValidationFailed: Validation failed. ..."
        error = str(e)
    template_path = outdir / f"{stack.artifact_id}.template.json"
    report_path = outdir / "validation-report.json"
    return Synthesis(
        outdir=outdir,
        stack_name=stack.artifact_id,
        template=json.loads(template_path.read_text()),
        report=json.loads(report_path.read_text()) if report_path.exists() else {"pluginReports": []},
        error=error,
    )


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory, cdk_context: dict) -> Synthesis:
    root = tmp_path_factory.mktemp("cdk")
    context = {**cdk_context, "kg:layerDir": str(root / "no-layer")}
    return synthesize(context, root / "cdk.out")


@pytest.fixture(scope="session")
def template(synth: Synthesis):
    """aws_cdk.assertions over the synthesized template (no second synth)."""
    from aws_cdk.assertions import Template

    return Template.from_json(synth.template)


@pytest.fixture(scope="session")
def asl(synth: Synthesis) -> dict:
    from infra import asl

    return asl.definition(synth.template)
