"""Adapters of the datasets service: ORM tables, broker, storage."""
