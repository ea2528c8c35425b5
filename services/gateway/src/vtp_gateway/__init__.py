"""Gateway: routes ``/api/v1/<area>`` to services and aggregates their health."""

__version__ = "0.1.0"
