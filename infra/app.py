"""The CDK app: `cdk synth` / `cdk deploy` from the repository root (cdk.json: `python3 infra/app.py`).

Settings come from context (cdk.json, or `-c kg:key=value`); see infra/config.py and infra/README.md.
cdk-nag's AwsSolutions checks run on every synth (a CDK validation plugin): a finding that is not
acknowledged, with its reason, in infra/nag.py fails the synth.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

# Run as a script (`python3 infra/app.py`), the repository root is not on the path: put it there so
# that `infra` imports as a package, as it does in the tests.
_ROOT = Path(__file__).resolve().parents[1]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

import aws_cdk as cdk  # noqa: E402

from infra import nag  # noqa: E402
from infra.config import StackConfig  # noqa: E402
from infra.stack import KgStack  # noqa: E402


def cdk_json_context() -> dict:
    return json.loads((_ROOT / "cdk.json").read_text())["context"]


def build_app(context: dict | None = None, outdir: str | None = None) -> tuple[cdk.App, KgStack]:
    """The app with its one stack and the cdk-nag checks; nothing is synthesized yet.

    cdk.json's context is the base, `context` goes over it, and the CDK CLI's (`-c key=value`, passed
    in CDK_CONTEXT_JSON) over both: run by the CLI or as a plain script, the app is the same."""
    app = cdk.App(context={**cdk_json_context(), **(context or {})}, outdir=outdir)
    config = StackConfig.from_context(app.node.try_get_context)
    stack = KgStack(
        app,
        config.stack_name,
        config=config,
        description="Knowledge-graph ingestion pipeline (Step Functions, Lambda, Aurora pgvector)",
    )
    nag.add_checks(app)
    return app, stack


def main() -> None:
    app, _ = build_app()
    app.synth()


if __name__ == "__main__":
    main()
