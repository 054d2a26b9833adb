"""One synthesis of the CDK app, as `cdk synth` builds it: with cdk.json's context and the cdk-nag
checks (tests/conftest.py makes it once per test session, for the infra tests and the moto
end-to-end tests alike).

The layer is always the library-only fallback (kg:layerDir points at a folder that does not exist),
so that the run is the same, and fast, whether or not scripts/build_lambda_layer.sh has been run. A
synth that cdk-nag fails still leaves its template and validation report in the output folder: the
error is kept for the nag test to report, so the other tests still say what they check.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

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


def cdk_json_context() -> dict:
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


def synthesize_without_layer(context: dict, root: Path) -> Synthesis:
    """The app synthesized into `root`/cdk.out with the library-only layer."""
    return synthesize({**context, "kg:layerDir": str(root / "no-layer")}, root / "cdk.out")
