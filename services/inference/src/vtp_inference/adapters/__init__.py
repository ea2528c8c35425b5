"""Adapters of the inference service: ORM tables, broker, storage."""
