"""Which service answers which public path: the one routing table of the platform."""

from __future__ import annotations

# Paths each service owns under the gateway; a prefix covers itself and everything below it.
SERVICE_ROUTES: dict[str, tuple[str, ...]] = {
    "identity": ("/api/v1/projects", "/api/v1/tokens", "/api/v1/auth"),
    "jobs": ("/api/v1/jobs", "/api/v1/trainers"),
    "datasets": ("/api/v1/datasets",),
    "export": ("/api/v1/exports",),
    # /v2: the Open Inference Protocol
    "inference": ("/api/v1/deployments", "/api/v1/predict", "/api/v1/usage", "/api/v1/keys", "/v2"),
    "notifier": ("/api/v1/ws", "/api/v1/subscriptions"),
}

# Services that run but serve no public routes; they still report health.
INTERNAL_SERVICES: tuple[str, ...] = ("trainer-runner",)

ALL_SERVICES: tuple[str, ...] = (*SERVICE_ROUTES, *INTERNAL_SERVICES)
