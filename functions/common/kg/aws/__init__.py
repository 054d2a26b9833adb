"""The AWS engine's edge: what the Lambda handlers under functions/ share.

`ports` builds the S3, DynamoDB, Aurora and OpenAI ports once per container from Settings and the
environment; `events` holds the pydantic models of the events Step Functions, CloudFormation and S3
send; `observability` the Powertools Logger, Tracer and Metrics every handler uses; `jobs` starts a
pipeline execution (the API and the S3 upload); `api` is the REST API's routes. The handlers
themselves only parse, call one function and return its small result.
"""
