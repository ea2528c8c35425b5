"""Trainer runner: runs training job attempts on a CPU or GPU worker."""

__version__ = "0.1.0"
