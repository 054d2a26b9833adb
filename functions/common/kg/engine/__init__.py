"""Engines run the stages: `local` in-process; the AWS engine is the Step Functions state machine in infra/."""
