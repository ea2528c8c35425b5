#!/bin/sh
# Regenerates vtp_inference/entrypoints/oip_proto/*_pb2*.py(i) from the .proto files beside them.
# The .proto files are Triton's (github.com/triton-inference-server/common, branch r25.08,
# protobuf/), the very definitions tritonclient 2.60 ships compiled: the unit test
# test_inference_oip_proto.py checks that both descriptors are byte for byte the same.
# Needs grpcio-tools (requirements-dev.txt); run from the repository root.
set -eu
cd services/inference/src/vtp_inference/entrypoints/oip_proto
"${PYTHON:-../../../../../../.venv/bin/python}" -m grpc_tools.protoc -I. --python_out=. --pyi_out=. \
    --grpc_python_out=. grpc_service.proto model_config.proto
rm -f model_config_pb2_grpc.py  # the model configuration declares no service
# protoc writes top-level imports; the modules live in a package
sed -i 's/^import model_config_pb2 as/from . import model_config_pb2 as/' grpc_service_pb2.py grpc_service_pb2.pyi
sed -i 's/^import grpc_service_pb2 as/from . import grpc_service_pb2 as/' grpc_service_pb2_grpc.py
