"""Notifier service: platform events pushed to WebSocket subscribers."""

__version__ = "0.1.0"
