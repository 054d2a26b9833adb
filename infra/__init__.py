"""The AWS engine's CDK app: `cdk.json` runs `python3 infra/app.py` from the repository root."""
