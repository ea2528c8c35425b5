"""Entrypoints of the datasets service: REST routes."""
