"""Inference service: deployments and predictions."""

__version__ = "0.1.0"
