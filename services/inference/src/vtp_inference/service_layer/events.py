"""The `deployment.changed.v1` payload of a deployment's current state."""

from __future__ import annotations

from datetime import datetime

from vtp_contracts.events.deployments import DeploymentChanged, TrafficShare
from vtp_inference.domain.model import Deployment
from vtp_inference.domain.traffic import shares


def changed(deployment: Deployment, status: str, now: datetime) -> DeploymentChanged:
    model = deployment.model or {}
    return DeploymentChanged(
        deployment_id=deployment.id,
        project_id=deployment.project_id,
        status=status,
        export_id=deployment.export_id,
        model_uri=model.get("uri"),
        runtime=deployment.runtime,
        task_type=deployment.task_type,
        message=deployment.error_message,
        occurred_at=now,
        name=deployment.name,
        export_version=deployment.export_version,
        model_sha256=model.get("sha256"),
        error_code=deployment.error_code,
        traffic=[TrafficShare(**share) for share in shares(deployment)],
    )
