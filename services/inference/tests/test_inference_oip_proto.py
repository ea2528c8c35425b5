"""The gRPC service the inference service serves is the one `tritonclient` ships, byte for byte,
and its refusals map to the status codes a gRPC client expects."""

from __future__ import annotations

import grpc
import pytest
from tritonclient.grpc import model_config_pb2 as triton_config
from tritonclient.grpc import service_pb2 as triton_service

from vtp_inference.entrypoints.oip_grpc_codec import grpc_status
from vtp_inference.entrypoints.oip_proto import grpc_service_pb2, model_config_pb2
from vtp_inference.service_layer.oip import OipError


@pytest.mark.parametrize(("ours", "theirs"), [(grpc_service_pb2, triton_service), (model_config_pb2, triton_config)])
def test_the_descriptors_are_tritonclients(ours: object, theirs: object) -> None:
    assert ours.DESCRIPTOR.serialized_pb == theirs.DESCRIPTOR.serialized_pb  # type: ignore[attr-defined]


def test_messages_cross_between_both_modules() -> None:
    ours = grpc_service_pb2.ModelInferRequest(model_name="m", raw_input_contents=[b"\0" * 4])
    assert triton_service.ModelInferRequest.FromString(ours.SerializeToString()).model_name == "m"


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (400, "invalid_inference_request", grpc.StatusCode.INVALID_ARGUMENT),
        (400, "model_not_ready", grpc.StatusCode.UNAVAILABLE),
        (401, "invalid_token", grpc.StatusCode.UNAUTHENTICATED),
        (403, "key_forbidden", grpc.StatusCode.PERMISSION_DENIED),
        (404, "model_not_found", grpc.StatusCode.NOT_FOUND),
        (429, "rate_limited", grpc.StatusCode.RESOURCE_EXHAUSTED),
        (503, "model_unavailable", grpc.StatusCode.UNAVAILABLE),
        (500, "bug", grpc.StatusCode.INTERNAL),
    ],
)
def test_refusals_become_grpc_status_codes(status: int, code: str, expected: grpc.StatusCode) -> None:
    assert grpc_status(OipError(status, code, "why")) == expected
