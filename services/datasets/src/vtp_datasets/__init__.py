"""Datasets service: datasets and immutable dataset snapshots."""

__version__ = "0.1.0"
