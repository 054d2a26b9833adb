"""The synthesized state machine as plain ASL, for running it outside AWS (moto's Step Functions).

The template's `DefinitionString` is a `Fn::Join` whose parts hold `Ref AWS::Partition` and
`Fn::GetAtt [<function>, Arn]`. `definition(template)` resolves them into plain JSON with each
function's ARN written as `arn:aws:lambda:us-east-1:123456789012:function:<FunctionName>` (function
names are explicit in the stack: `<prefix>-plan`, `<prefix>-extract-chunk`, ...), so a test creates
functions of those names in moto and executes the definition as it is.

`handler_files(template)` maps each function name to its handler file under `functions/` (from the
`kg:handler` tag every function carries), e.g. `{"kg-plan": "extract/plan.py", ...}`: a test routes
each task to the real handler (`<module>.handler` in that file), or to a fake.
"""

from __future__ import annotations

import json
from typing import Any

ACCOUNT = "123456789012"
REGION = "us-east-1"
HANDLER_TAG = "kg:handler"  # infra.stack.HANDLER_TAG; repeated so this module needs no CDK import


def function_arn(name: str, account: str = ACCOUNT, region: str = REGION) -> str:
    return f"arn:aws:lambda:{region}:{account}:function:{name}"


def state_machines(template: dict) -> dict[str, dict]:
    """Logical id -> resource, for every state machine in the template."""
    return {k: v for k, v in template["Resources"].items() if v["Type"] == "AWS::StepFunctions::StateMachine"}


def function_names(template: dict) -> dict[str, str]:
    """Logical id -> FunctionName, for the functions that have an explicit name."""
    return {
        logical_id: resource["Properties"]["FunctionName"]
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Lambda::Function" and isinstance(resource["Properties"].get("FunctionName"), str)
    }


def handler_files(template: dict) -> dict[str, str]:
    """FunctionName -> handler file under functions/ (e.g. "extract/plan.py"), for every tagged function."""
    files = {}
    for logical_id, name in function_names(template).items():
        tags = template["Resources"][logical_id]["Properties"].get("Tags", [])
        for tag in tags:
            if tag["Key"] == HANDLER_TAG:
                files[name] = tag["Value"]
    return files


def definition(
    template: dict, logical_id: str | None = None, account: str = ACCOUNT, region: str = REGION
) -> dict:
    """The state machine's ASL with every intrinsic resolved (the only state machine, unless named)."""
    machines = state_machines(template)
    if logical_id is None:
        if len(machines) != 1:
            raise ValueError(f"{len(machines)} state machines in the template: name one of {sorted(machines)}")
        (logical_id,) = machines
    raw = machines[logical_id]["Properties"]["DefinitionString"]
    names = function_names(template)
    text = _resolve(raw, template, names, account, region)
    return json.loads(text)


def _resolve(value: Any, template: dict, names: dict[str, str], account: str, region: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        ((fn, arg),) = value.items()
        if fn == "Fn::Join":
            separator, parts = arg
            return separator.join(_resolve(p, template, names, account, region) for p in parts)
        if fn == "Ref":
            pseudo = {
                "AWS::Partition": "aws",
                "AWS::Region": region,
                "AWS::AccountId": account,
                "AWS::URLSuffix": "amazonaws.com",
            }
            if arg in pseudo:
                return pseudo[arg]
        if fn == "Fn::GetAtt" and arg[1] == "Arn" and arg[0] in names:
            return function_arn(names[arg[0]], account, region)
    raise ValueError(f"cannot resolve {json.dumps(value)} in the state machine definition")
