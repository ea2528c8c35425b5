"""Identity service: projects and project-scoped API tokens."""

__version__ = "0.1.0"
