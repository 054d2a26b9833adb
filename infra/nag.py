"""cdk-nag (v3): the AwsSolutions pack and every finding this stack acknowledges, each with its reason.

cdk-nag 3 is a CDK policy-validation plugin (`Validations.of(app).add_plugins(...)`), not an aspect:
a finding that is not acknowledged fails `app.synth()` ("ValidationFailed: ...") and is listed in
`validation-report.json` in the cloud assembly. Acknowledgments use CDK's own API with the plugin's
prefix (`AwsSolutions::AwsSolutions-L1`, as the synth's message says), so that the report lists each
acknowledged finding under `suppressedViolations` with its reason and where it was acknowledged (and
the template carries them as `cdk_nag` metadata for older audit tools). They are made on the narrowest
construct that has the finding, one finding id at a time (`Rule[Finding]` for IAM4/IAM5), so that a
new wildcard or a new managed policy elsewhere is still reported; tests/infra checks that none is stale.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_cdk import Acknowledgment, App, Stack, Validations
from constructs import IConstruct

if TYPE_CHECKING:
    from aws_cdk import custom_resources as cr

    from infra.stack import KgStack


def add_checks(app: App) -> None:
    try:
        from cdk_nag import AwsSolutionsChecks
    except ImportError as e:  # pragma: no cover
        raise RuntimeError("cdk-nag is needed to synthesize this app: pip install 'cdk-nag>=3,<4'") from e
    if hasattr(__import__("cdk_nag"), "NagSuppressions"):  # pragma: no cover
        raise RuntimeError("this app uses cdk-nag 3 (validation plugins); cdk-nag 2 is installed")
    Validations.of(app).add_plugins(AwsSolutionsChecks(app, write_suppressions_to_cloud_formation=True))


PLUGIN = "AwsSolutions"


def _ack(scope: IConstruct, rule: str, reason: str) -> None:
    Validations.of(scope).acknowledge(Acknowledgment(id=f"{PLUGIN}::{rule}", reason=reason))


def _managed_policy(name: str) -> str:
    return f"AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/{name}]"


def _ref(stack: Stack, construct: IConstruct) -> str:
    """`<LogicalId.Arn>`, the way cdk-nag names a resource in a finding."""
    return f"<{stack.resolve(construct.node.default_child.logical_id)}.Arn>"


BASIC_EXECUTION = _managed_policy("AWSLambdaBasicExecutionRole")
VPC_EXECUTION = _managed_policy("AWSLambdaVPCAccessExecutionRole")
XRAY_REASON = (
    "X-Ray's PutTraceSegments and PutTelemetryRecords have no resource-level permissions: the only "
    "Resource::* statement is tracing"
)


def acknowledge(stack: KgStack, migrations_provider: cr.Provider) -> None:
    bucket = _ref(stack, stack.bucket)

    # -- the pipeline's functions
    for spec_id, fn in stack.functions.items():
        _ack(fn, "AwsSolutions-L1",
             "Python 3.11 is the runtime of the handler contract and of the layer's compiled wheels "
             "(manylinux2014 x86_64, cp311); moving to a newer runtime is one change of both")
        _ack(fn, BASIC_EXECUTION,
             "AWSLambdaBasicExecutionRole grants only CreateLogGroup/CreateLogStream/PutLogEvents, the "
             "minimum a function needs to write its logs")
        _ack(fn, "AwsSolutions-IAM5[Resource::*]", XRAY_REASON)
        if fn.is_bound_to_vpc:
            _ack(fn, VPC_EXECUTION,
                 "AWSLambdaVPCAccessExecutionRole grants only the ENI actions a function in a VPC needs")
        if spec_id != "Migrate":
            _ack(fn, f"AwsSolutions-IAM5[Resource::{bucket}/*]",
                 "Object keys are per job (jobs/<job id>/..., errors/<job id>/...): the function reads and "
                 "writes objects of any job in the pipeline's own bucket, and nothing else")

    _ack(stack.functions["Api"],
         "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:"
         f"{stack.config.prefix}-pipeline:*]",
         "Executions are named by job id, unknown in advance: the API describes any execution of this "
         "state machine (and no other) to report a job's status")

    # -- the state machine's role
    role = stack.state_machine.role
    _ack(role, "AwsSolutions-IAM5[Resource::*]",
         "X-Ray tracing and CloudWatch Logs delivery (CreateLogDelivery and friends) have no resource-level "
         "permissions")
    for spec_id in ("Plan", "ExtractChunk", "ChunkFailed", "MergeAndStore", "GenerateConcepts",
                    "Deduplicate", "LlmBatch", "Finalize", "FailJob"):
        _ack(role, f"AwsSolutions-IAM5[Resource::{_ref(stack, stack.functions[spec_id])}:*]",
             "Invoke on the function's versions and aliases, as CDK's LambdaInvoke grants; the function "
             "itself is named")

    # -- the database
    _ack(stack.database.node.find_child("Secret"), "AwsSolutions-SMG4",
         "Not rotated automatically: the database functions read the password at cold start, and a "
         "rotation would break warm functions' new connections until they restart. Rotate by hand "
         "(Secrets Manager 'rotate now' with the single-user PostgreSQL rotation) in a maintenance window")

    # -- the API
    api = stack.api
    _ack(api, "AwsSolutions-APIG3",
         "Every method requires IAM (SigV4) authorization, so anonymous traffic never reaches the Lambda; "
         "a WAF web ACL costs a monthly fee per ACL and rule for little gain here. Attach one if the "
         "API is opened to other callers")
    _ack(api, "AwsSolutions-COG4",
         "The API is for AWS principals (operators, other services) and uses IAM authorization on every "
         "method instead of a Cognito user pool")
    _ack(api, _managed_policy("AmazonAPIGatewayPushToCloudWatchLogs"),
         "The account-level role API Gateway needs to write execution logs; the AWS managed policy is the "
         "documented way to grant it")

    # -- CDK's own helper functions
    for child in stack.node.children:
        if child.node.id.startswith("BucketNotificationsHandler"):
            _ack(child, BASIC_EXECUTION,
                 "CDK's bucket-notification helper (runs at deploy time only): the managed policy grants "
                 "only log writes")
    _ack(migrations_provider, BASIC_EXECUTION,
         "The custom resource provider framework (deploy time only): the managed policy grants only log writes")
    _ack(migrations_provider,
         f"AwsSolutions-IAM5[Resource::{_ref(stack, stack.functions['Migrate'])}:*]",
         "The provider framework invokes the Migrate function's versions and aliases; the function is named")
