"""Jobs service: training jobs REST API and job state."""

__version__ = "0.1.0"
