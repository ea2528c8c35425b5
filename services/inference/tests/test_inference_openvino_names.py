"""OpenVINO input ports may carry several tensor names: the OIP name is the ONNX export's when present."""

from __future__ import annotations

from vtp_inference.adapters.openvino_runtime import _name


class Port:
    def __init__(self, *names: str) -> None:
        self.names = set(names)

    def get_names(self) -> set[str]:
        return self.names


def test_the_onnx_name_wins_over_others_and_unnamed_ports_get_it():
    assert _name(Port("images", "x.1"), "images") == "images"
    assert _name(Port("images"), "images") == "images"
    assert _name(Port(), "output0") == "output0"
    assert _name(Port("logits"), "output0") == "logits"
