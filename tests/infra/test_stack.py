"""The CDK stack: the state machine's shape (read from its ASL), the resources' settings, the API,
the S3 trigger, cfn-lint and cdk-nag."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from aws_cdk.assertions import Match

from infra.config import CONTEXT_KEYS, ConfigError, StackConfig
from infra.layer import LIBRARY
from infra.stack import FUNCTIONS, LEDGER_ACTIONS, LEDGER_INDEX, STATE_MACHINE_TASKS
from infra.state_machine import LAMBDA_SERVICE_ERRORS, LAMBDA_THROTTLED, TRANSIENT_LLM_ERRORS

TOP_LEVEL_WORK = ["Plan", "ExtractChunks", "MergeAndStore", "GenerateConcepts", "Deduplicate", "Finalize"]


def logical_id(synth, construct_id: str, type_: str) -> str:
    """The logical id of the one resource of `type_` whose id starts with `construct_id`."""
    (found,) = [k for k in synth.resources(type_) if k.startswith(construct_id)]
    return found


def function(synth, spec_id: str) -> dict:
    return synth.template["Resources"][logical_id(synth, f"{spec_id}Function", "AWS::Lambda::Function")]


# ------------------------------------------------------------------------------ state machine


def test_state_machine_is_standard_traced_and_logged(template):
    template.has_resource_properties(
        "AWS::StepFunctions::StateMachine",
        {
            "StateMachineType": "STANDARD",
            "StateMachineName": "kg-pipeline",
            "TracingConfiguration": {"Enabled": True},
            "LoggingConfiguration": Match.object_like({"Level": "ALL", "IncludeExecutionData": True}),
        },
    )


def test_plan_starts_the_machine_and_its_output_is_the_state(asl):
    assert asl["StartAt"] == "Plan"
    plan = asl["States"]["Plan"]
    assert plan["Type"] == "Task" and plan["Resource"].endswith(":function:kg-plan")
    assert plan["ResultPath"] == "$" and "Parameters" not in plan  # the execution input goes in whole
    assert plan["Next"] == "ExtractBatchWanted?"  # batch mode's choice, then ExtractChunks


def test_map_runs_one_extract_per_chunk_index_with_max_concurrency(asl, cdk_context):
    extract_map = asl["States"]["ExtractChunks"]
    assert extract_map["Type"] == "Map"
    assert extract_map["MaxConcurrency"] == cdk_context["kg:mapMaxConcurrency"] == 8
    assert extract_map["ItemsPath"] == "$.items"
    assert extract_map["ItemSelector"] == {"job_id.$": "$.job_id", "index.$": "$$.Map.Item.Value"}
    assert extract_map["ResultPath"] is None  # results are in S3 and the ledger, not in the state
    assert extract_map["Next"] == "MergeAndStore"
    processor = extract_map["ItemProcessor"]
    assert processor["ProcessorConfig"]["Mode"] == "INLINE"
    assert processor["StartAt"] == "ExtractChunk"
    assert processor["States"]["ExtractChunk"]["Resource"].endswith(":function:kg-extract-chunk")


def test_map_max_concurrency_follows_the_context():
    from aws_cdk import App, Stack
    from aws_cdk import aws_lambda as lambda_
    from aws_cdk import aws_stepfunctions as sfn

    from infra.state_machine import PipelineFunctions, build_definition

    stack = Stack(App(), "Probe")
    fn = lambda_.Function.from_function_arn(stack, "Fn", "arn:aws:lambda:us-east-1:123456789012:function:f")
    definition = build_definition(stack, PipelineFunctions(*[fn] * 9), max_concurrency=3)
    asl = sfn.StateMachine(stack, "M", definition_body=sfn.DefinitionBody.from_chainable(definition))
    rendered = stack.resolve(asl.node.default_child.definition_string)  # plain: the ARN is a literal
    assert json.loads(rendered)["States"]["ExtractChunks"]["MaxConcurrency"] == 3


def test_extract_chunk_retries_throttling_and_transient_errors_with_full_jitter(asl):
    extract = asl["States"]["ExtractChunks"]["ItemProcessor"]["States"]["ExtractChunk"]
    throttled, transient = extract["Retry"]
    assert throttled["ErrorEquals"] == [LAMBDA_THROTTLED]
    assert throttled["MaxAttempts"] >= 4 and throttled["JitterStrategy"] == "FULL"
    assert throttled["MaxDelaySeconds"] == 60
    assert set(transient["ErrorEquals"]) == set(LAMBDA_SERVICE_ERRORS) | set(TRANSIENT_LLM_ERRORS)
    assert {"RateLimitError", "APIConnectionError", "APITimeoutError", "ProviderUnavailable"} <= set(
        transient["ErrorEquals"]
    )
    assert (transient["IntervalSeconds"], transient["BackoffRate"], transient["MaxAttempts"]) == (2, 2, 4)
    assert transient["JitterStrategy"] == "FULL"


def test_a_failed_chunk_is_caught_and_recorded_so_the_map_goes_on(asl):
    states = asl["States"]["ExtractChunks"]["ItemProcessor"]["States"]
    (catch,) = states["ExtractChunk"]["Catch"]
    assert catch == {"ErrorEquals": ["States.ALL"], "ResultPath": "$.failure", "Next": "ChunkFailed"}
    chunk_failed = states["ChunkFailed"]
    assert chunk_failed["Resource"].endswith(":function:kg-chunk-failed")
    assert chunk_failed["Parameters"] == {"job_id.$": "$.job_id", "index.$": "$.index", "failure.$": "$.failure"}
    assert chunk_failed.get("End") is True and states["ExtractChunk"].get("End") is True


@pytest.mark.parametrize(
    ("stage", "choice", "result_path", "after"),
    [
        ("MergeAndStore", "MoreToStore?", "$.store", "ConceptsWanted?"),
        ("GenerateConcepts", "MoreConcepts?", "$.concepts", "DedupWanted?"),
        ("Deduplicate", "MoreDedup?", "$.dedup", "Finalize"),
    ],
)
def test_a_stage_that_returns_more_is_called_again_until_done(asl, stage, choice, result_path, after):
    task = asl["States"][stage]
    assert task["ResultPath"] == result_path
    assert task["Parameters"] == {"job_id.$": "$.job_id"}
    assert task["Next"] == choice
    loop = asl["States"][choice]
    assert loop["Type"] == "Choice"
    (rule,) = loop["Choices"]
    assert {"Variable": f"{result_path}.state", "StringEquals": "more"} in rule["And"]
    assert rule["Next"] == stage
    assert loop["Default"] == after


@pytest.mark.parametrize(
    ("choice", "option", "then", "otherwise"),
    [("ConceptsWanted?", "concepts", "ConceptsBatchWanted?", "DedupWanted?"),
     ("DedupWanted?", "dedup", "Deduplicate", "Finalize")],
)
def test_concepts_and_dedup_run_only_when_the_job_asks(asl, choice, option, then, otherwise):
    state = asl["States"][choice]
    (rule,) = state["Choices"]
    assert {"Variable": f"$.options.{option}", "BooleanEquals": True} in rule["And"]
    assert rule["Next"] == then and state["Default"] == otherwise


@pytest.mark.parametrize(("name", "phase", "items", "then"), [
    ("Extract", "extract", True, "ExtractChunks"), ("Concepts", "concepts", False, "GenerateConcepts")])
def test_batch_mode_polls_its_batch_after_a_wait_until_done_then_runs_the_stage(asl, name, phase, items, then):
    states = asl["States"]
    wanted = states[f"{name}BatchWanted?"]
    (rule,) = wanted["Choices"]
    assert {"Variable": "$.options.llm_batch", "BooleanEquals": True} in rule["And"]
    assert (rule["Next"], wanted["Default"]) == (f"LlmBatch{name}", then)
    task = states[f"LlmBatch{name}"]
    assert task["Resource"].endswith(":function:kg-llm-batch") and task["ResultPath"] == "$.batch"
    assert task["Parameters"] == {"job_id.$": "$.job_id", "phase": phase, **({"items.$": "$.items"} if items else {})}
    done = states[task["Next"]]
    (rule,) = done["Choices"]
    assert {"Variable": "$.batch.state", "StringEquals": "more"} in rule["And"] and done["Default"] == then
    wait = states[rule["Next"]]
    assert (wait["Type"], wait["Next"]) == ("Wait", f"LlmBatch{name}") and 60 <= wait["Seconds"] <= 900
    (catch,) = task["Catch"]
    assert catch["Next"] == "FailJob"


def test_finalize_ends_the_execution_successfully(asl):
    finalize = asl["States"]["Finalize"]
    assert finalize["ResultPath"] == "$.outcome" and finalize["Parameters"] == {"job_id.$": "$.job_id"}
    assert asl["States"][finalize["Next"]]["Type"] == "Succeed"


@pytest.mark.parametrize("state", TOP_LEVEL_WORK)
def test_every_unhandled_error_goes_to_the_failure_handler(asl, state):
    (catch,) = asl["States"][state]["Catch"]
    assert catch == {"ErrorEquals": ["States.ALL"], "ResultPath": "$.failure", "Next": "FailJob"}


def test_the_failure_handler_marks_the_job_failed_then_fails_the_execution(asl):
    fail_job = asl["States"]["FailJob"]
    assert fail_job["Resource"].endswith(":function:kg-fail-job")
    assert fail_job["Parameters"] == {"job_id.$": "$.job_id", "source.$": "$.source", "failure.$": "$.failure"}
    assert "Catch" not in fail_job
    failed = asl["States"][fail_job["Next"]]
    assert failed["Type"] == "Fail"
    assert (failed["ErrorPath"], failed["CausePath"]) == ("$.failure.Error", "$.failure.Cause")


@pytest.mark.parametrize("state", [*TOP_LEVEL_WORK[:1], *TOP_LEVEL_WORK[2:], "FailJob"])
def test_every_top_level_task_retries_lambda_service_errors(asl, state):
    first = asl["States"][state]["Retry"][0]
    assert set(first["ErrorEquals"]) == {LAMBDA_THROTTLED, *LAMBDA_SERVICE_ERRORS}
    assert first["JitterStrategy"] == "FULL" and first["BackoffRate"] == 2


@pytest.mark.parametrize("state", ["MergeAndStore", "GenerateConcepts", "Deduplicate"])
def test_database_stages_wait_for_the_database_to_resume(asl, state):
    retriers = {tuple(r["ErrorEquals"]): r for r in asl["States"][state]["Retry"]}
    store = retriers[("StoreUnavailable", "ProviderUnavailable")]
    assert store["IntervalSeconds"] >= 5 and store["MaxAttempts"] >= 4


def test_every_state_is_reachable_and_only_done_or_failed_end_the_execution(asl):
    states = asl["States"]
    seen, todo = set(), [asl["StartAt"]]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        state = states[name]
        todo += [state[k] for k in ("Next", "Default") if k in state]
        todo += [c["Next"] for c in state.get("Choices", []) + state.get("Catch", [])]
    assert seen == set(states)
    assert {n for n, s in states.items() if s["Type"] in ("Succeed", "Fail") or s.get("End")} == {"Done", "JobFailed"}


def test_payloads_between_states_are_ids_never_text(asl):
    allowed = {"$.job_id", "$.index", "$.source", "$.failure",
               "$.items", "extract", "concepts"}  # batch mode: the plan's chunk indexes, the phase's name

    def tasks(states):
        for name, state in states.items():
            if state["Type"] == "Task":
                yield name, state
            if state["Type"] == "Map":
                yield from tasks(state["ItemProcessor"]["States"])

    for name, state in tasks(asl["States"]):
        if name == "Plan":
            continue  # the execution input: keys, ids and options (the text is in S3 under text_key)
        assert set(state["Parameters"].values()) <= allowed, name


# ------------------------------------------------------------------------------ functions


def test_every_function_runs_python_3_11_with_the_one_layer_and_tracing(synth):
    functions = {
        k: v for k, v in synth.resources("AWS::Lambda::Function").items() if "Properties" in v
    }
    ours = {k: v for k, v in functions.items() if str(v["Properties"].get("FunctionName", "")).startswith("kg-")}
    assert len(ours) == len(FUNCTIONS)
    (layer,) = synth.resources("AWS::Lambda::LayerVersion")
    for spec in FUNCTIONS:
        props = function(synth, spec.id)["Properties"]
        assert props["Runtime"] == "python3.11"
        assert props["Handler"] == f"{spec.module}.handler"
        assert props["Layers"] == [{"Ref": layer}]
        assert props["TracingConfig"] == {"Mode": "Active"}
        env = props["Environment"]["Variables"]
        assert env["POWERTOOLS_SERVICE_NAME"] == f"kg-{spec.name}"
        assert env["POWERTOOLS_METRICS_NAMESPACE"] == "KnowledgeGraph"
        assert {"KG_BLOB_BUCKET", "KG_LEDGER_TABLE", "KG_OPENAI_SECRET_NAME", "KG_LLM_PROVIDER", "KG_LLM_MODEL",
                "KG_EXTRACTION_MODE", "KG_DEDUP"} <= set(env)


def test_llm_requests_give_up_before_their_lambda_times_out(synth):
    for spec in FUNCTIONS:
        env = function(synth, spec.id)["Properties"]["Environment"]["Variables"]
        if spec.openai:
            assert 0 < float(env["KG_LLM_RETRY_DEADLINE_S"]) < spec.timeout.to_seconds()
        else:
            assert "KG_LLM_RETRY_DEADLINE_S" not in env


def test_only_the_database_functions_run_in_the_vpc(synth):
    in_vpc = {spec.id for spec in FUNCTIONS if "VpcConfig" in function(synth, spec.id)["Properties"]}
    assert in_vpc == {"MergeAndStore", "GenerateConcepts", "Deduplicate", "LlmBatch", "Api", "Migrate"}
    for spec_id in in_vpc:
        assert "KG_DATABASE_SECRET_ARN" in function(synth, spec_id)["Properties"]["Environment"]["Variables"]
    assert "KG_DATABASE_SECRET_ARN" not in function(synth, "ExtractChunk")["Properties"]["Environment"]["Variables"]


def test_extract_reserved_concurrency_is_the_global_cap(synth, cdk_context):
    extract = function(synth, "ExtractChunk")["Properties"]
    assert extract["ReservedConcurrentExecutions"] == cdk_context["kg:extractReservedConcurrency"] == 16
    others = [s.id for s in FUNCTIONS if "ReservedConcurrentExecutions" in function(synth, s.id)["Properties"]]
    assert others == ["ExtractChunk"]


def test_state_machine_tasks_name_their_handler_files(synth):
    from infra import asl

    files = asl.handler_files(synth.template)
    assert files == {f"kg-{s.name}": s.handler_file for s in FUNCTIONS}
    task_functions = {f"kg-{s.name}" for s in FUNCTIONS if s.id in STATE_MACHINE_TASKS}
    resources = set()

    def collect(states):
        for state in states.values():
            if state["Type"] == "Task":
                resources.add(state["Resource"].rsplit(":", 1)[1])
            if state["Type"] == "Map":
                collect(state["ItemProcessor"]["States"])

    collect(asl.definition(synth.template)["States"])
    assert resources == task_functions


def test_starters_know_the_state_machine(synth):
    (machine,) = synth.resources("AWS::StepFunctions::StateMachine")
    for spec_id in ("Api", "S3Upload"):
        env = function(synth, spec_id)["Properties"]["Environment"]["Variables"]
        assert env["KG_STATE_MACHINE_ARN"] == {"Ref": machine}


# ------------------------------------------------------------------------------ IAM: least privilege

DATABASE_FUNCTIONS = {"MergeAndStore", "GenerateConcepts", "Deduplicate", "LlmBatch", "Api", "Migrate"}
XRAY_ACTIONS = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}


def statements(synth, spec_id: str) -> list[dict]:
    """Every statement of the inline policies on the function's role."""
    role = function(synth, spec_id)["Properties"]["Role"]["Fn::GetAtt"][0]
    return [
        statement
        for policy in synth.resources("AWS::IAM::Policy").values()
        if {"Ref": role} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def actions_of(statement: dict) -> set[str]:
    action = statement["Action"]
    return {action} if isinstance(action, str) else set(action)


def granted(synth, spec_id: str, service: str) -> list[tuple[set[str], str]]:
    """(actions, resources as JSON text) of the statements that grant actions of `service`."""
    return [
        ({a for a in actions_of(s) if a.startswith(f"{service}:")}, json.dumps(s["Resource"]))
        for s in statements(synth, spec_id)
        if any(a.startswith(f"{service}:") for a in actions_of(s))
    ]


def test_every_grant_is_allow_and_names_the_pipelines_own_resources(synth):
    """The only `Resource: *` is X-Ray's (it has no resource-level permissions)."""
    own = {
        "s3": logical_id(synth, "Blobs", "AWS::S3::Bucket"),
        "dynamodb": logical_id(synth, "Ledger", "AWS::DynamoDB::Table"),
        "states": "kg-pipeline",
    }
    for spec in FUNCTIONS:
        for statement in statements(synth, spec.id):
            assert statement["Effect"] == "Allow" and "NotAction" not in statement, spec.id
            actions, resource = actions_of(statement), json.dumps(statement["Resource"])
            if statement["Resource"] == "*":
                assert actions <= XRAY_ACTIONS, (spec.id, actions)
                continue
            services = {a.split(":")[0] for a in actions}
            assert len(services) == 1, (spec.id, actions)
            (service,) = services
            if service == "states":
                assert "StateMachine" in resource or own["states"] in resource, (spec.id, resource)
            elif service in own:
                assert own[service] in resource, (spec.id, resource)
            else:
                assert service == "secretsmanager", (spec.id, actions)


def test_only_the_database_functions_may_read_the_database_secret(synth):
    """ExtractChunk above all: it runs outside the VPC and must never reach PostgreSQL."""
    attachment = logical_id(synth, "DatabaseSecretAttachment", "AWS::SecretsManager::SecretTargetAttachment")
    (secret,) = synth.resources("AWS::SecretsManager::Secret")
    readers = {
        spec.id
        for spec in FUNCTIONS
        for actions, resource in granted(synth, spec.id, "secretsmanager")
        if attachment in resource or secret in resource
    }
    assert readers == DATABASE_FUNCTIONS
    assert "ExtractChunk" not in readers
    for spec_id in readers:
        ((actions, _),) = [g for g in granted(synth, spec_id, "secretsmanager") if attachment in g[1]]
        assert actions == {"secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"}


def test_only_the_functions_that_call_the_llm_or_embedding_api_may_read_its_key(synth):
    readers = {
        spec.id
        for spec in FUNCTIONS
        for _, resource in granted(synth, spec.id, "secretsmanager")
        if "secret:kg/openai-api-key-??????" in resource
    }
    # Api embeds search queries; Deduplicate the triples an entity merge rewrote.
    assert readers == {"ExtractChunk", "MergeAndStore", "GenerateConcepts", "Deduplicate", "LlmBatch", "Api"}


def test_ledger_grants_are_the_ledgers_calls_on_its_table_and_index_only(synth):
    table = logical_id(synth, "Ledger", "AWS::DynamoDB::Table")
    for spec in FUNCTIONS:
        grants = granted(synth, spec.id, "dynamodb")
        if spec.id == "Migrate":
            assert grants == []  # it touches the database, nothing else
            continue
        ((actions, resource),) = grants
        assert actions == set(LEDGER_ACTIONS), spec.id
        assert not actions & {"dynamodb:Scan", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"}
        resources = json.loads(resource)
        assert resources[0] == {"Fn::GetAtt": [table, "Arn"]}
        assert resources[1] == {"Fn::Join": ["", [{"Fn::GetAtt": [table, "Arn"]}, f"/index/{LEDGER_INDEX}"]]}


def _client_calls(module: Path) -> set[str]:
    """The boto3 operations a module calls: `client.<op>(` and `get_paginator("<op>")`."""
    text = module.read_text()
    calls = set(re.findall(r"\bclient\.([a-z0-9_]+)\(", text))
    calls |= set(re.findall(r'get_paginator\("([a-z0-9_]+)"\)', text))
    return calls - {"get_paginator"}


def test_ledger_actions_are_exactly_what_the_dynamodb_ledger_calls():
    module = LIBRARY / "ledger" / "dynamodb.py"
    item_actions = {
        "Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem", "ConditionCheck": "ConditionCheckItem",
    }
    needed = set()
    for call in _client_calls(module):
        if call == "transact_write_items":
            kinds = set(re.findall(r'\{"(Put|Update|Delete|ConditionCheck)":', module.read_text()))
            needed |= {f"dynamodb:{item_actions[k]}" for k in kinds}
        else:
            needed.add("dynamodb:" + "".join(part.title() for part in call.split("_")))
    assert needed == set(LEDGER_ACTIONS), "update infra.stack.LEDGER_ACTIONS to what kg.ledger.dynamodb calls"


def test_blob_grants_cover_what_the_s3_stores_call_and_only_cleanup_deletes(synth):
    s3_actions = {
        "get_object": {"s3:GetObject"}, "head_object": {"s3:GetObject"}, "put_object": {"s3:PutObject"},
        "list_objects_v2": {"s3:ListBucket"}, "list_objects": {"s3:ListBucket"},
        "delete_objects": {"s3:DeleteObject"}, "delete_object": {"s3:DeleteObject"},
        "copy_object": {"s3:GetObject", "s3:PutObject"},
    }
    needed = set()
    for module in (LIBRARY / "blobs" / "s3.py", LIBRARY / "llm" / "cache_s3.py"):
        for call in _client_calls(module):
            assert call in s3_actions, f"{module.name} calls s3 {call}: map it here and grant it in infra/stack.py"
            needed |= s3_actions[call]
    deleters = set()
    for spec in FUNCTIONS:
        actions = set().union(*[a for a, _ in granted(synth, spec.id, "s3")])
        if spec.id == "Migrate":
            assert actions == set()
            continue
        assert needed - {"s3:DeleteObject"} <= actions <= needed, spec.id
        if "s3:DeleteObject" in actions:
            deleters.add(spec.id)
    assert deleters == {"Finalize", "FailJob", "Api"}  # a finished job's intermediates; a document delete


def test_only_the_starters_start_executions_and_only_the_api_reads_them(synth):
    (machine,) = synth.resources("AWS::StepFunctions::StateMachine")
    for spec in FUNCTIONS:
        grants = granted(synth, spec.id, "states")
        if spec.id in ("Api", "S3Upload"):
            assert ({"states:StartExecution"}, json.dumps({"Ref": machine})) in grants, spec.id
        if spec.id == "Api":
            (reads,) = [g for g in grants if g[0] != {"states:StartExecution"}]
            assert reads[0] == {"states:DescribeExecution", "states:GetExecutionHistory"}
            assert ":execution:kg-pipeline:*" in reads[1]
        elif spec.id != "S3Upload":
            assert grants == [], spec.id


def test_the_state_machine_may_invoke_its_own_task_functions_only(synth):
    (machine,) = synth.resources("AWS::StepFunctions::StateMachine").values()
    role = machine["Properties"]["RoleArn"]["Fn::GetAtt"][0]
    (policy,) = [p for p in synth.resources("AWS::IAM::Policy").values() if {"Ref": role} in p["Properties"]["Roles"]]
    invoked = set()
    for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
        if statement["Resource"] == "*":
            assert all(a.startswith(("logs:", "xray:")) for a in actions_of(statement))
            continue
        assert actions_of(statement) == {"lambda:InvokeFunction"}
        for resource in statement["Resource"]:
            target = resource["Fn::GetAtt"] if "Fn::GetAtt" in resource else resource["Fn::Join"][1][0]["Fn::GetAtt"]
            invoked.add(target[0])
    expected = {logical_id(synth, f"{spec_id}Function", "AWS::Lambda::Function") for spec_id in STATE_MACHINE_TASKS}
    assert invoked == expected


def test_database_accepts_connections_from_the_database_functions_only(synth):
    database_sg = logical_id(synth, "DatabaseSecurityGroup", "AWS::EC2::SecurityGroup")
    functions_sg = logical_id(synth, "FunctionsSecurityGroup", "AWS::EC2::SecurityGroup")
    ingress = [
        r["Properties"] for r in synth.resources("AWS::EC2::SecurityGroupIngress").values()
        if r["Properties"]["GroupId"] == {"Fn::GetAtt": [database_sg, "GroupId"]}
    ]
    database_sg_props = synth.template["Resources"][database_sg]["Properties"]
    assert "SecurityGroupIngress" not in database_sg_props  # no CIDR rules
    (rule,) = ingress
    assert rule["SourceSecurityGroupId"] == {"Fn::GetAtt": [functions_sg, "GroupId"]}
    assert rule["FromPort"] == rule["ToPort"]
    for spec_id in DATABASE_FUNCTIONS:
        vpc_config = function(synth, spec_id)["Properties"]["VpcConfig"]
        assert vpc_config["SecurityGroupIds"] == [{"Fn::GetAtt": [functions_sg, "GroupId"]}]
        assert all("functions" in s["Ref"].lower() for s in vpc_config["SubnetIds"])  # private, with egress


# ------------------------------------------------------------------------------ storage and database


def test_ledger_is_on_demand_with_point_in_time_recovery_and_ttl(template):
    template.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "BillingMode": "PAY_PER_REQUEST",
            "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
            "TimeToLiveSpecification": {"AttributeName": "expires_at", "Enabled": True},
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            "SSESpecification": {"SSEEnabled": True},
        },
    )


def test_ledger_table_is_the_one_the_dynamodb_ledger_expects(template):
    dynamodb_ledger = pytest.importorskip("kg.ledger.dynamodb")
    template.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "GlobalSecondaryIndexes": [
                {
                    "IndexName": dynamodb_ledger.GSI_NAME,
                    "KeySchema": [
                        {"AttributeName": "gsi1pk", "KeyType": "HASH"},
                        {"AttributeName": "gsi1sk", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ]
        },
    )


def test_bucket_blocks_public_access_encrypts_and_expires_intermediate_objects(synth, cdk_context):
    blobs = synth.template["Resources"][logical_id(synth, "Blobs", "AWS::S3::Bucket")]["Properties"]
    assert blobs["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True, "RestrictPublicBuckets": True
    }
    (encryption,) = blobs["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert encryption["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    rules = {r["Id"]: r for r in blobs["LifecycleConfiguration"]["Rules"]}
    assert rules["ExpireIntermediate"]["Prefix"] == "jobs/"
    assert rules["ExpireIntermediate"]["ExpirationInDays"] == cdk_context["kg:intermediateExpiryDays"]
    assert rules["ExpireIntermediate"]["Status"] == "Enabled"
    assert "LoggingConfiguration" in blobs


def test_bucket_refuses_requests_without_tls(synth):
    bucket = logical_id(synth, "Blobs", "AWS::S3::Bucket")
    (policy,) = [
        p for p in synth.resources("AWS::S3::BucketPolicy").values() if p["Properties"]["Bucket"] == {"Ref": bucket}
    ]
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in statements
    )


def test_aurora_serverless_v2_postgres_is_encrypted_private_and_tls_only(synth, template):
    template.has_resource_properties(
        "AWS::RDS::DBCluster",
        {
            "Engine": "aurora-postgresql",
            "StorageEncrypted": True,
            "ServerlessV2ScalingConfiguration": {"MinCapacity": 0, "MaxCapacity": 4},
            "MasterUserPassword": Match.any_value(),  # resolved from the generated secret
            "DatabaseName": "kg",
        },
    )
    template.has_resource_properties("AWS::RDS::DBClusterParameterGroup", {"Parameters": {"rds.force_ssl": "1"}})
    template.has_resource_properties("AWS::RDS::DBInstance", {"PubliclyAccessible": False})
    template.has_resource_properties("AWS::SecretsManager::Secret", {"Name": "kg/database"})
    (subnet_group,) = synth.resources("AWS::RDS::DBSubnetGroup").values()
    for subnet in subnet_group["Properties"]["SubnetIds"]:
        assert "database" in subnet["Ref"].lower()  # the isolated subnets


def test_migrations_are_applied_on_deploy_after_the_database(synth):
    (migrations,) = synth.resources("Custom::KgMigrations").values()
    assert len(migrations["Properties"]["MigrationsHash"]) == 16
    assert any(d.startswith("Database") for d in migrations["DependsOn"])


def test_nat_egress_and_free_gateway_endpoints(synth, cdk_context):
    assert len(synth.resources("AWS::EC2::NatGateway")) == cdk_context["kg:natGateways"]
    endpoints = [str(e["Properties"]["ServiceName"]) for e in synth.resources("AWS::EC2::VPCEndpoint").values()]
    assert any("s3" in e for e in endpoints) and any("dynamodb" in e for e in endpoints)
    assert synth.resources("AWS::EC2::FlowLog")


def test_failed_and_timed_out_executions_alarm(template):
    for metric in ("ExecutionsFailed", "ExecutionsTimedOut"):
        template.has_resource_properties(
            "AWS::CloudWatch::Alarm",
            {
                "MetricName": metric,
                "Namespace": "AWS/States",
                "Threshold": 1,
                "ComparisonOperator": "GreaterThanOrEqualToThreshold",
                "AlarmActions": Match.any_value(),
            },
        )


# ------------------------------------------------------------------------------ API and S3 trigger


def api_routes(synth) -> dict[tuple[str, str], dict]:
    resources = synth.resources("AWS::ApiGateway::Resource")

    def path(ref) -> str:
        if "Ref" not in ref:  # Fn::GetAtt [RestApi, RootResourceId]
            return ""
        props = resources[ref["Ref"]]["Properties"]
        return f"{path(props['ParentId'])}/{props['PathPart']}"

    return {
        (m["Properties"]["HttpMethod"], path(m["Properties"]["ResourceId"])): m["Properties"]
        for m in synth.resources("AWS::ApiGateway::Method").values()
    }


def test_api_routes_all_need_iam_and_reach_the_one_resolver(synth):
    routes = api_routes(synth)
    assert set(routes) == {
        ("POST", "/jobs"), ("GET", "/jobs"), ("GET", "/jobs/{id}"), ("GET", "/stats"), ("DELETE", "/documents/{source}"),
        ("GET", "/documents"), ("GET", "/triples/{id}"), ("GET", "/nodes/{id}"), ("GET", "/overview"),
        *((method, path) for method in ("GET", "POST") for path in ("/search", "/concepts", "/neighbors")),
    }
    api_fn = logical_id(synth, "ApiFunction", "AWS::Lambda::Function")
    for route, method in routes.items():
        assert method["AuthorizationType"] == "AWS_IAM", route
        assert method["Integration"]["Type"] == "AWS_PROXY", route
        assert api_fn in str(method["Integration"]["Uri"]), route
        assert "RequestValidatorId" in method, route


def test_api_stage_is_traced_and_logged(template):
    template.has_resource_properties(
        "AWS::ApiGateway::Stage",
        {
            "StageName": "v1",
            "TracingEnabled": True,
            "AccessLogSetting": Match.object_like({"DestinationArn": Match.any_value()}),
            "MethodSettings": Match.array_with([Match.object_like({"LoggingLevel": "INFO", "DataTraceEnabled": False})]),
        },
    )


def test_an_upload_under_incoming_starts_a_job(synth):
    (notifications,) = synth.resources("Custom::S3BucketNotifications").values()
    props = notifications["Properties"]
    assert props["BucketName"] == {"Ref": logical_id(synth, "Blobs", "AWS::S3::Bucket")}
    (config,) = props["NotificationConfiguration"]["LambdaFunctionConfigurations"]
    assert config["Events"] == ["s3:ObjectCreated:*"]
    assert config["Filter"] == {"Key": {"FilterRules": [{"Name": "prefix", "Value": "incoming/"}]}}
    assert config["LambdaFunctionArn"] == {
        "Fn::GetAtt": [logical_id(synth, "S3UploadFunction", "AWS::Lambda::Function"), "Arn"]
    }


# ------------------------------------------------------------------------------ lint and nag


def test_cfn_lint_finds_nothing(synth):
    cfn_lint = Path(sys.executable).with_name("cfn-lint")  # the venv's console script
    result = subprocess.run(
        [str(cfn_lint), "-i", "W3005", "--", str(synth.template_path)],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def aws_solutions(synth) -> dict:
    reports = [r for r in synth.report["pluginReports"] if r["pluginName"] == "AwsSolutions"]
    assert len(reports) == 1, "cdk-nag's AwsSolutions pack did not report: is it registered (infra/nag.py)?"
    return reports[0]


def test_cdk_nag_aws_solutions_has_no_unacknowledged_finding(synth):
    report = aws_solutions(synth)
    findings = [
        f"{v['severity']} {v['ruleName']} at {[c['constructPath'] for c in v['violatingConstructs']]}"
        for v in report.get("violations", [])
    ]
    assert findings == [], "\n".join(findings)
    assert report["conclusion"] == "success"
    assert synth.error is None, synth.error


def test_every_acknowledged_nag_finding_carries_its_reason_where_it_was_acknowledged(synth):
    suppressed = aws_solutions(synth)["suppressedViolations"]
    assert suppressed
    for finding in suppressed:
        assert finding["acknowledgedId"].startswith("AwsSolutions::AwsSolutions-"), finding["acknowledgedId"]
        assert len(finding["reason"]) >= 40, finding["acknowledgedId"]
        for construct in finding["violatingConstructs"]:
            # on the construct with the finding or its owner, never the whole stack
            assert construct["constructPath"].startswith(finding["acknowledgedAt"] + "/"), finding["acknowledgedId"]
            assert finding["acknowledgedAt"] != synth.stack_name


def test_no_nag_acknowledgment_is_stale(synth):
    """Each acknowledgment in infra/nag.py suppresses a finding: one that no longer does is removed,
    so that it cannot hide a future finding."""
    used = {(f["acknowledgedAt"], f["acknowledgedId"]) for f in aws_solutions(synth)["suppressedViolations"]}
    made = {
        (path.lstrip("/"), rule)
        for path, entries in synth.metadata.items()
        for entry in entries
        if entry["type"] == "aws:cdk:acknowledged-rules"
        for rule in entry["data"]
        if rule.startswith("AwsSolutions::")
    }
    assert made - used == set()


def test_cdk_nag_fails_the_synth_on_an_unacknowledged_finding(tmp_path):
    """The checks are wired as `cdk synth` runs them: a bucket without TLS enforcement fails it."""
    from aws_cdk import App, Stack
    from aws_cdk import aws_s3 as s3

    from infra import nag

    app = App(outdir=str(tmp_path))
    s3.Bucket(Stack(app, "Probe"), "Open", server_access_logs_prefix="logs/")
    nag.add_checks(app)
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    report = json.loads((tmp_path / "validation-report.json").read_text())
    (aws,) = [r for r in report["pluginReports"] if r["pluginName"] == "AwsSolutions"]
    assert "AwsSolutions-S10" in {v["ruleName"] for v in aws["violations"]}


def test_no_error_annotations_and_warnings_only_say_what_a_deploy_needs(synth):
    annotations = [
        v for report in synth.report["pluginReports"] if report["pluginName"] == "Construct Annotations"
        for v in report.get("violations", [])
    ]
    assert [v for v in annotations if v["severity"] == "error"] == []
    assert {v["ruleName"] for v in annotations} <= {"Annotation::kg:not-deployable"}


def test_acknowledged_findings_are_in_the_template_for_audit_tools(synth):
    acknowledged = [
        rule
        for resource in synth.template["Resources"].values()
        for rule in resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", [])
        if rule["id"].startswith("AwsSolutions::AwsSolutions-")
    ]
    assert acknowledged
    for rule in acknowledged:
        assert len(rule["reason"]) >= 40, rule


# ------------------------------------------------------------------------------ configuration


def test_strict_synth_refuses_a_stack_that_cannot_run(tmp_path, cdk_context):
    """`-c kg:strict=true` (for deploys): an unbuilt layer or a missing handler file is an error
    annotation, which fails the synth (read here from the constructs, without a second synth)."""
    from aws_cdk import App

    from infra.stack import KgStack

    config = StackConfig(strict=True, layer_dir=str(tmp_path / "no-layer"))
    stack = KgStack(App(context=cdk_context, outdir=str(tmp_path / "out")), "Strict", config=config)
    errors = {
        (construct.node.path, str(entry.data))
        for construct in stack.node.find_all()
        for entry in construct.node.metadata
        if entry.type == "aws:cdk:error"
    }
    assert any(path == "Strict/KgLayer" and "build_lambda_layer.sh" in message for path, message in errors)
    missing = {spec.handler_file for spec in FUNCTIONS if not (LIBRARY.parents[1] / spec.handler_file).is_file()}
    for handler_file in missing:
        assert any(f"functions/{handler_file} does not exist" in message for _, message in errors), handler_file


def test_cdk_json_states_every_default():
    from tests.infra.conftest import REPO_ROOT

    context = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]
    for key, (_, default) in CONTEXT_KEYS.items():
        assert context[key] == default, key
    assert StackConfig.from_context(context.get) == StackConfig()


def test_the_built_layer_is_used_when_it_exists(tmp_path):
    from infra.layer import built_layer, library_only_layer

    assert built_layer(str(tmp_path)) is None
    (tmp_path / "python" / "kg").mkdir(parents=True)
    assert built_layer(str(tmp_path)) == tmp_path
    fallback = library_only_layer()
    assert (fallback / "python" / "kg" / "stages" / "contract.py").is_file()
    assert not list(fallback.rglob("__pycache__"))


def test_context_values_from_the_command_line_are_coerced_and_checked():
    given = {"kg:mapMaxConcurrency": "4", "kg:dedupDefault": "true", "kg:extractReservedConcurrency": "4"}
    config = StackConfig.from_context(given.get)
    assert (config.map_max_concurrency, config.dedup_default, config.extract_reserved_concurrency) == (4, True, 4)
    for bad in ({"kg:mapMaxConcurrency": "0"}, {"kg:extractionMode": "fast"}, {"kg:dedupDefault": "perhaps"},
                {"kg:mapMaxConcurrency": "32"}, {"kg:natGateways": 0},
                {"kg:mapMaxConcurrency": 41, "kg:extractReservedConcurrency": 100}):
        with pytest.raises(ConfigError):
            StackConfig.from_context(bad.get)
