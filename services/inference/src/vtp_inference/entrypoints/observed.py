"""Latency histograms of the serving routes, per deployment (``GET /metrics``)."""

from __future__ import annotations

import uuid

from vtp_runtime.metrics import METRICS

PREDICT = "vtp_inference_predict_seconds"
INFER = "vtp_inference_infer_seconds"
GRPC_INFER = "vtp_inference_grpc_infer_seconds"
METRICS.declare(PREDICT, "histogram", "Predict requests answered 200: seconds from arrival to answer, by deployment.")
METRICS.declare(INFER, "histogram", "OIP v2 REST infers answered 200: seconds from arrival to answer, by deployment.")
METRICS.declare(GRPC_INFER, "histogram", "OIP v2 gRPC ModelInfer calls answered OK: seconds to answer, by deployment.")


def observe(name: str, deployment_id: uuid.UUID, seconds: float) -> None:
    METRICS.observe(name, seconds, deployment=str(deployment_id))
