"""``vtp-inference``: run the inference service."""

from vtp_inference.bootstrap import create_app
from vtp_inference.settings import InferenceSettings
from vtp_runtime.serve import serve


def main() -> None:
    settings = InferenceSettings()
    serve(settings, lambda: create_app(settings), loop="uvloop")  # bench/oip_infer.py: less per-request cost
