"""Export service: checkpoints to deployable formats, with a parity check."""

__version__ = "0.1.0"
