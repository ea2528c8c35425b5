"""Adapters of the export service: ORM tables, broker, storage."""
