"""The AWS engine: one stack with the pipeline's state machine, its Lambdas, storage, database and API.

    S3 `incoming/` ──► S3Upload ─┐
    API (IAM) ──► Api ───────────┴─► state machine (execution name = job id)
        Plan ─► Map(ExtractChunk ─catch─► ChunkFailed) ─► MergeAndStore ⟲ ─► [GenerateConcepts ⟲]
        ─► [Deduplicate ⟲] ─► Finalize;  any unhandled error ─► FailJob ─► Fail

Functions outside the VPC: Plan, ExtractChunk, ChunkFailed, Finalize, FailJob, S3Upload (S3, DynamoDB,
Secrets Manager and the LLM API over the public AWS endpoints). Inside the VPC, in private subnets
with a NAT gateway: MergeAndStore, GenerateConcepts, Deduplicate, Api, Migrate (they use the database,
and the first three also call the embedding or LLM API). The database sits in isolated subnets. See
infra/README.md for the egress and its cost.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from aws_cdk import Annotations, ArnFormat, CfnOutput, CustomResource, Duration, RemovalPolicy, Stack, Tags
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_rds as rds
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import custom_resources as cr
from constructs import Construct

from infra import nag
from infra.config import StackConfig
from infra.layer import REPO_ROOT, layer_code
from infra.state_machine import PipelineFunctions, build_definition

FUNCTIONS_ROOT = REPO_ROOT / "functions"
MIGRATIONS = REPO_ROOT / "functions" / "common" / "kg" / "graph" / "migrations"

# Every function carries this tag: the handler file (under functions/) it runs. infra/asl.py reads it
# to route each state machine task to its handler in tests.
HANDLER_TAG = "kg:handler"

INCOMING_PREFIX = "incoming/"
INTERMEDIATE_PREFIX = "jobs/"  # kg.blobs.job_prefix: chunks, chunk results, stage state

LEDGER_PARTITION_KEY = "pk"
LEDGER_SORT_KEY = "sk"
LEDGER_TTL_ATTRIBUTE = "expires_at"
# The table layout of kg.ledger.dynamodb (one item per job, one per recorded chunk that expires):
# its GSI_NAME lists jobs newest first on gsi1pk ("JOB") / gsi1sk (created_at#id).
LEDGER_INDEX = "jobs_by_created"
# What kg.ledger.dynamodb calls, and nothing more: get_item, put_item, update_item, query (a job's
# chunks on the table, the job list on the index) and transact_write_items of a Put and an Update (IAM
# authorizes a transaction's items by their own actions; ConditionCheckItem only for a ConditionCheck
# item). tests/infra compares this list with the calls in that module: a new call there fails the
# tests, not a deployed function.
LEDGER_ACTIONS = (
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:Query",
    "dynamodb:UpdateItem",
)

DATABASE_NAME = "kg"
DATABASE_USER = "kg_admin"


@dataclass(frozen=True)
class FunctionSpec:
    """One Lambda: its handler file, where it runs and what it may touch."""

    id: str  # <id>Function is the construct id; the state name where it is a task
    name: str  # function name suffix: <prefix>-<name>
    folder: str  # under functions/; the folder is the code asset
    module: str  # handler = <module>.handler
    memory_mb: int = 512
    timeout: Duration = field(default_factory=lambda: Duration.minutes(1))
    in_vpc: bool = False  # the database functions
    openai: bool = False  # reads the OpenAI key (LLM or embeddings)
    deletes_blobs: bool = False  # removes a job's intermediate objects
    description: str = ""

    @property
    def handler_file(self) -> str:
        return f"{self.folder}/{self.module}.py"


# The handler contract: functions/<folder>/<module>.py with a `handler(event, context)`.
FUNCTIONS: tuple[FunctionSpec, ...] = (
    FunctionSpec("Plan", "plan", "extract", "plan", 1024, Duration.minutes(2),
                 description="Check, hash and chunk a document; open its job in the ledger"),
    FunctionSpec("ExtractChunk", "extract-chunk", "extract", "extract_chunk", 1024, Duration.minutes(5),
                 openai=True, description="Extract the four triple types of one chunk (LLM); never the database"),
    FunctionSpec("ChunkFailed", "chunk-failed", "extract", "chunk_failed", 256,
                 description="Record a chunk that failed past its retries, so the Map goes on"),
    FunctionSpec("MergeAndStore", "merge-and-store", "extract", "merge_and_store", 2048, Duration.minutes(15),
                 in_vpc=True, openai=True, description="Merge chunk results, embed, write the graph in one transaction"),
    FunctionSpec("GenerateConcepts", "generate-concepts", "concepts", "handler", 1024, Duration.minutes(15),
                 in_vpc=True, openai=True, description="Conceptualize new entities, events and relations"),
    FunctionSpec("Deduplicate", "deduplicate", "dedup", "handler", 2048, Duration.minutes(15),
                 in_vpc=True, openai=True,  # embeds the triples an entity merge rewrote
                 description="Merge near-duplicate triples (pgvector kNN)"),
    FunctionSpec("LlmBatch", "llm-batch", "extract", "llm_batch", 1024, Duration.minutes(5),
                 in_vpc=True, openai=True,  # the concepts phase reads the graph's elements
                 description="Batch mode: send a job's LLM requests as an OpenAI batch, poll it, cache the answers"),
    FunctionSpec("Finalize", "finalize", "extract", "finalize", 256, deletes_blobs=True,
                 description="End the job SUCCEEDED or PARTIAL"),
    FunctionSpec("FailJob", "fail-job", "failure", "handler", 256, deletes_blobs=True,
                 description="End the job FAILED with the unhandled error"),
    FunctionSpec("Api", "api", "api", "handler", 1024, Duration.seconds(29),
                 in_vpc=True, openai=True, deletes_blobs=True,  # embeds the queries of /search and /concepts
                 description="REST API: jobs, search, stats, document deletes"),
    FunctionSpec("S3Upload", "s3-upload", "api", "s3_upload", 256,
                 description="Start a job for each object uploaded under incoming/"),
    FunctionSpec("Migrate", "migrate", "migrate", "handler", 512, Duration.minutes(5),
                 in_vpc=True, description="Custom resource: apply the graph database migrations"),
)
STATE_MACHINE_TASKS = ("Plan", "ExtractChunk", "ChunkFailed", "MergeAndStore", "GenerateConcepts",
                       "Deduplicate", "LlmBatch", "Finalize", "FailJob")


def migrations_hash() -> str:
    """Changes when a migration is added or edited, so that the custom resource runs again."""
    digest = hashlib.sha256()
    for path in sorted(MIGRATIONS.glob("*.sql")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


class KgStack(Stack):
    def __init__(self, scope: Construct, id: str, config: StackConfig, **kwargs) -> None:
        super().__init__(scope, id, **kwargs)
        self.config = config
        prefix = config.prefix

        # ---------------------------------------------------------------- network
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            max_azs=2,
            nat_gateways=config.nat_gateways,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24),
                ec2.SubnetConfiguration(
                    name="functions", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS, cidr_mask=22
                ),
                ec2.SubnetConfiguration(name="database", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=24),
            ],
            # Free gateway endpoints keep S3 and DynamoDB traffic off the NAT gateway (and its per-GB charge).
            gateway_endpoints={
                "S3": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.S3),
                "DynamoDB": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.DYNAMODB),
            },
        )
        self.vpc.add_flow_log(
            "FlowLog",
            destination=ec2.FlowLogDestination.to_cloud_watch_logs(
                logs.LogGroup(self, "FlowLogs", retention=logs.RetentionDays.ONE_MONTH,
                              removal_policy=RemovalPolicy.DESTROY)
            ),
            traffic_type=ec2.FlowLogTrafficType.ALL,
        )
        self.functions_sg = ec2.SecurityGroup(
            self, "FunctionsSecurityGroup", vpc=self.vpc, allow_all_outbound=True,
            description="Database functions: out to the database, AWS APIs and the LLM/embedding API (HTTPS)",
        )
        self.database_sg = ec2.SecurityGroup(
            self, "DatabaseSecurityGroup", vpc=self.vpc, allow_all_outbound=False,
            description="Aurora PostgreSQL: in from the database functions only",
        )

        # ---------------------------------------------------------------- storage
        access_logs = s3.Bucket(
            self,
            "AccessLogs",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[s3.LifecycleRule(id="ExpireAccessLogs", expiration=Duration.days(90))],
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.bucket = s3.Bucket(
            self,
            "Blobs",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=access_logs,
            server_access_logs_prefix="blobs/",
            lifecycle_rules=[
                # What a job needs only while it runs (chunks, chunk results, stage state); errors/ and
                # incoming/ stay.
                s3.LifecycleRule(
                    id="ExpireIntermediate",
                    prefix=INTERMEDIATE_PREFIX,
                    expiration=Duration.days(config.intermediate_expiry_days),
                ),
                s3.LifecycleRule(
                    id="AbortIncompleteUploads", abort_incomplete_multipart_upload_after=Duration.days(1)
                ),
            ],
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.ledger = dynamodb.Table(
            self,
            "Ledger",
            partition_key=dynamodb.Attribute(name=LEDGER_PARTITION_KEY, type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name=LEDGER_SORT_KEY, type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            time_to_live_attribute=LEDGER_TTL_ATTRIBUTE,
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.ledger.add_global_secondary_index(
            index_name=LEDGER_INDEX,
            partition_key=dynamodb.Attribute(name="gsi1pk", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="gsi1sk", type=dynamodb.AttributeType.STRING),
        )

        # ---------------------------------------------------------------- database
        engine = rds.DatabaseClusterEngine.aurora_postgres(version=rds.AuroraPostgresEngineVersion.VER_17_5)
        self.database = rds.DatabaseCluster(
            self,
            "Database",
            engine=engine,
            writer=rds.ClusterInstance.serverless_v2("Writer", publicly_accessible=False),
            serverless_v2_min_capacity=config.db_min_capacity,
            serverless_v2_max_capacity=config.db_max_capacity,
            vpc=self.vpc,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
            security_groups=[self.database_sg],
            credentials=rds.Credentials.from_generated_secret(DATABASE_USER, secret_name=f"{prefix}/database"),
            default_database_name=DATABASE_NAME,
            parameter_group=rds.ParameterGroup(
                self, "DatabaseParameters", engine=engine,
                description="TLS only", parameters={"rds.force_ssl": "1"},
            ),
            storage_encrypted=True,
            iam_authentication=True,
            deletion_protection=True,
            backup=rds.BackupProps(retention=Duration.days(7)),
            removal_policy=RemovalPolicy.SNAPSHOT,
        )
        self.database.connections.allow_default_port_from(self.functions_sg, "database functions")
        assert self.database.secret is not None
        self.database_secret = self.database.secret

        self.openai_secret = secretsmanager.Secret.from_secret_name_v2(
            self, "OpenAiApiKey", config.openai_secret_name
        )

        # ---------------------------------------------------------------- functions
        code, full_layer = layer_code(config.layer_dir)
        self.layer = lambda_.LayerVersion(
            self,
            "KgLayer",
            code=code,
            compatible_runtimes=[lambda_.Runtime.PYTHON_3_11],
            compatible_architectures=[lambda_.Architecture.X86_64],
            description="kg library with its core and aws dependencies",
        )
        if not full_layer:
            self._not_deployable(
                self.layer,
                f"the layer holds functions/common/kg only ({config.layer_dir} is not built): run "
                "scripts/build_lambda_layer.sh before deploying",
            )

        self.functions: dict[str, lambda_.Function] = {}
        for spec in FUNCTIONS:
            self.functions[spec.id] = self._function(spec)
        fns = self.functions

        for spec in FUNCTIONS:
            fn = fns[spec.id]
            if spec.id != "Migrate":
                self._grant_blobs(fn, spec.deletes_blobs)
                self._grant_ledger(fn)
            if spec.in_vpc:
                self.database_secret.grant_read(fn)
            if spec.openai:
                self.openai_secret.grant_read(fn)

        # ---------------------------------------------------------------- state machine
        pipeline = Construct(self, "Pipeline")
        definition = build_definition(
            pipeline,
            PipelineFunctions(
                plan=fns["Plan"],
                extract_chunk=fns["ExtractChunk"],
                chunk_failed=fns["ChunkFailed"],
                merge_and_store=fns["MergeAndStore"],
                generate_concepts=fns["GenerateConcepts"],
                deduplicate=fns["Deduplicate"],
                llm_batch=fns["LlmBatch"],
                finalize=fns["Finalize"],
                fail_job=fns["FailJob"],
            ),
            max_concurrency=config.map_max_concurrency,
        )
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=f"{prefix}-pipeline",
            state_machine_type=sfn.StateMachineType.STANDARD,
            definition_body=sfn.DefinitionBody.from_chainable(definition),
            tracing_enabled=True,
            logs=sfn.LogOptions(
                destination=logs.LogGroup(
                    self,
                    "StateMachineLogs",
                    # The /aws/vendedlogs/ prefix keeps CloudWatch's log resource policy small.
                    log_group_name=f"/aws/vendedlogs/states/{prefix}-pipeline",
                    retention=logs.RetentionDays.ONE_MONTH,
                    removal_policy=RemovalPolicy.DESTROY,
                ),
                level=sfn.LogLevel.ALL,
                include_execution_data=True,  # payloads are ids, keys and counts: no document text
            ),
            # A job far longer than any real document takes: a stuck execution ends (and alarms).
            timeout=Duration.hours(24),
        )
        for starter in ("Api", "S3Upload"):
            fns[starter].add_environment("KG_STATE_MACHINE_ARN", self.state_machine.state_machine_arn)
            self.state_machine.grant_start_execution(fns[starter])
        # The job's status links its execution: the API may describe this machine's executions only.
        fns["Api"].add_to_role_policy(
            iam.PolicyStatement(
                actions=["states:DescribeExecution", "states:GetExecutionHistory"],
                resources=[self.execution_arns()],
            )
        )

        # ---------------------------------------------------------------- alarms
        alarm_key = kms.Key(
            self, "AlarmTopicKey", enable_key_rotation=True, description="Encrypts the pipeline's alarm topic",
            removal_policy=RemovalPolicy.DESTROY,
        )
        # CloudWatch publishes to an encrypted topic only with a customer managed key it may use.
        alarm_key.grant(iam.ServicePrincipal("cloudwatch.amazonaws.com"), "kms:Decrypt", "kms:GenerateDataKey*")
        self.alarm_topic = sns.Topic(
            self, "AlarmTopic", topic_name=f"{prefix}-alarms", master_key=alarm_key, enforce_ssl=True
        )
        if config.alarm_email:
            self.alarm_topic.add_subscription(subscriptions.EmailSubscription(config.alarm_email))
        for alarm_id, metric, what in (
            ("ExecutionsFailedAlarm", self.state_machine.metric_failed, "failed"),
            ("ExecutionsTimedOutAlarm", self.state_machine.metric_timed_out, "timed out"),
        ):
            alarm = cloudwatch.Alarm(
                self,
                alarm_id,
                alarm_name=f"{prefix}-executions-{what.replace(' ', '-')}",
                alarm_description=f"A pipeline execution {what}: its job id is the execution name",
                metric=metric(period=Duration.minutes(5), statistic="Sum"),
                threshold=1,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
            alarm.add_alarm_action(cw_actions.SnsAction(self.alarm_topic))

        # ---------------------------------------------------------------- API
        self.api = self._api(fns["Api"])

        # ---------------------------------------------------------------- S3 uploads
        self.bucket.add_event_notification(
            s3.EventType.OBJECT_CREATED,
            s3n.LambdaDestination(fns["S3Upload"]),
            s3.NotificationKeyFilter(prefix=INCOMING_PREFIX),
        )

        # ---------------------------------------------------------------- migrations on deploy
        provider = cr.Provider(
            self,
            "MigrationsProvider",
            on_event_handler=fns["Migrate"],
            log_group=logs.LogGroup(
                self, "MigrationsProviderLogs", retention=logs.RetentionDays.ONE_MONTH,
                removal_policy=RemovalPolicy.DESTROY,
            ),
        )
        migrations = CustomResource(
            self,
            "Migrations",
            service_token=provider.service_token,
            resource_type="Custom::KgMigrations",
            properties={
                "MigrationsHash": migrations_hash(),
                "EmbeddingModel": config.embedding_model,
                "EmbeddingDimensions": str(config.embedding_dimensions),
            },
        )
        migrations.node.add_dependency(self.database)

        # ---------------------------------------------------------------- outputs
        CfnOutput(self, "ApiUrl", value=self.api.url)
        CfnOutput(self, "BucketName", value=self.bucket.bucket_name)
        CfnOutput(self, "LedgerTableName", value=self.ledger.table_name)
        CfnOutput(self, "StateMachineArn", value=self.state_machine.state_machine_arn)
        CfnOutput(self, "DatabaseSecretArn", value=self.database_secret.secret_arn)
        CfnOutput(self, "AlarmTopicArn", value=self.alarm_topic.topic_arn)

        nag.acknowledge(self, provider)

    def execution_arns(self) -> str:
        return self.format_arn(
            service="states",
            resource="execution",
            resource_name=f"{self.config.prefix}-pipeline:*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )

    def _grant_blobs(self, fn: lambda_.Function, delete: bool) -> None:
        """Objects in, objects out; list, so that a missing key reads as missing (404, not 403)."""
        actions = ["s3:GetObject", "s3:PutObject", *(["s3:DeleteObject"] if delete else [])]
        fn.add_to_role_policy(iam.PolicyStatement(actions=actions, resources=[self.bucket.arn_for_objects("*")]))
        fn.add_to_role_policy(iam.PolicyStatement(actions=["s3:ListBucket"], resources=[self.bucket.bucket_arn]))

    def _grant_ledger(self, fn: lambda_.Function) -> None:
        """The ledger's items and its one index, with the actions kg.ledger.dynamodb uses (no Scan, no
        deletes: job and chunk items expire by TTL)."""
        table = self.ledger.table_arn
        fn.add_to_role_policy(
            iam.PolicyStatement(actions=list(LEDGER_ACTIONS), resources=[table, f"{table}/index/{LEDGER_INDEX}"])
        )

    # ------------------------------------------------------------------------------------------
    def _environment(self, spec: FunctionSpec) -> dict[str, str]:
        c = self.config
        env = {
            "KG_BLOB_BUCKET": self.bucket.bucket_name,
            "KG_LEDGER_TABLE": self.ledger.table_name,
            "KG_OPENAI_SECRET_NAME": c.openai_secret_name,
            "KG_LLM_PROVIDER": c.llm_provider,
            "KG_LLM_MODEL": c.llm_model,
            "KG_EXTRACTION_MODE": c.extraction_mode,
            "KG_EMBEDDING_PROVIDER": c.llm_provider,
            "KG_EMBEDDING_MODEL": c.embedding_model,
            "KG_EMBEDDING_DIMENSIONS": str(c.embedding_dimensions),
            "KG_DEDUP": "true" if c.dedup_default else "false",
            "KG_MAX_CONCURRENCY": str(c.map_max_concurrency),
            "POWERTOOLS_SERVICE_NAME": f"{c.prefix}-{spec.name}",
            "POWERTOOLS_METRICS_NAMESPACE": c.metrics_namespace,
            "POWERTOOLS_LOG_LEVEL": "INFO",
        }
        if spec.in_vpc:
            env["KG_DATABASE_SECRET_ARN"] = self.database_secret.secret_arn
        if spec.openai:
            # An LLM request waiting out a rate limit gives up before Lambda would kill it (a minute
            # before, or a quarter of a short timeout), so the stage records its failure instead of dying.
            timeout_s = spec.timeout.to_seconds()
            env["KG_LLM_RETRY_DEADLINE_S"] = str(int(timeout_s - min(60, timeout_s / 4)))
        return env

    def _not_deployable(self, scope: Construct, message: str) -> None:
        """A synth that cannot be deployed as it is: an error under kg:strict, a warning otherwise
        (so that the template can be checked offline before the layer is built)."""
        if self.config.strict:
            Annotations.of(scope).add_error(message)
        else:
            Annotations.of(scope).add_warning_v2("kg:not-deployable", message)

    def _code(self, spec: FunctionSpec) -> lambda_.Code:
        folder = FUNCTIONS_ROOT / spec.folder
        if not (folder / f"{spec.module}.py").is_file():
            self._not_deployable(self, f"{spec.id}: the handler functions/{spec.handler_file} does not exist")
        if folder.is_dir():
            return lambda_.Code.from_asset(str(folder), exclude=["**/__pycache__", "**/*.pyc", "README.md"])
        return lambda_.Code.from_inline("def handler(event, context):\n    raise NotImplementedError\n")

    def _function(self, spec: FunctionSpec) -> lambda_.Function:
        name = f"{self.config.prefix}-{spec.name}"
        log_group = logs.LogGroup(
            self,
            f"{spec.id}Logs",
            log_group_name=f"/aws/lambda/{name}",
            retention=logs.RetentionDays.ONE_MONTH,
            removal_policy=RemovalPolicy.DESTROY,
        )
        vpc_props = (
            dict(
                vpc=self.vpc,
                vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
                security_groups=[self.functions_sg],
            )
            if spec.in_vpc
            else {}
        )
        fn = lambda_.Function(
            self,
            f"{spec.id}Function",
            function_name=name,
            description=spec.description,
            runtime=lambda_.Runtime.PYTHON_3_11,
            architecture=lambda_.Architecture.X86_64,
            handler=f"{spec.module}.handler",
            code=self._code(spec),
            layers=[self.layer],
            memory_size=spec.memory_mb,
            timeout=spec.timeout,
            tracing=lambda_.Tracing.ACTIVE,
            environment=self._environment(spec),
            log_group=log_group,
            reserved_concurrent_executions=(
                self.config.extract_reserved_concurrency if spec.id == "ExtractChunk" else None
            ),
            **vpc_props,
        )
        Tags.of(fn).add(HANDLER_TAG, spec.handler_file)
        return fn

    def _api(self, handler: lambda_.IFunction) -> apigw.RestApi:
        access_logs = logs.LogGroup(
            self, "ApiAccessLogs", retention=logs.RetentionDays.ONE_MONTH, removal_policy=RemovalPolicy.DESTROY
        )
        api = apigw.RestApi(
            self,
            "Api",
            rest_api_name=f"{self.config.prefix}-api",
            description="Knowledge-graph jobs, statistics and document deletes (IAM authorization)",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            cloud_watch_role=True,
            deploy_options=apigw.StageOptions(
                stage_name="v1",
                tracing_enabled=True,
                metrics_enabled=True,
                logging_level=apigw.MethodLoggingLevel.INFO,
                data_trace_enabled=False,  # request bodies carry document text
                access_log_destination=apigw.LogGroupLogDestination(access_logs),
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=True, http_method=True, ip=True, protocol=True, request_time=True,
                    resource_path=True, response_length=True, status=True, user=True,
                ),
            ),
            default_method_options=apigw.MethodOptions(authorization_type=apigw.AuthorizationType.IAM),
        )
        # Parameters are checked here; bodies by the handler (pydantic), which answers 400 with the reason.
        validator = api.add_request_validator(
            "RequestValidator", validate_request_body=True, validate_request_parameters=True
        )
        integration = apigw.LambdaIntegration(handler, allow_test_invoke=False)

        def route(resource: apigw.IResource, method: str, params: tuple[str, ...] = ()) -> None:
            resource.add_method(
                method,
                integration,
                authorization_type=apigw.AuthorizationType.IAM,
                request_validator=validator,
                request_parameters={f"method.request.path.{p}": True for p in params},
            )

        jobs = api.root.add_resource("jobs")
        route(jobs, "POST")
        route(jobs, "GET")
        route(jobs.add_resource("{id}"), "GET", ("id",))
        route(api.root.add_resource("stats"), "GET")
        documents = api.root.add_resource("documents")
        route(documents, "GET")
        route(documents.add_resource("{source}"), "DELETE", ("source",))
        # What the web view of `kg serve` browses (kg.api): a triple's sources, a node, the overview.
        route(api.root.add_resource("triples").add_resource("{id}"), "GET", ("id",))
        route(api.root.add_resource("nodes").add_resource("{id}"), "GET", ("id",))
        route(api.root.add_resource("overview"), "GET")
        for query in ("search", "concepts", "neighbors"):  # kg.search: GET with parameters, POST with a body
            resource = api.root.add_resource(query)
            route(resource, "GET")
            route(resource, "POST")
        return api
