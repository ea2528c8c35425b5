"""Triton: models served by an external Triton server, loaded through its repository API.

Triton runs with `--model-control-mode=explicit` on a model repository directory it shares with
this service. Loading a deployment's model writes it there (verified by sha256, see
`triton_repository`) and calls `load_model`; inference forwards the tensor with
`tritonclient.http` (binary tensor data) and asks for the outputs wanted (every one of a segment
model: its detections and mask prototypes). `tritonclient[grpc]` is not used: it pins a protobuf
older than the platform's. Each prepared model has its own Triton name (its runtime key: the
deployment id and its preparation's random part; and the model sha256), so a model Triton refuses
fails that deployment alone, and a preparation releasing its model never unloads another's.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import Any

import numpy as np
import tritonclient.http as triton_http
from tritonclient.utils import InferenceServerException

from vtp_inference.adapters.runtimes import ModelInvalid, RuntimeUnavailable
from vtp_inference.adapters.triton_repository import (
    RepositoryError,
    TritonRepository,
    model_config,
    model_files,
)
from vtp_runtime.tracing import outgoing_headers


def triton_name(key: str, model_sha256: str) -> str:
    """The model's name in Triton: one per runtime key (a deployment's preparation) and model file."""
    return f"vtp-{key}-{model_sha256[:12]}"


class TritonServer:
    """One Triton server and the repository directory it loads from."""

    def __init__(self, url: str, repository: Path, backend: str, threads: int, timeout: float = 120.0) -> None:
        self.url, self.backend, self.threads, self.timeout = url, backend, threads, timeout
        self.repository = TritonRepository(repository)
        self._local = threading.local()  # tritonclient's HTTP client is not thread-safe: one per thread

    def client(self) -> triton_http.InferenceServerClient:
        client: triton_http.InferenceServerClient | None = getattr(self._local, "client", None)
        if client is None:
            client = triton_http.InferenceServerClient(
                self.url, connection_timeout=self.timeout, network_timeout=self.timeout
            )
            self._local.client = client
        return client

    def live(self) -> bool:
        try:
            return bool(self.client().is_server_live())
        except (OSError, InferenceServerException):
            return False

    def load(self, files: list[bytes], key: str) -> TritonModel:
        """Write the model (model.onnx, the export's config.pbtxt) to the repository and load it."""
        if len(files) != 2:
            raise ModelInvalid("a Triton model is the export's model.onnx and its config.pbtxt")
        name = triton_name(key, hashlib.sha256(files[0]).hexdigest())
        try:
            config = model_config(files[1].decode(), name, self.backend, self.threads)
            self.repository.write(name, model_files(files[0], config, self.backend))
        except (RepositoryError, UnicodeDecodeError) as exc:
            raise ModelInvalid(f"Triton repository: {exc}") from exc
        client = self.client()
        try:
            if not client.is_model_ready(name):
                client.load_model(name)
            metadata: dict[str, Any] = client.get_model_metadata(name)
        except InferenceServerException as exc:  # Triton refused this model: its own failure only
            self.repository.remove(name)
            raise ModelInvalid(f"Triton cannot load the model: {exc.message()}") from exc
        except OSError as exc:
            raise RuntimeUnavailable(f"Triton at {self.url} is unreachable: {exc}") from exc
        return TritonModel(self, name, metadata)

    def release(self, key: str, model_sha256: str) -> None:
        """Unload the model from Triton and remove it from the repository."""
        name = triton_name(key, model_sha256)
        try:
            self.client().unload_model(name)
        except InferenceServerException as exc:
            if exc.status() not in ("404", "400"):  # not loaded: nothing to unload
                raise RuntimeUnavailable(f"Triton cannot unload {name}: {exc.message()}") from exc
        except OSError as exc:
            raise RuntimeUnavailable(f"Triton at {self.url} is unreachable: {exc}") from exc
        self.repository.remove(name)


class TritonModel:
    """A model loaded in Triton, behind the same interface as the in-process runtimes.

    Its outputs are those of its configuration (the export's config.pbtxt), in that order and by
    those names: the ONNX model's own (segment: `output0`, then the prototypes `output1`).
    """

    def __init__(self, server: TritonServer, name: str, metadata: dict[str, Any]) -> None:
        self._server, self.name = server, name
        self.platform = str(metadata.get("platform", "triton"))
        inp = metadata["inputs"][0]
        self.input_name, self.input_shape = str(inp["name"]), list(inp["shape"])
        # Every output, (name, shape), as the other runtimes list them.
        self.outputs: list[tuple[str, list[Any]]] = [(str(o["name"]), list(o["shape"])) for o in metadata["outputs"]]
        if not self.outputs:
            raise ModelInvalid(f"Triton model {name} declares no output")
        self.output_name, self.output_shape = self.outputs[0]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self._infer(x, [self.output_name])[0]

    def run_all(self, x: np.ndarray) -> list[np.ndarray]:
        """Every output, in the model's order."""
        return self._infer(x, [n for n, _ in self.outputs])

    def _infer(self, x: np.ndarray, names: list[str]) -> list[np.ndarray]:
        tensor = triton_http.InferInput(self.input_name, list(x.shape), "FP32")
        tensor.set_data_from_numpy(np.ascontiguousarray(x, dtype=np.float32), binary_data=True)
        wanted = [triton_http.InferRequestedOutput(n, binary_data=True) for n in names]
        headers = outgoing_headers()  # the request's traceparent: Triton's span joins its trace
        client = self._server.client()
        try:
            try:
                result = client.infer(self.name, [tensor], outputs=wanted, headers=headers)
            except InferenceServerException:
                # Not loaded any more (a restarted Triton): load it again, unless it was released
                # (its directory is gone then) and this replica has not yet heard of the change.
                if not (self._server.repository.root / self.name).is_dir() or client.is_model_ready(self.name):
                    raise
                client.load_model(self.name)
                result = client.infer(self.name, [tensor], outputs=wanted, headers=headers)
        except InferenceServerException as exc:
            raise RuntimeUnavailable(f"Triton model {self.name}: {exc.message()}") from exc
        except OSError as exc:
            raise RuntimeUnavailable(f"Triton at {self._server.url} is unreachable: {exc}") from exc
        outputs = []
        for n in names:
            output = result.as_numpy(n)
            if output is None:
                raise RuntimeUnavailable(f"Triton model {self.name} answered without {n}")
            outputs.append(np.asarray(output))
        return outputs
