"""The Migrate function: the stack's Custom::KgMigrations resource applies the graph schema on deploy.

Create and Update (a changed migrations hash or embedding space) apply the migrations not yet
applied (kg.db.migrate: versioned, idempotent, serialized by an advisory lock). Delete leaves the
database as it is: the schema goes with the data, which the cluster's removal policy snapshots.
"""

from __future__ import annotations

from typing import Any

from kg.aws.events import MigrationsEvent
from kg.db import apply_migrations, latest_schema_version

# One physical resource for the life of the stack: an update never makes CloudFormation delete it.
PHYSICAL_ID = "kg-graph-schema"


def on_migrations_event(event: MigrationsEvent, database_url: str) -> dict[str, Any]:
    """The response the CDK Provider framework hands back to CloudFormation."""
    if event.RequestType == "Delete":
        return {"PhysicalResourceId": event.PhysicalResourceId or PHYSICAL_ID}
    properties = event.ResourceProperties
    applied = apply_migrations(database_url, properties.EmbeddingModel, properties.EmbeddingDimensions)
    return {
        "PhysicalResourceId": PHYSICAL_ID,
        "Data": {"Applied": ",".join(applied) or "none", "SchemaVersion": str(latest_schema_version())},
    }
